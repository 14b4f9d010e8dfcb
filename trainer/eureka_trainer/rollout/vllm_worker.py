"""Methods mixed into every vLLM worker (`LLM(worker_extension_cls=...)`), called through
`LLM.collective_rpc` by `VLLMRolloutEngine`.

They run inside vLLM's worker (a separate process unless `VLLM_ENABLE_V1_MULTIPROCESSING=0`),
so arguments cross a serializer: tensors would arrive as plain lists, hence each bucket travels
as one safetensors byte string (the `bytes` transport). An in-process engine core gets the
tensors themselves (the `inproc` transport: no copy). Both are verified on the CPU build.

A weight update is three calls, so that buckets stream one at a time:
`eureka_begin_update()` -> `eureka_load_bucket(payload)` per bucket -> `eureka_finish_update()`.
They drive vLLM's layerwise in-place reload (the machinery behind `Worker.reload_weights`):
each vLLM layer is rebuilt once all of its checkpoint tensors arrived, re-running the
platform's post-load processing (the CPU build prepacks GEMM weights, so a plain
`param.copy_` or `model.load_weights` would leave the packed copy stale), then copied into the
original storage (CUDA graphs keep valid pointers).

Colocated on GPUs, `eureka_load_bucket_ipc(plain)` receives a bucket as CUDA IPC handles
(`sync.cuda_ipc`): the worker opens the learner's buffer on its own GPU and feeds the views to
the same reload, so the weights never leave GPU memory and nothing is allocated outside vLLM's
memory budget but the reload's own per-layer buffers. Needs a GPU (verified in `tests/gpu`).

Split placement: `eureka_join_broadcast(address, first_rank, size, layouts)` makes each
worker a member (rank `first_rank` + its vLLM rank) of the broadcast group of
`sync.broadcast` (NCCL on GPUs, gloo on CPUs), and `eureka_receive_broadcast()` receives every
bucket from learner rank 0 straight into the worker's device and loads it: the weights never
pass through the rollout actor or a serializer. Verified on the CPU build with gloo and the
engine core in its own process (tests/vllm/test_broadcast_receive.py); NCCL needs a GPU.
"""

from __future__ import annotations

from typing import Any


class EurekaWorkerExtension:
    """Weight-update methods of a vLLM worker (this class is mixed into vLLM's `Worker`)."""

    model_runner: Any
    vllm_config: Any

    def _eureka_model(self) -> Any:
        return self.model_runner.get_model()

    def eureka_packed_modules(self) -> dict[str, list[str]]:
        """vLLM's fused layers of this model and its sub-models (a VLM's language model):
        e.g. `{"qkv_proj": ["q_proj", "k_proj", "v_proj"]}`."""
        packed: dict[str, list[str]] = {}
        for module in self._eureka_model().modules():
            for fused, members in (getattr(module, "packed_modules_mapping", None) or {}).items():
                packed.setdefault(str(fused), [str(m) for m in members])
        return packed

    def eureka_begin_update(self) -> None:
        """Put every layer in buffered-reload mode (parameters move to the meta device)."""
        from vllm.config import set_current_vllm_config
        from vllm.model_executor.model_loader.reload import initialize_layerwise_reload

        with set_current_vllm_config(self.vllm_config):
            initialize_layerwise_reload(self._eureka_model())

    def eureka_load_bucket(self, payload: bytes | dict[str, Any]) -> int:
        """Load one bucket (checkpoint names -> tensors): safetensors bytes from another
        process, or the tensors themselves from an in-process engine; its tensor count."""
        from safetensors.torch import load
        from vllm.config import set_current_vllm_config

        tensors = load(payload) if isinstance(payload, bytes) else payload
        with set_current_vllm_config(self.vllm_config):
            self._eureka_model().load_weights(iter(tensors.items()))
        return len(tensors)

    def eureka_load_bucket_ipc(self, plain: dict[str, Any]) -> int:
        """Load one bucket shared over CUDA IPC (`IpcBucket.to_plain()`); its tensor count."""
        import torch
        from vllm.config import set_current_vllm_config

        from eureka_trainer.sync.cuda_ipc import IpcBucket, open_bucket

        device = getattr(self, "device", None)
        index = device.index if device is not None and device.index is not None else None
        bucket = open_bucket(
            IpcBucket.from_plain(plain), torch.cuda.current_device() if index is None else index
        )
        with set_current_vllm_config(self.vllm_config):
            self._eureka_model().load_weights(iter(zip(bucket.names, bucket.tensors, strict=True)))
        return len(bucket.names)

    def eureka_join_broadcast(
        self, address: str, first_rank: int, size: int, layouts: list[dict[str, Any]]
    ) -> int:
        """Join the weight broadcast group as rank `first_rank` + this worker's rank (blocks
        until every member joined); the rank taken."""
        from eureka_trainer.sync.broadcast import join_group, layout_from_plain

        rank = first_rank + int(getattr(self, "rank", 0) or 0)
        group = join_group(address, rank, size)
        self._eureka_broadcast = (group, [layout_from_plain(plain) for plain in layouts])
        return rank

    def eureka_receive_broadcast(self) -> tuple[int, int]:
        """Receive every bucket from rank 0 and load it, one bucket at a time (call between
        `eureka_begin_update` and `eureka_finish_update`); (buckets, bytes) loaded."""
        from vllm.config import set_current_vllm_config

        from eureka_trainer.sync.broadcast import receive_bucket

        group, layouts = self._eureka_broadcast
        nbytes = 0
        for layout in layouts:
            bucket = receive_bucket(group, layout)
            with set_current_vllm_config(self.vllm_config):
                self._eureka_model().load_weights(
                    iter(zip(bucket.names, bucket.tensors, strict=True))
                )
            nbytes += bucket.nbytes
        return len(layouts), nbytes

    def eureka_finish_update(self) -> None:
        """Finish the reload (layers that got nothing keep their old tensors), refresh tied
        LM heads, and drop caches computed with the old weights."""
        from vllm.config import set_current_vllm_config
        from vllm.model_executor.model_loader.reload import finalize_layerwise_reload

        model = self._eureka_model()
        with set_current_vllm_config(self.vllm_config):
            finalize_layerwise_reload(model, self.vllm_config.model_config)
            _refresh_tied_heads(model)
        self.model_runner.reset_encoder_cache()
        self.model_runner.reset_mm_cache()


def _refresh_tied_heads(model: Any) -> None:
    """Re-run post-load processing of LM heads that share their weight with an embedding.

    The reload processes the embedding (which received the tensor) but not the head that only
    aliases it; on the CPU build the head keeps a stale prepacked GEMM weight otherwise.
    On CUDA this processing is a no-op for unquantized heads."""
    from vllm.model_executor.layers.vocab_parallel_embedding import (
        ParallelLMHead,
        VocabParallelEmbedding,
    )

    embeddings = [
        m
        for m in model.modules()
        if isinstance(m, VocabParallelEmbedding) and not isinstance(m, ParallelLMHead)
    ]
    for head in model.modules():
        if not isinstance(head, ParallelLMHead):
            continue
        if any(head.weight is e.weight for e in embeddings):
            head.quant_method.process_weights_after_loading(head)
