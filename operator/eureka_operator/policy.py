"""Cluster-wide policy the operator enforces on top of the RLJob schema.

`model.trustRemoteCode: true` makes the trainer run Python files that come with the model from
its hub repository (transformers' `trust_remote_code`): code execution chosen by whoever
writes an RLJob. The operator allows it only when its administrator started it with
`--allow-remote-code` (Helm: `operator.allowRemoteCode`, env `EUREKA_ALLOW_REMOTE_CODE`);
otherwise the job fails with an InvalidSpec condition and Event naming the field, and no
RayJob is created. `eureka run` (the user's own machine) has no such gate.
"""

from __future__ import annotations

from eureka_trainer.config import Problem, RLJob, RLJobError

ALLOW_REMOTE_CODE_ENV = "EUREKA_ALLOW_REMOTE_CODE"
REMOTE_CODE_REFUSED = (
    "remote code is not allowed on this cluster (the trainer would run Python code from the "
    "model's hub repository); use a transformers-native checkpoint, or ask the administrator "
    "to start the operator with --allow-remote-code (Helm value operator.allowRemoteCode)"
)


def enforce_policy(job: RLJob, *, allow_remote_code: bool) -> None:
    """Raise `RLJobError` (one problem per refused field) when `job` asks for what this
    cluster does not allow."""
    if job.spec.model.trust_remote_code and not allow_remote_code:
        name = f"RLJob {job.metadata.namespace}/{job.metadata.name}"
        raise RLJobError(
            [Problem(name, None, 1, "spec.model.trustRemoteCode", REMOTE_CODE_REFUSED)]
        )
