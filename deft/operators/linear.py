"""Linear forward operators: inpainting, separable SVD operators (SR, bicubic SR, Gaussian deblur), 2-D blur.

As the community code defines them (DEFT/RED-diff `utils/degredations.py`, DPS `guided_diffusion/measurements.py`):
masks multiply ([-1, 1] images, zeros in the hole);
average-pooling SR, DDRM's bicubic `sr_bicubic` and DDRM's 5-tap `deblur_gauss` are 1-D matrices per axis whose
SVDs are taken once in float64 (DDRM's `H_functions`); DPS's motion and Gaussian blurs are 2-D kernels applied as a
depthwise convolution. Every operator keeps its constant tensors on one device (`to(device)`); per-call methods
also accept inputs on another device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from deft.operators.base import LinearOperator, SVDOperator


class OnDevice:
    """Mixin: `to(device)` moves the tensors named in `_tensors` (an operator's constants)."""

    _tensors: tuple[str, ...] = ()

    def to(self, device) -> OnDevice:
        """Move the operator's constant tensors to `device`; returns self."""
        for name in self._tensors:
            setattr(self, name, getattr(self, name).to(device))
        return self


def scaled_odd_size(size_at_256: int, resolution: int) -> int:
    """A kernel side given at 256 px, scaled to `resolution`, rounded and made odd (61 → 61 at 256, 5 at 16)."""
    size = max(int(math.floor(size_at_256 * resolution / 256 + 0.5)), 1)
    return size if size % 2 else size + 1


#################################################################################
#                                  Inpainting                                   #
#################################################################################


class Inpainting(OnDevice, SVDOperator):
    """y = m ⊙ x, image-shaped; V = U = identity on pixels and the singular values are m.

    `mask` is B×1×H×W (1 = keep, the same hole in every channel), one row per image of the batch. The hole's entries
    of y are not measurements: every method but DEFT's official gradient reads y through m (Uᵀ, A†, the masked
    residual). `hole_noise` says what they hold: the measurement noise (DEFT's `InPainting.sample` adds σ-noise to
    the whole masked image, alexdenker/DEFT@2495d46 `htransform/likelihoods.py` lines 542-545) or 0.
    """

    name = "inpaint"
    _tensors = ("mask",)

    def __init__(self, mask: torch.Tensor, sigma_y: float = 0.0, label: str = "", comparable: bool = True,
                 hole_noise: bool = True):
        """`label` describes where the masks come from; `comparable` is False for stand-in masks."""
        super().__init__(sigma_y)
        if mask.ndim != 4 or mask.shape[1] != 1:
            raise ValueError(f"mask must be B×1×H×W, got {tuple(mask.shape)}")
        self.mask = mask.float()
        self.label, self.comparable, self.hole_noise = label, comparable, hole_noise

    def measure(self, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        """m ⊙ x + noise everywhere (`hole_noise`, DEFT's code) or m ⊙ (x + noise) (y = 0 in the hole)."""
        y = super().measure(x, generators)
        return y if self.hole_noise else y * self.mask.to(x)

    def residual_norm_sq(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image ‖m ⊙ (y − A x)‖²: the hole holds no measurement, so its noise never enters DPS's step."""
        return ((y - self.forward(x)) * self.mask.to(y)).flatten(1).pow(2).sum(1)

    def official_likelihood_grad(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """+(m ⊙ x − y)/σ²: DEFT's `InPainting.log_likelihood_grad` returns −(y − m ⊙ x)/σ², the opposite sign of
        its other likelihoods, over the whole image, so the hole's measurement noise enters g (alexdenker/DEFT@2495d46
        `htransform/likelihoods.py` lines 523-531)."""
        return self.per_noise(self.forward(x) - y)

    def singulars(self) -> torch.Tensor:
        """The mask itself (B×1×H×W): singular value 1 on kept pixels, 0 in the hole."""
        return self.mask

    def vt(self, x: torch.Tensor) -> torch.Tensor:
        """Identity."""
        return x

    def v(self, coefficients: torch.Tensor) -> torch.Tensor:
        """Identity."""
        return coefficients

    def ut(self, y: torch.Tensor) -> torch.Tensor:
        """y with the hole zeroed."""
        return y * self.mask.to(y)

    def u(self, coefficients: torch.Tensor) -> torch.Tensor:
        """The coefficients on kept pixels, zeros in the hole."""
        return coefficients * self.mask.to(coefficients)


#################################################################################
#                 Separable operators: y = R X Cᵀ per channel                   #
#################################################################################


def _svd(matrix: torch.Tensor, zero_below: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(U, s, V) of an m×n matrix (full U and V) with s padded to n entries and values below `zero_below` zeroed."""
    u, s, vh = torch.linalg.svd(matrix, full_matrices=True)
    full = torch.zeros(matrix.shape[1], dtype=torch.float64)
    full[:s.numel()] = torch.where(s >= zero_below, s, torch.zeros_like(s))
    return u, full, vh.T


class SeparableOperator(OnDevice, SVDOperator):
    """y = R X Cᵀ on every channel X (H×W) of every image: A = R ⊗ C, an SVD operator built from two 1-D SVDs.

    R = U_r diag(s_r) V_rᵀ (m_r×H) and C = U_c diag(s_c) V_cᵀ (m_c×W) give
    A = (U_r ⊗ U_c)(S_r ⊗ S_c)(V_r ⊗ V_c)ᵀ.
    Spectral layout (as `SVDOperator` requires): `vt(x)` = V_rᵀ X V_c on the H×W grid, singular values
    s_r[i]·s_c[j] on the same grid (0 for i ≥ m_r or j ≥ m_c), and `ut(y)` = U_rᵀ Y U_c written into the top-left
    m_r×m_c block. As DDRM, 1-D singular values below `zero_below` are set to 0 (DDRM uses 3e-2 for deblurring and
    bicubic SR), so `forward` is the truncated operator U S Vᵀ, which is what the measurements are made with.
    """

    _tensors = ("_ur", "_vr", "_uc", "_vc", "_s", "_kept")

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, sigma_y: float = 0.0, zero_below: float = 1e-10,
                 name: str = "separable", ddrm_pairing_channels: int | None = None):
        """`rows` is R (m_r×H) and `cols` is C (m_c×W); both are decomposed once in float64.

        `ddrm_pairing_channels` = C scales the coefficients of C-channel images by the singular values as DDRM's
        deblurring code lays them out (`ddrm_pairing`), a different operator; None keeps the true pairing.
        """
        super().__init__(sigma_y)
        for key, matrix in (("rows", rows), ("cols", cols)):
            if matrix.ndim != 2 or matrix.shape[0] > matrix.shape[1]:
                raise ValueError(f"{key} must be an m×n matrix with m <= n, got {tuple(matrix.shape)}")
        self.name = name
        self.rows, self.cols = rows.double(), cols.double()
        (self.m_r, self.height), (self.m_c, self.width) = rows.shape, cols.shape
        self._ur, s_r, self._vr = _svd(self.rows, zero_below)
        self._uc, s_c, self._vc = _svd(self.cols, zero_below)
        grid = (s_r[:, None] * s_c[None, :])[None]
        if ddrm_pairing_channels is not None:
            grid = ddrm_pairing(grid[0], ddrm_pairing_channels)
        self._s = grid.float()[None]
        self._kept = grid[:, :self.m_r, :self.m_c] > 0  # measured entries of the spectral block, per channel

    def _check(self, x: torch.Tensor, height: int, width: int) -> None:
        """Refuse inputs of the wrong spatial size with a clear message."""
        if tuple(x.shape[-2:]) != (height, width):
            raise ValueError(f"operator '{self.name}' expects {height}×{width} inputs, got {tuple(x.shape[-2:])}")

    def singulars(self) -> torch.Tensor:
        """s_r[i]·s_c[j] on the H×W grid (1×1×H×W; 1×C×H×W with the DDRM pairing)."""
        return self._s

    def vt(self, x: torch.Tensor) -> torch.Tensor:
        """V_rᵀ X V_c per channel."""
        self._check(x, self.height, self.width)
        return (self._vr.T.to(x.device) @ x.double() @ self._vc.to(x.device)).to(x.dtype)

    def v(self, coefficients: torch.Tensor) -> torch.Tensor:
        """V_r c V_cᵀ per channel."""
        c = coefficients.double()
        return (self._vr.to(c.device) @ c @ self._vc.T.to(c.device)).to(coefficients.dtype)

    def ut(self, y: torch.Tensor) -> torch.Tensor:
        """U_rᵀ Y U_c in the top-left m_r×m_c block of an H×W grid, 0 where s = 0."""
        self._check(y, self.m_r, self.m_c)
        block = self._ur.T.to(y.device) @ y.double() @ self._uc.to(y.device)
        block = block * self._kept.to(y.device)
        return F.pad(block, (0, self.width - self.m_c, 0, self.height - self.m_r)).to(y.dtype)

    def u(self, coefficients: torch.Tensor) -> torch.Tensor:
        """U_r c U_cᵀ from the top-left block, reading only entries with s > 0."""
        block = coefficients[..., :self.m_r, :self.m_c].double() * self._kept.to(coefficients.device)
        return (self._ur.to(block.device) @ block @ self._uc.T.to(block.device)).to(coefficients.dtype)


def ddrm_pairing(grid: torch.Tensor, channels: int) -> torch.Tensor:
    """C×H×W: the H×W grid of singular values paired with the coefficients as DDRM's `Deblurring` code pairs them.

    DDRM sorts the n = H·W values descending and lays the coefficients out rank by rank with the C channels of a
    rank side by side (entry C·p + c for rank p, channel c), but its `singulars()` returns
    `self._singulars.repeat(1, 3)`, the sorted list repeated channel block after channel block, so entry C·p + c is
    scaled by sorted value (C·p + c) mod n instead of p (bahjat-kawar/ddrm@32b6b3c `functions/svd_replacement.py`
    lines 434-440 and 460-461, `Deblurring2D` lines 538-539; its `SRConv` pairs them with `repeat_interleave(3)`,
    line 388; DEFT's copy, `utils/degredations.py` lines 535-543 and 571-572). C = 3 is DDRM's case, C = 1 the true
    pairing. Ties are ranked in grid order (a stable sort; DDRM's unstable sort leaves their order unspecified).
    """
    flat = grid.flatten()
    values, order = torch.sort(flat, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(flat.numel())
    entry = channels * rank[None, :] + torch.arange(channels)[:, None]
    return values[entry % flat.numel()].reshape(channels, *grid.shape)


def avgpool_matrix(n: int, factor: int) -> torch.Tensor:
    """(n/f)×n block mean: row i has 1/f on columns i·f … i·f + f − 1 (singular values 1/sqrt(f))."""
    if factor < 1 or n % factor:
        raise ValueError(f"task.factor = {factor} must be a positive divisor of the image side {n}")
    return torch.kron(torch.eye(n // factor, dtype=torch.float64), torch.full((1, factor), 1.0 / factor,
                                                                             dtype=torch.float64))


def keys_cubic(t: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter a (a = −0.5: Catmull-Rom, as DDRM's `bicubic_kernel`)."""
    t = np.abs(t)
    near = (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1
    far = a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def bicubic_matrix(n: int, factor: int) -> torch.Tensor:
    """DDRM/DDNM `sr_bicubic` 1-D matrix ((n/f)×n): 4f Keys taps, symmetric reflection at the borders, stride f.

    Tap k sits at (k − 2f + 0.5)/f and output i is centred on input pixel i·f + f//2, so for even f every output
    is centred on its f×f block (for odd f DDRM's grid is half a pixel off; we keep its matrix). Taps are
    normalised to sum to 1; a tap falling outside [0, n) is reflected back (−1 → 0, n → n − 1).
    """
    if factor < 1 or n % factor:
        raise ValueError(f"task.factor = {factor} must be a positive divisor of the image side {n}")
    taps = 4 * factor
    kernel = keys_cubic((np.arange(taps) - taps // 2 + 0.5) / factor)
    kernel = kernel / kernel.sum()
    matrix = np.zeros((n // factor, n))
    for out in range(n // factor):
        for k, weight in enumerate(kernel):
            j = (out * factor + factor // 2 + k - taps // 2) % (2 * n)
            matrix[out, j if j < n else 2 * n - 1 - j] += weight
    return torch.from_numpy(matrix)


def gaussian_taps(sigma: float, half_width: int = 2) -> torch.Tensor:
    """exp(−x²/2σ²) at x = −half_width … half_width pixels, normalised (DDRM-family `deblur_gauss`: 5 taps)."""
    x = torch.arange(-half_width, half_width + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return taps / taps.sum()


def deblur_gauss_matrix(n: int, sigma: float, drop_last_tap: bool = True) -> torch.Tensor:
    """n×n zero-boundary blur matrix: A[i, i + k − 2] = tap k of `gaussian_taps(sigma)`.

    DDRM's `Deblurring` loop (copied by RED-diff and DEFT) runs over j in [i − 2, i + 2), so it uses taps 0…3 only
    and its rows sum to ≈ 0.8 for σ ≥ 10; `drop_last_tap=True` reproduces that 1-D matrix, False gives the
    symmetric 5-tap blur the code meant. (DDRM's 2-D operator is not this matrix applied along both axes: its
    singular values are paired with the wrong coefficients, see `ddrm_pairing`.)
    """
    taps = gaussian_taps(sigma)
    if drop_last_tap:
        taps = taps[:-1]
    matrix = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for k, weight in enumerate(taps):
            if 0 <= i + k - 2 < n:
                matrix[i, i + k - 2] = weight
    return matrix


def sr_avgpool(resolution: int, factor: int = 4, sigma_y: float = 0.0) -> SeparableOperator:
    """f×f average pooling (DEFT/RED-diff `sr4`): y is (H/f)×(W/f); Aᵀ replicates y/f², A† replicates y."""
    matrix = avgpool_matrix(resolution, factor)
    return SeparableOperator(matrix, matrix, sigma_y, name="sr_avgpool")


def sr_bicubic(resolution: int, factor: int = 4, sigma_y: float = 0.0, zero_below: float = 3e-2
               ) -> SeparableOperator:
    """Bicubic ×f downsampling as DDRM/DDNM `sr_bicubic` (see `bicubic_matrix`), 1-D singular values < 3e-2 cut."""
    matrix = bicubic_matrix(resolution, factor)
    return SeparableOperator(matrix, matrix, sigma_y, zero_below, name="sr_bicubic")


def deblur_gauss(resolution: int, sigma: float = 25.0, drop_last_tap: bool = True, sigma_y: float = 0.0,
                 zero_below: float = 3e-2, ddrm_pairing_channels: int | None = None) -> SeparableOperator:
    """DDRM-family separable Gaussian deblurring (see `deblur_gauss_matrix`); σ is in pixels of the tap grid.

    The kernel is 5 taps at every resolution in the DDRM-family code, so σ is not rescaled with the resolution
    (RED-diff/DEFT use σ = 25, DDRM/DDNM σ = 10; both make the taps nearly uniform). `ddrm_pairing_channels`: the
    operator DDRM's code actually applies (`ddrm_pairing`), for comparisons with published deblurring numbers.
    """
    matrix = deblur_gauss_matrix(resolution, sigma, drop_last_tap)
    return SeparableOperator(matrix, matrix, sigma_y, zero_below, name="deblur_gauss",
                             ddrm_pairing_channels=ddrm_pairing_channels)


#################################################################################
#                       2-D kernels (DPS motion and Gaussian)                   #
#################################################################################


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """size×size Gaussian as DPS builds it (`scipy.ndimage.gaussian_filter` of a delta, truncated at 4σ), sum 1."""
    if sigma <= 0:
        raise ValueError(f"Gaussian kernel sigma must be > 0, got {sigma}")
    x = np.arange(size) - size // 2
    radius = int(4 * sigma + 0.5)
    taps = np.where(np.abs(x) <= radius, np.exp(-0.5 * (x / sigma) ** 2), 0.0)
    kernel = np.outer(taps, taps)
    return kernel / kernel.sum()


def motion_kernel(size: int, intensity: float, rng: np.random.Generator) -> np.ndarray:
    """A random camera-shake trajectory rasterised into a size×size kernel (non-negative, sum 1).

    Our own generator in the spirit of LeviBorodenko/motionblur (DPS's `Kernel(size, intensity)`), not a port:
    64 steps whose heading drifts by N(0, (0.6·intensity)²) rad per step, with a jerk uniform in ±π/2 at each step
    with probability intensity/8 (intensity 0 = a straight line); total length uniform in [0.5, 1]·(size − 1);
    the path is centred, shrunk to fit the kernel if needed and splatted bilinearly.
    """
    if size == 1:
        return np.ones((1, 1))
    steps = 64
    jerks = np.where(rng.random(steps) < intensity / 8, rng.uniform(-math.pi / 2, math.pi / 2, steps), 0.0)
    heading = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.normal(0, 0.6 * intensity, steps) + jerks)
    length = rng.uniform(0.5, 1.0) * (size - 1)
    path = np.cumsum(np.stack([np.sin(heading), np.cos(heading)], axis=-1) * (length / steps), axis=0)
    path -= (path.min(0) + path.max(0)) / 2
    half = (size - 1) / 2
    path *= min(1.0, half / max(np.abs(path).max(), 1e-12))
    path += half
    corner = np.floor(path).astype(int)
    frac = path - corner
    kernel = np.zeros((size, size))
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
        weight = (frac[:, 0] if dr else 1 - frac[:, 0]) * (frac[:, 1] if dc else 1 - frac[:, 1])
        # a point on the last row/column has zero weight beyond it; clipping keeps the index valid
        np.add.at(kernel, (np.minimum(corner[:, 0] + dr, size - 1), np.minimum(corner[:, 1] + dc, size - 1)), weight)
    return kernel / kernel.sum()


class Convolution2D(OnDevice, LinearOperator):
    """y = k ⋆ x on every channel (cross-correlation, as DPS's `nn.Conv2d` blur), output H×W, zero boundary.

    DPS pads by reflection; we pad with zeros so that the adjoint is exact: Aᵀ is the transposed convolution with the
    same kernel. The two differ only within k/2 pixels of the border. No pseudo-inverse (not an SVD operator).
    """

    _tensors = ("kernel",)

    def __init__(self, kernel: torch.Tensor, sigma_y: float = 0.0, name: str = "conv"):
        """`kernel` is k×k with k odd."""
        super().__init__(sigma_y)
        if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
            raise ValueError(f"kernel must be k×k with k odd, got {tuple(kernel.shape)}")
        self.kernel, self.name = kernel.float(), name

    def _weight(self, x: torch.Tensor) -> torch.Tensor:
        """The depthwise weight (C×1×k×k) in x's dtype and device."""
        return self.kernel.to(x)[None, None].expand(x.shape[1], 1, *self.kernel.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """k ⋆ x with zeros outside the image."""
        return F.conv2d(x, self._weight(x), padding=self.kernel.shape[0] // 2, groups=x.shape[1])

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """The exact adjoint: transposed convolution with the same kernel and padding."""
        return F.conv_transpose2d(y, self._weight(y), padding=self.kernel.shape[0] // 2, groups=y.shape[1])


def deblur_motion(resolution: int, seed: int = 0, size_at_256: int = 61, intensity: float = 0.5,
                  sigma_y: float = 0.0) -> Convolution2D:
    """DPS motion deblurring: one seeded kernel per task, 61 px at 256 px scaled to the resolution (kept odd)."""
    kernel = motion_kernel(scaled_odd_size(size_at_256, resolution), intensity, np.random.default_rng(seed))
    return Convolution2D(torch.from_numpy(kernel), sigma_y, name="deblur_motion")


def deblur_gauss_dps(resolution: int, size_at_256: int = 61, sigma_at_256: float = 3.0, sigma_y: float = 0.0
                     ) -> Convolution2D:
    """DPS Gaussian deblurring: a 61×61 kernel with σ = 3 px at 256 px, both scaled to the resolution."""
    kernel = gaussian_kernel(scaled_odd_size(size_at_256, resolution), sigma_at_256 * resolution / 256)
    return Convolution2D(torch.from_numpy(kernel), sigma_y, name="deblur_gauss_dps")
