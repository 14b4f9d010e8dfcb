"""`eureka serve`: the job service and dashboard, over a cluster or local run directories.

Backend choice (`--backend auto`): `--runs DIR` means local run directories; otherwise a
cluster when one is configured (in-cluster service account, `--kubeconfig`, `KUBECONFIG` or
~/.kube/config); otherwise the local folder `runs/`.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

from eureka_service.app import MAX_BODY_BYTES, create_app
from eureka_service.auth import Authorizer, KubeAuth, LocalTokenAuth, generate_token
from eureka_service.backend import JobBackend
from eureka_service.hosts import allowed_hosts
from eureka_trainer.reporting.kube import ClusterConfigError, load_cluster_config

TOKEN_ENV = "EUREKA_SERVICE_TOKEN"
"""Environment variable that fixes the local write token (else one is generated)."""


EXAMPLES = """examples:
  eureka serve --runs runs/                 # dashboard over local run directories (read-only)
  eureka serve --runs runs/ --port 0        # any free port; the URL is printed once bound
  eureka serve --kubeconfig ~/.kube/config  # RLJobs of a cluster; writes with your own token
  eureka serve --host 0.0.0.0 --allowed-host eureka.lab.example --protect-reads
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free)")
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME[,NAME]",
        help="a name the service is reached by, besides loopback and --host (repeatable; "
        "'*' allows any): requests for other Host names are refused (DNS rebinding)",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        metavar="DIR",
        help="a run directory of `eureka run`, or a folder of them",
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "kubernetes", "local"),
        default="auto",
        help="where jobs come from (default: local with --runs, else a configured cluster)",
    )
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: in-cluster, then KUBECONFIG)"
    )
    parser.add_argument("--namespace", help="watch and manage this namespace only (default: all)")
    parser.add_argument(
        "--token-file",
        type=Path,
        help=f"local backend: read the write token from this file (else ${TOKEN_ENV} or a new one)",
    )
    parser.add_argument(
        "--protect-reads", action="store_true", help="require a bearer token for reads too"
    )
    parser.add_argument(
        "--read-only", action="store_true", help="refuse every write (405), whoever asks"
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=MAX_BODY_BYTES, help="largest request body accepted"
    )
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error")
    )


def build(args: argparse.Namespace) -> tuple[JobBackend, Authorizer, str]:
    """Backend, authorizer and a line telling the user how to write (the token, locally)."""
    backend = args.backend
    if backend == "auto":
        backend = "local" if args.runs is not None else _cluster_or_local(args.kubeconfig)
    if backend == "kubernetes":
        from eureka_service.kube import KubeBackend
        from eureka_service.kubeclient import KubeClient

        config = load_cluster_config(args.kubeconfig)
        client = KubeClient(config)
        kube = KubeBackend(client, namespace=args.namespace, default_namespace=config.namespace)
        where = args.namespace or "all namespaces"
        return kube, KubeAuth(client), f"writes: your Kubernetes bearer token (RBAC on {where})"

    from eureka_service.local import LocalBackend

    token = _local_token(args.token_file)
    runs = (args.runs or Path("runs")).resolve()
    return LocalBackend(runs), LocalTokenAuth(token), f"write token: {token}"


def _cluster_or_local(kubeconfig: str | None) -> str:
    try:
        load_cluster_config(kubeconfig)
    except ClusterConfigError:
        return "local"
    return "kubernetes"


def _local_token(token_file: Path | None) -> str:
    if token_file is not None:
        return token_file.read_text(encoding="utf-8").strip()
    return os.environ.get(TOKEN_ENV) or generate_token()


def run(args: argparse.Namespace) -> int:
    import uvicorn

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        backend, authorizer, write_hint = build(args)
    except (ClusterConfigError, OSError, ValueError) as err:
        print(f"eureka serve: {err}", file=sys.stderr)
        return 2
    app = create_app(
        backend,
        authorizer,
        protect_reads=args.protect_reads,
        read_only=args.read_only,
        max_body_bytes=args.max_body_bytes,
        allowed_hosts=allowed_hosts(args.host, args.allowed_host),
    )
    try:
        sock = bind(args.host, args.port)
    except OSError as err:
        print(f"eureka serve: cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    source = getattr(backend, "root", None) or "the Kubernetes API"
    host = f"[{args.host}]" if ":" in args.host else args.host
    # Printed once the port is bound, so the URL is right (also with --port 0) and reachable.
    print(f"eureka serve: {backend.kind} backend ({source})", flush=True)
    print(f"dashboard: http://{host}:{port}/", flush=True)
    print(f"API: http://{host}:{port}/api/openapi.json", flush=True)
    print(write_hint, flush=True)
    config = uvicorn.Config(app, log_level=args.log_level, server_header=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` (port 0: a free one), as uvicorn would open it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
