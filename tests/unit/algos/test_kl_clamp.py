"""k3 is clamped to +-10 like verl's `low_var_kl` and OpenRLHF's k3 (verl:
`verl/trainer/ppo/core_algos.py::kl_penalty`, `torch.clamp(kld, min=-10, max=10)`): without the
clamp one token whose policy left the reference far behind carries a KL (and gradient) of ~5e8."""

import math

import torch

from eureka_trainer.algos import policy_loss
from eureka_trainer.algos.loss import K3_CLAMP, kl_penalty


def test_k3_is_clamped_to_ten():
    logp = torch.tensor([[-20.0, -3.0, 0.5, 30.0]])
    out = kl_penalty(logp, torch.zeros_like(logp), "k3")
    # exp(20) - 21 and exp(3) - 4 = 16.1 exceed the clamp; exp(-0.5) - 0.5 does not.
    assert out[0, 0] == K3_CLAMP == 10.0
    assert out[0, 1] == K3_CLAMP
    assert math.isclose(float(out[0, 2]), math.exp(-0.5) - 1 + 0.5, rel_tol=1e-6)
    assert math.isclose(float(out[0, 3]), 10.0)  # exp(-20) - 1 + 20, clamped


def test_k3_gradient_in_the_loss_stays_bounded():
    # One token 20 nats below the reference: unclamped, its KL gradient is exp(20) ~ 5e8.
    logp = torch.tensor([[-20.0, 0.0]], requires_grad=True)
    zeros = torch.zeros(1, 2)
    loss, metrics = policy_loss(
        logp,
        logp.detach(),
        zeros,
        torch.ones(1, 2),
        ref_logprobs=zeros,
        kl_coef=1.0,
        kl_estimator="k3",
        kl_in_loss=True,
    )
    loss.backward()
    assert logp.grad is not None
    assert float(logp.grad.abs().max()) < 1.0
    assert metrics["policy/kl"] == (10.0 + 0.0) / 2
