"""What answer each template reads from a response (shown per sample and used for majority votes)."""

from __future__ import annotations

from eureka_trainer.evaluation.scoring import displayed_answer
from eureka_trainer.evaluation.templates import get_template

RESPONSE = "<think>1+1 is \\boxed{2}?</think><answer> $2$ </answer> final: \\boxed{3}"


def test_reasoning_instruct_reads_the_answer_tags() -> None:
    assert displayed_answer(RESPONSE, get_template("reasoning_instruct")) == " $2$ "


def test_reasoning_pretrain_reads_the_last_box() -> None:
    assert displayed_answer(RESPONSE, get_template("reasoning_pretrain")) == "3"
    assert displayed_answer("no box", get_template("reasoning_pretrain")) is None


def test_original_prefers_the_last_box_else_the_whole_response() -> None:
    assert displayed_answer(RESPONSE, get_template("original")) == "3"
    assert displayed_answer("It is 7.", get_template("original")) == "It is 7."
