"""Peak memory of the learner's log-prob step against TRL's, side by side.

One row of a prompt and a long response through a language model whose vocabulary is
Qwen2-VL's (151,936 tokens), forward and backward of a loss on the response tokens' log-probs,
with the per-token entropy computed as a metric:

- eureka: `learner.modeling.response_logprobs` on a `pack`ed row (what the torch and DeepSpeed
  learners run for a micro batch of one row);
- trl: TRL's `selective_log_softmax_and_entropy` on the logits of the same positions (what its
  GRPO trainer runs on a CPU, entropy without gradient).

Each side runs in a fresh process; its peak resident memory during the step (VmHWM after the
step minus VmRSS before it) is what the step adds over the model and inputs. The vocabulary
makes `[T, V]` tensors the large ones: at 2,048 response tokens one is 1.2 GB in float32.

    python bench/logprob_memory.py [--tokens 2048] [--vocab 151936] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

from procfs import peak_rss_mb  # bench/ is this script's folder

SIDES = ("eureka", "trl")


def _model(vocab: int, hidden: int) -> Any:
    """Embedding -> Linear to the vocabulary, with the call signature the learner uses."""
    import torch

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(vocab, hidden)
            self.head = torch.nn.Linear(hidden, vocab)

        def forward(
            self,
            input_ids: Any,
            attention_mask: Any = None,
            use_cache: bool = False,
            logits_to_keep: Any = None,
        ) -> Any:
            hidden_states = self.embed(input_ids)
            if logits_to_keep is not None:
                hidden_states = hidden_states[:, logits_to_keep]
            return SimpleNamespace(logits=self.head(hidden_states))

    return Model()


def run_side(side: str, args: argparse.Namespace) -> dict[str, float]:
    """The step's added peak memory (MB) on one side, in this process."""
    import gc

    import torch

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = _model(args.vocab, args.hidden)
    prompt = torch.randint(0, args.vocab, (args.prompt_tokens,)).tolist()
    response = torch.randint(0, args.vocab, (args.tokens,)).tolist()
    if side == "eureka":
        from eureka_trainer.learner.modeling import pack, response_logprobs

        batch = pack([prompt], [response], [{}], 0, None)

        def step() -> None:
            logp, entropy, mask = response_logprobs(model, batch, suppressed=[], temperature=1.0)
            assert entropy is not None
            loss = -(logp * mask).sum() / mask.sum()
            loss.backward()
    else:
        from trl.trainer.utils import selective_log_softmax_and_entropy

        ids = torch.tensor([prompt + response])
        completion = torch.tensor([response])

        def step() -> None:
            # TRL's GRPO: the logits of the last T + 1 positions, the last one dropped.
            logits = model(ids, logits_to_keep=slice(-(args.tokens + 1), None)).logits[:, :-1]
            logp, _ = selective_log_softmax_and_entropy(
                logits, completion, entropy_requires_grad=False
            )
            loss = -logp.mean()
            loss.backward()

    gc.collect()
    before = peak_rss_mb("self", "VmRSS")
    step()
    peak = peak_rss_mb("self")
    return {"step_peak_mb": round(max(0.0, peak - before), 1), "rss_before_mb": round(before, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=2048, help="response tokens")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=151936, help="Qwen2-VL's vocabulary")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--side", choices=SIDES, help="run one side in this process (internal)")
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_side(args.side, args)))
        return
    results: dict[str, list[float]] = {side: [] for side in SIDES}
    for _ in range(args.rounds):
        for side in SIDES:
            out = subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], "--side", side],
                check=True,
                capture_output=True,
                text=True,
            )
            results[side].append(json.loads(out.stdout.strip().splitlines()[-1])["step_peak_mb"])
    print(
        f"one row: {args.prompt_tokens} prompt + {args.tokens} response tokens, vocabulary "
        f"{args.vocab}, float32; a [T, V] tensor is {args.tokens * args.vocab * 4 / 2**20:.0f} MB"
    )
    for side in SIDES:
        runs = " / ".join(f"{v:.0f}" for v in results[side])
        print(
            f"{side:8s} step peak MB (median of {args.rounds}): "
            f"{statistics.median(results[side]):8.0f}   ({runs})"
        )
    ratio = statistics.median(results["eureka"]) / statistics.median(results["trl"])
    print(f"ratio eureka/trl (step peak memory): {ratio:.2f}x")


if __name__ == "__main__":
    main()
