"""Figures of the `vllm` backend on this machine (docs/vllm.md quotes them).

Run in the vLLM tier's environment:
    VLLM_ENABLE_V1_MULTIPROCESSING=0 TORCH_COMPILE_DISABLE=1 VLLM_CPU_KVCACHE_SPACE=1 \
    PYTHONPATH=tests/vllm/shim:. .venv-vllm/bin/python -m tests.vllm.measure [--layers 12 --hidden 768]

Prints one JSON object: engine init, generation throughput, weight-update time and size.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def build(folder: Path, hidden: int, layers: int) -> Any:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from eureka_trainer.data.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 32,
        num_key_value_heads=max(1, hidden // 64),
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()

    from eureka_trainer.backends import GenerationRequest, SamplingConfig, bucketize

    with tempfile.TemporaryDirectory() as tmp:
        model = build(Path(tmp), args.hidden, args.layers)
        start = time.perf_counter()
        import vllm  # noqa: F401  (timed on its own: the import is a large share of start-up)

        import_s = time.perf_counter() - start
        from eureka_trainer.rollout.vllm_engine import VLLMRolloutEngine

        engine = VLLMRolloutEngine(
            tmp, "text", None, dtype="float32", engine_kwargs={"max_model_len": 512, "seed": 0}
        )
        prompt = engine.tokenizer("How many shapes are in the image?")["input_ids"]
        requests = [GenerationRequest(prompt_ids=[*prompt, i]) for i in range(args.prompts)]
        sampling = SamplingConfig(n=args.n, max_new_tokens=args.tokens, seed=1)
        engine.generate(requests[:1], SamplingConfig(n=1, max_new_tokens=4))  # warm-up
        start = time.perf_counter()
        result = engine.generate(requests, sampling)
        generate_s = time.perf_counter() - start
        tokens = sum(len(c.token_ids) for r in result for c in r)
        buckets = bucketize(model.state_dict(), 256 << 20)
        updates = []
        for _ in range(3):
            start = time.perf_counter()
            engine.load_weights(buckets)
            updates.append(time.perf_counter() - start)
        engine.shutdown()
    print(
        json.dumps(
            {
                "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                "import_vllm_s": round(import_s, 2),
                "engine_init_s": round(engine.timings["init_s"], 2),
                "generated_tokens": tokens,
                "generate_s": round(generate_s, 2),
                "tokens_per_s": round(tokens / generate_s, 1),
                "weight_update_s": [round(u, 3) for u in updates],
                "weight_update_mb": round(sum(b.nbytes for b in buckets) / 2**20, 1),
                "transport": engine.transport,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
