"""Helpers shared by the five baseline samplers: shapes, timesteps, Tweedie x̂0, progress bars, starts, CG.

Each sampler takes (eps_model, schedule, op, y, noise, config, progress) and returns (x, VJPs per image); x is not
clipped (`deft.baselines.run_baseline` clamps once at the end). Randomness comes only from `SampleNoise`, drawn in a
fixed order (the start noise, then at most one draw per step, skipped when its coefficient is 0 for every image), so
image k depends only on seed k. x̂0 uses the scalar ᾱ_t of the step (all images share t), so no schedule table is
indexed on the model's device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from tqdm.auto import tqdm

from deft.config import BASELINE_CHOICES
from deft.operators.base import Operator
from tunebench.noise import SampleNoise
from tunebench.schedule import Step

TINY = 1e-12  # guards divisions by a residual norm or a singular value that can be exactly 0


def has_pinv(op: Operator) -> bool:
    """Whether `op` overrides `Operator.pinv` (the base class raises)."""
    return type(op).pinv is not Operator.pinv


def check_choice(value: str, key: str) -> None:
    """Raise ValueError unless `value` is one of the values of the switch `baselines.{key}`."""
    if value not in BASELINE_CHOICES[key]:
        raise ValueError(f"baselines.{key} is {value!r}; choose one of {', '.join(BASELINE_CHOICES[key])}")


def start_estimate(op: Operator, y: torch.Tensor, start: str) -> torch.Tensor | None:
    """The image the samplers start from: A†y; with `start="official"` also, where A has no pseudo-inverse, the
    official `H_pinv(y)` (`Operator.rough_inverse`), which DEFT's DPS, ΠGDM and RED-diff start from (alexdenker/DEFT
    @2495d46 `algos/dps.py` line 88, `algos/pgdm.py` line 118, `algos/reddiff.py` line 160); None when neither."""
    check_choice(start, "start")
    if has_pinv(op):
        return op.pinv(y)
    if start == "official" and type(op).rough_inverse is not Operator.rough_inverse:
        return op.rough_inverse(y)
    return None


def image_shape(eps_model) -> tuple[int, int, int]:
    """C×H×W of the images the ε-model works on (`channels`, `sample_size` as int or (H, W))."""
    size = eps_model.sample_size
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    return eps_model.channels, height, width


def timesteps_like(t: int, like: torch.Tensor) -> torch.Tensor:
    """The shared timestep as a (B,) LongTensor on `like`'s device."""
    return torch.full((like.shape[0],), t, dtype=torch.long, device=like.device)


def tweedie_x0(xt: torch.Tensor, eps: torch.Tensor, abar_t: float) -> torch.Tensor:
    """Tweedie x̂0 = (x_t − sqrt(1 − ᾱ_t)·ε)/sqrt(ᾱ_t), unclipped."""
    return (xt - (1 - abar_t) ** 0.5 * eps) / abar_t ** 0.5


def step_bar(steps: list[Step], label: str, progress: bool) -> Iterable[Step]:
    """The steps, wrapped in a tqdm bar when `progress`."""
    return tqdm(steps, desc=label, unit="step", disable=not progress)


def ddim_noise(noise: SampleNoise, step: Step, eta: float, shape: tuple[int, ...]) -> torch.Tensor | None:
    """Fresh z for a DDIM step, drawn only when its weight c1 is non-zero."""
    return noise.randn(shape) if step.coefficients(eta)[0] > 0 else None


def diffused_start(op: Operator, y: torch.Tensor, first: Step, noise: SampleNoise, shape: tuple[int, ...], start: str):
    """x_T = sqrt(ᾱ_T)·x̂ + sqrt(1 − ᾱ_T)·z with x̂ = `start_estimate` (RED-diff's DPS/ΠGDM start), pure noise when
    there is none."""
    z = noise.randn(shape)
    estimate = start_estimate(op, y, start)
    if estimate is None:
        return z
    return first.abar_t ** 0.5 * estimate + (1 - first.abar_t) ** 0.5 * z


def rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image inner products, shaped to broadcast against a."""
    return (a * b).flatten(1).sum(1).view(-1, *([1] * (a.ndim - 1)))


def conjugate_gradient(apply: Callable[[torch.Tensor], torch.Tensor], rhs: torch.Tensor, iterations: int):
    """Solve apply(u) = rhs per image (apply symmetric PSD, rows independent) by a fixed number of CG iterations."""
    u, r = torch.zeros_like(rhs), rhs.clone()
    p, rr = r.clone(), rowdot(r, r)
    for _ in range(iterations):
        ap = apply(p)
        active = rr > TINY ** 2  # converged rows stop moving instead of dividing 0 by 0
        alpha = torch.where(active, rr / rowdot(p, ap).clamp_min(TINY ** 2), torch.zeros_like(rr))
        u, r = u + alpha * p, r - alpha * ap
        rr_next = rowdot(r, r)
        p = r + torch.where(active, rr_next / rr.clamp_min(TINY ** 2), torch.zeros_like(rr)) * p
        rr = rr_next
    return u


def denoise_with_vjp(eps_model, step: Step, x: torch.Tensor, objective: Callable[[torch.Tensor], torch.Tensor]):
    """(ε, x̂0, ∇_{x_t} Σ objective(x̂0(x_t)), objective) at x_t = x: one backbone pass and one VJP through it.

    `objective` maps x̂0 to one value per image; summing them keeps rows independent. ε, x̂0 and the objective come
    back detached.
    """
    with torch.enable_grad():
        xt = x.detach().requires_grad_(True)
        eps = eps_model(xt, timesteps_like(step.t, xt))
        x0 = tweedie_x0(xt, eps, step.abar_t)
        value = objective(x0)
        (grad,) = torch.autograd.grad(value.sum(), xt)
    return eps.detach(), x0.detach(), grad, value.detach()
