"""Forward operators y = A(x) + n of the inverse problems, with adjoints/VJPs, pseudo-inverses and SVDs.

Conventions (docs/deft.md; DEFT's `main.py` and `htransform/likelihoods.py`):
- Images x are B×C×H×W in [-1, 1], the diffusion model's range; measurements y are whatever shape A makes.
- `sigma_y` is stored in [0, 1] image units, as DDRM/DDNM/RED-diff state it. In [-1, 1] units the noise std is
  `noise_std = 2 * sigma_y` (DDRM's `sigma_y * 2`); every method in this suite uses the same conversion. DEFT's
  own likelihoods added sigma_y unscaled: its `inp.yaml`/`hdr.yaml` 0.1 is sigma_y = 0.05 here.
- Operators with per-image randomness (inpainting masks) are built for a batch of image ids; image k always gets
  the mask made from (seed, k), for every method.
"""

from __future__ import annotations

import torch


class Operator:
    """A measurement operator on [-1, 1] images; subclasses implement `forward` (and what else they can)."""

    name = "operator"
    linear = False
    comparable = True  # False for seeded stand-ins whose numbers cannot be compared to published ones

    def __init__(self, sigma_y: float = 0.0):
        """`sigma_y`: std of the Gaussian measurement noise in [0, 1] image units."""
        if sigma_y < 0:
            raise ValueError(f"sigma_y must be >= 0, got {sigma_y}")
        self.sigma_y = float(sigma_y)

    @property
    def noise_std(self) -> float:
        """Noise std in the [-1, 1] units that x and y live in."""
        return 2.0 * self.sigma_y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A(x), noise-free."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """A(x), noise-free."""
        return self.forward(x)

    def measure(self, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        """y = A(x) + noise_std·n, with row i's noise drawn from `generators[i]` (per-image seeds)."""
        clean = self.forward(x)
        if self.noise_std == 0:
            return clean
        noise = torch.stack([torch.randn(clean.shape[1:], generator=g, dtype=clean.dtype) for g in generators])
        return clean + self.noise_std * noise.to(clean.device)

    def vjp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """J_A(x)ᵀ v by autograd through A only (never through a diffusion model)."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.forward(x), x, grad_outputs=v)
        return grad

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """A pseudo-inverse A†y, image-shaped (start points, ΠGDM, DDNM); operators without one raise."""
        raise NotImplementedError(f"operator '{self.name}' has no pseudo-inverse")

    def rough_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """The official code's `H_pinv(y)` (the baselines' start): A†y; operators without one override it or raise."""
        return self.pinv(y)

    def residual_norm_sq(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image ‖y − A(x)‖²."""
        r = y - self.forward(x)
        return r.flatten(1).pow(2).sum(1)

    def per_noise(self, grad: torch.Tensor) -> torch.Tensor:
        """grad/noise_std², or grad itself when σ = 0 (the official likelihoods' `if self.sigma_y == 0` branch, which
        is a Gaussian likelihood with σ = 1: `htransform/likelihoods.py` lines 238-240 at alexdenker/DEFT@2495d46)."""
        return grad / self.noise_std ** 2 if self.noise_std > 0 else grad

    def likelihood_grad(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """∇_x log p(y | x) = −J_A(x)ᵀ(A(x) − y)/noise_std², 1/σ² dropped when σ = 0 (`task.gradient=exact_vjp`)."""
        return self.per_noise(-self.vjp(x, self.forward(x) - y))

    def official_likelihood_grad(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """DEFT's g as the official likelihood class of this operator computes it (`task.gradient=official`).

        The exact gradient unless a subclass says otherwise: for the linear Gaussian likelihoods (super-resolution,
        `GaussianLikelihood`) the official −Aᵀ(A x − y)/σ² is exact.
        """
        return self.likelihood_grad(x, y)


def pinv_surrogate_grad(op: Operator, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """−H_pinv(A(x) − y)/σ²: the official gradient of the HDR and non-linear blur likelihoods, which call `H_pinv`
    their `A_adjoint` (alexdenker/DEFT@2495d46 `htransform/likelihoods.py` lines 270-275 and 287-288, 305-311)."""
    return op.per_noise(-op.rough_inverse(op.forward(x) - y))


class LinearOperator(Operator):
    """A linear A with an explicit adjoint."""

    linear = True

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Aᵀy."""
        raise NotImplementedError

    def vjp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """J_A(x)ᵀ v = Aᵀv for a linear A."""
        return self.adjoint(v)


class SVDOperator(LinearOperator):
    """A = U diag(s) Vᵀ with fast transforms, as DDRM's `H_functions` (DDRM, noisy ΠGDM and DDNM need it).

    Spectral coefficients are laid out image-shaped: `vt(x)` and `ut(y)` return B×C×H×W tensors whose entries pair
    with `singulars()` (same shape up to broadcasting); entries with singular value 0 are unmeasured directions and
    `ut` puts 0 there.
    """

    def singulars(self) -> torch.Tensor:
        """Singular values s, broadcastable to B×C×H×W (0 where A has no measurement)."""
        raise NotImplementedError

    def vt(self, x: torch.Tensor) -> torch.Tensor:
        """Vᵀx (image-shaped)."""
        raise NotImplementedError

    def v(self, coefficients: torch.Tensor) -> torch.Tensor:
        """V·coefficients (an image)."""
        raise NotImplementedError

    def ut(self, y: torch.Tensor) -> torch.Tensor:
        """Uᵀy, image-shaped, 0 where s = 0."""
        raise NotImplementedError

    def u(self, coefficients: torch.Tensor) -> torch.Tensor:
        """U·coefficients, a measurement (reads only the entries where s > 0)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A x = U s Vᵀx."""
        return self.u(self.singulars() * self.vt(x))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Aᵀy = V s Uᵀy."""
        return self.v(self.singulars() * self.ut(y))

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """A†y = V s⁻¹ Uᵀy on the measured directions."""
        s = self.singulars()
        return self.v(torch.where(s > 0, self.ut(y) / s.clamp_min(1e-12), torch.zeros_like(s)))


class DenseLinear(SVDOperator):
    """A dense matrix acting on flattened images (for tests and toy problems): y = M·vec(x), per image."""

    name = "dense"

    def __init__(self, matrix: torch.Tensor, image_shape: tuple[int, int, int], sigma_y: float = 0.0):
        """`matrix` is m×d with d = C·H·W; its SVD is taken once in float64."""
        super().__init__(sigma_y)
        self.image_shape = tuple(image_shape)
        d = int(torch.tensor(self.image_shape).prod())
        if matrix.ndim != 2 or matrix.shape[1] != d:
            raise ValueError(f"matrix must be m×{d} for images of shape {self.image_shape}, got {tuple(matrix.shape)}")
        if matrix.shape[0] > d:
            raise ValueError(f"matrix has more rows ({matrix.shape[0]}) than image entries ({d}); not supported")
        self.matrix = matrix.double()
        u, s, vh = torch.linalg.svd(self.matrix, full_matrices=True)
        self.m, self.d = self.matrix.shape
        full = torch.zeros(d, dtype=torch.float64)
        full[:s.numel()] = torch.where(s > 1e-10 * s.max(), s, torch.zeros_like(s))
        self._u, self._s, self._v = u, full, vh.T

    def _image(self, flat: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Reshape B×d rows to images of `like`'s dtype."""
        return flat.to(like.dtype).reshape(-1, *self.image_shape)

    def singulars(self) -> torch.Tensor:
        """s laid out as one image."""
        return self._s.float().reshape(1, *self.image_shape)

    def vt(self, x: torch.Tensor) -> torch.Tensor:
        """Vᵀx."""
        return self._image(x.flatten(1).double() @ self._v, x)

    def v(self, coefficients: torch.Tensor) -> torch.Tensor:
        """V·c."""
        return self._image(coefficients.flatten(1).double() @ self._v.T, coefficients)

    def ut(self, y: torch.Tensor) -> torch.Tensor:
        """Uᵀy padded with zeros to d entries."""
        rows = y.double() @ self._u
        padded = torch.zeros(y.shape[0], self.d, dtype=torch.float64, device=y.device)
        padded[:, :self.m] = rows
        return self._image(padded, y)

    def u(self, coefficients: torch.Tensor) -> torch.Tensor:
        """U·c using the first m entries."""
        return (coefficients.flatten(1).double()[:, :self.m] @ self._u.T).to(coefficients.dtype)
