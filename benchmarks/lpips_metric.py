"""LPIPS (AlexNet, v0.1) through the `lpips` package, offline: the trunk comes from a local file, or LPIPS is skipped.

The `lpips` wheel ships only the linear heads; its AlexNet trunk normally downloads from download.pytorch.org, which
these machines cannot reach (docs/results.md). We therefore build `lpips.LPIPS(pnet_rand=True)`, which downloads
nothing, and load a torchvision AlexNet state dict into its trunk (route B), from `--lpips-weights PATH` or from
`$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth`. Without either file LPIPS is skipped with a reason; a random
trunk is never reported under the LPIPS name.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import lpips
import numpy as np
import torch

from benchmarks.image_metrics import ImageRangeError, MetricSummary, paired_images
from benchmarks.lpips_args import ALEXNET_FILE
from tunebench.config import ConfigError
from tunebench.io import torch_load

LPIPS_MIN_SIDE = 31  # smaller images vanish in AlexNet's second max-pool
# Input convention, stated once: callers pass images in [0, 1] (or uint8), as for PSNR/SSIM; LPIPS itself expects
# [-1, 1] (unlike DEFT's torchmetrics call in `eval/psnr.py`, which fed [0, 1] with normalize=False).
LPIPS_INPUT_RANGE = (-1.0, 1.0)


#################################################################################
#                            Offline Trunk Weights                              #
#################################################################################


def default_weights_path() -> Path:
    """Where torchvision's cache keeps the AlexNet file: `$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def find_weights(weights_path: str | Path | None = None) -> tuple[Path | None, str | None]:
    """Return (trunk file, None), or (None, skip reason) when no path is given and the cache has no file.

    A path given explicitly must exist: a typo is an error, not a silent skip.
    """
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise ConfigError(f"--lpips-weights {path} does not exist; pass a torchvision AlexNet state dict "
                              f"({ALEXNET_FILE})")
        return path, None
    path = default_weights_path()
    if path.is_file():
        return path, None
    # Named as the cache's variable, not this machine's path: the note goes into committed results.
    return None, (f"LPIPS skipped: no AlexNet weights at $TORCH_HOME/hub/checkpoints/{ALEXNET_FILE} (torch's cache); "
                  f"pass --lpips-weights PATH")


def trunk_state_dict(torchvision_state: dict, lpips_trunk: torch.nn.Module) -> dict:
    """Map torchvision `features.{i}.*` keys onto lpips' `slice{k}.{i}.*` keys (lpips keeps torchvision's indices)."""
    features = {key.removeprefix("features."): value for key, value in torchvision_state.items()
                if key.startswith("features.")}
    mapped, missing = {}, []
    for key in lpips_trunk.state_dict():
        _, index, param = key.split(".")
        source = f"{index}.{param}"
        if source in features:
            mapped[key] = features[source]
        else:
            missing.append(f"features.{source}")
    if missing:
        raise ConfigError(f"the LPIPS weights file is not a torchvision AlexNet state dict: missing {missing}")
    return mapped


def load_lpips(weights_path: str | Path | None = None) -> tuple[lpips.LPIPS | None, str | None]:
    """Build LPIPS(alex, v0.1) with a local trunk; return (model, None), or (None, reason) when LPIPS is skipped."""
    path, reason = find_weights(weights_path)
    if path is None:
        return None, reason
    with warnings.catch_warnings():  # lpips 0.1.4 still calls torchvision's deprecated `pretrained=` argument
        warnings.filterwarnings("ignore", message=".*(pretrained|weight enum).*", category=UserWarning)
        model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)  # random trunk: no download
    model.net.load_state_dict(trunk_state_dict(torch_load(path), model.net))
    return model.eval(), None


#################################################################################
#                                  Distances                                    #
#################################################################################


def to_lpips_input(images: np.ndarray) -> torch.Tensor:
    """Map N×C×H×W images in [0, 1] to the [-1, 1] float32 RGB tensor LPIPS expects (grey is repeated to RGB)."""
    tensor = torch.from_numpy(images).float() * (LPIPS_INPUT_RANGE[1] - LPIPS_INPUT_RANGE[0]) + LPIPS_INPUT_RANGE[0]
    return tensor.expand(-1, 3, -1, -1) if tensor.shape[1] == 1 else tensor


@torch.no_grad()
def lpips_per_image(model: lpips.LPIPS, pred, target, batch_size: int = 32) -> np.ndarray:
    """LPIPS distance of each pred/target pair (images as for PSNR/SSIM: uint8, or float in [0, 1])."""
    pred, target = paired_images(pred, target)
    if pred.shape[1] not in (1, 3) or min(pred.shape[2:]) < LPIPS_MIN_SIDE:
        raise ImageRangeError(f"LPIPS needs 1- or 3-channel images of at least {LPIPS_MIN_SIDE}×{LPIPS_MIN_SIDE} "
                              f"pixels, got C×H×W {pred.shape[1:]}")
    distances = [model(to_lpips_input(pred[start:start + batch_size]), to_lpips_input(target[start:start + batch_size]))
                 for start in range(0, len(pred), batch_size)]
    return torch.cat(distances).flatten().double().numpy()


def lpips_distance(pred, target, weights_path: str | Path | None = None) -> tuple[MetricSummary | None, str | None]:
    """Mean LPIPS over image pairs with the per-image values, or (None, reason) when no trunk weights exist."""
    model, reason = load_lpips(weights_path)
    if model is None:
        return None, reason
    per_image = lpips_per_image(model, pred, target)
    return MetricSummary(float(per_image.mean()), per_image), None
