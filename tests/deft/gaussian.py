"""A linear-Gaussian inverse problem where everything DEFT approximates is known in closed form.

Prior x0 ~ N(μ, Σ) on small images, measurement y = A x0 + σ n (a `DenseLinear`). For x_t = a·x0 + b·ε with
a = sqrt(ᾱ_t), b = sqrt(1 − ᾱ_t):

- unconditional: x_t ~ N(a μ, a²Σ + b² I), so ε(x_t) = b (a²Σ + b²I)⁻¹ (x_t − a μ);
- conditional: x0 | y ~ N(m_y, S_y) with S_y = (Σ⁻¹ + AᵀA/σ²)⁻¹, m_y = S_y (Σ⁻¹μ + Aᵀy/σ²), hence
  ε(x_t | y) = b (a² S_y + b² I)⁻¹ (x_t − a m_y).

The exact h-transform correction in ε units is ε(x_t | y) − ε(x_t); the tests train a DEFT head against it and
check samplers against the exact posterior.
"""

from __future__ import annotations

import torch

from deft.operators.base import DenseLinear
from tunebench.schedule import Schedule


class GaussianPrior:
    """The exact ε-model of a Gaussian prior (float64 internally), callable like `FrozenEps`."""

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor, image_shape: tuple[int, int, int], schedule: Schedule):
        """`mean` (d,) and `cov` (d×d) over flattened images of `image_shape`."""
        self.mean, self.cov = mean.double(), cov.double()
        self.image_shape, self.schedule = tuple(image_shape), schedule
        self.channels, self.sample_size = image_shape[0], image_shape[-1]
        self.d = self.mean.numel()
        self.evaluations = 0

    @classmethod
    def random(cls, image_shape: tuple[int, int, int], schedule: Schedule, seed: int = 0) -> GaussianPrior:
        """A random prior with correlated pixels (eigenvalues spread over 0.01…0.5) and mean inside [-0.5, 0.5]."""
        g = torch.Generator().manual_seed(seed)
        d = int(torch.tensor(image_shape).prod())
        q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
        eig = torch.logspace(-2, torch.log10(torch.tensor(0.5)).item(), d, dtype=torch.float64)
        mean = torch.rand(d, generator=g, dtype=torch.float64) - 0.5
        return cls(mean, q @ torch.diag(eig) @ q.T, image_shape, schedule)

    def _coefficients(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b) = (sqrt(ᾱ_t), sqrt(1 − ᾱ_t)) per sample, shape B×1×1."""
        abar = self.schedule.abar(t).view(-1, 1, 1)
        return abar.sqrt(), (1 - abar).sqrt()

    def _eps(self, xt: torch.Tensor, t: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
        """b (a² cov + b² I)⁻¹ (x_t − a·mean) for Gaussian data N(mean, cov); `mean` is d or B×d."""
        a, b = self._coefficients(t)
        eye = torch.eye(self.d, dtype=torch.float64)
        precision = a ** 2 * cov + b ** 2 * eye  # B×d×d
        centred = xt.flatten(1).double() - a[:, :, 0] * mean
        eps = b[:, :, 0] * torch.linalg.solve(precision, centred.unsqueeze(-1)).squeeze(-1)
        return eps.to(xt.dtype).reshape(-1, *self.image_shape)

    def __call__(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Unconditional ε(x_t, t)."""
        t = t.expand(xt.shape[0]) if t.numel() == 1 else t
        self.evaluations += xt.shape[0]
        return self._eps(xt, t, self.mean, self.cov)

    def posterior(self, op: DenseLinear, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean (B×d) and covariance (d×d) of x0 given y = A x0 + noise_std·n (noise_std > 0)."""
        if op.noise_std <= 0:
            raise ValueError("the closed-form posterior needs measurement noise (sigma_y > 0)")
        a_mat, var = op.matrix, op.noise_std ** 2
        prior_precision = torch.linalg.inv(self.cov)
        cov = torch.linalg.inv(prior_precision + a_mat.T @ a_mat / var)
        mean = (prior_precision @ self.mean + y.double() @ a_mat / var) @ cov  # rows: S_y (Σ⁻¹μ + Aᵀy_b/σ²)
        return mean, cov

    def conditional_eps(self, xt: torch.Tensor, t: torch.Tensor, op: DenseLinear, y: torch.Tensor) -> torch.Tensor:
        """Exact ε(x_t, t | y): the unconditional model plus the exact h-transform."""
        t = t.expand(xt.shape[0]) if t.numel() == 1 else t
        mean, cov = self.posterior(op, y)
        return self._eps(xt, t, mean, cov)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n prior draws as images."""
        chol = torch.linalg.cholesky(self.cov)
        z = torch.randn(n, self.d, generator=generator, dtype=torch.float64)
        return (self.mean + z @ chol.T).float().reshape(n, *self.image_shape)
