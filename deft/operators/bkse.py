"""bkse's KernelWizard blur generator and the non-linear deblurring operator built on it.

The non-linear deblurring task of DPS, RED-diff and DEFT blurs an image with the generator G of bkse (Tran et al.,
CVPR 2021, "Explore image deblurring via encoded blur kernel space", VinAIResearch/blur-kernel-space-exploring),
loaded from its `GOPRO_wVAE.pth` checkpoint and driven by a random blur-kernel code k (DEFT `utils/degredations.py`,
`NonlinearBlurOperator`):  y = clamp(2·G((x + 1)/2, k) − 1, −1, 1),  k = 1.2·N(0, I) of shape 1×512×2×2 at 256 px.

The modules below are written for this suite, but their module tree follows bkse's `KernelWizard` built from
`options/generate_blur/default.yml` (input_nc 3, nf 64, front_RBs 10, back_RBs 20, kernel_dim 512, use_vae true;
KernelExtractor: norm none, use_sharp true, n_blocks 4, reflect padding, no dropout; Adapter: norm none), so that
the state-dict keys and shapes are those of the released checkpoint, which bkse's `generate_blur.py` and DPS load
with a strict `load_state_dict(torch.load(path))`: a raw state dict of the whole KernelWizard, including the
kernel extractor F that generating blur never runs. `norm: none` makes every normalisation layer an identity and
leaves the convolutions of the extractor and the U-Net bias-free (all but the outermost transposed one); the
identities are kept as modules so that the `nn.Sequential` indices (hence the key names) match.

Sizes: the feature extractor halves the image twice and the U-Net adapter halves its features five more times, with
skip connections that need exact sizes, so image sides must be multiples of 128; k has side/128 pixels per side
(2×2 at 256 px, the published setting).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from deft.operators.base import Operator
from deft.operators.nonlinear import BlurAsPinv
from tunebench.config import ConfigError
from tunebench.io import torch_load

WEIGHTS_NAME = "GOPRO_wVAE.pth"
SIDE_MULTIPLE = 128  # 4 (two stride-2 convolutions) · 32 (five U-Net halvings)
KERNEL_SCALE = 1.2  # k = 1.2·N(0, I), as DPS, RED-diff and DEFT draw it


@dataclass(frozen=True)
class KernelWizardOptions:
    """The KernelWizard settings of bkse's `options/generate_blur/default.yml` (bkse's option names in comments).

    Only what changes the module tree is configurable; the normalisation ("none"), padding ("reflect") and dropout
    (off) of GOPRO_wVAE are fixed. Smaller values exist for tests; the real checkpoint needs the defaults.
    """

    input_nc: int = 3  # image channels
    nf: int = 64  # feature width
    front_blocks: int = 10  # front_RBs: residual blocks of the feature extractor
    back_blocks: int = 20  # back_RBs: residual blocks of the reconstruction trunk
    kernel_dim: int = 512  # channels of the kernel code k
    use_vae: bool = True  # the kernel extractor outputs 2·kernel_dim channels (mean and spread halves)
    extractor_blocks: int = 4  # KernelExtractor.n_blocks: ResNet blocks at the extractor's bottom
    use_sharp: bool = True  # KernelExtractor.use_sharp: the extractor sees sharp and blurred features

    def __post_init__(self):
        """The adapter's innermost U-Net level concatenates its 8·nf features with k and maps 2·8·nf channels back,
        so k must have exactly 8·nf channels (512 for nf 64)."""
        if self.kernel_dim != 8 * self.nf:
            raise ValueError(f"kernel_dim must be 8·nf = {8 * self.nf} (the adapter's bottom concatenates k with "
                             f"its 8·nf features), got {self.kernel_dim}")
        if self.input_nc < 1 or self.nf < 1 or min(self.front_blocks, self.back_blocks, self.extractor_blocks) < 0:
            raise ValueError(f"channel counts must be >= 1 and block counts >= 0, got {self}")


DEFAULT_OPTIONS = KernelWizardOptions()


#################################################################################
#                                 Building blocks                               #
#################################################################################


class ResidualBlockNoBN(nn.Module):
    """bkse's `ResidualBlock_noBN`: x + conv2(relu(conv1(x))), two 3×3 convolutions with bias (keys conv1, conv2)."""

    def __init__(self, nf: int):
        """Kaiming-normal weights scaled by 0.1 and zero biases, as bkse initialises them, so that a randomly
        initialised block stays close to the identity (only tests run without trained weights)."""
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, a=0, mode="fan_in")
            with torch.no_grad():
                conv.weight.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x + conv2(relu(conv1(x)))."""
        return x + self.conv2(F.relu(self.conv1(x)))


class ResnetBlock(nn.Module):
    """The pix2pix ResNet block of bkse's kernel extractor with norm "none", reflect padding and no dropout.

    `conv_block` = [pad, conv, norm, ReLU, pad, conv, norm] (keys conv_block.1.weight, conv_block.5.weight); the
    convolutions have no bias because bkse only gives them one under instance norm.
    """

    def __init__(self, dim: int):
        """Two 3×3 dim→dim convolutions, reflection-padded."""
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False), nn.Identity(), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False), nn.Identity(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x + conv_block(x)."""
        return x + self.conv_block(x)


class KernelExtractor(nn.Module):
    """The encoder F of bkse: features of a (sharp, blurred) pair → kernel code (and, with the VAE, its spread).

    Generating blur never runs it; it exists because GOPRO_wVAE.pth stores it under `kernel_extractor.model.*`.
    Layers (keys `model.N`): reflection pad 3, 7×7 conv (2·nf or nf → nf), then five stride-2 3×3 convolutions
    whose widths double from nf and stop at the output width (2·kernel_dim with the VAE), then `extractor_blocks`
    ResNet blocks at that width; norms are identities and the convolutions have no bias (bkse's norm "none").
    """

    def __init__(self, options: KernelWizardOptions):
        """Layer widths from `options`."""
        super().__init__()
        nf = options.nf
        self.kernel_dim, self.use_vae, self.use_sharp = options.kernel_dim, options.use_vae, options.use_sharp
        out_channels = 2 * options.kernel_dim if options.use_vae else options.kernel_dim
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(2 * nf if options.use_sharp else nf, nf, 7,
                                                                    bias=False), nn.Identity(), nn.ReLU()]
        for level in range(5):
            width = nf * 2 ** level
            layers += [nn.Conv2d(min(width, out_channels), min(2 * width, out_channels), 3, 2, 1, bias=False),
                       nn.Identity(), nn.ReLU()]
        layers += [ResnetBlock(out_channels) for _ in range(options.extractor_blocks)]
        self.model = nn.Sequential(*layers)

    def forward(self, sharp_features: torch.Tensor, blur_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, spread) halves of the code with the VAE; (code, zeros) without it."""
        inputs = torch.cat((sharp_features, blur_features), 1) if self.use_sharp else blur_features
        code = self.model(inputs)
        if self.use_vae:
            return code[:, :self.kernel_dim], code[:, self.kernel_dim:]
        return code, torch.zeros_like(code)


class UnetLevel(nn.Module):
    """One level of bkse's U-Net adapter (pix2pix `UnetSkipConnectionBlock`, transposed-convolution version).

    down: 4×4 stride-2 convolution (preceded by LeakyReLU(0.2) and followed by a norm except at the outermost
    level); up: ReLU, 4×4 stride-2 transposed convolution, then a norm (inner levels) or tanh (outermost). The
    innermost level concatenates the kernel code k to its bottom features before going up; inner levels return
    [up(...), skip]. Keys: `down.1.weight` / `up.1.weight` (`down.0.weight` at the outermost level, whose
    transposed convolution alone has a bias), `submodule.*` for the next level down.

    bkse's LeakyReLU is in place, so there the skip carries leaky_relu(x, 0.2) rather than x; every skip goes
    straight into the enclosing level's ReLU and relu(leaky_relu(x)) = relu(x), so passing x (no in-place
    operations, autograd-safe) gives the same outputs and gradients.
    """

    def __init__(self, outer: int, inner: int, input_channels: int | None = None,
                 submodule: UnetLevel | None = None, outermost: bool = False, innermost: bool = False):
        """`outer`/`inner`: channels outside/inside this level; `input_channels` defaults to `outer`."""
        super().__init__()
        self.outermost, self.innermost = outermost, innermost
        down_conv = nn.Conv2d(input_channels or outer, inner, 4, 2, 1, bias=False)
        if outermost:
            self.down = nn.Sequential(down_conv)
            self.submodule = submodule
            self.up = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1), nn.Tanh())
        else:
            self.down = nn.Sequential(nn.LeakyReLU(0.2), down_conv, *([] if innermost else [nn.Identity()]))
            if not innermost:  # bkse's innermost block has no `submodule` attribute
                self.submodule = submodule
            self.up = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1, bias=False),
                                    nn.Identity())

    def forward(self, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        """The level's output for features x and kernel code k (k enters at the innermost level)."""
        bottom = self.down(x)
        if self.innermost:
            if kernel.shape[-2:] != bottom.shape[-2:] or kernel.shape[0] != bottom.shape[0]:
                raise ValueError(f"kernel code of shape {tuple(kernel.shape)} does not fit the adapter's bottom "
                                 f"features {tuple(bottom.shape)}: it needs the batch size and side/128 pixels")
            inside = torch.cat((bottom, kernel), 1)
        else:
            inside = self.submodule(bottom, kernel)
        out = self.up(inside)
        return out if self.outermost else torch.cat((out, x), 1)


class KernelAdapter(nn.Module):
    """bkse's adapter: a five-level U-Net on nf-channel features, widths nf, 2nf, 4nf, 8nf, 8nf (key `model.*`)."""

    def __init__(self, options: KernelWizardOptions):
        """Levels built innermost first, as bkse nests them."""
        super().__init__()
        nf = options.nf
        level = UnetLevel(8 * nf, 8 * nf, innermost=True)
        for outer, inner in ((4 * nf, 8 * nf), (2 * nf, 4 * nf), (nf, 2 * nf)):
            level = UnetLevel(outer, inner, submodule=level)
        self.model = UnetLevel(nf, nf, input_channels=nf, submodule=level, outermost=True)

    def forward(self, features: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        """Features of the sharp image, re-blurred under kernel code k."""
        return self.model(features, kernel)


class KernelWizard(nn.Module):
    """bkse's KernelWizard: the blur generator G (`forward`, bkse's `adaptKernel`) plus, optionally, F.

    feature_extractor: 3×3 conv (input_nc → nf), two stride-2 3×3 convs (LeakyReLU 0.1 after each), `front_blocks`
    residual blocks; adapter: the U-Net that injects k; recon_trunk: `back_blocks` residual blocks, two
    conv + ×2 pixel-shuffle + LeakyReLU stages (the second one to a fixed 64 channels, as bkse hard-codes it), a
    64→64 conv, LeakyReLU, a 64 → input_nc conv. G(u, k) = recon_trunk(adapter(feature_extractor(u), k)) + u for
    u in [0, 1]. `with_extractor=False` leaves out F (`kernel_extractor.*`, ~80% of the checkpoint's parameters),
    which generating blur does not need.
    """

    def __init__(self, options: KernelWizardOptions = DEFAULT_OPTIONS, with_extractor: bool = True):
        """Modules in bkse's registration order (feature_extractor, kernel_extractor, adapter, recon_trunk)."""
        super().__init__()
        self.options = options
        nf, channels = options.nf, options.input_nc
        lrelu = nn.LeakyReLU(0.1)  # parameter-free, so one instance can sit at several Sequential indices
        self.feature_extractor = nn.Sequential(
            nn.Conv2d(channels, nf, 3, 1, 1), lrelu, nn.Conv2d(nf, nf, 3, 2, 1), lrelu, nn.Conv2d(nf, nf, 3, 2, 1),
            lrelu, *[ResidualBlockNoBN(nf) for _ in range(options.front_blocks)])
        if with_extractor:
            self.kernel_extractor = KernelExtractor(options)
        self.adapter = KernelAdapter(options)
        self.recon_trunk = nn.Sequential(
            *[ResidualBlockNoBN(nf) for _ in range(options.back_blocks)],
            nn.Conv2d(nf, 4 * nf, 3, 1, 1), nn.PixelShuffle(2), lrelu,
            nn.Conv2d(nf, 4 * 64, 3, 1, 1), nn.PixelShuffle(2), lrelu,
            nn.Conv2d(64, 64, 3, 1, 1), lrelu, nn.Conv2d(64, channels, 3, 1, 1))

    def forward(self, sharp: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        """G(u, k) for `sharp` u, B×input_nc×H×W in [0, 1] (H, W multiples of 128), and `kernel` k,
        B×kernel_dim×(H/128)×(W/128); the output is a blurred image of u's shape, not clipped."""
        check_side(sharp.shape[-2], sharp.shape[-1])
        return self.recon_trunk(self.adapter(self.feature_extractor(sharp), kernel)) + sharp

    adapt_kernel = forward  # bkse's name for the generating path

    def extract_kernel(self, sharp: torch.Tensor, blurred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """F(sharp, blurred): the kernel code (and spread) relating a sharp/blurred pair (needs with_extractor)."""
        return self.kernel_extractor(self.feature_extractor(sharp), self.feature_extractor(blurred))


def check_side(height: int, width: int) -> None:
    """Raise ValueError unless both sides are multiples of 128 (what the U-Net's exact skip sizes need)."""
    if height % SIDE_MULTIPLE or width % SIDE_MULTIPLE:
        raise ValueError(f"bkse's KernelWizard needs image sides that are multiples of {SIDE_MULTIPLE} (features at "
                         f"1/4 size, then five U-Net halvings), got {height}×{width}")


def kernel_latent(seed: int, height: int, width: int, kernel_dim: int = 512) -> torch.Tensor:
    """k = 1.2·N(0, I) of shape 1×kernel_dim×height/128×width/128 from a CPU torch.Generator seeded with `seed`.

    At 256 px and seed 42 this is DEFT's `torch.randn(1, 512, 2, 2, generator=torch.Generator().manual_seed(42))
    * 1.2`; the CPU generator makes k the same on every device.
    """
    check_side(height, width)
    generator = torch.Generator().manual_seed(seed)
    shape = (1, kernel_dim, height // SIDE_MULTIPLE, width // SIDE_MULTIPLE)
    return torch.randn(shape, generator=generator) * KERNEL_SCALE


#################################################################################
#                                   Loading                                     #
#################################################################################


def expected_layout(options: KernelWizardOptions = DEFAULT_OPTIONS) -> dict[str, tuple[int, ...]]:
    """Key → shape of the whole KernelWizard's state dict (generator and extractor), built on the meta device so
    that no memory is allocated for the ~115 M default parameters."""
    with torch.device("meta"):
        model = KernelWizard(options, with_extractor=True)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _describe(keys: list[str], limit: int = 8) -> str:
    """At most `limit` keys, then how many more."""
    shown = ", ".join(keys[:limit])
    return shown + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


def require_weights_file(path: str | Path, key: str = "task.bkse_weights") -> Path:
    """`path` as a Path if it is a file; otherwise ConfigError naming the config `key` and GOPRO_wVAE.pth."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config key '{key}' = '{path}': no such file; it must point to bkse's {WEIGHTS_NAME} "
                          f"(the KernelWizard checkpoint DPS/RED-diff/DEFT use); unset {key} to use the seeded "
                          "stand-in, whose numbers are not comparable to published ones")
    return path


def load_kernel_wizard(path: str | Path, options: KernelWizardOptions = DEFAULT_OPTIONS,
                       with_extractor: bool = False, key: str = "task.bkse_weights") -> KernelWizard:
    """A KernelWizard in eval mode with frozen float32 weights from a bkse checkpoint (weights_only loading).

    The file must be a raw state dict of the whole KernelWizard, as bkse saves it (`torch.save(net.state_dict())`)
    and as bkse's `generate_blur.py` and DPS load it; a `module.` prefix (a DataParallel save) is stripped, as
    bkse's own `load_network` does. Every key and shape is checked against the layout `options` implies, extractor
    included, and a mismatch raises ConfigError naming the missing, unexpected or mis-shaped keys; then only the
    generator's tensors are kept unless `with_extractor`. Errors name the config `key` that gave the path.
    """
    path = require_weights_file(path, key)
    try:
        state = torch_load(path)
    except Exception as err:  # unpickling errors vary by torch version; all mean "not a plain tensor file"
        raise ConfigError(f"config key '{key}' = '{path}': cannot be read as a weights-only torch file "
                          f"({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"config key '{key}' = '{path}': expected a raw state dict (name → tensor) of bkse's "
                          f"KernelWizard, got {type(state).__name__}"
                          + (f" with keys {_describe(sorted(map(str, state)))}" if isinstance(state, dict) else ""))
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    layout = expected_layout(options)
    missing = sorted(set(layout) - set(state))
    unexpected = sorted(set(state) - set(layout))
    misshaped = [f"{k} {tuple(state[k].shape)} (expected {layout[k]})" for k in sorted(set(layout) & set(state))
                 if tuple(state[k].shape) != layout[k]]
    if missing or unexpected or misshaped:
        problems = [f"{label}: {_describe(keys)}" for label, keys in
                    (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", misshaped)) if keys]
        raise ConfigError(f"config key '{key}' = '{path}' is not a bkse KernelWizard checkpoint for {options}: "
                          + "; ".join(problems))
    # built on the meta device and filled with assign=True: the loaded tensors become the parameters, so nothing
    # is allocated or randomly initialised only to be overwritten
    with torch.device("meta"):
        model = KernelWizard(options, with_extractor=with_extractor)
    wanted = model.state_dict().keys()
    model.load_state_dict({k: state[k].float().contiguous() for k in wanted}, strict=True, assign=True)
    return model.eval().requires_grad_(False)


#################################################################################
#                                  Operator                                     #
#################################################################################


class BkseBlur(BlurAsPinv, Operator):
    """bkse's non-linear blur: y = clamp(2·G((x + 1)/2, k) − 1, −1, 1) with GOPRO_wVAE's KernelWizard G.

    k = 1.2·N(0, I), 1×512×(H/128)×(W/128), is drawn once from `seed` (RED-diff and DEFT fix it, seed 42; DPS draws
    a new k on every call, so its measurement and guidance disagree) and shared by every image of a batch, so an
    image's measurement does not depend on its batch. Images are B×3×H×W in [-1, 1] with H = W = `resolution`, a
    multiple of 128 (256 in the papers). `likelihood_grad` is the base class's autograd VJP through G,
    `official_likelihood_grad` DEFT's −A(A(x) − y) (`BlurAsPinv`). `comparable` is True: with the released weights,
    at 256 px and seed 42, this is the published operator.
    """

    name = "nonlinear_blur"
    comparable = True

    def __init__(self, weights: str | Path, resolution: int, channels: int = 3, seed: int = 42,
                 sigma_y: float = 0.0, options: KernelWizardOptions | None = None, key: str = "task.bkse_weights"):
        """Load G from `weights` (raises ConfigError naming `key` if it is missing or not a KernelWizard state
        dict) and draw k from `seed`; `options` default to bkse's default.yml (DEFAULT_OPTIONS)."""
        super().__init__(sigma_y)
        options = options or DEFAULT_OPTIONS  # looked up at call time, so tests can substitute tiny options
        path = require_weights_file(weights, key)  # before the size checks: a wrong path is the likelier mistake
        if channels != options.input_nc:
            raise ConfigError(f"config key '{key}' is set, but bkse's KernelWizard takes {options.input_nc}-channel "
                              f"images and the data have {channels}; unset {key} to use the seeded stand-in")
        if resolution % SIDE_MULTIPLE:
            raise ConfigError(f"config key '{key}' is set, but bkse's KernelWizard needs an image side that is a "
                              f"multiple of {SIDE_MULTIPLE} (256 in the papers), and the data are {resolution} px; "
                              f"unset {key} to use the seeded stand-in")
        self.resolution, self.seed, self.options = resolution, seed, options
        self.model = load_kernel_wizard(path, options, key=key)
        self.kernel = kernel_latent(seed, resolution, resolution, options.kernel_dim)
        self.label = f"bkse KernelWizard ({path.name}), kernel code 1.2·N(0, I) from seed {seed}"

    def to(self, *args, **kwargs) -> BkseBlur:
        """Move (or cast: `op.to(torch.float64)`) the network and k, with `torch.Tensor.to`'s arguments; returns
        self."""
        self.model.to(*args, **kwargs)
        self.kernel = self.kernel.to(*args, **kwargs)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """clamp(2·G((x + 1)/2, k) − 1, −1, 1), computed on the network's device and dtype and returned on x's."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.options.input_nc, self.resolution, self.resolution):
            raise ValueError(f"bkse blur was built for B×{self.options.input_nc}×{self.resolution}×{self.resolution}"
                             f" images, got {tuple(x.shape)}")
        weight = next(self.model.parameters())
        u = ((x + 1) / 2).to(device=weight.device, dtype=weight.dtype)
        kernel = self.kernel.to(u).expand(x.shape[0], -1, -1, -1)
        return (2 * self.model(u, kernel) - 1).clamp(-1, 1).to(device=x.device, dtype=x.dtype)

