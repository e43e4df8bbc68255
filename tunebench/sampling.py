"""Sampling loops: DDPM with learned variance (DiT respacing) and DDIM, classifier-free guidance, per-sample seeds.

Image i depends only on seed i: each sample owns a CPU `torch.Generator` (`SampleNoise`) for its initial noise and
every step's noise, and the model always runs on `compute_chunk` rows (the last chunk padded), so neither the batch
size nor the position of a sample in its batch changes a single bit of its output.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from tqdm.auto import tqdm

from tunebench.config import DiffusionConfig, SampleConfig
from tunebench.noise import SampleNoise
from tunebench.schedule import respaced_timesteps
from tunebench.speed import precision_scope

LABEL_SEED_OFFSET = 1 << 40  # label draws use their own generator so they never shift the noise stream


def make_scheduler(diffusion: DiffusionConfig, sample: SampleConfig, learn_sigma: bool):
    """A diffusers scheduler for the protocol. x̂0 is clipped to [-1, 1] only with `sample.clip_x0` (DiT's latents
    and DEFT never clip; ADM-style pixel-space models do)."""
    common = dict(num_train_timesteps=diffusion.num_train_timesteps, beta_start=diffusion.beta_start,
                  beta_end=diffusion.beta_end, beta_schedule="linear", clip_sample=sample.clip_x0,
                  prediction_type="epsilon")
    if sample.sampler == "ddpm":
        scheduler = DDPMScheduler(variance_type="learned_range" if learn_sigma else "fixed_small", **common)
        # Custom timesteps: DDPMScheduler would otherwise assume a constant stride between kept steps.
        scheduler.set_timesteps(timesteps=respaced_timesteps(diffusion.num_train_timesteps, sample.steps))
    elif sample.sampler == "ddim":
        scheduler = DDIMScheduler(set_alpha_to_one=True, timestep_spacing="leading", steps_offset=0, **common)
        scheduler.set_timesteps(sample.steps)
    else:
        raise ValueError(f"unknown sampler {sample.sampler!r}; choose 'ddpm' or 'ddim'")
    return scheduler


def chunked(fn, chunk: int, *tensors: torch.Tensor, fills: tuple = ()) -> torch.Tensor:
    """`fn(*rows)` on fixed-size row chunks of `tensors`, concatenated; the last chunk is padded (tensor i with
    `fills[i]`, default 0) and the padding's outputs dropped, so no row's result depends on the batch size."""
    fills = fills or (0,) * len(tensors)
    outputs = []
    for start in range(0, tensors[0].shape[0], chunk):
        parts = [tensor[start:start + chunk] for tensor in tensors]
        rows, pad = parts[0].shape[0], chunk - parts[0].shape[0]
        if pad:
            parts = [torch.cat([p, p.new_full((pad, *p.shape[1:]), fill)]) for p, fill in zip(parts, fills)]
        outputs.append(fn(*parts)[:rows])
    return torch.cat(outputs)


def chunked_forward(model, x, t, labels, chunk: int, null: int, controls: torch.Tensor | None = None) -> torch.Tensor:
    """Run `model` on fixed-size row chunks (the last padded with null-label zeros) and concatenate the outputs;
    `controls` (a ControlNet's per-row condition images) are chunked with the rows."""
    if controls is None:
        return chunked(lambda xs, ts, ys: model(xs, ts, ys).sample, chunk, x, t, labels, fills=(0, 0, null))
    return chunked(lambda xs, ts, ys, cs: model(xs, ts, ys, controls=cs).sample, chunk, x, t, labels, controls,
                   fills=(0, 0, null, 0))


def guided_output(model, x, t, labels, sample: SampleConfig, null: int,
                  controls: torch.Tensor | None = None) -> torch.Tensor:
    """Model output with classifier-free guidance on the first `guided_channels` ε channels (DiT's convention).

    The remaining ε channels and the variance channels come from the conditional branch, as in DiT's
    `forward_with_cfg`; with `guided_channels=None` every ε channel is guided.
    """
    tt = t.expand(x.shape[0])
    if sample.guidance_scale == 1.0 or bool((labels == null).all()):  # all-null rows: guidance changes nothing
        return chunked_forward(model, x, tt, labels, sample.compute_chunk, null, controls)
    both = chunked_forward(model, torch.cat([x, x]), torch.cat([tt, tt]),
                           torch.cat([labels, torch.full_like(labels, null)]), sample.compute_chunk, null,
                           None if controls is None else torch.cat([controls, controls]))
    cond, uncond = both.chunk(2)
    k = x.shape[1] if sample.guided_channels is None else min(sample.guided_channels, x.shape[1])
    guided = cond.clone()
    guided[:, :k] = uncond[:, :k] + sample.guidance_scale * (cond[:, :k] - uncond[:, :k])
    return guided


def labels_for_seeds(seeds: list[int], mode: str, num_classes: int, null: int) -> list[int]:
    """Class label of each seed: 'uniform' (drawn from the seed), 'cycle' (index mod classes), 'null', or 'a,b,c'."""
    if mode == "uniform":
        return [int(torch.randint(num_classes, (1,), generator=torch.Generator().manual_seed(LABEL_SEED_OFFSET + s)))
                for s in seeds]
    if mode == "cycle":
        return [i % num_classes for i in range(len(seeds))]
    if mode == "null":
        return [null] * len(seeds)
    try:
        chosen = [int(part) for part in mode.split(",")]
    except ValueError:
        raise ValueError(
            f"labels must be 'uniform', 'cycle', 'null' or a comma list of class ids, got {mode!r}") from None
    bad = [c for c in chosen if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"class ids {bad} are outside [0, {num_classes})")
    return [chosen[i % len(chosen)] for i in range(len(seeds))]


@dataclass(frozen=True)
class Handoff:
    """Finish the reverse chain with another model: at every step t < `below_t` (DiT indexing, t = 0 least noisy),
    `model` denoises, sample i with `labels[i]` (e.g. the pre-trained model with its null label)."""

    below_t: int
    model: torch.nn.Module
    labels: list[int]


@torch.no_grad()
def sample_batches(model, diffusion: DiffusionConfig, sample: SampleConfig, seeds: list[int], labels: list[int],
                   vae=None, vae_scaling: float = 0.18215, device: str | torch.device = "cpu",
                   progress: bool = True, handoff: Handoff | None = None,
                   controls: torch.Tensor | None = None) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Yield (seeds, images in [-1, 1]) batch by batch; every sample is a function of its own seed only.

    With `handoff`, steps below `handoff.below_t` use the hand-off model (same noise stream, so only the splice
    point changes between runs). `controls` (N×C×H×W, one per seed) are passed to a ControlNet-wrapped `model`
    (difftune.controlnet.model.ControlledDiT) as `controls=`.
    """
    if controls is not None and (len(controls) != len(seeds) or handoff is not None):
        raise ValueError(f"need one control image per seed ({len(controls)} for {len(seeds)}) and no hand-off")
    model.eval()
    if handoff is not None:
        handoff.model.eval()
        if handoff.model.config.in_channels != model.config.in_channels:
            raise ValueError("the hand-off model takes other inputs than the first model")
        if len(handoff.labels) != len(seeds):
            raise ValueError(f"{len(handoff.labels)} hand-off labels for {len(seeds)} seeds")
    cfg = model.config
    channels = cfg.in_channels
    learn_sigma = cfg.out_channels == 2 * channels
    scheduler = make_scheduler(diffusion, sample, learn_sigma)
    shape = (channels, cfg.sample_size, cfg.sample_size)
    bar = tqdm(total=len(seeds) * len(scheduler.timesteps), desc="sampling", unit="step", disable=not progress)
    for start in range(0, len(seeds), sample.batch_size):
        batch_seeds = seeds[start:start + sample.batch_size]
        noise = SampleNoise(batch_seeds, device)
        x = noise.randn(shape)
        y = torch.tensor(labels[start:start + sample.batch_size], device=device)
        y_handoff = torch.tensor(handoff.labels[start:start + sample.batch_size], device=device) if handoff else None
        c = None if controls is None else controls[start:start + sample.batch_size].to(device)
        for t in scheduler.timesteps:
            handing_off = handoff is not None and int(t) < handoff.below_t
            step_model, step_labels = (handoff.model, y_handoff) if handing_off else (model, y)
            with precision_scope(sample.precision, device):
                out = guided_output(step_model, x, t.to(device).reshape(1), step_labels, sample,
                                    step_model.config.num_embeds_ada_norm, c).float()
            if sample.sampler == "ddpm":
                x = scheduler.step(out, t, x, generator=noise.generators).prev_sample
            else:
                x = scheduler.step(out[:, :channels], t, x, eta=sample.eta, generator=noise.generators).prev_sample
            bar.update(len(batch_seeds))
        if vae is not None:
            with precision_scope(sample.precision, device):  # fixed-size chunks, as the model: batch-independent
                x = chunked(lambda z: vae.decode(z / vae_scaling).sample, sample.compute_chunk, x).float()
        yield batch_seeds, x.clamp(-1, 1)
    bar.close()
