"""The `hf` rollout backend: batched transformers `generate` with a KV cache (CPU or GPU).

Every prompt is repeated `n` times and generated in one left-padded batch. Vision special
tokens are suppressed during sampling (a sampled `<|image_pad|>` would break the learner's
forward). Reported log-probs are of the temperature-scaled distribution with those tokens
masked, exactly what the learner recomputes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from eureka_trainer.backends import Completion, GenerationRequest, SamplingConfig, WeightBucket
from eureka_trainer.learner.device import guard_inputs, resolve_device
from eureka_trainer.learner.modeling import concat_mm, masked_log_softmax, mm_token_types
from eureka_trainer.models.families import model_family, vision_token_ids
from eureka_trainer.models.loading import load_policy


class HFRolloutEngine:
    """`RolloutEngine` over a transformers model loaded from a local folder, or over `module`
    (a learner's model in the same process: sampling then always uses its current weights).

    Computes on `device` (`auto`: the actor's GPU, else the CPU); a shared module stays where
    its learner put it."""

    shares_module = True

    def __init__(
        self,
        model_path: str,
        family: str,
        tokenizer: Any,
        *,
        dtype: str = "float32",
        rollout: Any = None,
        module: Any = None,
        trust_remote_code: bool = False,
        device: str = "auto",
    ) -> None:
        if module is not None:
            self.model = module
            self.device = next(module.parameters()).device
        else:
            self.device = resolve_device(device)
            self.model = load_policy(
                model_path, family, dtype, trust_remote_code=trust_remote_code
            ).to(self.device)
        guard_inputs(self.model, self.device)
        # Only families whose forward takes it get `mm_token_type_ids`: `generate` rejects an
        # input the model does not use (InternVL), see `ModelFamily.token_types`.
        self.token_types = model_family(family).token_types
        self.tokenizer = tokenizer
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        )
        self.suppressed = vision_token_ids(self.model.config)
        self.asleep = False

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: SamplingConfig
    ) -> list[list[Completion]]:
        """`sampling.n` completions per request, reproducible for a given `sampling.seed`."""
        if not requests:
            return []
        expanded = [r for r in requests for _ in range(sampling.n)]
        inputs = self._left_padded(expanded)
        torch.manual_seed(sampling.seed)
        greedy = sampling.temperature == 0
        with torch.no_grad():
            out = self.model.generate(
                **inputs,
                max_new_tokens=sampling.max_new_tokens,
                do_sample=not greedy,
                temperature=None if greedy else sampling.temperature,
                top_p=None if greedy else sampling.top_p,
                top_k=None,
                suppress_tokens=self.suppressed or None,
                eos_token_id=self.eos_id,
                pad_token_id=self.pad_id,
                return_dict_in_generate=True,
                output_logits=True,
            )
        new = out.sequences[:, inputs["input_ids"].shape[1] :]  # [B*n, T]
        logits = torch.stack(out.logits, dim=1)  # [B*n, T, V]
        logp = masked_log_softmax(logits, self.suppressed, sampling.temperature or 1.0)
        token_logp = logp.gather(-1, new[..., None]).squeeze(-1)
        # One copy to the host and one conversion to lists; one batched decode.
        flat = self._completions(new.cpu().tolist(), token_logp.cpu().tolist())
        return [flat[i * sampling.n : (i + 1) * sampling.n] for i in range(len(requests))]

    def _left_padded(self, requests: Sequence[GenerationRequest]) -> dict[str, Any]:
        """The requests as one left-padded batch on the model's device."""
        width = max(len(r.prompt_ids) for r in requests)
        pads = [width - len(r.prompt_ids) for r in requests]
        ids = torch.tensor(
            [[self.pad_id] * p + list(r.prompt_ids) for p, r in zip(pads, requests, strict=True)]
        )
        mask = torch.tensor([[0] * p + [1] * (width - p) for p in pads])
        inputs: dict[str, Any] = {
            "input_ids": ids.to(self.device),
            "attention_mask": mask.to(self.device),
        }
        mm = concat_mm([r.mm_inputs for r in requests])
        if mm:
            inputs.update({k: v.to(self.device) for k, v in mm.items()})
            if self.token_types:
                inputs["mm_token_type_ids"] = mm_token_types(inputs["input_ids"], self.model.config)
        return inputs

    def _completions(self, rows: list[list[int]], logprobs: list[list[float]]) -> list[Completion]:
        """Each sampled row cut after its first EOS (kept in the ids, not in the text)."""
        ends, stops = [], []
        for tokens in rows:
            stop = self.eos_id in tokens
            stops.append(stop)
            ends.append(tokens.index(self.eos_id) + 1 if stop else len(tokens))
        texts = self.tokenizer.batch_decode(
            [t[: e - 1] if s else t[:e] for t, e, s in zip(rows, ends, stops, strict=True)],
            skip_special_tokens=False,
        )
        return [
            Completion(
                token_ids=tokens[:end],
                logprobs=lps[:end],
                text=str(text),
                finish_reason="stop" if stop else "length",
            )
            for tokens, lps, end, stop, text in zip(rows, logprobs, ends, stops, texts, strict=True)
        ]

    def load_weights(self, buckets: Sequence[WeightBucket]) -> None:
        """Copy each named tensor into the model in place (names as in `state_dict()`)."""
        state = self.model.state_dict()
        with torch.no_grad():
            for bucket in buckets:
                for name, tensor in zip(bucket.names, bucket.tensors, strict=True):
                    if name not in state:
                        raise KeyError(f"rollout model has no parameter {name!r}")
                    state[name].copy_(tensor)

    def sleep(self) -> None:
        """Nothing to release on a CPU; the flag guards against sampling while asleep."""
        self.asleep = True

    def wake_up(self) -> None:
        """Undo `sleep`."""
        self.asleep = False
