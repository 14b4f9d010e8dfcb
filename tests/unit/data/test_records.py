"""Both JSONL formats, the blank-image rule and every error path (file:line + field)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eureka_trainer.data import DataError, load_images, parse_line, verify_images

from .conftest import conv_line, message_line


def parse(obj_or_line, folder: Path, family: str = "qwen2_5_vl"):
    line = obj_or_line if isinstance(obj_or_line, str) else json.dumps(obj_or_line)
    return parse_line(line, "train.jsonl:17", image_root=folder, family=family)


def test_conversations_format(folder):
    record = parse(conv_line(3, "file://red.png"), folder)
    assert record.id == "c3" and record.answer == "3" and record.source == "train.jsonl:17"
    assert record.messages == [
        {"role": "system", "content": [{"type": "text", "text": "Think first."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Question 3?"}]},
    ]
    assert record.image_paths == [folder / "red.png"]
    assert record.image_fields == ["image_urls[0]"]
    assert not record.blank_image


def test_message_format_with_absolute_file_url(folder):
    record = parse(message_line(5, f"file://{folder / 'red.png'}"), folder)
    assert record.id == "m5"
    assert record.messages == [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Question 5?"}]}
    ]
    assert record.image_paths == [folder / "red.png"]
    assert record.image_fields == ["message[0].content[0].image"]


def test_message_format_accepts_an_already_decoded_list(folder):
    obj = json.loads(message_line(1, "file://red.png"))
    obj["message"] = json.loads(obj["message"])
    assert parse(obj, folder).image_paths == [folder / "red.png"]


def test_image_placeholders_are_interleaved(folder):
    obj = {
        "id": 1,
        "conversations": [{"role": "user", "content": "Left <image> right <image>?"}],
        "answer": 2,
        "image_urls": ["file://red.png", "big.png"],
    }
    record = parse(obj, folder)
    assert record.id == "1" and record.answer == "2"  # numbers are written as text
    assert record.messages[0]["content"] == [
        {"type": "text", "text": "Left "},
        {"type": "image"},
        {"type": "text", "text": " right "},
        {"type": "image"},
        {"type": "text", "text": "?"},
    ]
    assert record.image_paths == [folder / "red.png", folder / "big.png"]


@pytest.mark.parametrize(
    ("family", "blank"),
    [("internvl", True), ("qwen2_vl", False), ("qwen2_5_vl", False), ("qwen3_vl", False)],
)
def test_blank_image_rule_for_text_only_prompts(folder, family, blank):
    record = parse(conv_line(1), folder, family=family)
    assert record.blank_image is blank
    assert record.image_paths == []
    images = load_images(record)
    user = record.messages[1]["content"]
    if blank:
        assert [im.size for im in images] == [(224, 224)]
        assert images[0].getextrema() == ((255, 255), (255, 255), (255, 255))  # white
        assert user[0] == {"type": "image"}
    else:
        assert images == []
        assert all(item["type"] == "text" for item in user)


def test_internvl_with_a_real_image_gets_no_blank(folder):
    record = parse(conv_line(1, "file://red.png"), folder, family="internvl")
    assert not record.blank_image
    assert [im.size for im in load_images(record)] == [(56, 56)]


def test_text_family_gets_string_contents_and_refuses_images(folder):
    record = parse(conv_line(1), folder, family="text")
    assert record.messages[1] == {"role": "user", "content": "Question 1?"}
    with pytest.raises(DataError, match=r"field 'image_urls\[0\]': the 'text' model family"):
        parse(conv_line(1, "file://red.png"), folder, family="text")


def test_unknown_family(folder):
    with pytest.raises(ValueError, match="unknown model family 'llava'"):
        parse(conv_line(1), folder, family="llava")


GOOD = json.loads(conv_line(1))


def variant(**changes):
    obj = {**GOOD, **changes}
    return {k: v for k, v in obj.items() if v is not DROP}


DROP = object()

ERRORS = [
    ("{not json", None, "not valid JSON", "bad_json"),
    ("[1, 2]", None, "a line must be a JSON object, got a list", "bad_field"),
    (variant(answer=DROP), "answer", "missing", "missing_field"),
    (variant(answer="  "), "answer", "empty", "bad_field"),
    (variant(answer=["1"]), "answer", "must be a string, got a list", "bad_field"),
    (variant(id=DROP), "id", "missing", "missing_field"),
    (variant(conversations=DROP), "conversations", "missing (or give 'message')", "missing_field"),
    (variant(message="[]"), "message", "give either 'message' or 'conversations'", "bad_field"),
    (variant(conversations="hi"), "conversations", "must be a non-empty list", "bad_field"),
    (variant(conversations=[]), "conversations", "must be a non-empty list", "bad_field"),
    (variant(conversations=["hi"]), "conversations[0]", "must be an object", "bad_field"),
    (
        variant(conversations=[{"role": "human", "content": "x"}]),
        "conversations[0].role",
        "must be one of",
        "bad_field",
    ),
    (
        variant(conversations=[{"role": "system", "content": "x"}]),
        "conversations",
        "no 'user' message",
        "bad_field",
    ),
    (
        variant(conversations=[{"role": "user", "content": [{"type": "audio"}]}]),
        "conversations[0].content[0]",
        "must be {type: text, text} or {type: image, image}",
        "bad_field",
    ),
    (
        variant(conversations=[{"role": "user", "content": [{"type": "image", "image": "a"}]}]),
        "conversations[0].content[0]",
        "images of this format belong in 'image_urls'",
        "bad_field",
    ),
    (
        variant(conversations=[{"role": "user", "content": 7}]),
        "conversations[0].content",
        "must be a string or a list of items, got int",
        "bad_field",
    ),
    (variant(image_urls="file://red.png"), "image_urls", "must be a list of strings", "bad_field"),
    (
        variant(image_urls=["https://example.com/a.png"]),
        "image_urls[0]",
        "only local file:// images",
        "bad_field",
    ),
    (
        variant(image_urls=["file://nope.png"]),
        "image_urls[0]",
        "image file not found",
        "missing_image",
    ),
    (
        variant(
            conversations=[{"role": "user", "content": "<image><image>"}],
            image_urls=["file://red.png"],
        ),
        "image_urls",
        "1 images but 2 '<image>' placeholders",
        "bad_field",
    ),
    (
        {"id": "m", "answer": "1", "message": "[{oops"},
        "message",
        "not valid JSON",
        "bad_json",
    ),
    (
        {"id": "m", "answer": "1", "message": '[{"role": "user", "content": [{"type": "image"}]}]'},
        "message[0].content[0].image",
        "missing (an image item needs a file:// url)",
        "bad_field",
    ),
    (
        {
            "id": "m",
            "answer": "1",
            "message": '[{"role": "user", "content": "q"}]',
            "image_urls": ["file://red.png"],
        },
        "image_urls",
        "not used with 'message'",
        "bad_field",
    ),
    (
        {
            "id": "m",
            "answer": "1",
            "message": '[{"role": "user", "content": [{"type": "image", "image": "gone.png"}]}]',
        },
        "message[0].content[0].image",
        "image file not found",
        "missing_image",
    ),
]


@pytest.mark.parametrize(("line", "field", "problem", "reason"), ERRORS)
def test_error_names_file_line_and_field(folder, line, field, problem, reason):
    with pytest.raises(DataError) as caught:
        parse(line, folder)
    error = caught.value
    where = f"field '{field}': " if field else ""
    assert str(error).startswith(f"train.jsonl:17: {where}{problem}"), str(error)
    assert error.source == "train.jsonl:17" and error.field == field and error.reason == reason


def test_missing_answer_message_reads_as_documented(folder):
    with pytest.raises(DataError, match=r"^train\.jsonl:17: field 'answer': missing$"):
        parse(variant(answer=DROP), folder)


def test_image_that_fails_to_decode(folder):
    record = parse(conv_line(1, "file://broken.png"), folder)  # exists: parsing passes
    for check in (verify_images, load_images):
        with pytest.raises(DataError) as caught:
            check(record)
        assert str(caught.value).startswith(
            f"train.jsonl:17: field 'image_urls[0]': cannot decode image {folder / 'broken.png'}"
        )
        assert caught.value.reason == "bad_image"


def test_every_model_family_of_the_spec_has_rules():
    from eureka_trainer.config.spec import ModelFamily
    from eureka_trainer.data import FAMILIES

    assert set(FAMILIES) == set(ModelFamily.__args__)
