"""The DEFT suite's inverse problems as operators: the registry and builder of the settings in
`deft.operators.task_settings`.

`build_operator` turns a task into an `Operator` for one batch of images (image k's mask comes from (seed, k) only).
"""

from __future__ import annotations

import functools

import torch

from deft.operators.base import Operator
from deft.operators.linear import Inpainting, deblur_gauss, deblur_gauss_dps, deblur_motion, sr_avgpool, sr_bicubic
from deft.operators.masks import FREEFORM_LABEL, mask_batch
from deft.operators.nonlinear import HDR, NonlinearBlurStandin, PhaseRetrieval
from deft.operators.task_settings import TaskConfig, check_task


def _inpainting(kind: str):
    """Builder of inpainting with `kind` masks for the batch's image ids."""

    def build(task: TaskConfig, image_ids: torch.Tensor, resolution: int, channels: int) -> Inpainting:
        """Masks for `image_ids` from task.seed; the free-form stand-in is labelled non-comparable."""
        low, high = getattr(task, f"{kind}_low"), getattr(task, f"{kind}_high")
        masks = mask_batch(kind, image_ids, resolution, task.seed, low, high)
        standin = kind == "freeform"
        return Inpainting(masks, task.sigma_y, label=FREEFORM_LABEL if standin else f"{kind} masks (DPS code)",
                          comparable=not standin, hole_noise=task.noise == "official")

    return build


@functools.lru_cache(maxsize=2)
def _bkse_blur(weights: str, resolution: int, channels: int, seed: int, sigma_y: float) -> Operator:
    """One loaded KernelWizard per setting: operators are built every training step, the checkpoint is ~460 MB."""
    from deft.operators.bkse import BkseBlur  # imported here: only tasks that name bkse weights need the network code

    return BkseBlur(weights, resolution, channels, seed, sigma_y)


def _nonlinear_blur(task: TaskConfig, image_ids: torch.Tensor, resolution: int, channels: int) -> Operator:
    """bkse's KernelWizard (deft.operators.bkse.BkseBlur, comparable to published numbers) when task.bkse_weights names
    the GOPRO_wVAE.pth file, its kernel code drawn from task.nl_seed; otherwise the seeded stand-in (not comparable).

    BkseBlur raises ConfigError naming task.bkse_weights when the file is missing or is not a KernelWizard state
    dict, or when the images are not 3-channel with a side that is a multiple of 128.
    """
    if task.bkse_weights is not None:
        return _bkse_blur(task.bkse_weights, resolution, channels, task.nl_seed, task.sigma_y)
    return NonlinearBlurStandin(resolution, channels, task.nl_seed, task.nl_kernels, task.sigma_y)


# registry: operator name → builder(task, image_ids, resolution, channels); the keys are task_settings.OPERATOR_NAMES
OPERATORS = {
    "inpaint_box": _inpainting("box"),
    "inpaint_random": _inpainting("random"),
    "inpaint_freeform": _inpainting("freeform"),
    "sr_avgpool": lambda task, ids, res, ch: sr_avgpool(res, task.factor, task.sigma_y),
    "sr_bicubic": lambda task, ids, res, ch: sr_bicubic(res, task.factor, task.sigma_y, task.svd_zero),
    "deblur_gauss": lambda task, ids, res, ch: deblur_gauss(
        res, task.blur_sigma, task.blur_drop_last_tap, task.sigma_y, task.svd_zero,
        ch if task.deblur_singulars == "official" else None),
    "deblur_gauss_dps": lambda task, ids, res, ch: deblur_gauss_dps(res, task.kernel_size, task.kernel_sigma,
                                                                    task.sigma_y),
    "deblur_motion": lambda task, ids, res, ch: deblur_motion(res, task.seed, task.kernel_size,
                                                              task.motion_intensity, task.sigma_y),
    "hdr": lambda task, ids, res, ch: HDR(task.sigma_y),
    "phase_retrieval": lambda task, ids, res, ch: PhaseRetrieval(res, task.oversample, task.sigma_y),
    "nonlinear_blur": _nonlinear_blur,
}


def build_operator(task: TaskConfig, image_ids: torch.Tensor, resolution: int, channels: int) -> Operator:
    """The operator of `task` for a batch of C×resolution×resolution images with ids `image_ids` (LongTensor (B,)).

    Only inpainting uses the ids (image k's mask from (task.seed, k)); the others ignore them. The operator's
    constant tensors (masks, kernels, SVD factors) are placed on `image_ids.device`; `op.to(device)` moves them.
    """
    check_task(task)
    op = OPERATORS[task.operator](task, image_ids, resolution, channels)
    op.name = task.operator
    return op.to(image_ids.device)
