"""The amortised baseline's model: a DiT conditioned on A†y (and the inpainting mask), its loss and its DDIM sampler.

`python -m deft.amortised` trains it; `python -m deft.reconstruct --method amortised` samples with it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DiTTransformer2DModel
from tqdm.auto import tqdm

from deft.conditioning import stack_kind
from deft.config import DeftConfig
from deft.objective import TRAIN_IDS_START, random_generators
from deft.operators.base import Operator
from deft.operators.tasks import build_operator
from tunebench.config import ConfigError
from tunebench.models import apply_dit_fixes, initialize_dit_weights, load_pretrained
from tunebench.noise import SampleNoise
from tunebench.sampling import chunked
from tunebench.schedule import Schedule, ddim_update


def condition_channels(run: DeftConfig, channels: int) -> int:
    """Extra input channels: A†y, plus the mask for inpainting."""
    return channels + (1 if stack_kind(run.task.operator) == "inpaint" else 0)


def condition(run: DeftConfig, op: Operator, y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The measurement in image space: [A†y] or [A†y, mask]."""
    try:
        parts = [op.pinv(y)]
    except NotImplementedError:
        raise ConfigError(f"task '{run.task.name}' (operator {run.task.operator}) has no pseudo-inverse, so the "
                          "amortised model has no image-space input for it") from None
    if stack_kind(run.task.operator) == "inpaint":
        parts.append(op.singulars()[:, :1].expand(like.shape[0], 1, *like.shape[2:]).to(like.dtype))
    return torch.cat(parts, dim=1)


def build_conditional(run: DeftConfig, channels: int) -> DiTTransformer2DModel:
    """The DiT core of the backbone's size taking [x_t, condition] and predicting ε (fixed variance, one label)."""
    m = run.model
    model = DiTTransformer2DModel(
        num_attention_heads=m.num_heads, attention_head_dim=m.head_dim,
        in_channels=channels + condition_channels(run, channels), out_channels=channels, num_layers=m.num_layers,
        sample_size=m.sample_size, patch_size=m.patch_size, num_embeds_ada_norm=1, norm_eps=m.norm_eps)
    apply_dit_fixes(model, check_tied=False)
    initialize_dit_weights(model)
    return model


def conditional_eps(model, xt: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """ε of the conditional model (its one label is 0)."""
    labels = torch.zeros(xt.shape[0], dtype=torch.long, device=xt.device)
    return model(torch.cat([xt, cond], dim=1), t, labels).sample


def make_loss(run: DeftConfig, schedule: Schedule, channels: int):
    """Conditional ε-MSE with a fresh measurement (and mask) per step, uniform t."""

    def loss_fn(model, batch, generator):
        """Mean over pixels of (ε − ε_ψ(x_t, t, A†y))² per image."""
        x0 = batch["images"].to(next(model.parameters()).device)
        ids = TRAIN_IDS_START + torch.randint(1 << 40, (x0.shape[0],), generator=generator)
        op = build_operator(run.task, ids.to(x0.device), x0.shape[-1], channels)
        cond = condition(run, op, op.measure(x0, random_generators(x0.shape[0], generator)), x0)
        t = torch.randint(schedule.num_train_timesteps, (x0.shape[0],), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        eps = conditional_eps(model, schedule.q_sample(x0, t, noise), t, cond)
        return {"loss": (noise - eps).pow(2).flatten(1).mean(1)}

    return loss_fn


@torch.no_grad()
def amortised_sample(model, schedule: Schedule, run: DeftConfig, op: Operator, y: torch.Tensor,
                     noise: SampleNoise, progress: bool = False) -> tuple[torch.Tensor, dict]:
    """DDIM samples from the conditional model (same steps and η as DEFT) and the cost statistics."""
    model.eval()
    channels, side = model.config.out_channels, model.config.sample_size
    x = noise.randn((channels, side, side))
    cond = condition(run, op, y, x)
    steps = schedule.steps(run.sample.steps)
    for step in tqdm(steps, desc="amortised", unit="step", disable=not progress):
        t = torch.full((x.shape[0],), step.t, dtype=torch.long, device=x.device)
        eps = chunked(lambda *rows: conditional_eps(model, *rows), run.sample.compute_chunk, x, t, cond)
        c1, _ = step.coefficients(run.sample.eta)
        x = ddim_update(step, schedule.predict_x0(x, t, eps), eps, run.sample.eta,
                        noise.randn((channels, side, side)) if c1 > 0 else None)
    stats = {"nfe_per_image": len(steps), "backbone_vjps_per_image": 0, "steps": len(steps), "eta": run.sample.eta,
             "sampler": "ddim"}
    return x.clamp(-1, 1), stats


def load_conditional(folder: str | Path) -> DiTTransformer2DModel:
    """A trained amortised model folder (OUT/model of this CLI)."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder} is not an amortised model folder (no config.json); pass OUT/model of "
                          "`python -m deft.amortised`")
    return apply_dit_fixes(load_pretrained(DiTTransformer2DModel, folder)).eval().requires_grad_(False)
