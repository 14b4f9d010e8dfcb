"""The `vllm` rollout backend: vLLM's offline `LLM` engine behind `backends.RolloutEngine`.

`import vllm` happens in the constructor only: this module imports without vLLM installed.

Log-probs. The engine runs with `logprobs_mode="processed_logprobs"`, so vLLM reports the
log-softmax of the logits after its logits processors (here: the vision-token mask) and after
temperature, which is the contract's "distribution actually sampled" and what the learner
recomputes (`masked_log_softmax(logits / T)` with the same ids masked). Greedy (T = 0) reports
the masked log-softmax at T = 1, like the `hf` backend. With `top_p < 1` vLLM's value is
renormalised over the nucleus (it is >= the contract's value); `exact_logprobs(sampling)` says
so, and the driver must then take `old_logprobs` from the learner, not from the engine.

Vision special tokens are never sampled: every request carries a `logit_bias` of -inf on the
few vision ids (`vision_mask`). Not `allowed_token_ids` = the vocabulary minus those ids: vLLM
0.32's GPU model runner refuses more than 1024 allowed ids per request (and as many biased ids:
`MAX_NUM_ALLOWED_TOKEN_IDS` / `MAX_NUM_LOGIT_BIAS_TOKENS` in
vllm/v1/worker/gpu/sample/logit_bias.py), and Qwen's vocabulary has 151936. Both model runners
add the bias before temperature and before the processed logprobs (vllm/v1/sample/sampler.py
`apply_logits_processors`; vllm/v1/worker/gpu/sample/sampler.py `apply_sampling_params`), so
a biased id has probability 0 in the distribution sampled and in the reported logprobs, as in
the learner's `masked_log_softmax`. `SamplingParams(logit_bias=...)` keeps -inf (only
`SamplingParams.from_optional`, the OpenAI server's path, clamps biases to [-100, 100]).

Images: vLLM 0.32 always expands an image placeholder itself (an already expanded prompt gets
expanded again, silently misplacing the image features), so each run of `<|image_pad|>` in
`prompt_ids` is sent as one token with the PIL image, and vLLM's expanded prompt must come back
equal to `prompt_ids` (else `ImageExpansionMismatch`).

Pixels: vLLM resizes each image with its own processor, which reads the bounds of the model
folder's `preprocessor_config.json` (Qwen2-VL: up to 12.8 MP) unless told otherwise; the
driver's processor uses the spec's `data.minPixels`/`data.maxPixels`. The engine passes the
spec's bounds as `mm_processor_kwargs` (the family's processor keywords, e.g. Qwen's
`size.shortest_edge`/`longest_edge`: vllm/model_executor/models/qwen2_vl.py), else any image
over `maxPixels` would fail with `ImageExpansionMismatch`.

Weights: `load_weights` streams each bucket to the worker extension
(`vllm_worker.EurekaWorkerExtension`): the tensors themselves when the engine core runs in this
process (`inproc`), else safetensors bytes (`bytes`); the worker reloads vLLM's layers in
place; then the prefix cache and the encoder cache are reset, so no KV or vision embedding of
the old weights is reused. Colocated on GPUs the buckets arrive as CUDA IPC handles
(`sync.cuda_ipc.IpcBucket`), opened inside vLLM's worker on its own GPU: no copy through host
memory, no serialisation of tensors, nothing allocated outside vLLM's memory budget.
In split placement the workers join the broadcast group themselves (`join_broadcast`,
`receive_weights`) and receive straight into their device.

Sleep (colocated placement): level-1 `LLM.sleep()` when the platform supports sleep mode
(CUDA/ROCm/XPU); elsewhere (the CPU build refuses `enable_sleep_mode`) sleep and wake are
no-ops with a log line, but the state is still tracked, so `generate` while asleep is an error
on every platform. `load_weights` while asleep wakes the weights only (`tags=["weights"]`), the
KV cache comes back with `wake_up()`.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eureka_trainer.backends import Completion, GenerationRequest, SamplingConfig, WeightBucket

log = logging.getLogger(__name__)

WORKER_EXTENSION = "eureka_trainer.rollout.vllm_worker.EurekaWorkerExtension"
SEED_BITS = 31
"""torch's CPU generator keeps only the low 32 bits of a seed: request seeds stay below 2**31."""


class EngineAsleep(RuntimeError):
    """`generate` was called between `sleep()` and `wake_up()`."""


class ImageExpansionMismatch(ValueError):
    """vLLM's image placeholder expansion differs from the driver's processor."""


class IncompleteWeightUpdate(ValueError):
    """An update carries only part of the tensors of one vLLM layer (e.g. `q_proj` without
    `k_proj`, fused into `qkv_proj`): the rest of that layer would be left uninitialised."""


# ----------------------------------------------------------------------------- pure helpers


def request_seed(seed: int, index: int, n: int) -> int:
    """The vLLM seed of prompt `index` in a call seeded `seed` with `n` samples per prompt.

    vLLM seeds sample j with `request_seed + j`; a hash of (seed, index) spreads the prompts
    (and the calls of successive seeds) over 2**31 so their noise streams do not repeat."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % ((1 << SEED_BITS) - n)


MAX_BIASED_IDS = 1024
"""vLLM 0.32's GPU model runner refuses a request with more `logit_bias` entries (or more
`allowed_token_ids`) than this: vllm/v1/worker/gpu/sample/logit_bias.py."""


class VisionMaskTooLarge(ValueError):
    """More vision ids to mask than vLLM's GPU model runner takes per request."""


def vision_mask(banned: Iterable[int]) -> dict[int, float] | None:
    """`logit_bias` that makes the `banned` ids impossible (-inf); None when nothing is banned."""
    ids = sorted({int(i) for i in banned})
    if len(ids) > MAX_BIASED_IDS:
        raise VisionMaskTooLarge(
            f"{len(ids)} vision token ids to mask; vLLM takes at most {MAX_BIASED_IDS} per request"
        )
    return {i: float("-inf") for i in ids} or None


def sampling_kwargs(
    sampling: SamplingConfig, index: int, mask: dict[int, float] | None
) -> dict[str, Any]:
    """`vllm.SamplingParams` keyword arguments of prompt `index` (`mask`: `vision_mask(...)`)."""
    return {
        "n": 1 if sampling.temperature == 0 else sampling.n,
        "max_tokens": sampling.max_new_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "seed": request_seed(sampling.seed, index, sampling.n),
        "logprobs": 0,
        "logit_bias": mask,
        "detokenize": False,
    }


def processor_kwargs(family: str, pixels: tuple[int, int] | None) -> dict[str, Any]:
    """vLLM's `mm_processor_kwargs` that resize images within `pixels` = (min, max), exactly as
    the driver's processor does (`data.encode`); empty for families without image bounds."""
    if pixels is None:
        return {}
    from eureka_trainer.data.records import family_rules

    return dict(family_rules(family).image_kwargs(*pixels))


def exact_logprobs(sampling: SamplingConfig) -> bool:
    """Whether the reported log-probs are exactly the contract's (no top-p renormalisation)."""
    return sampling.top_p >= 1.0


def layer_key(name: str, packed: Mapping[str, Sequence[str]]) -> str:
    """The vLLM layer a checkpoint tensor lands in: its module path, with a fused member
    renamed to the fused layer (`...self_attn.k_proj.weight` -> `...self_attn.qkv_proj`)."""
    module, _, _param = name.rpartition(".")
    parent, _, leaf = module.rpartition(".")
    fused = {member: fused for fused, members in packed.items() for member in members}
    if leaf in fused:
        leaf = fused[leaf]
    return f"{parent}.{leaf}" if parent else leaf


def incomplete_layers(
    names: Iterable[str], checkpoint: Iterable[str], packed: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Layers touched by `names` that miss some of their `checkpoint` tensors: {layer: missing}.
    Names that are not in the checkpoint (a tied `lm_head.weight`) are ignored here."""
    given = set(names)
    by_layer: dict[str, list[str]] = {}
    for name in checkpoint:
        by_layer.setdefault(layer_key(name, packed), []).append(name)
    touched = {layer_key(n, packed) for n in given}
    return {
        layer: sorted(set(members) - given)
        for layer, members in sorted(by_layer.items())
        if layer in touched and not set(members) <= given
    }


def checkpoint_names(model_path: str | Path) -> list[str]:
    """Tensor names stored in the `*.safetensors` files of a model folder (headers only)."""
    from safetensors import safe_open

    names: list[str] = []
    for file in sorted(Path(model_path).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            names.extend(f.keys())
    return names


def inproc_payload(bucket: WeightBucket) -> dict[str, Any]:
    """One bucket as a name -> tensor dict, for an engine core in this process (no copy)."""
    return dict(zip(bucket.names, bucket.tensors, strict=True))


def bucket_payload(bucket: WeightBucket) -> bytes:
    """One bucket as safetensors bytes (tensors sharing storage, e.g. tied ones, are copied)."""
    from safetensors.torch import save

    seen: set[int] = set()
    tensors = {}
    for name, tensor in zip(bucket.names, bucket.tensors, strict=True):
        t = tensor.detach().cpu().contiguous()
        ptr = t.untyped_storage().data_ptr()
        tensors[name] = t.clone() if ptr in seen else t
        seen.add(ptr)
    return bytes(save(tensors))


def collapse_runs(ids: Sequence[int], token: int | None) -> list[int]:
    """`ids` with each run of `token` shortened to one: `[a, P, P, P, b] -> [a, P, b]`."""
    out: list[int] = []
    for i in ids:
        if not (i == token and out and out[-1] == token):
            out.append(i)
    return out


def unwrap_images(ids: Sequence[int], token: int | None, wrap: tuple[int, int] | None) -> list[int]:
    """`ids` (runs already collapsed) without the `wrap` tokens around each `token`:
    `[a, <img>, P, </img>, b] -> [a, P, b]` (vLLM's InternVL processor writes them itself)."""
    if wrap is None or token is None:
        return list(ids)
    start, end = wrap
    out: list[int] = []
    for i, t in enumerate(ids):
        following = ids[i + 1] if i + 1 < len(ids) else None
        previous = ids[i - 1] if i > 0 else None
        if (t == start and following == token) or (t == end and previous == token):
            continue
        out.append(t)
    return out


def prompt_input(
    request: GenerationRequest,
    image_token: int | None,
    wrap: tuple[int, int] | None = None,
    placeholder: Sequence[int] | None = None,
) -> dict[str, Any]:
    """vLLM's token prompt. vLLM expands each image placeholder itself (from its processing
    of the PIL images), so the driver's expanded runs go back to one token per image (and
    lose the family's `wrap` tokens, which vLLM's expansion writes again). `placeholder`: the
    tokens vLLM's implementation looks for instead of one image token (the remote-code
    InternVL's text `<image>`)."""
    if not request.images:
        return {"prompt_token_ids": list(request.prompt_ids)}
    ids = unwrap_images(collapse_runs(request.prompt_ids, image_token), image_token, wrap)
    if placeholder is not None:
        ids = [t for i in ids for t in (placeholder if i == image_token else (i,))]
    return {"prompt_token_ids": ids, "multi_modal_data": {"image": list(request.images)}}


def check_expansion(index: int, expected: Sequence[int], got: Sequence[int]) -> None:
    """Raise unless vLLM's expanded prompt is the driver's: both processors must agree on the
    number of image tokens, or the learner would score other positions than vLLM sampled."""
    if list(expected) != list(got):
        raise ImageExpansionMismatch(
            f"request {index}: vLLM expanded the prompt to {len(got)} tokens, the driver's "
            f"processor to {len(expected)}; do both load the same processor config?"
        )


def step_logprobs(token_ids: Sequence[int], logprobs: Any) -> list[float]:
    """The sampled token's log-prob at each step of a vLLM `CompletionOutput` ([T])."""
    if logprobs is None or len(logprobs) != len(token_ids):
        raise RuntimeError("vLLM returned no per-token logprobs (SamplingParams.logprobs unset?)")
    return [float(step[token].logprob) for token, step in zip(token_ids, logprobs, strict=True)]


def to_completion(output: Any, decode: Any) -> Completion:
    """A vLLM `CompletionOutput` -> `Completion` (EOS kept in `token_ids`, dropped from text)."""
    tokens = [int(t) for t in output.token_ids]
    stopped = output.finish_reason == "stop"
    text_ids = tokens[:-1] if stopped and tokens else tokens
    return Completion(
        token_ids=tokens,
        logprobs=step_logprobs(tokens, output.logprobs),
        text=decode(text_ids),
        finish_reason="stop" if stopped else "length",
    )


def fill_greedy(samples: list[Completion], n: int) -> list[Completion]:
    """`n` samples from a greedy run of one (vLLM refuses n > 1 without sampling)."""
    return samples + [copy.deepcopy(samples[0]) for _ in range(n - len(samples))]


WEIGHT_TRANSPORTS: dict[str, Callable[[WeightBucket], Any]] = {
    "inproc": inproc_payload,  # VLLM_ENABLE_V1_MULTIPROCESSING=0: the worker is in this process
    "bytes": bucket_payload,  # engine core in another process (vLLM's default)
    # CUDA IPC handles take their own worker method (`VLLMRolloutEngine._payload`).
}


# ----------------------------------------------------------------------------- the engine


class VLLMRolloutEngine:
    """`RolloutEngine` over `vllm.LLM`, loaded from a local HF model folder.

    `rollout` is the RLJob's `RolloutSpec` (gpu_memory_utilization, tensor_parallel_size,
    sleep_mode, enforce_eager are read from it; None means vLLM-style defaults).
    `pixels`: the spec's (min_pixels, max_pixels), passed to vLLM's image processor.
    `engine_kwargs` go to `vllm.LLM` unchanged (tests pass `max_model_len`, `seed`).
    """

    takes_pixels = True

    def __init__(
        self,
        model_path: str,
        family: str,
        tokenizer: Any,
        *,
        dtype: str = "bfloat16",
        rollout: Any = None,
        pixels: tuple[int, int] | None = None,
        engine_kwargs: Mapping[str, Any] | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        from vllm import LLM
        from vllm.platforms import current_platform

        from eureka_trainer.models.families import (  # the learner's mask too
            layout_of,
            vision_token_ids,
        )

        start = time.perf_counter()
        self.family = family
        self.sleep_mode = bool(_option(rollout, "sleep_mode", True)) and bool(
            current_platform.is_sleep_mode_available()
        )
        if _option(rollout, "sleep_mode", True) and not self.sleep_mode:
            log.info("vLLM sleep mode is not available on this platform: sleep/wake are no-ops")
        kwargs: dict[str, Any] = {
            "model": str(model_path),
            "dtype": dtype,
            "gpu_memory_utilization": _option(rollout, "gpu_memory_utilization", 0.7),
            "tensor_parallel_size": _option(rollout, "tensor_parallel_size", 1),
            "enforce_eager": _option(rollout, "enforce_eager", False),
            "enable_sleep_mode": self.sleep_mode,
            "logprobs_mode": "processed_logprobs",
            "worker_extension_cls": WORKER_EXTENSION,
            "enable_prefix_caching": True,
            "trust_remote_code": trust_remote_code,
            **dict(engine_kwargs or {}),
        }
        mm_kwargs = processor_kwargs(family, pixels)
        if mm_kwargs:
            kwargs["mm_processor_kwargs"] = {**mm_kwargs, **kwargs.get("mm_processor_kwargs", {})}
        self.llm = LLM(**kwargs)
        self.tokenizer = tokenizer if tokenizer is not None else self.llm.get_tokenizer()
        model_config = self.llm.llm_engine.model_config
        layout = layout_of(family, getattr(model_config.hf_config, "model_type", None))
        self.banned = vision_token_ids(model_config.hf_config)
        self.image_token: int | None = getattr(model_config.hf_config, "image_token_id", None)
        self.placeholder: list[int] | None = None
        if layout.context_token is not None:
            # The remote-code InternVL's config names no image token: its id is the
            # tokenizer's (the learner's adapted model masks the same one).
            self.image_token = int(self.tokenizer.convert_tokens_to_ids(layout.context_token))
            self.banned = sorted({*self.banned, self.image_token})
        if layout.vllm_placeholder is not None:
            self.placeholder = list(
                self.tokenizer.encode(layout.vllm_placeholder, add_special_tokens=False)
            )
        self.mask = vision_mask(self.banned)
        wrap = layout.image_wrap
        self.image_wrap = (
            (
                self.tokenizer.convert_tokens_to_ids(wrap[0]),
                self.tokenizer.convert_tokens_to_ids(wrap[1]),
            )
            if wrap
            else None
        )
        self.checkpoint = checkpoint_names(model_path)
        self.packed: dict[str, list[str]] = self.llm.collective_rpc("eureka_packed_modules")[0]
        self.transport = transport_for(self.llm)
        self.asleep = False
        self.weights_awake = True
        self._warned_top_p = False
        self.timings: dict[str, float] = {"init_s": time.perf_counter() - start}

    # -- generation

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: SamplingConfig
    ) -> list[list[Completion]]:
        """`sampling.n` completions per request, reproducible for a given `sampling.seed`."""
        if self.asleep:
            raise EngineAsleep("generate() called while the engine sleeps: call wake_up() first")
        if not requests:
            return []
        if not exact_logprobs(sampling) and not self._warned_top_p:
            log.warning("top_p < 1: the reported logprobs are renormalised over the nucleus")
            self._warned_top_p = True
        params = [self._params(sampling, i) for i in range(len(requests))]
        start = time.perf_counter()
        prompts = [
            prompt_input(r, self.image_token, self.image_wrap, self.placeholder) for r in requests
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        self.timings["generate_s"] = time.perf_counter() - start
        for i, (request, output) in enumerate(zip(requests, outputs, strict=True)):
            check_expansion(i, request.prompt_ids, output.prompt_token_ids)
        return [fill_greedy(self._completions(out), sampling.n) for out in outputs]

    def _completions(self, output: Any) -> list[Completion]:
        return [to_completion(o, self._decode) for o in sorted(output.outputs, key=_index)]

    def _params(self, sampling: SamplingConfig, index: int) -> Any:
        from vllm import SamplingParams

        return SamplingParams(**sampling_kwargs(sampling, index, self.mask))

    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=False))

    # -- weights

    def load_weights(self, buckets: Sequence[WeightBucket]) -> None:
        """Replace the named tensors (HF `state_dict()` names, whole vLLM layers at a time);
        the next `generate` uses them. Raises `IncompleteWeightUpdate` before touching the
        model when a layer would be partially updated."""

        def send() -> None:
            for bucket in buckets:
                method, payload = self._payload(bucket)
                self.llm.collective_rpc(method, args=(payload,))

        self._update([n for b in buckets for n in b.names], send)

    def _update(self, names: Sequence[str], send: Callable[[], Any]) -> None:
        """One weight update: checked, weights awake, `send()` between begin and finish, then
        the caches computed with the old weights dropped."""
        missing = incomplete_layers(names, self.checkpoint, self.packed)
        if missing:
            detail = "; ".join(f"{layer}: missing {', '.join(m)}" for layer, m in missing.items())
            raise IncompleteWeightUpdate(f"weight update splits vLLM layers: {detail}")
        start = time.perf_counter()
        if self.asleep and self.sleep_mode and not self.weights_awake:
            self.llm.wake_up(tags=["weights"])
        self.weights_awake = True
        self.llm.collective_rpc("eureka_begin_update")
        try:
            send()
        finally:
            self.llm.collective_rpc("eureka_finish_update")
        # KV blocks and vision embeddings computed with the old weights must not be reused.
        self.llm.reset_prefix_cache()
        self.llm.llm_engine.reset_encoder_cache()
        self.timings["load_weights_s"] = time.perf_counter() - start

    # -- the split placement's broadcast group, received inside vLLM's workers

    def broadcast_members(self) -> int:
        """Members of the weight broadcast group this engine adds: one per vLLM worker."""
        return int(self.llm.llm_engine.vllm_config.parallel_config.world_size)

    def join_broadcast(self, address: str, first_rank: int, size: int, layouts: Any) -> None:
        """Each vLLM worker joins the group (`sync.broadcast`) as `first_rank` + its rank."""
        from eureka_trainer.sync.broadcast import layout_to_plain

        self.broadcast_layouts = list(layouts)
        plain = [layout_to_plain(layout) for layout in self.broadcast_layouts]
        self.llm.collective_rpc("eureka_join_broadcast", args=(address, first_rank, size, plain))

    def receive_weights(self) -> tuple[int, int]:
        """Every worker receives the buckets from learner rank 0 on its own device and loads
        them (nothing passes through this process); (buckets, bytes) loaded."""
        layouts = self.broadcast_layouts
        received: list[Any] = []

        def send() -> None:
            received.extend(self.llm.collective_rpc("eureka_receive_broadcast"))

        self._update([n for layout in layouts for n in layout.names], send)
        return int(received[0][0]), int(received[0][1])

    def _payload(self, bucket: Any) -> tuple[str, Any]:
        """The worker method and argument that load one bucket: CUDA IPC handles (opened in
        vLLM's worker, on its GPU), the tensors (in-process engine core) or safetensors bytes."""
        if hasattr(bucket, "handles"):  # a `sync.cuda_ipc.IpcBucket`
            return "eureka_load_bucket_ipc", bucket.to_plain()
        return "eureka_load_bucket", WEIGHT_TRANSPORTS[self.transport](bucket)

    def shutdown(self) -> None:
        """Stop vLLM's engine core (its processes, when not in-process). Call it before the
        interpreter exits: a multiprocess engine core left running can hang the exit."""
        self.llm.llm_engine.engine_core.shutdown()

    # -- sleep / wake (colocated placement)

    def sleep(self) -> None:
        """Level-1 sleep: weights offloaded to host memory, KV cache discarded."""
        if self.asleep:
            return
        if self.sleep_mode:
            self.llm.sleep(level=1)
            self.weights_awake = False
        else:
            log.info("vLLM sleep requested; no sleep mode on this platform: nothing released")
        self.asleep = True

    def wake_up(self) -> None:
        """Undo `sleep` (only the KV cache when `load_weights` already woke the weights)."""
        if not self.asleep:
            return
        if self.sleep_mode:
            self.llm.wake_up(tags=None if not self.weights_awake else ["kv_cache"])
        else:
            log.info("vLLM wake-up requested; no sleep mode on this platform: nothing to restore")
        self.asleep = False
        self.weights_awake = True


def transport_for(llm: Any) -> str:
    """`inproc` when vLLM's engine core (hence its single worker) runs in this process."""
    from vllm.v1.engine.core_client import InprocClient

    inproc = isinstance(llm.llm_engine.engine_core, InprocClient)
    single = llm.llm_engine.vllm_config.parallel_config.world_size == 1
    return "inproc" if inproc and single else "bytes"


def _index(output: Any) -> int:
    return int(output.index)


def _option(spec: Any, name: str, default: Any) -> Any:
    value = getattr(spec, name, None) if spec is not None else None
    return default if value is None else value
