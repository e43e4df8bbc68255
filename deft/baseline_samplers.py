"""The five baseline posterior samplers behind `deft.baselines`: DPS, ΠGDM, DDRM, DDNM(+) and RED-diff.

Each sampler takes (eps_model, schedule, op, y, noise, config, progress) and returns (x, VJPs per image); x is not
clipped (`run_baseline` clamps once at the end). Formulas: RED-diff's `algos/{dps,pgdm,ddrm,reddiff}.py` (as vendored
in alexdenker/DEFT) and wyhuai/DDNM's `guided_diffusion/diffusion.py`, in the RED-diff flavour that DEFT's
comparisons inherit. Randomness comes only from `SampleNoise`, drawn in a fixed order (the start noise, then at
most one draw per step, skipped when its coefficient is 0 for every image), so image k depends only on seed k.
x̂0 uses the scalar ᾱ_t of the step (all images share t), so no schedule table is indexed on the model's device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from deft.ddim import SampleNoise, Schedule, Step, ddim_update
from deft.operators import Operator, SVDOperator

if TYPE_CHECKING:
    from deft.baselines import DDNMConfig, DDRMConfig, DPSConfig, PiGDMConfig, RedDiffConfig

TINY = 1e-12  # guards divisions by a residual norm or a singular value that can be exactly 0


# ---------------------------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------------------------

def has_pinv(op: Operator) -> bool:
    """Whether `op` overrides `Operator.pinv` (the base class raises)."""
    return type(op).pinv is not Operator.pinv


def image_shape(eps_model) -> tuple[int, int, int]:
    """C×H×W of the images the ε-model works on (`channels`, `sample_size` as int or (H, W))."""
    size = eps_model.sample_size
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    return eps_model.channels, height, width


def _timesteps(t: int, like: torch.Tensor) -> torch.Tensor:
    """The shared timestep as a (B,) LongTensor on `like`'s device."""
    return torch.full((like.shape[0],), t, dtype=torch.long, device=like.device)


def _x0(xt: torch.Tensor, eps: torch.Tensor, abar_t: float) -> torch.Tensor:
    """Tweedie x̂0 = (x_t − sqrt(1 − ᾱ_t)·ε)/sqrt(ᾱ_t), unclipped."""
    return (xt - (1 - abar_t) ** 0.5 * eps) / abar_t ** 0.5


def _bar(steps: list[Step], label: str, progress: bool) -> Iterable[Step]:
    """The steps, wrapped in a tqdm bar when `progress`."""
    return tqdm(steps, desc=label, unit="step", disable=not progress)


def _ddim_noise(noise: SampleNoise, step: Step, eta: float, shape: tuple[int, ...]) -> torch.Tensor | None:
    """Fresh z for a DDIM step, drawn only when its weight c1 is non-zero."""
    return noise.randn(shape) if step.coefficients(eta)[0] > 0 else None


def _pinv_start(op: Operator, y: torch.Tensor, first: Step, noise: SampleNoise, shape: tuple[int, ...]):
    """x_T = sqrt(ᾱ_T)·A†y + sqrt(1 − ᾱ_T)·z (RED-diff's DPS/ΠGDM start), pure noise when A has no A†."""
    z = noise.randn(shape)
    if not has_pinv(op):
        return z
    return first.abar_t ** 0.5 * op.pinv(y) + (1 - first.abar_t) ** 0.5 * z


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image inner products, shaped to broadcast against a."""
    return (a * b).flatten(1).sum(1).view(-1, *([1] * (a.ndim - 1)))


def conjugate_gradient(apply: Callable[[torch.Tensor], torch.Tensor], rhs: torch.Tensor, iterations: int):
    """Solve apply(u) = rhs per image (apply symmetric PSD, rows independent) by a fixed number of CG iterations."""
    u, r = torch.zeros_like(rhs), rhs.clone()
    p, rr = r.clone(), _rowdot(r, r)
    for _ in range(iterations):
        ap = apply(p)
        active = rr > TINY ** 2  # converged rows stop moving instead of dividing 0 by 0
        alpha = torch.where(active, rr / _rowdot(p, ap).clamp_min(TINY ** 2), torch.zeros_like(rr))
        u, r = u + alpha * p, r - alpha * ap
        rr_next = _rowdot(r, r)
        p = r + torch.where(active, rr_next / rr.clamp_min(TINY ** 2), torch.zeros_like(rr)) * p
        rr = rr_next
    return u


# ---------------------------------------------------------------------------------------------------------------
# DPS
# ---------------------------------------------------------------------------------------------------------------

def _denoise_with_vjp(eps_model, step: Step, x: torch.Tensor, objective: Callable[[torch.Tensor], torch.Tensor]):
    """(ε, x̂0, ∇_{x_t} Σ objective(x̂0(x_t)), objective) at x_t = x: one backbone pass and one VJP through it.

    `objective` maps x̂0 to one value per image; summing them keeps rows independent. ε, x̂0 and the objective come
    back detached.
    """
    with torch.enable_grad():
        xt = x.detach().requires_grad_(True)
        eps = eps_model(xt, _timesteps(step.t, xt))
        x0 = _x0(xt, eps, step.abar_t)
        value = objective(x0)
        (grad,) = torch.autograd.grad(value.sum(), xt)
    return eps.detach(), x0.detach(), grad, value.detach()


def sample_dps(eps_model, schedule: Schedule, op: Operator, y: torch.Tensor, noise: SampleNoise,
               config: DPSConfig, progress: bool = False) -> tuple[torch.Tensor, int]:
    """DPS as RED-diff's `dps.py` (original=True): x_s = DDIM_η(x̂0, ε) − (w/‖r‖)·∇_{x_t}‖r‖², r = y − A(x̂0)."""
    steps, shape = schedule.steps(config.steps), image_shape(eps_model)
    x = _pinv_start(op, y, steps[0], noise, shape)
    for step in _bar(steps, "DPS", progress):
        eps, x0, grad, residual_sq = _denoise_with_vjp(eps_model, step, x, lambda x0: op.residual_norm_sq(x0, y))
        # w/‖r‖ with ‖r‖ per image: the DPS paper's ζ'/‖y − A(x̂0)‖ step on the squared norm.
        coeff = (config.scale / residual_sq.sqrt().clamp_min(TINY)).view(-1, *([1] * (x.ndim - 1)))
        z = _ddim_noise(noise, step, config.eta, shape)
        x = ddim_update(step, x0, eps, config.eta, z) - coeff * grad
    return x, len(steps)


# ---------------------------------------------------------------------------------------------------------------
# ΠGDM
# ---------------------------------------------------------------------------------------------------------------

def pigdm_vector(op: Operator, y: torch.Tensor, x0: torch.Tensor, r2: float, cg_iterations: int) -> torch.Tensor:
    """v = r²·Aᵀ(r²AAᵀ + σ_y²I)⁻¹(y − A x̂0), which is A†(y − A x̂0) at σ_y = 0 (RED-diff's noiseless `pgdm.py`).

    Spectral for an SVDOperator; h†(y) − h†(h(x̂0)) for other operators with a pseudo-inverse when σ_y = 0 (the
    ΠGDM paper's non-linear form, equal to A†(y − A x̂0) for linear A); conjugate gradients with the adjoint for
    linear operators otherwise (as deepinv's PiGDM does).
    """
    sigma2 = op.noise_std ** 2
    if isinstance(op, SVDOperator):
        s = op.singulars()
        gain = torch.where(s > 0, r2 * s / (r2 * s ** 2 + sigma2).clamp_min(TINY), torch.zeros_like(s))
        return op.v(gain * op.ut(y - op(x0)))
    if sigma2 == 0 and has_pinv(op):
        return op.pinv(y) - op.pinv(op(x0))
    u = conjugate_gradient(lambda w: r2 * op(op.adjoint(w)) + sigma2 * w, y - op(x0), cg_iterations)
    return r2 * op.adjoint(u)


def sample_pigdm(eps_model, schedule: Schedule, op: Operator, y: torch.Tensor, noise: SampleNoise,
                 config: PiGDMConfig, progress: bool = False) -> tuple[torch.Tensor, int]:
    """ΠGDM as RED-diff's `pgdm.py` (awd): x_s = DDIM_η(x̂0, ε) + w·sqrt(ᾱ_s)·sqrt(ᾱ_t)·∇_{x_t}⟨sg(v), x̂0(x_t)⟩."""
    steps, shape = schedule.steps(config.steps), image_shape(eps_model)
    x = _pinv_start(op, y, steps[0], noise, shape)
    for step in _bar(steps, "PiGDM", progress):
        def inner_product(x0: torch.Tensor) -> torch.Tensor:
            """⟨sg(v), x̂0⟩ per image, with v at the detached x̂0 (r_t² = 1 − ᾱ_t)."""
            v = pigdm_vector(op, y, x0.detach(), 1 - step.abar_t, config.cg_iterations)
            return (v * x0).flatten(1).sum(1)

        eps, x0, grad, _ = _denoise_with_vjp(eps_model, step, x, inner_product)
        z = _ddim_noise(noise, step, config.eta, shape)
        guidance = config.scale * (step.abar_s * step.abar_t) ** 0.5 * grad
        x = ddim_update(step, x0, eps, config.eta, z) + guidance
    return x, len(steps)


# ---------------------------------------------------------------------------------------------------------------
# DDRM
# ---------------------------------------------------------------------------------------------------------------

@torch.no_grad()
def sample_ddrm(eps_model, schedule: Schedule, op: SVDOperator, y: torch.Tensor, noise: SampleNoise,
                config: DDRMConfig, progress: bool = False) -> tuple[torch.Tensor, int]:
    """DDRM's three-case spectral update in VE coordinates x̄ = Vᵀx/sqrt(ᾱ), then x_s = sqrt(ᾱ_s)·V x̄_s.

    Component i with singular value s_i, ȳ_i = (Uᵀy)_i/s_i and noise level σ_y/s_i; σ_s is the VE level at s:
    unmeasured (s_i = 0): x̄0 + sqrt(1−η²)σ_s ε̄ + ησ_s z; measured with s_iσ_s < σ_y: x̄0 + sqrt(1−η²)σ_s(ȳ − x̄0)
    s_i/σ_y + ησ_s z; measured with s_iσ_s ≥ σ_y: (1−η_b)x̄0 + η_b ȳ + sqrt(σ_s² − η_b²σ_y²/s_i²) z.
    """
    steps, shape = schedule.steps(config.steps), image_shape(eps_model)
    eta, eta_b, sigma_y = config.eta, config.eta_b, op.noise_std
    s = op.singulars()
    measured = s > 0
    s_safe = torch.where(measured, s, torch.ones_like(s))
    y_bar = torch.where(measured, op.ut(y) / s_safe, torch.zeros_like(s))
    floor = sigma_y / s_safe  # noise std of ȳ_i (only read where measured)

    # x_T as DDRM initialises it: ȳ plus the missing noise where y is no noisier than x_T, pure σ_T·z elsewhere.
    sigma_T = steps[0].sigma_t
    z = noise.randn(shape)
    trusted = measured & (s * sigma_T >= sigma_y)
    x_bar = torch.where(trusted, y_bar + (sigma_T ** 2 - floor ** 2).clamp_min(0).sqrt() * z, sigma_T * z)
    x = steps[0].abar_t ** 0.5 * op.v(x_bar)
    for step in _bar(steps, "DDRM", progress):
        eps = eps_model(x, _timesteps(step.t, x))
        x0_bar, eps_bar = op.vt(_x0(x, eps, step.abar_t)), op.vt(eps)
        sigma_s = ((1 - step.abar_s) / step.abar_s) ** 0.5  # 0 after the last step: every noise term vanishes
        z = noise.randn(shape) if sigma_s > 0 else torch.zeros_like(x0_bar)
        keep, fresh = (1 - eta ** 2) ** 0.5 * sigma_s, eta * sigma_s * z
        unmeasured = x0_bar + keep * eps_bar + fresh
        # ≥ (not DDRM's strict >) sends σ_y = 0 to the ȳ case even at σ_s = 0, so A x = y exactly at the end.
        trusted = measured & (s * sigma_s >= sigma_y)
        to_y = (1 - eta_b) * x0_bar + eta_b * y_bar + (sigma_s ** 2 - eta_b ** 2 * floor ** 2).clamp_min(0).sqrt() * z
        x_bar = torch.where(trusted, to_y, unmeasured)
        if sigma_y > 0:  # the middle case exists only with measurement noise
            noisy = measured & ~trusted
            x_bar = torch.where(noisy, x0_bar + keep * (y_bar - x0_bar) / floor + fresh, x_bar)
        x = step.abar_s ** 0.5 * op.v(x_bar)
    return x, 0


# ---------------------------------------------------------------------------------------------------------------
# DDNM / DDNM+
# ---------------------------------------------------------------------------------------------------------------

@torch.no_grad()
def sample_ddnm(eps_model, schedule: Schedule, op: Operator, y: torch.Tensor, noise: SampleNoise,
                config: DDNMConfig, progress: bool = False) -> tuple[torch.Tensor, int]:
    """DDNM (σ_y = 0) and the scalar DDNM+ (σ_y > 0) with DDNM's DDIM step, from pure noise.

    x̂0′ = x̂0 − λ_t·A†(A x̂0 − y) (= A†y + (I − A†A)x̂0 for λ_t = 1), x_s = a·x̂0′ + γ_t·(ηz + sqrt(1−η²)ε) with
    a = sqrt(ᾱ_s), σ = sqrt(1 − ᾱ_s): λ_t = 1, γ_t = sqrt(σ² − (aσ_y)²) if σ ≥ aσ_y, else λ_t = σ/(aσ_y), γ_t = 0.
    """
    steps, shape = schedule.steps(config.steps), image_shape(eps_model)
    eta, sigma_y = config.eta, op.noise_std
    x = noise.randn(shape)
    for step in _bar(steps, "DDNM", progress):
        eps = eps_model(x, _timesteps(step.t, x))
        x0 = _x0(x, eps, step.abar_t)
        a, sigma = step.abar_s ** 0.5, (1 - step.abar_s) ** 0.5
        if sigma >= a * sigma_y:
            lam, gamma = 1.0, (sigma ** 2 - (a * sigma_y) ** 2) ** 0.5
        else:
            lam, gamma = sigma / (a * sigma_y), 0.0
        x0 = x0 - lam * op.pinv(op(x0) - y)
        x = a * x0
        if gamma > 0:
            z = noise.randn(shape) if eta > 0 else torch.zeros_like(x)
            x = x + gamma * (eta * z + (1 - eta ** 2) ** 0.5 * eps)
    return x, 0


# ---------------------------------------------------------------------------------------------------------------
# RED-diff
# ---------------------------------------------------------------------------------------------------------------

@torch.no_grad()
def sample_reddiff(eps_model, schedule: Schedule, op: Operator, y: torch.Tensor, noise: SampleNoise,
                   config: RedDiffConfig, progress: bool = False) -> tuple[torch.Tensor, int]:
    """RED-diff: Adam on μ with loss v·mean‖y − A(μ)‖²/2 + λσ_t·mean(sg(ε̂ − ε) ⊙ μ), one step per timestep.

    Each image's loss is its own mean and the batch loss their sum, so with Adam's elementwise update image k
    never sees the others (RED-diff's single batch `.mean()` matches this at batch size 1).
    """
    steps, shape = schedule.steps(config.steps), image_shape(eps_model)
    start = op.pinv(y) if has_pinv(op) else torch.zeros(y.shape[0], *shape, device=y.device)
    mu = start.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([mu], lr=config.lr, betas=(0.9, 0.99))
    for step in _bar(steps, "RED-diff", progress):
        eps = noise.randn(shape)
        xt = step.abar_t ** 0.5 * mu.detach() + (1 - step.abar_t) ** 0.5 * eps
        eps_hat = eps_model(xt, _timesteps(step.t, xt))  # no gradient: the backbone is never differentiated
        weight = config.lam * step.sigma_t  # "linear" denoiser weighting λ_t = λ·σ_t
        with torch.enable_grad():
            fit = (y - op(mu)).flatten(1).pow(2).mean(1) / 2
            prior = ((eps_hat - eps) * mu).flatten(1).mean(1)
            loss = (config.obs_weight * fit + weight * prior).sum()
            optimizer.zero_grad()
            loss.backward()
        optimizer.step()
    return mu.detach(), 0
