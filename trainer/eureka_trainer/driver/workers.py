"""The Ray actors of a run: rollout engines and learner ranks (plain classes; the driver wraps
them with `ray.remote` so this module imports no Ray and is testable without it).

`HybridWorker` hosts a learner rank and a rollout engine in one process (colocated placement
with the `hf` backend): when the learner keeps its full weights in place (torch, DeepSpeed ZeRO
0-2) the engine samples from the learner's own module, so there is no second copy of the model
and weight sync moves nothing; otherwise (ZeRO-3) the weights are gathered and copied in the
process, never through Ray's object store."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from eureka_trainer.backends import (
    Completion,
    GenerationRequest,
    SamplingConfig,
    TrainSample,
    WeightBucket,
)
from eureka_trainer.driver.collector import freeze_startup_objects


def _prepare_process(threads: int) -> None:
    """Torch threads, and tensors sent to and from this actor as numpy arrays."""
    import torch

    from eureka_trainer.driver.transport import register_tensor_transport

    torch.set_num_threads(max(1, threads))
    register_tensor_transport()


class EngineHost:
    """The rollout-engine methods of an actor that holds `self.engine`."""

    engine: Any

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: SamplingConfig
    ) -> list[list[Completion]]:
        return self.engine.generate(requests, sampling)  # type: ignore[no-any-return]

    def load_weights(self, buckets: Sequence[WeightBucket]) -> tuple[int, int]:
        """Load the buckets; (buckets, bytes) loaded."""
        self.engine.load_weights(buckets)
        return len(buckets), sum(b.nbytes for b in buckets)

    def sleep(self) -> None:
        self.engine.sleep()

    def wake_up(self) -> None:
        self.engine.wake_up()


def actor_placement() -> dict[str, Any]:
    """Where the calling Ray actor runs (what `eureka run --plan` and the run's log show)."""
    import ray

    context = ray.get_runtime_context()
    return {
        "node": context.get_node_id(),
        "ip": ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]
        "gpus": [str(g) for g in ray.get_gpu_ids()],
        "visibleDevices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


class RolloutWorker(EngineHost):
    """Hosts one `RolloutEngine`."""

    def __init__(
        self,
        backend: str,
        model_path: str,
        family: str,
        dtype: str,
        rollout: Any,
        threads: int,
        pixels: tuple[int, int] | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        _prepare_process(threads)
        from eureka_trainer.models.loading import load_tokenizer
        from eureka_trainer.rollout import build_rollout_engine

        tokenizer = load_tokenizer(model_path, trust_remote_code=trust_remote_code)
        self.engine = build_rollout_engine(
            backend,
            model_path,
            family,
            tokenizer,
            dtype=dtype,
            rollout=rollout,
            pixels=pixels,
            trust_remote_code=trust_remote_code,
        )
        freeze_startup_objects()

    def ready(self) -> bool:
        """Answers once the constructor has finished (the driver waits for every actor)."""
        return True

    def placement(self) -> dict[str, Any]:
        """Where this actor runs (see `actor_placement`)."""
        return actor_placement()

    def broadcast_members(self) -> int:
        """Members this actor adds to the broadcast group (a vLLM engine: one per worker)."""
        return int(getattr(self.engine, "broadcast_members", lambda: 1)())

    def join_broadcast(self, address: str, rank: int, size: int, layouts: list[Any]) -> None:
        """Become rank `rank` of the weight broadcast group (see `sync.broadcast`); an engine
        that receives in its own workers (vLLM) joins there instead."""
        if hasattr(self.engine, "join_broadcast"):
            self.engine.join_broadcast(address, rank, size, layouts)
            self.broadcast = None
            return
        from eureka_trainer.sync.broadcast import join_group

        self.broadcast = (join_group(address, rank, size), layouts)

    def receive_weights(self) -> tuple[int, int]:
        """Receive the learner's weights over the broadcast group and load them."""
        if self.broadcast is None:
            return self.engine.receive_weights()  # type: ignore[no-any-return]
        from eureka_trainer.sync.broadcast import receive_buckets

        group, layouts = self.broadcast
        return self.load_weights(receive_buckets(group, layouts))


def _learner_rank(backend: str, config: Any, rank: int, world: int, master: str) -> Any:
    """Build a learner rank; ranks of a group meet through torch.distributed (gloo/NCCL) at
    `master` ("host:port", hosted by rank 0: see `LearnerWorker.free_address`)."""
    if backend == "deepspeed" or world > 1:
        host, _, port = master.partition(":")
        if not host or not port:
            raise ValueError(f"learner rank {rank}: no rendezvous address ({master!r})")
        os.environ.update(
            {
                "RANK": str(rank),
                "LOCAL_RANK": "0",  # each rank sees only its own GPU (Ray sets the devices)
                "WORLD_SIZE": str(world),
                "MASTER_ADDR": host,
                "MASTER_PORT": port,
            }
        )
    from eureka_trainer.learner import build_learner

    return build_learner(backend, config)


class LearnerWorker:
    """Hosts one learner rank; ranks of a group meet through torch.distributed (gloo/NCCL).

    Built in two calls: the constructor only prepares the process, so that the driver can ask
    rank 0 where it will host the rendezvous (`free_address`: rank 0's own node, which
    in a cluster is a worker pod, never the driver's head pod) before every rank `start`s."""

    def __init__(self, backend: str, config: Any, threads: int, rank: int = 0, world: int = 1):
        _prepare_process(threads)
        self.backend, self.config, self.rank, self.world = backend, config, rank, world

    def free_address(self) -> str:
        """`host:port` on this actor's node with a port free now: where rank 0 hosts the
        learners' rendezvous and the weight broadcast group's store."""
        from eureka_trainer.sync.broadcast import free_address

        return free_address()

    def start(self, master: str) -> None:
        """Build the learner rank; every rank's `start` runs together (they meet at `master`)."""
        self.learner = _learner_rank(self.backend, self.config, self.rank, self.world, master)
        freeze_startup_objects()

    def ready(self) -> bool:
        """Answers once the constructor has finished (the driver waits for every actor)."""
        return True

    def placement(self) -> dict[str, Any]:
        """Where this actor runs: node id and IP, Ray's GPU ids, the CUDA devices it sees."""
        return actor_placement()

    def logprobs(
        self, samples: Sequence[TrainSample], reference: bool = False
    ) -> list[list[float]]:
        return self.learner.logprobs(samples, reference=reference)  # type: ignore[no-any-return]

    def update(self, samples: Sequence[TrainSample]) -> dict[str, float]:
        return self.learner.update(samples)  # type: ignore[no-any-return]

    def weight_buckets(self, bucket_bytes: int) -> list[WeightBucket]:
        return self.learner.weight_buckets(bucket_bytes)  # type: ignore[no-any-return]

    def weight_layouts(self, bucket_bytes: int) -> list[Any]:
        """The byte layout of the weight buckets (every rank calls it: ZeRO-3 gathers)."""
        from eureka_trainer.sync.broadcast import layouts_of

        return layouts_of(self.learner.state_items(), bucket_bytes)

    def join_broadcast(self, address: str, size: int) -> None:
        """Rank 0 of the learners becomes rank 0 (the sender) of the broadcast group."""
        from eureka_trainer.sync.broadcast import join_group

        self.broadcast_group = join_group(address, 0, size)

    def broadcast_weights(self, bucket_bytes: int) -> tuple[int, int]:
        """Every rank gathers (ZeRO-3); rank 0 sends. (buckets, bytes) sent by this rank."""
        from eureka_trainer.sync.broadcast import send_buckets

        named = self.learner.state_items()
        if self.rank != 0:
            return 0, 0
        return send_buckets(self.broadcast_group, named, bucket_bytes)

    def release_memory(self, offload_optimizer: bool) -> dict[str, float]:
        """Before a colocated engine wakes (see `driver.colocation`); memory figures."""
        from eureka_trainer.driver.colocation import release

        return release(self.learner, offload_optimizer)

    def restore_memory(self) -> None:
        from eureka_trainer.driver.colocation import restore

        restore(self.learner)

    def export_ipc(self, bucket_bytes: int) -> list[Any]:
        """CUDA IPC handles of the full weights on this rank's GPU (see `sync.cuda_ipc`);
        every rank calls it (ZeRO-3 gathers). The buffers live until `release_ipc`."""
        from eureka_trainer.sync.cuda_ipc import IpcExporter

        self.ipc = getattr(self, "ipc", None) or IpcExporter()
        return self.ipc.export(self.learner.state_items(), bucket_bytes)

    def release_ipc(self) -> None:
        if getattr(self, "ipc", None) is not None:
            self.ipc.release()

    def save(self, path: str) -> None:
        self.learner.save(path)

    def load(self, path: str) -> None:
        self.learner.load(path)

    def parameter_digest(self) -> dict[str, Any]:
        """Full weights on the CPU (tests compare runs with it)."""
        return {n: t.detach().cpu().clone() for n, t in self.learner.state_items()}


class HybridWorker(LearnerWorker, EngineHost):
    """A learner rank and a rollout engine in one process (see the module docstring)."""

    def __init__(
        self,
        backend: str,
        config: Any,
        threads: int,
        rank: int,
        world: int,
        rollout_backend: str,
        rollout: Any,
    ) -> None:
        super().__init__(backend, config, threads, rank, world)
        self.rollout_backend, self.rollout = rollout_backend, rollout
        self.kept: dict[int, dict[str, Any]] = {}
        """Image tensors of the prompts sampled since the last update, by slot (see
        `driver.kept_inputs`)."""

    def start(self, master: str) -> None:
        super().start(master)
        from eureka_trainer.models.loading import load_tokenizer
        from eureka_trainer.rollout import build_rollout_engine

        config = self.config
        # The learner's module when it holds the full weights in place, else None (a copy).
        self.shared = self.learner.full_module()
        self.engine = build_rollout_engine(
            self.rollout_backend,
            config.model_path,
            config.family,
            load_tokenizer(config.model_path, trust_remote_code=config.trust_remote_code),
            dtype=config.dtype,
            rollout=self.rollout,
            module=self.shared,
            trust_remote_code=config.trust_remote_code,
        )
        freeze_startup_objects()  # the engine's objects too

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingConfig,
        keep: Sequence[int | None] | None = None,
    ) -> list[list[Completion]]:
        """Sample; with `keep`, also keep each request's image tensors under its slot for the
        next `update`."""
        if keep is not None:
            from eureka_trainer.driver.kept_inputs import remember

            remember(self.kept, requests, keep)
        return super().generate(requests, sampling)

    def update(
        self, samples: Sequence[TrainSample], kept: Sequence[int | None] | None = None
    ) -> dict[str, float]:
        """PPO on `samples`, whose image tensors come from `kept` slots where given (the
        driver did not send them again); every kept tensor is forgotten afterwards."""
        try:
            if kept is not None:
                from eureka_trainer.driver.kept_inputs import restore

                samples = restore(self.kept, samples, kept)
            return super().update(samples)
        finally:
            self.kept.clear()

    def shares_weights(self) -> bool:
        """True when the engine samples from the learner's module (sync has nothing to do)."""
        return self.shared is not None

    def sync_in_process(self, bucket_bytes: int) -> tuple[int, int]:
        """Bring the engine up to the learner's weights; (buckets, bytes) copied (0 if shared).

        Every rank must call this together: at ZeRO-3 gathering the weights is a collective."""
        if self.shared is not None:
            return 0, 0
        from eureka_trainer.backends import bucketize

        return self.load_weights(bucketize(self.learner.state_items(), bucket_bytes))
