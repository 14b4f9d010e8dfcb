"""`eureka serve` argument handling and backend choice."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from eureka_service import cli
from eureka_service.auth import KubeAuth, LocalTokenAuth
from eureka_service.kube import KubeBackend
from eureka_service.local import LocalBackend
from tests.unit.reporting.kmock_crd import write_kubeconfig


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults() -> None:
    args = _args()
    assert (args.host, args.port, args.runs, args.backend) == ("127.0.0.1", 8080, None, "auto")


def test_runs_means_local_with_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.TOKEN_ENV, raising=False)
    backend, auth, hint = cli.build(_args("--runs", str(tmp_path)))
    assert isinstance(backend, LocalBackend) and backend.root == tmp_path.resolve()
    assert isinstance(auth, LocalTokenAuth)
    token = hint.removeprefix("write token: ")
    assert len(token) >= 40  # 32 random bytes, URL-safe base64
    _, _, other = cli.build(_args("--runs", str(tmp_path)))
    assert other != hint  # a new token per start


def test_token_from_file_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("from-a-file-0123456789\n")
    _, _, hint = cli.build(_args("--runs", str(tmp_path), "--token-file", str(tmp_path / "token")))
    assert hint == "write token: from-a-file-0123456789"
    monkeypatch.setenv(cli.TOKEN_ENV, "from-the-env-0123456789")
    assert cli.build(_args("--runs", str(tmp_path)))[2] == "write token: from-the-env-0123456789"
    monkeypatch.setenv(cli.TOKEN_ENV, "short")
    with pytest.raises(ValueError, match="at least 16"):
        cli.build(_args("--runs", str(tmp_path)))


def test_auto_picks_a_configured_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kubeconfig = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:9")
    backend, auth, hint = cli.build(_args("--kubeconfig", str(kubeconfig), "--namespace", "team-a"))
    assert isinstance(backend, KubeBackend) and isinstance(auth, KubeAuth)
    assert backend.namespace == "team-a" and "Kubernetes bearer token" in hint


def test_auto_without_cluster_is_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.chdir(tmp_path)
    backend, _, _ = cli.build(_args())
    assert isinstance(backend, LocalBackend) and backend.root == (tmp_path / "runs").resolve()


def test_kubernetes_backend_without_cluster_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    assert cli.run(_args("--backend", "kubernetes")) == 2
    assert "no kubeconfig at" in capsys.readouterr().err
