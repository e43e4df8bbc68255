"""Non-linear forward operators: HDR, Fourier phase retrieval (with DEFT's two classical inverses), and a seeded
stand-in for the bkse non-linear blur.

Definitions follow DEFT's `utils/degredations.py` and `htransform/likelihoods.py`. `likelihood_grad` is the base
class's autograd VJP (the true ∇ log p(y | x)); `official_likelihood_grad` is the cheaper surrogate each official
likelihood class fed its network, and `rough_inverse` the official `H_pinv` the baselines start from.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from deft.operators.base import Operator, pinv_surrogate_grad
from deft.operators.linear import OnDevice, motion_kernel, scaled_odd_size
from deft.operators.task_settings import CHOICES

NONLINEAR_BLUR_LABEL = "seeded non-linear blur stand-in (not bkse GOPRO_wVAE; numbers not comparable to published ones)"


class HDR(OnDevice, Operator):
    """RED-diff's HDR: A(x) = clip(2x, −1, 1) on [-1, 1] images, with the "pseudo-inverse" A†(y) = y/2.

    `likelihood_grad` is the base class's true gradient −J_Aᵀ(A(x) − y)/σ² (−2·(A(x) − y)/σ² where |2x| < 1,
    0 where clipped); DEFT's code uses −A†(A(x) − y)/σ² = −(A(x) − y)/(2σ²) instead, saturated pixels included.
    """

    name = "hdr"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """clip(2x, −1, 1)."""
        return (2 * x).clamp(-1, 1)

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """y/2 (exact on unclipped pixels)."""
        return y / 2

    def official_likelihood_grad(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """−(clip(2x) − y)/(2σ²), non-zero on saturated pixels (`HDR.log_likelihood_grad`, `A_adjoint` = `H_pinv`)."""
        return pinv_surrogate_grad(self, x, y)


#################################################################################
#                               Phase retrieval                                 #
#################################################################################


def centred_fft(z: torch.Tensor) -> torch.Tensor:
    """F_c z = fftshift(fft2(ifftshift(z), norm="ortho")) over the last two axes (DEFT/DPS `fft2_m`)."""
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(z, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))


def centred_ifft(z: torch.Tensor) -> torch.Tensor:
    """F_c⁻¹ z = fftshift(ifft2(ifftshift(z), norm="ortho")) (DEFT/DPS `ifft2_m`)."""
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(z, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))


class PhaseRetrieval(OnDevice, Operator):
    """y = |F_c(pad((x + 1)/2))| per channel: Fourier magnitudes (not squared) of the zero-padded image.

    pad = int(oversample/8 · resolution) zero pixels per side (64 at 256 px for oversample 2, so y is 384×384).
    The image enters as (x + 1)/2 ∈ [0, 1], as DEFT's likelihood applies it; DPS and RED-diff apply the same formula
    to the [-1, 1] image, a different problem (the DC term and the support change), so numbers are not comparable
    across the two conventions. No pseudo-inverse; `phase_swap` and `hio` are DEFT's classical estimates.
    """

    name = "phase_retrieval"

    def __init__(self, resolution: int, oversample: float = 2.0, sigma_y: float = 0.0):
        """`resolution` is the image side; the padding is computed from it."""
        super().__init__(sigma_y)
        self.resolution = resolution
        self.pad = int(oversample / 8 * resolution)

    def _padded(self, x01: torch.Tensor) -> torch.Tensor:
        """Zero-pad a [0, 1] image by `pad` pixels per side (after checking its size)."""
        if tuple(x01.shape[-2:]) != (self.resolution, self.resolution):
            raise ValueError(f"phase retrieval was built for {self.resolution} px images, got {tuple(x01.shape[-2:])}")
        return F.pad(x01, (self.pad,) * 4)

    def _crop(self, z: torch.Tensor) -> torch.Tensor:
        """The un-padded centre of a padded array."""
        p = self.pad
        return z[..., p:z.shape[-2] - p, p:z.shape[-1] - p]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """|F_c(pad((x + 1)/2))|, shape B×C×(H + 2·pad)×(W + 2·pad)."""
        return centred_fft(self._padded((x + 1) / 2)).abs()

    def rough_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """2·crop(|F_c⁻¹ y|) − 1: the official `PhaseRetrievalOperator.H_pinv`, crop(|F_c⁻¹ y|) (DEFT
        `utils/degredations.py` lines 1156-1159), mapped from the (x + 1)/2 units this operator measures in back to
        [-1, 1]. The measured magnitudes with every phase set to 0: a centred, symmetric blob, not the image."""
        return 2 * self._crop(centred_ifft(y).abs()) - 1

    def official_likelihood_grad(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """∇ of −‖y − A‖²/2 with respect to the [0, 1] image u = (x + 1)/2, which is 2·∇_x, and without 1/σ²
        (`PhaseRetrieval.log_likelihood_grad`, DEFT `htransform/likelihoods.py` lines 325-337)."""
        return -2 * self.vjp(x, self.forward(x) - y)

    def phase_swap(self, y: torch.Tensor, x0hat: torch.Tensor) -> torch.Tensor:
        """DEFT's "cheap guidance": the measured magnitudes with x̂0's phases, back in image space.

        v = crop(|F_c⁻¹(|y|·exp(i·angle(F_c(pad(x01)))))|) mapped to 2·v − 1, with x01 = (x̂0 + 1)/2 clipped to
        [0, 1] as DEFT does. Values are ≥ −1 and not clipped above (nor are they in DEFT).
        """
        phase = torch.angle(centred_fft(self._padded(((x0hat + 1) / 2).clamp(0, 1))))
        return 2 * self._crop(centred_ifft(y.abs() * torch.exp(1j * phase)).abs()) - 1

    def hio(self, y: torch.Tensor, init: torch.Tensor, rounds: int = 7, iterations: int = 50, beta: float = 0.95,
            tie_round: int = 3, tie: str = "official", box: bool = False) -> torch.Tensor:
        """Fienup's error-reduction / hybrid input–output, warm-started at `init` (DEFT's "simple inverse").

        Rounds alternate ER (even rounds) and HIO (odd rounds), `iterations` each. Every iteration replaces the
        Fourier magnitudes of the current estimate z by |y| (g = F_c⁻¹(|y|·e^{i·angle F_c z})), then applies the
        object constraint: ER projects g onto the constraint set; HIO keeps g where it is feasible and sets z − β·g
        elsewhere. With `box=False` (DEFT) the constraint is the un-padded support and the iterates stay complex;
        with `box=True` they are real and must also lie in [0, 1] (Fienup's positivity, here with an upper bound).
        During round `tie_round`, after each iteration, the channels are tied, which aligns their flip/shift
        ambiguity before the last rounds refine them separately: `tie="official"` copies channel 0 over the others
        for the first image of the batch only, as DEFT's `simple_inverse` does (`htransform/likelihoods.py` lines
        401-405), so that image's result depends on its place in the batch; `tie="channel_mean"` replaces every
        image's channels by their mean, so each image's result depends on its own y and init only. Vectorised over
        the batch. Returns an image in [-1, 1] space: 2·|crop(z)| − 1 (box=False) or 2·clip(crop(z), 0, 1) − 1
        (box=True).
        """
        if tie not in CHOICES["hio_tie"]:
            raise ValueError(f"HIO channel tie {tie!r}; choose one of {', '.join(CHOICES['hio_tie'])}")
        magnitude = y.abs()
        z = self._padded((init + 1) / 2)
        z = z if box else z.to(torch.complex64 if z.dtype == torch.float32 else torch.complex128)
        support = torch.zeros(z.shape[-2:], dtype=torch.bool, device=z.device)
        support[self.pad:support.shape[0] - self.pad, self.pad:support.shape[1] - self.pad] = True
        for round_index in range(rounds):
            for _ in range(iterations):
                g = centred_ifft(magnitude * torch.exp(1j * torch.angle(centred_fft(z))))
                if box:
                    g = g.real
                    feasible = support & (g >= 0) & (g <= 1)
                else:
                    feasible = support
                if round_index % 2 == 0:  # error reduction: project g onto the constraint set
                    z = g.clamp(0, 1) * support if box else g * support
                else:  # hybrid input-output: Fienup's feedback z − β·g where g violates the constraints
                    z = torch.where(feasible, g, z - beta * g)
                if round_index == tie_round and z.shape[1] > 1:
                    if tie == "official":
                        z = z.clone()
                        z[0, 1:] = z[0, :1]
                    else:
                        z = z.mean(dim=1, keepdim=True).expand_as(z).clone()
        out = self._crop(z).clamp(0, 1) if box else self._crop(z).abs()
        return 2 * out.to(init.dtype) - 1


#################################################################################
#                     Non-linear blur (seeded bkse stand-in)                    #
#################################################################################


class BlurAsPinv:
    """Mixin of the non-linear blurs: the official `NonlinearBlurOperator.H_pinv` is the blur itself (DEFT
    `utils/degredations.py` lines 1135-1136), the baselines' start A(y) and, applied to the residual, the likelihood
    gradient −A(A(x) − y) (`NonLinearBlur.log_likelihood_grad`, `htransform/likelihoods.py` lines 305-311; the
    official blur is noiseless, so its missing 1/σ² agrees with `per_noise`)."""

    def rough_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """A(y)."""
        return self.forward(y)

    def official_likelihood_grad(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """−A(A(x) − y)/σ² (σ = 0: −A(A(x) − y))."""
        return pinv_surrogate_grad(self, x, y)


class NonlinearBlurStandin(BlurAsPinv, OnDevice, Operator):
    """A content-dependent, spatially varying blur standing in for bkse's KernelWizard (NONLINEAR_BLUR_LABEL).

    u = (x + 1)/2; K seeded motion kernels k_1…k_K (31 px at 256 px scaled to the resolution, intensity 0.5, kernel
    j from numpy seed [seed, j]); per-pixel mixing weights w(u) = softmax over K of a seeded random 1×1 convolution
    of a box-blurred copy of u (box side resolution/8, kept odd); y = clip(2·Σ_j w_j(u)·(k_j ⋆ u) − 1, −1, 1).
    The weights depend on the image, so A is non-linear. Convolutions pad by reflection (A needs no adjoint).
    Seed 42 by default, as RED-diff and DEFT fix the bkse kernel latent with seed 42. Published non-linear
    deblurring numbers need the GOPRO_wVAE KernelWizard, which is not available here: `comparable` is False.
    """

    name = "nonlinear_blur"
    comparable = False
    label = NONLINEAR_BLUR_LABEL
    _tensors = ("kernels", "mix_weight", "mix_bias")

    def __init__(self, resolution: int, channels: int, seed: int = 42, num_kernels: int = 4, sigma_y: float = 0.0):
        """Draw the kernels and the mixing layer from `seed`."""
        super().__init__(sigma_y)
        size = scaled_odd_size(31, resolution)
        kernels = [motion_kernel(size, 0.5, np.random.default_rng([seed, j])) for j in range(num_kernels)]
        self.kernels = torch.from_numpy(np.stack(kernels)).float()[:, None]  # K×1×k×k
        generator = torch.Generator().manual_seed(seed)
        # weights of scale 4 make the softmax switch between kernels across an image instead of averaging them
        self.mix_weight = 4 * torch.randn(num_kernels, channels, generator=generator)
        self.mix_bias = torch.randn(num_kernels, generator=generator)
        self.context = scaled_odd_size(32, resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """clip(2·Σ_j w_j(u)·(k_j ⋆ u) − 1, −1, 1) with u = (x + 1)/2."""
        b, c, h, w = x.shape
        u = (x + 1) / 2
        half = self.kernels.shape[-1] // 2
        padded = F.pad(u.reshape(b * c, 1, h, w), (half,) * 4, mode="reflect")
        blurred = F.conv2d(padded, self.kernels.to(x)).reshape(b, c, -1, h, w)  # B×C×K×H×W
        context = F.avg_pool2d(F.pad(u, (self.context // 2,) * 4, mode="reflect"), self.context, stride=1)
        logits = torch.einsum("kc,bchw->bkhw", self.mix_weight.to(x), 2 * context - 1)
        weights = torch.softmax(logits + self.mix_bias.to(x)[:, None, None], dim=1)
        return (2 * (weights[:, None] * blurred).sum(2) - 1).clamp(-1, 1)
