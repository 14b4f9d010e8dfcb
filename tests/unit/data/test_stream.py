"""PromptStream: order, seeded shuffling, epochs, bad-line policy, exact resume."""

from __future__ import annotations

import pickle

import pytest

from eureka_trainer.data import DataError, PromptStream

from .conftest import conv_line, message_line, write_lines


@pytest.fixture
def mixed(folder):
    """Ten good lines, both formats, a blank line in the middle (line 6)."""
    lines = [conv_line(i, "file://red.png") for i in range(5)] + [""]
    lines += [message_line(i, "file://red.png") for i in range(5, 10)]
    return write_lines(folder / "train.jsonl", lines)


def ids(records):
    return [r.id for r in records]


def test_both_formats_in_file_order_with_sources(mixed):
    stream = PromptStream([mixed], shuffle=False)
    records = stream.next_batch(10)
    assert ids(records) == [f"c{i}" for i in range(5)] + [f"m{i}" for i in range(5, 10)]
    assert records[0].source == f"{mixed}:1"
    assert records[5].source == f"{mixed}:7"  # line numbers count the blank line
    assert all(r.image_paths == [mixed.parent / "red.png"] for r in records)
    assert len(stream) == 10 and stream.epoch == 0


def test_relative_images_resolve_under_image_root(folder, tmp_path_factory):
    other = tmp_path_factory.mktemp("jsonl")
    path = write_lines(other / "t.jsonl", [conv_line(0, "file://red.png")])
    with pytest.raises(DataError, match="image file not found"):
        PromptStream([path]).next_batch(1)
    record = PromptStream([path], image_root=folder).next_batch(1)[0]
    assert record.image_paths == [folder / "red.png"]


def test_batches_cross_epochs_and_each_epoch_is_a_permutation(mixed):
    stream = PromptStream([mixed], seed=3)
    first = ids(stream.next_batch(7))
    assert stream.epoch == 0
    rest = ids(stream.next_batch(13))  # 3 from epoch 0, 10 from epoch 1
    assert stream.epoch == 1 and stream.position == 10
    epoch0, epoch1 = first + rest[:3], rest[3:]
    assert sorted(epoch0) == sorted(epoch1) == sorted(ids(PromptStream([mixed]).next_batch(10)))
    assert epoch0 != epoch1  # a new permutation each epoch


def test_shuffle_is_deterministic_by_seed(mixed):
    def order(seed):
        return ids(PromptStream([mixed], seed=seed).next_batch(30))

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert order(1)[:10] != ids(PromptStream([mixed], shuffle=False).next_batch(10))


def test_several_files_are_one_dataset(folder, mixed):
    second = write_lines(folder / "more.jsonl", [conv_line(i) for i in range(20, 23)])
    stream = PromptStream([mixed, second], shuffle=False)
    records = stream.next_batch(14)
    assert ids(records[10:13]) == ["c20", "c21", "c22"]
    assert records[10].source == f"{second}:1"
    assert records[13].source == f"{mixed}:1" and stream.epoch == 1


@pytest.mark.parametrize("cut", [0, 3, 10, 17, 25])
def test_resume_yields_exactly_the_uninterrupted_records(mixed, cut):
    def fresh():
        return PromptStream([mixed], seed=5)

    whole = fresh()
    expected = ids(whole.next_batch(45))
    first = fresh()
    head = ids(first.next_batch(cut))
    state = pickle.loads(pickle.dumps(first.state_dict()))
    resumed = fresh()
    resumed.load_state_dict(state)
    tail = ids(resumed.next_batch(45 - cut))
    assert head + tail == expected
    assert resumed.epoch == whole.epoch
    assert resumed.state_dict() == whole.state_dict()


def test_resume_refuses_other_data_or_seed(mixed, folder):
    state = PromptStream([mixed], seed=5).state_dict()
    with pytest.raises(ValueError, match="seed was 5, is now 6"):
        PromptStream([mixed], seed=6).load_state_dict(state)
    write_lines(mixed, [conv_line(1)] * 3)
    with pytest.raises(ValueError, match="the data files changed"):
        PromptStream([mixed], seed=5).load_state_dict(state)


@pytest.fixture
def with_bad_lines(folder):
    lines = [conv_line(i) for i in range(16)]
    lines.insert(3, "{broken")
    lines.insert(8, conv_line(99, "file://missing.png"))
    lines.insert(12, conv_line(98, "file://broken.png"))
    lines.insert(16, conv_line(97, answer=None))  # line 17
    return write_lines(folder / "train.jsonl", lines)


def test_fail_policy_raises_the_lines_error(with_bad_lines):
    stream = PromptStream([with_bad_lines], shuffle=False)
    with pytest.raises(DataError) as caught:
        stream.next_batch(20)
    assert str(caught.value).startswith(f"{with_bad_lines}:4: not valid JSON")
    lines = [conv_line(i) for i in range(16)] + [conv_line(97, answer=None)]
    path = write_lines(with_bad_lines, lines)
    with pytest.raises(DataError, match=rf"^{path}:17: field 'answer': missing$"):
        PromptStream([path], shuffle=False).next_batch(20)


def test_skip_policy_counts_by_reason_and_resumes_with_counts(with_bad_lines):
    stream = PromptStream([with_bad_lines], bad_lines="skip", seed=2)
    records = stream.next_batch(20)  # crosses into epoch 1
    assert len(records) == 20 and stream.epoch == 1
    assert "c97" not in ids(records) and "c99" not in ids(records)
    assert dict(stream.stats.skipped) == {
        "bad_json": 1,
        "missing_field": 1,
        "missing_image": 1,
        "bad_image": 1,
    }
    metrics = stream.stats.as_metrics()
    assert metrics["data/skipped"] == 4 and metrics["data/skipped/bad_image"] == 1
    assert metrics["data/lines_read"] == 24 and metrics["data/records"] == 20
    resumed = PromptStream([with_bad_lines], bad_lines="skip", seed=2)
    resumed.load_state_dict(stream.state_dict())
    again = PromptStream([with_bad_lines], bad_lines="skip", seed=2)
    again.next_batch(20)
    assert ids(resumed.next_batch(30)) == ids(again.next_batch(30))
    assert resumed.stats == again.stats


def test_skip_policy_stops_when_every_line_is_bad(folder):
    path = write_lines(folder / "bad.jsonl", ["{", "[]", conv_line(1, answer=None)])
    stream = PromptStream([path], bad_lines="skip")
    with pytest.raises(DataError, match=r"every line is bad \(bad_field: 1, bad_json: 1"):
        stream.next_batch(1)


def test_unreadable_and_empty_files(folder):
    with pytest.raises(DataError, match=r"nope\.jsonl: cannot open"):
        PromptStream([folder / "nope.jsonl"])
    empty = write_lines(folder / "empty.jsonl", ["", "  "])
    with pytest.raises(DataError, match="no prompt lines"):
        PromptStream([empty])
    with pytest.raises(ValueError, match="bad_lines must be"):
        PromptStream([empty], bad_lines="ignore")


def test_stream_does_not_hold_records(mixed):
    stream = PromptStream([mixed], shuffle=False)
    stream.next_batch(2)
    stream.close()  # (an open handle may serve the old bytes from its read buffer)
    # Lines are read from disk when drawn: an in-place edit of a later line (same length)
    # shows up, which it would not if records were loaded up front.
    text = mixed.read_text().replace("Question 2?", "Question X?")
    mixed.write_text(text)
    assert stream.next_batch(1)[0].messages[1]["content"][1]["text"] == "Question X?"


def test_from_spec(folder, mixed):
    from eureka_trainer.config.spec import DataSpec

    spec = DataSpec(train_files=[str(mixed)], eval_files=[str(mixed)], bad_lines="skip")
    train = PromptStream.from_spec(spec, family="internvl", seed=9)
    assert train.shuffle and train.bad_lines == "skip" and train.family == "internvl"
    assert ids(train.next_batch(10)) == ids(PromptStream([mixed], seed=9).next_batch(10))
    evaluation = PromptStream.from_spec(spec, family="qwen2_vl", seed=9, split="eval")
    assert not evaluation.shuffle


def test_the_fingerprint_is_hashed_once(mixed, monkeypatch):
    """Every step's data totals and every checkpoint ask for the state: hashing the line
    offsets each time took 5.9 ms a call at a million lines."""
    import hashlib

    from eureka_trainer.data import stream as module

    calls, real = [], hashlib.sha256

    def counting(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(module.hashlib, "sha256", counting)
    stream = PromptStream([mixed], seed=1)
    states = [stream.state_dict() for _ in range(3)]
    stream.next_batch(12)  # into the next epoch
    assert stream.state_dict()["fingerprint"] == states[0]["fingerprint"]
    assert len(calls) == 1
