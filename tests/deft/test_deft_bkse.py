"""bkse's KernelWizard (deft.operators.bkse): module tree and parameter count of the default options, weights-only
checkpoint
loading with key checks, the BkseBlur operator and its wiring into deft.operators.tasks.

GOPRO_wVAE.pth itself is not available here: checkpoints are state dicts of randomly initialised KernelWizards,
mostly with tiny options (nf 8) so that a 128 px forward pass stays cheap.
"""

import math

import pytest
import torch

import deft.operators.bkse
from deft.operators.bkse import (
    DEFAULT_OPTIONS,
    BkseBlur,
    KernelWizard,
    KernelWizardOptions,
    ResidualBlockNoBN,
    expected_layout,
    kernel_latent,
    load_kernel_wizard,
)
from deft.operators.task_settings import task_config
from deft.operators.tasks import build_operator
from tunebench.config import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

# the smallest KernelWizard with every kind of layer; 128 px is the smallest image it takes (1×1 kernel code)
TINY = KernelWizardOptions(nf=8, front_blocks=1, back_blocks=1, kernel_dim=64, extractor_blocks=1)
SIDE = 128


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(path, model): a randomly initialised tiny KernelWizard (extractor included) saved as a raw state dict.

    PyTorch's default initialisation shrinks the signal at every U-Net level, so that k would change the output by
    ~1e-5; He-normal weights outside the residual blocks (the last convolution scaled by 1/4 to keep most pixels
    unclipped) make k matter, as it does in the trained network.
    """
    torch.manual_seed(0)
    model = KernelWizard(TINY).eval()
    in_blocks = {id(c) for block in model.modules() if isinstance(block, ResidualBlockNoBN) for c in block.modules()}
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and id(module) not in in_blocks:
                # fan-in of a stride-2 4×4 transposed convolution: in_channels · 4 taps per output pixel
                fan_in = module.weight[0].numel() if isinstance(module, torch.nn.Conv2d) else 4 * module.weight.shape[0]
                module.weight.normal_(0, math.sqrt(2 / fan_in))
        model.recon_trunk[-1].weight.mul_(0.25)
    path = tmp_path_factory.mktemp("bkse") / "GOPRO_wVAE.pth"
    torch.save(model.state_dict(), path)
    return path, model


def images(batch, seed=0, dtype=torch.float32, low=-1.0, high=1.0):
    """Uniform random 3×128×128 images in [low, high]."""
    generator = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(batch, 3, SIDE, SIDE, generator=generator, dtype=dtype)


def save_variant(tmp_path, state, name="variant.pth"):
    """torch.save `state` to tmp_path/name; returns the path."""
    path = tmp_path / name
    torch.save(state, path)
    return path


#################################################################################
#                        Architecture (default options)                         #
#################################################################################


def test_default_generator_parameter_count_and_keys():
    # Generator G (no extractor), nf 64, 3 channels:
    #   feature_extractor: 3→64 3×3 conv 64·3·9+64 = 1,792; two 64→64 3×3 convs 2·(64·64·9+64) = 73,856;
    #     10 residual blocks of two such convs 10·73,856 = 738,560                               → 814,208
    #   adapter (4×4 kernels, bias-free except the outermost transposed conv): outermost down 64·64·16 = 65,536 and
    #     up 128·64·16+64 = 131,136; then (down, up) = (64·128·16, 256·64·16) = (131,072, 262,144),
    #     (524,288, 1,048,576), (2,097,152, 4,194,304), innermost (512·512·16, 1024·512·16) = (4,194,304, 8,388,608)
    #                                                                                            → 21,037,120
    #   recon_trunk: 20 residual blocks 1,477,120; 64→256 3×3 twice 2·(64·256·9+256) = 295,424; 64→64 36,928;
    #     64→3 64·3·9+3 = 1,731                                                                   → 1,811,203
    #   total 23,662,531.
    # Kernel extractor F (bias-free): 7×7 128→64 401,408; stride-2 3×3 64→128→256→512→1024→1024
    #   9·(8,192+32,768+131,072+524,288+1,048,576) = 15,704,064; 4 ResNet blocks of two 1024→1024 3×3 convs
    #   8·9,437,184 = 75,497,472 → 91,602,944. Whole checkpoint: 115,265,475 parameters.
    generator = KernelWizard(DEFAULT_OPTIONS, with_extractor=False)
    count = {name: sum(p.numel() for p in getattr(generator, name).parameters())
             for name in ("feature_extractor", "adapter", "recon_trunk")}
    assert count == {"feature_extractor": 814_208, "adapter": 21_037_120, "recon_trunk": 1_811_203}
    assert sum(p.numel() for p in generator.parameters()) == 23_662_531

    layout = expected_layout(DEFAULT_OPTIONS)
    assert len(layout) == 159
    extractor = {k: v for k, v in layout.items() if k.startswith("kernel_extractor.")}
    assert sum(torch.Size(v).numel() for v in extractor.values()) == 91_602_944
    assert sum(torch.Size(v).numel() for v in layout.values()) == 115_265_475
    assert set(layout) - set(extractor) == set(generator.state_dict())
    # key names bkse's nesting produces (Sequential indices count the identity norms and shared LeakyReLUs)
    assert layout["adapter.model.down.0.weight"] == (64, 64, 4, 4)
    assert layout["adapter.model.up.1.bias"] == (64,)
    assert layout["adapter.model.submodule.submodule.submodule.submodule.down.1.weight"] == (512, 512, 4, 4)
    assert layout["adapter.model.submodule.submodule.submodule.submodule.up.1.weight"] == (1024, 512, 4, 4)
    assert layout["feature_extractor.15.conv2.bias"] == (64,)
    assert layout["recon_trunk.23.weight"] == (256, 64, 3, 3)
    assert layout["recon_trunk.28.weight"] == (3, 64, 3, 3)
    assert layout["kernel_extractor.model.1.weight"] == (64, 128, 7, 7)
    assert layout["kernel_extractor.model.16.weight"] == (1024, 1024, 3, 3)
    assert layout["kernel_extractor.model.22.conv_block.5.weight"] == (1024, 1024, 3, 3)
    assert "kernel_extractor.model.1.bias" not in layout and "adapter.model.down.0.bias" not in layout

    # the default generator runs at the smallest size it takes, with a 1×1 code
    with torch.no_grad():
        out = generator(torch.rand(1, 3, SIDE, SIDE), kernel_latent(42, SIDE, SIDE))
    assert out.shape == (1, 3, SIDE, SIDE) and torch.isfinite(out).all()


def test_sizes_and_kernel_code():
    assert kernel_latent(42, 256, 256).shape == (1, 512, 2, 2)  # the published setting
    assert torch.equal(kernel_latent(42, 256, 256),
                       torch.randn(1, 512, 2, 2, generator=torch.Generator().manual_seed(42)) * 1.2)  # DEFT's draw
    assert kernel_latent(0, 128, 384, 64).shape == (1, 64, 1, 3)
    with pytest.raises(ValueError, match="multiples of 128"):
        kernel_latent(42, 96, 128)
    with pytest.raises(ValueError, match="kernel_dim must be 8"):
        KernelWizardOptions(nf=8, kernel_dim=512)


def hashed_state(layout):
    """Deterministic pseudo-random weights without torch's RNG: the fract(sin(i·12.9898 + c)·43758.5453) hash,
    centred, with He scaling (fan-in in·k² for convolutions, 4·in for the stride-2 4×4 transposed ones), biases
    ×0.1 and the last convolution ×1/4, so that k and every skip visibly shape the output."""
    state = {}
    for index, (key, shape) in enumerate(layout.items()):
        count = math.prod(shape)
        hashed = torch.sin(torch.arange(count, dtype=torch.float64) * 12.9898 + 78.233 * index) * 43758.5453
        centred = (hashed - torch.floor(hashed)).reshape(shape) - 0.5
        if len(shape) == 4:
            fan_in = 4 * shape[0] if ".up." in key else count // shape[0]
            scale = math.sqrt(12 * 2 / fan_in) * (0.25 if key == list(layout)[-2] else 1.0)
        else:
            scale = 0.1
        state[key] = scale * centred
    return state


def test_generator_matches_values_from_bkse_code():
    # Expected values: bkse's own KernelWizard code (models/kernel_encoding/kernel_wizard.py and the transposed-
    # convolution models/backbones/unet_parts.py, as DEFT vendors them; options as TINY, norm "none") loaded with
    # the same hashed weights and run in float64 outside this repository. They pin the forward pass, including the
    # U-Net skips and where k enters, which a save/load round trip through this module alone cannot.
    layout = expected_layout(TINY)
    model = KernelWizard(TINY).double().eval()
    model.load_state_dict(hashed_state(layout), strict=True)
    grid = torch.arange(SIDE, dtype=torch.float64)
    u = torch.stack([0.5 + 0.4 * torch.sin(grid[:, None] * (0.11 + 0.05 * c) + grid[None, :] * (0.07 * c + 0.03))
                     for c in range(3)])[None]
    with torch.no_grad():
        out = model(u, kernel_latent(42, SIDE, SIDE, TINY.kernel_dim).double())
    pixels = [(0, 0, 0, 0), (0, 1, 17, 90), (0, 2, 64, 64), (0, 0, 127, 3), (0, 1, 100, 127)]
    expected = [0.6432235741840511, 0.40358673543278956, 0.47289203836028776, 1.019483447405273, 0.37087875026773925]
    assert [out[p].item() for p in pixels] == pytest.approx(expected, abs=1e-9)
    assert out.mean().item() == pytest.approx(0.671850011656531, abs=1e-9)


#################################################################################
#                                    Loading                                    #
#################################################################################


def test_checkpoint_round_trip_gives_identical_outputs(tiny, tmp_path):
    path, model = tiny
    op = BkseBlur(path, SIDE, options=TINY)
    loaded = op.model.state_dict()
    saved = model.state_dict()
    assert set(saved) - set(loaded) == {k for k in saved if k.startswith("kernel_extractor.")}  # F is dropped
    assert all(torch.equal(loaded[k], saved[k]) for k in loaded)
    assert not any(p.requires_grad for p in op.model.parameters()) and not op.model.training

    x = images(2)
    kernel = kernel_latent(42, SIDE, SIDE, TINY.kernel_dim).expand(2, -1, -1, -1)
    with torch.no_grad():
        expected = (2 * model((x + 1) / 2, kernel) - 1).clamp(-1, 1)
    assert torch.equal(op(x), expected)

    # a DataParallel save ("module." prefix) loads too, and the extractor can be kept
    prefixed = save_variant(tmp_path, {f"module.{k}": v for k, v in saved.items()})
    full = load_kernel_wizard(prefixed, TINY, with_extractor=True)
    assert set(full.state_dict()) == set(saved)


def test_bad_checkpoints_name_the_offending_key(tiny, tmp_path):
    path, model = tiny
    state = model.state_dict()
    missing = {k: v for k, v in state.items() if k != "adapter.model.up.1.bias"}
    with pytest.raises(ConfigError, match=r"task\.bkse_weights.*missing keys: adapter\.model\.up\.1\.bias"):
        BkseBlur(save_variant(tmp_path, missing), SIDE, options=TINY)
    extra = {**state, "adapter.model.extra.weight": torch.zeros(1)}
    with pytest.raises(ConfigError, match=r"unexpected keys: adapter\.model\.extra\.weight"):
        load_kernel_wizard(save_variant(tmp_path, extra), TINY)
    reshaped = {**state, "recon_trunk.0.conv1.weight": torch.zeros(8, 8, 1, 1)}
    with pytest.raises(ConfigError, match=r"wrong shapes: recon_trunk\.0\.conv1\.weight \(8, 8, 1, 1\) "
                                          r"\(expected \(8, 8, 3, 3\)\)"):
        load_kernel_wizard(save_variant(tmp_path, reshaped), TINY)
    # the tiny file is not a default-options checkpoint: the default layout reports it rather than half-loading it
    with pytest.raises(ConfigError, match="wrong shapes: adapter.model.down.0.weight"):
        load_kernel_wizard(path)
    with pytest.raises(ConfigError, match="raw state dict"):
        load_kernel_wizard(save_variant(tmp_path, [torch.zeros(1)]), TINY)
    with pytest.raises(ConfigError, match="weights-only"):  # pickled code is refused, never run
        load_kernel_wizard(save_variant(tmp_path, {"k": torch.zeros(1), "obj": Pickled()}), TINY)


class Pickled:
    """An arbitrary class: a weights-only load must refuse to unpickle it."""


#################################################################################
#                                    Operator                                   #
#################################################################################


def test_operator_shape_range_seed_and_batch_independence(tiny):
    path, _ = tiny
    op = BkseBlur(path, SIDE, seed=42, options=TINY)
    x = images(3)
    y = op(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= -1 and y.max() <= 1
    assert (y - x).abs().mean() > 1e-2  # it does change the image
    assert op.comparable is True and op.name == "nonlinear_blur" and "GOPRO_wVAE.pth" in op.label
    assert torch.equal(y, BkseBlur(path, SIDE, seed=42, options=TINY)(x))
    assert (y - BkseBlur(path, SIDE, seed=7, options=TINY)(x)).abs().mean() > 5e-3  # k matters
    assert torch.allclose(op(x[1:2]), y[1:2], atol=1e-6)  # one k for every image: the batch does not matter
    with pytest.raises(ValueError, match="128×128"):
        op(images(1)[..., :64])


def test_build_operator_returns_bkse_blur(tiny, monkeypatch):
    path, _ = tiny
    monkeypatch.setattr(deft.operators.bkse, "DEFAULT_OPTIONS", TINY)  # the tiny file stands in for GOPRO_wVAE.pth
    op = build_operator(task_config("nonlinear_deblur", bkse_weights=str(path)), torch.tensor([0, 1]), SIDE, 3)
    assert isinstance(op, BkseBlur) and op.name == "nonlinear_blur" and op.comparable
    assert op.sigma_y == 0 and op.seed == 42
    assert torch.equal(op.kernel, kernel_latent(42, SIDE, SIDE, TINY.kernel_dim))
    other = build_operator(task_config("nonlinear_deblur", bkse_weights=str(path), nl_seed=3), torch.tensor([0]),
                           SIDE, 3)
    assert not torch.equal(other.kernel, op.kernel)
    # without weights the stand-in is still what the task builds
    assert not isinstance(build_operator(task_config("nonlinear_deblur"), torch.tensor([0]), 16, 3), BkseBlur)


def test_missing_weights_and_unsupported_images_are_config_errors(tiny, tmp_path):
    path, _ = tiny
    task = task_config("nonlinear_deblur", bkse_weights=str(tmp_path / "absent" / "weights.pth"))
    with pytest.raises(ConfigError, match=r"task\.bkse_weights.*weights\.pth.*no such file.*GOPRO_wVAE\.pth"):
        build_operator(task, torch.tensor([0]), 256, 3)
    with pytest.raises(ConfigError, match=r"task\.bkse_weights.*multiple of 128.*64 px"):
        BkseBlur(path, 64, options=TINY)
    with pytest.raises(ConfigError, match=r"task\.bkse_weights.*3-channel.*have 1"):
        BkseBlur(path, SIDE, channels=1, options=TINY)


def test_likelihood_grad_matches_finite_differences(tiny):
    path, _ = tiny
    op = BkseBlur(path, SIDE, sigma_y=0.05, options=TINY).to(torch.float64)
    x = images(1, seed=1, dtype=torch.float64, low=-0.8, high=0.8)
    y = op(images(1, seed=2, dtype=torch.float64, low=-0.8, high=0.8))
    grad = op.likelihood_grad(x, y)
    assert grad.shape == x.shape and grad.dtype == torch.float64

    def log_likelihood(z):
        """log p(y | z) up to a constant: −‖y − A(z)‖² / (2·noise_std²)."""
        return float(-op.residual_norm_sq(z, y).sum() / (2 * op.noise_std ** 2))

    step = 1e-5
    for index in [(0, 0, 5, 7), (0, 2, 70, 101)]:
        bump = torch.zeros_like(x)
        bump[index] = step
        numeric = (log_likelihood(x + bump) - log_likelihood(x - bump)) / (2 * step)
        assert abs(grad[index].item()) > 1e-3
        assert grad[index].item() == pytest.approx(numeric, rel=1e-5, abs=1e-6)
