"""Evaluation prompt templates: how a bare question becomes chat messages, and how its answer is read.

The three names are MM-EUREKA's evaluation templates (`--prompt_template`), worded here anew:

- `original`: the question alone, as a plain user turn. The answer is read like an instruct
  answer without tags, i.e. math-verify looks at the whole response (it prefers a `\\boxed{}`,
  then the last expression).
- `reasoning_instruct`: the user turn asks for `<think>...</think><answer>...</answer>` with a
  LaTeX answer; the answer is the first `<answer>...</answer>` (reward mode `instruct`).
- `reasoning_pretrain`: a system turn describing the think/answer protocol, and a user turn
  asking for step-by-step reasoning with the final answer in `\\boxed{}`; the answer is the last
  `\\boxed{...}` (reward mode `boxed`).

A template only builds prompts for records that carry a bare question (the K12 format). Records
in the training formats already carry their conversation, which is kept exactly as written (it
is the prompt the model was trained or is meant to be evaluated on); for them the template only
decides how the answer is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eureka_trainer.registry import Registry

#: The placeholder that marks an image's position in a user turn (the training formats' convention).
IMAGE_PLACEHOLDER = "<image>"

Message = dict[str, Any]


@dataclass(frozen=True)
class Template:
    """A prompt template: `messages(question, images)` and the reward mode that reads answers."""

    name: str
    reward_mode: str
    build: Callable[[str, int], list[Message]]

    def messages(self, question: str, images: int) -> list[Message]:
        """Chat messages (`[{role, content}]`, `<image>` placeholders first) for one question."""
        return self.build(question, images)


def _user(text: str, images: int) -> Message:
    """A user turn: one `<image>` placeholder line per image, then the text."""
    return {"role": "user", "content": f"{IMAGE_PLACEHOLDER}\n" * images + text}


_INSTRUCT_PREFIX = (
    "Think about the question step by step before answering. Put your reasoning inside "
    "<think> </think> tags and your final answer, written in LaTeX between $...$, inside "
    "<answer> </answer> tags; for example <think> Since $2+3=5$, the result is $5$. </think>"
    "<answer> $5$ </answer>. Your output must begin with <think> and end with </answer>.\n"
)

_PRETRAIN_SYSTEM = (
    "This is a conversation between a User and an Assistant. The User asks a question and the "
    "Assistant solves it: it first reasons about the problem privately and then gives the "
    "answer. The reasoning goes inside <think> </think> tags and the answer inside "
    "<answer> </answer> tags, i.e. <think> reasoning </think> <answer> answer </answer>."
)


def _original(question: str, images: int) -> list[Message]:
    return [_user(question, images)]


def _reasoning_instruct(question: str, images: int) -> list[Message]:
    return [_user(_INSTRUCT_PREFIX + question, images)]


def _reasoning_pretrain(question: str, images: int) -> list[Message]:
    text = (
        f"Solve the following question: {question}\n"
        "Reason step by step and write the final answer inside \\boxed{}."
    )
    return [{"role": "system", "content": _PRETRAIN_SYSTEM}, _user(text, images)]


TEMPLATES: Registry[Template] = Registry("evaluation template")
TEMPLATES.add("original", Template("original", "instruct", _original))
TEMPLATES.add("reasoning_instruct", Template("reasoning_instruct", "instruct", _reasoning_instruct))
TEMPLATES.add("reasoning_pretrain", Template("reasoning_pretrain", "boxed", _reasoning_pretrain))


def get_template(name: str) -> Template:
    """The template registered as `name` (an unknown name lists the known ones)."""
    return TEMPLATES.get(name)
