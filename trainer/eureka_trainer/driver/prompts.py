"""Prompts for the driver: the data layer's `PromptStream`, encoded with the model's processor."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from eureka_trainer.backends import GenerationRequest
from eureka_trainer.config import DataSpec


@dataclass
class EncodedItem:
    """A prompt ready to sample from, with what scoring and reporting need."""

    prompt_id: str
    prompt_text: str
    answer: str
    request: GenerationRequest


def load_processor(model_path: str, family: str, *, trust_remote_code: bool = False) -> Any:
    """The processor saved with the model (the demo model's is rebuilt from its tokenizer)."""
    from eureka_trainer.demo.resolve import is_demo_model_dir, load_demo_processor
    from eureka_trainer.models.loading import load_processor as load_saved

    if is_demo_model_dir(model_path):
        return load_demo_processor(model_path)
    return load_saved(model_path, family, trust_remote_code=trust_remote_code)


MAX_REFUSED_EPOCHS = 2  # epochs' worth of refusals before giving up (all data is bad)
FIRST_REFUSALS_LOGGED = 5
log = logging.getLogger(__name__)


class PromptSource:
    """Encoded prompt batches from the training files, with a resumable position."""

    def __init__(self, data: DataSpec, files: list[str], processor: Any, family: str, seed: int):
        from eureka_trainer.data import PromptStream

        self.data, self.processor, self.family = data, processor, family
        self.stream = PromptStream(
            files,
            image_root=data.image_root,
            bad_lines=data.bad_lines,
            family=family,
            shuffle=data.shuffle,
            seed=seed,
        )
        self.truncated = 0
        self.refused = 0
        # A batch being encoded ahead (see `prefetch`): (count, future), and the position
        # before it, which is what a checkpoint must record until the batch is taken.
        self._ahead: tuple[int, Future[list[EncodedItem]]] | None = None
        self._before: dict[str, Any] | None = None
        self._thread: ThreadPoolExecutor | None = None

    @property
    def epoch(self) -> int:
        return int(self.stream.epoch)

    def __len__(self) -> int:
        return len(self.stream)

    def prefetch(self, count: int) -> None:
        """Start encoding the next `count` prompts on a background thread; the next
        `next_batch(count)` returns them. The driver calls it once a step's requests are sent,
        while the engines sample (the encoding is CPU work in this process; during the update
        it would take a core from the learner), and `settle()` before the update starts, which
        is also before anything else here uses the processor."""
        if self._ahead is not None:
            return
        self._before = self.state_dict()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="prompt-prefetch")
        self._ahead = (count, self._thread.submit(self._encode_batch, count))

    def settle(self) -> None:
        """Wait until a running prefetch is done (its error, if any, comes with `next_batch`)."""
        if self._ahead is not None:
            wait([self._ahead[1]])

    def next_batch(self, count: int) -> list[EncodedItem]:
        """The next `count` prompts (the stream wraps into the next epoch): the prefetched ones
        when `prefetch(count)` ran, else encoded now.

        A prompt the encoder refuses (e.g. its image tokens alone exceed `maxPromptLength`)
        stops the job under `badLines: fail` (the error names file:line) and is counted and
        replaced by the next record under `badLines: skip`.
        """
        if self._ahead is not None:
            ahead_count, ahead = self._ahead
            wait([ahead])
            before, self._ahead, self._before = self._before, None, None
            if ahead_count == count:
                return ahead.result()
            assert before is not None  # another size: as if the prefetch had not happened
            self.load_state_dict(before)
        return self._encode_batch(count)

    def _encode_batch(self, count: int) -> list[EncodedItem]:
        from eureka_trainer.data import DataError
        from eureka_trainer.data.batch_encode import encode_prompts

        items: list[EncodedItem] = []
        while len(items) < count:
            records = self.stream.next_batch(count - len(items))
            encoded = encode_prompts(
                records,
                self.processor,
                family=self.family,
                max_prompt_length=self.data.max_prompt_length,
                min_pixels=self.data.min_pixels,
                max_pixels=self.data.max_pixels,
            )
            for record, result in zip(records, encoded, strict=True):
                if isinstance(result, DataError):
                    if self.data.bad_lines == "fail":
                        raise result
                    self.refused += 1
                    if self.refused <= FIRST_REFUSALS_LOGGED:
                        log.warning("prompt refused by the encoder (badLines: skip): %s", result)
                else:
                    items.append(self._item(record, result))
            if self.refused > MAX_REFUSED_EPOCHS * max(1, len(self.stream)):
                raise RuntimeError("every prompt of the training data is refused by the encoder")
        return items

    def _item(self, record: Any, encoded: Any) -> EncodedItem:
        self.truncated += int(encoded.truncated)
        request = GenerationRequest(
            prompt_ids=list(encoded.input_ids),
            mm_inputs=dict(encoded.mm_inputs),
            images=list(encoded.images),
            text=encoded.text,
        )
        return EncodedItem(record.id, _user_text(record.messages), record.answer, request)

    def state_dict(self) -> dict[str, Any]:
        """The position after the last batch taken (a prefetched batch not yet taken is not
        consumed: a resumed run encodes it again)."""
        if self._before is not None:
            return self._before
        return {
            "stream": self.stream.state_dict(),
            "truncated": self.truncated,
            "refused": self.refused,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.load_state_dict(state["stream"])
        self.truncated = state["truncated"]
        self.refused = state.get("refused", 0)

    def totals(self) -> dict[str, float]:
        """Running totals of what the data layer dropped or cut, at the position a checkpoint
        records (a prefetched batch not yet taken is not counted):
        `data/skipped_lines_total` (and `/<reason>`), `data/truncated_prompts_total`,
        `data/refused_prompts_total`."""
        state = self.state_dict()
        skipped = state["stream"]["stats"]["skipped"]
        out = {
            "data/skipped_lines_total": float(sum(skipped.values())),
            "data/truncated_prompts_total": float(state["truncated"]),
            "data/refused_prompts_total": float(state.get("refused", 0)),
        }
        out.update({f"data/skipped_lines_total/{k}": float(v) for k, v in sorted(skipped.items())})
        return out

    def summary(self) -> str:
        """One line for the end of a run: what was skipped, truncated or refused, and where
        the first skipped lines were."""
        state = self.state_dict()
        stats = state["stream"]["stats"]
        skipped = stats["skipped"]
        text = f"data: {sum(skipped.values())} of {stats['lines_read']} lines read were skipped"
        if skipped:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())) + ")"
            first = stats.get("first_skipped") or []
            if first:
                text += "; first: " + "; ".join(first)
        text += (
            f"; {state['truncated']} prompt(s) truncated to data.maxPromptLength"
            f"; {state.get('refused', 0)} prompt(s) refused by the encoder"
        )
        return text


def step_data_metrics(totals: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """The totals plus this step's share of each (`data/skipped_lines`, ...: the difference
    to the totals `before` the step)."""
    out = dict(totals)
    for key in ("skipped_lines", "truncated_prompts", "refused_prompts"):
        total = f"data/{key}_total"
        out[f"data/{key}"] = totals[total] - before.get(total, 0.0)
    return out


def _user_text(messages: list[dict[str, Any]]) -> str:
    """The text parts of the prompt's messages (what a sample record shows)."""
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [c.get("text", "") for c in content if c.get("type") == "text"]
    return "\n".join(p for p in parts if p)
