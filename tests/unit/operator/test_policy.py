"""The operator's cluster-wide policy: remote code only when the administrator allows it."""

from __future__ import annotations

import argparse

import pytest

from eureka_operator import main
from eureka_operator.policy import ALLOW_REMOTE_CODE_ENV, enforce_policy
from eureka_trainer.config import RLJobError, validate_rljob


def _job(trust: bool) -> object:
    return validate_rljob(
        {
            "apiVersion": "eureka.dev/v1alpha1",
            "kind": "RLJob",
            "metadata": {"name": "j", "namespace": "ns"},
            "spec": {
                "model": {"name": "OpenGVLab/InternVL2_5-8B", "trustRemoteCode": trust},
                "data": {"trainFiles": ["/d.jsonl"]},
                "rollout": {"backend": "hf"},
            },
        }
    )


def test_remote_code_is_refused_unless_allowed() -> None:
    enforce_policy(_job(False), allow_remote_code=False)  # type: ignore[arg-type]
    enforce_policy(_job(True), allow_remote_code=True)  # type: ignore[arg-type]
    with pytest.raises(RLJobError) as err:
        enforce_policy(_job(True), allow_remote_code=False)  # type: ignore[arg-type]
    (problem,) = err.value.problems
    assert problem.path == "spec.model.trustRemoteCode" and problem.file == "RLJob ns/j"


def test_spec_default_is_off() -> None:
    assert _job(False).spec.model.trust_remote_code is False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "env", "allowed"),
    [([], None, False), (["--allow-remote-code"], None, True), ([], "true", True)],
)
def test_operator_flag_and_environment(
    argv: list[str], env: str | None, allowed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if env is None:
        monkeypatch.delenv(ALLOW_REMOTE_CODE_ENV, raising=False)
    else:
        monkeypatch.setenv(ALLOW_REMOTE_CODE_ENV, env)
    parser = argparse.ArgumentParser()
    main.add_arguments(parser)
    assert main.options_from(parser.parse_args(argv)).allow_remote_code is allowed
