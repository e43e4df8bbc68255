"""The protein prior's diffusion: cosine ᾱ (Genie), Gaussian noise in the zero-centre-of-mass subspace.

Chains are centred, and every noise draw has its mean over residues removed (the E(3)-equivariant diffusion of
Hoogeboom et al. 2022), so x_t stays centred and an EGNN, which sees only differences between coordinates, loses no
information. DDIM steps and x̂0 come from the core's `tunebench.schedule.Schedule` over the cosine betas.
"""

from __future__ import annotations

import math

import torch

from deft.protein.config import ProteinDiffusion
from tunebench.noise import SampleNoise
from tunebench.schedule import Schedule


def cosine_betas(cfg: ProteinDiffusion) -> torch.Tensor:
    """β_t for t = 0..T−1 of the cosine schedule (Nichol & Dhariwal 2021), clipped at `max_beta`."""
    steps = cfg.num_train_timesteps
    f = [math.cos((i / steps + cfg.cosine_s) / (1 + cfg.cosine_s) * math.pi / 2) ** 2 for i in range(steps + 1)]
    return torch.tensor([min(1 - f[i + 1] / f[i], cfg.max_beta) for i in range(steps)], dtype=torch.float64)


def protein_schedule(cfg: ProteinDiffusion) -> Schedule:
    """The DDIM/DDPM schedule object over the cosine betas."""
    return Schedule(cosine_betas(cfg))


def centre(x: torch.Tensor) -> torch.Tensor:
    """Remove the mean over residues (dim −2) of B×N×3 coordinates."""
    return x - x.mean(dim=-2, keepdim=True)


def centred_randn(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Standard normal B×N×3 noise projected onto the zero-mean subspace."""
    return centre(torch.randn(shape, generator=generator))


class CentredNoise(SampleNoise):
    """Per-sample noise streams (row i from seed i) projected onto the zero-mean subspace."""

    def randn(self, shape: tuple[int, ...]) -> torch.Tensor:
        """len(seeds)×N×3 centred normal noise."""
        return centre(super().randn(shape))
