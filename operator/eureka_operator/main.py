"""`eureka operator`: run the kopf operator (RLJob -> KubeRay RayJob).

Several replicas may run: with peering (the default when replicas > 1), each replica takes a random
priority, the highest one works and the others stand by until its peering record expires.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

from eureka_operator import handlers, metrics
from eureka_operator.builder import JOB_LABEL
from eureka_operator.handlers import audit
from eureka_operator.handlers.common import State
from eureka_operator.kube import Kube
from eureka_operator.policy import ALLOW_REMOTE_CODE_ENV


@dataclass
class Options:
    """How one operator process runs (parsed from the command line, or built by tests)."""

    namespaces: Sequence[str] = ()
    metrics_port: int = 8080
    liveness: str | None = None
    peering: str | None = None
    priority: int = 0
    standalone: bool = False
    peering_lifetime: int = 30
    allow_remote_code: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        dest="namespaces",
        help="watch this namespace (repeat for several; glob patterns allowed); default: all",
    )
    parser.add_argument(
        "--metrics-port", type=int, default=8080, help="Prometheus /metrics port (0: off)"
    )
    parser.add_argument(
        "--liveness",
        default=None,
        metavar="URL",
        help="liveness endpoint, e.g. http://0.0.0.0:8081/healthz",
    )
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--peering",
        default=None,
        metavar="NAME",
        help="kopf peering object shared by the replicas (needs the KopfPeering CRDs)",
    )
    peering.add_argument(
        "--standalone", action="store_true", help="run without peering (one replica)"
    )
    parser.add_argument(
        "--priority",
        default="random",
        help="peering priority: an integer, or `random` so that exactly one replica is active",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each handler call")
    parser.add_argument(
        "--allow-remote-code",
        action="store_true",
        default=os.environ.get(ALLOW_REMOTE_CODE_ENV, "").lower() in ("1", "true", "yes"),
        help="allow RLJobs with model.trustRemoteCode (code from the model hub runs in the "
        f"trainer); default: off, or ${ALLOW_REMOTE_CODE_ENV}=true",
    )


def options_from(args: argparse.Namespace) -> Options:
    priority = (
        random.SystemRandom().randint(1, 2**31 - 1)
        if args.priority == "random"
        else int(args.priority)
    )
    return Options(
        namespaces=list(args.namespaces),
        metrics_port=args.metrics_port,
        liveness=args.liveness,
        peering=args.peering,
        priority=priority,
        standalone=args.standalone,
        allow_remote_code=args.allow_remote_code,
    )


class NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff-base, never built: this operator has no change handlers to compare it for.

    kopf builds the "essence" of every object of every watched kind on every event (three deep
    copies of the body) for its on.create/on.update handlers. The RLJob handler is
    level-triggered instead (handlers/rljob.py), so the essence is left empty and nothing is
    stored: no diff-base annotation patch per job either.
    """

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None


def configure(settings: kopf.OperatorSettings, options: Options) -> None:
    """kopf settings: our annotations for its bookkeeping, no Events for routine log lines."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="eureka.dev")
    settings.persistence.diffbase_storage = NoDiffBase(
        prefix="eureka.dev", key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "eureka-operator"
    # Server-side filtering: only our RayJobs and pods are streamed (handlers filter again).
    settings.watching.label_selectors["ray.io", "rayjobs"] = JOB_LABEL
    settings.watching.label_selectors["v1", "pods"] = JOB_LABEL
    settings.peering.lifetime = options.peering_lifetime
    settings.peering.stealth = True


def build_registry(options: Options) -> kopf.OperatorRegistry:
    registry = handlers.registry()

    async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
        configure(settings, options)
        memo.eureka = State(Kube(settings), allow_remote_code=options.allow_remote_code)
        metrics.serve(options.metrics_port)
        # Missed RayJob deletions (watch gaps): handlers/audit.py. Cancelled at cleanup.
        memo.audit = asyncio.get_running_loop().create_task(
            audit.audit_loop(memo.eureka, audit.AUDIT_S), name="audit"
        )

    async def cleanup(memo: Any, **_: Any) -> None:
        task = getattr(memo, "audit", None)
        if task is not None:
            task.cancel()

    def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
        # In a pod: its service account; elsewhere: $KUBECONFIG or ~/.kube/config.
        return kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
            settings=settings
        )

    kopf.on.startup(registry=registry)(startup)
    kopf.on.cleanup(registry=registry)(cleanup)
    kopf.on.login(registry=registry)(login)
    return registry


async def serve(
    options: Options,
    *,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
) -> None:
    """Run the operator until `stop_flag` is set (or a signal arrives, in the main thread)."""
    await kopf.operator(
        registry=build_registry(options),
        clusterwide=not options.namespaces,
        namespaces=list(options.namespaces),
        standalone=options.standalone or None,
        peering_name=options.peering,
        priority=options.priority,
        liveness_endpoint=options.liveness,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
        memo=kopf.Memo(),
    )


def run(args: argparse.Namespace) -> int:
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.PLAIN)
    if not args.verbose:
        # Framework news (startup, peering pauses) stays at INFO; per-object "handler succeeded"
        # lines (several per job) only with --verbose. Failures are WARNING and always shown.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    tune_gc()
    asyncio.run(serve(options_from(args)))
    return 0


def tune_gc() -> None:
    """Keep the cyclic garbage collector from eating a burst of new jobs.

    Measured with 500 RLJobs at once: Python's default thresholds ran 6 full collections, each
    scanning every object imported at startup (kopf, aiohttp, pydantic: ~60k) plus the jobs' own,
    for 0.8 s of the operator's 4 s of CPU. Frozen startup objects are never scanned again, and
    rarer young collections (every 50k net new objects, not 700) promote fewer short-lived objects
    (one event's dicts) to the old generations: 0.05-0.1 s of collections while the 500 RayJobs
    are created, instead of 0.15-0.2 s with a 10k threshold. Reference counting still frees
    everything that is not in a cycle at once.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
