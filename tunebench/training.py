"""The training loop shared by pre-training, Diff-Tuning and DEFT: AdamW, EMA, accelerate, exact resume.

All randomness of step s (batch order, flips, timesteps, noise, label dropout) comes from generators seeded by
(seed, s), so a run resumed from a checkpoint takes exactly the steps the uninterrupted run would have taken.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm

from tunebench.checkpoint import CheckpointError, check_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from tunebench.config import TRACKERS, ConfigError, RunConfig, flat_keys, to_dict
from tunebench.diffusion import GaussianDiffusion
from tunebench.io import atomic_path, read_json, write_json
from tunebench.speed import prepare_model, set_tf32

log = logging.getLogger(__name__)

LossFn = Callable[[torch.nn.Module, dict, torch.Generator], dict[str, torch.Tensor]]


class NonFiniteLossError(FloatingPointError):
    """The loss (or the weights) became NaN or Inf; training stops and the last good checkpoint is kept."""


#################################################################################
#                           Deterministic randomness                           #
#################################################################################


def step_generator(seed: int, step: int, stream: int = 0, rank: int = 0) -> torch.Generator:
    """A CPU generator that depends only on (seed, step, stream) and, under data parallelism, the process rank.

    Rank 0 draws what a single-process run draws, so one-GPU and CPU runs keep their seeds.
    """
    base = (seed * 1_000_003 + step) * 16 + stream
    return torch.Generator().manual_seed(base if rank == 0 else base * 4096 + rank)


def shard_batch(batch: dict, rank: int, world: int) -> dict:
    """Process `rank`'s contiguous share of every tensor in a step's batch (each part, e.g. the target and the
    retention rows, is split on its own); the global batch, and so the data seen per step, is the same for any
    number of processes."""
    if world == 1:
        return batch
    shards = {}
    for key, value in batch.items():
        if torch.is_tensor(value):
            if value.shape[0] % world:
                raise ConfigError(f"the batch's '{key}' part has {value.shape[0]} rows, not divisible by the "
                                  f"{world} processes; choose train.batch_size (and its retention share) so that "
                                  "each part splits evenly")
            size = value.shape[0] // world
            value = value[rank * size:(rank + 1) * size]
        shards[key] = value
    return shards


class ImageBatches:
    """Epoch-shuffled batches as a pure function of the step: step s always gets the same images and flips."""

    def __init__(self, dataset, batch_size: int, seed: int, hflip: bool):
        """`dataset` yields (uint8 C×H×W, label); in-memory datasets expose `.images` / `.labels` for speed, a latent
        cache `.posterior(indices, flips)` / `.labels`."""
        if len(dataset) == 0:
            raise ValueError("the training dataset is empty")
        self.dataset, self.batch_size, self.seed, self.hflip = dataset, batch_size, seed, hflip
        self._perm_epoch, self._perm = -1, None

    def _permutation(self, epoch: int) -> torch.Tensor:
        """The shuffled order of one epoch (cached for the current epoch)."""
        if epoch != self._perm_epoch:
            generator = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            self._perm, self._perm_epoch = torch.randperm(len(self.dataset), generator=generator), epoch
        return self._perm

    def indices(self, step: int) -> torch.Tensor:
        """Dataset indices of the batch at `step`."""
        n = len(self.dataset)
        positions = step * self.batch_size + torch.arange(self.batch_size)
        return torch.stack([self._permutation(int(p) // n)[int(p) % n] for p in positions])

    def flips(self, step: int) -> torch.Tensor:
        """Which images of the batch at `step` are flipped horizontally (bool, one per image; none without hflip)."""
        if not self.hflip:
            return torch.zeros(self.batch_size, dtype=torch.bool)
        return torch.rand(self.batch_size, generator=step_generator(self.seed, step, stream=1)) < 0.5

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """{images, labels, indices} of `step`: what `get` returns plus the dataset indices, which name the batch in
        errors."""
        images, labels = self.get(step)
        return {"images": images, "labels": labels, "indices": self.indices(step)}

    def get(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(images in [-1, 1] as float32 B×C×H×W, labels) for `step`.

        From a latent cache (`tunebench.latents.LatentCache`) the first item is instead the VAE posterior of the same
        images with the same flips, B×2×C×h×w (mean, std), which `to_model_space` samples as it samples an encoding.
        """
        idx, flip = self.indices(step), self.flips(step)
        if hasattr(self.dataset, "posterior"):
            return self.dataset.posterior(idx, flip), self.dataset.labels[idx].long()
        if hasattr(self.dataset, "images"):
            images, labels = self.dataset.images[idx], self.dataset.labels[idx]
        else:
            items = [self.dataset[int(i)] for i in idx]
            images = torch.stack([img for img, _ in items])
            labels = torch.tensor([lab for _, lab in items])
        images = normalise_pixels(images)
        if self.hflip:
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        return images, labels.long()


def normalise_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 images as float32 in [-1, 1], the range the models (and the VAE) take."""
    return images.float() / 127.5 - 1.0


#################################################################################
#                               Loss and EMA                                   #
#################################################################################


@torch.no_grad()
def posterior(images: torch.Tensor, vae) -> torch.Tensor:
    """The VAE posterior of pixels in [-1, 1] as B×2×C×h×w (mean, std); a batch that already is one (5-D, from a
    latent cache) is returned as it is."""
    if images.ndim == 5:
        return images
    dist = vae.encode(images).latent_dist
    return torch.stack([dist.mean, dist.std], 1)


def to_model_space(images: torch.Tensor, vae, scaling: float, generator: torch.Generator) -> torch.Tensor:
    """Pixels in [-1, 1] as the model sees them: unchanged, or a VAE latent sample × scaling (DiT's 0.18215).

    `images` may also be the posterior itself (`posterior`, a latent cache's batch). Either way the sample is drawn
    as diffusers' `DiagonalGaussianDistribution.sample` draws it (mean + std · randn_tensor of the mean's shape and
    dtype from `generator`), so a cached batch gives the latent an encoded one gives, up to the encoder's rounding.
    """
    if vae is None:
        return images
    with torch.no_grad():
        mean, std = posterior(images, vae).unbind(1)
        noise = randn_tensor(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return (mean + std * noise) * scaling


def denoising_losses(model, diffusion: GaussianDiffusion, x0, labels, t, generator,
                     **model_inputs) -> dict[str, torch.Tensor]:
    """Per-sample DiT loss at given timesteps: noise x0 to x_t, predict, ε-MSE (+ VLB when variance is learned).
    `model_inputs` go to the model as keywords (a ControlNet's `controls`)."""
    noise = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
    xt = diffusion.q_sample(x0, t, noise)
    out = model(xt, t, labels, **model_inputs).sample.float()
    return diffusion.training_losses(out, x0, xt, t, noise)


def ema_decay_at(step: int, decay: float, warmup: bool) -> float:
    """EMA decay for update number `step` (0-based): fixed, or warmed up as min(decay, (1+s)/(10+s)).

    Without warm-up a short run from random weights keeps decay^steps of the initialisation in the EMA
    (5% after 3000 steps at 0.999), which biases x̂0 at high noise; fine-tuning from good weights does not need it.
    """
    return min(decay, (1.0 + step) / (10.0 + step)) if warmup else decay


def lr_at(step: int, cfg) -> float:
    """Learning rate of update number `step`: constant, or decayed linearly to 0 at `cfg.steps` (DEFT's
    `set_annealed_lr`). A pure function of the step, so a resumed run continues the schedule exactly."""
    return cfg.lr * (1.0 - step / cfg.steps) if cfg.lr_schedule == "linear" else cfg.lr


def ema_update_decay(step: int, cfg) -> float | None:
    """Decay of the EMA update after optimiser update `step` (0-based), or None when this update is skipped.

    Before `ema_start` updates the EMA copies the weights (decay 0); afterwards it averages every `ema_every`.
    """
    if step < cfg.ema_start:
        return 0.0
    if (step - cfg.ema_start) % cfg.ema_every:
        return None
    return ema_decay_at(step, cfg.ema_decay, cfg.ema_warmup)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema ← decay·ema + (1 − decay)·model, parameter by parameter."""
    for ema_p, p in zip(ema.parameters(), model.parameters()):
        ema_p.mul_(decay).add_(p.detach().to(ema_p.dtype), alpha=1.0 - decay)


#################################################################################
#                                 The loop                                     #
#################################################################################


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.AdamW:
    """AdamW over the parameters that train (`requires_grad`), with the run's hyper-parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters: every parameter has requires_grad=False")
    return torch.optim.AdamW(params, lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2),
                             weight_decay=cfg.weight_decay)


def training_step(model, optimizer, accelerator: Accelerator, loss_fn: LossFn, batch: dict,
                  generator: torch.Generator, lr: float) -> tuple[dict[str, torch.Tensor], float]:
    """One optimiser update (forward under the run's autocast, backward, AdamW at `lr`) and the loss averaged over
    processes; nothing is updated when that loss is not finite, so the caller can stop with the weights intact."""
    with accelerator.autocast():
        losses = loss_fn(model, batch, generator)
    loss = losses["loss"].mean()
    value = float(accelerator.reduce(loss.detach(), "mean"))
    if not math.isfinite(value):
        return losses, value
    accelerator.backward(loss)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return losses, value


def _resume_point(out_dir: Path, resume: str) -> Path | None:
    """Which checkpoint to resume from: 'auto' = the latest if any, 'never', or an explicit folder."""
    if resume == "never":
        return None
    if resume == "auto":
        found = list_checkpoints(out_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / "state.json").is_file():
        raise CheckpointError(f"--resume {path}: no checkpoint there (expected a checkpoint-NNNNNNN folder "
                              f"with state.json); use --resume auto to take the latest one in {out_dir}")
    return path


def resume_or_start(out_dir: str | Path, resume: str, start_from: str | None) -> str:
    """The `--resume` a run takes: `start_from` (a checkpoint of a shorter run of the same config, e.g. the
    fine-tuning-length study continuing a 1000-step run to 4000) while the run's own folder has no checkpoint and
    resume is 'auto'; `resume` otherwise, so an interrupted continuation resumes from its own latest checkpoint."""
    if start_from is None or resume != "auto" or list_checkpoints(out_dir):
        return resume
    return start_from


def write_run_config(out_dir: str | Path, run: RunConfig, resume: str = "auto",
                     inputs: dict[str, str] | None = None) -> None:
    """Write OUT/config.json, but first refuse (as `train` would) a checkpoint there of another config or inputs.

    A CLI calls this instead of writing config.json itself, so that a refused resume leaves the folder's config.json
    describing the checkpoints and model that are still there.
    """
    checkpoint = _resume_point(Path(out_dir), resume)
    if checkpoint is not None:
        check_checkpoint(checkpoint, run, inputs)
    write_json(Path(out_dir) / "config.json", to_dict(run))


def _append_stats(path: Path | None, rows: list[dict], keep_until: int | None = None) -> None:
    """Append rows to stats.jsonl, first dropping rows past `keep_until` (so a resume never duplicates steps); no
    path: nothing to write (a process other than the main one)."""
    if path is None:
        return
    old = []
    if path.is_file():
        old = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if keep_until is not None:
            old = [r for r in old if r["step"] <= keep_until]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in old + rows))


def last_logged(out_dir: str | Path) -> dict:
    """The last row of a run's stats.jsonl (its final logged losses; {} before any row): what a model card reports
    as measured at export."""
    path = Path(out_dir) / "stats.jsonl"
    lines = [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    return json.loads(lines[-1]) if lines else {}


def wall_time_record(out_dir: str | Path, seconds: float) -> dict:
    """A training summary's times: `wall_seconds_this_invocation`, `seconds` (what this command spent in `train`),
    and `wall_seconds`, the training time over every invocation that resumed the run, from its last checkpoint
    (None when a checkpoint it resumed from predates that record)."""
    checkpoints = list_checkpoints(out_dir)
    total = read_json(checkpoints[-1] / "state.json").get("train_seconds") if checkpoints else None
    return {"wall_seconds_this_invocation": round(seconds, 1),
            "wall_seconds": None if total is None else round(total, 1)}


def _short(values: list) -> str:
    """A list for a message, cut after 8 items."""
    return str(values) if len(values) <= 8 else f"{str(values[:8])[:-1]}, ... ({len(values)} in all)]"


def describe_batch(batch, per_sample: torch.Tensor) -> str:
    """Which samples of a batch have a non-finite loss, with their dataset indices when the batch has `indices`."""
    values = per_sample.detach().float().reshape(-1).cpu()
    bad = torch.nonzero(~torch.isfinite(values)).flatten().tolist()
    if not bad:
        return f"the {values.numel()} per-sample losses are finite but their mean overflows"
    if len(bad) == values.numel() > 1:
        return (f"non-finite for all {len(bad)} samples of the batch (more likely the weights or the learning rate "
                "than one image)")
    text = f"non-finite for {len(bad)} of {values.numel()} samples, at batch positions {_short(bad)}"
    indices = batch.get("indices") if isinstance(batch, dict) else None
    if indices is not None:
        indices = torch.as_tensor(indices).reshape(-1).tolist()
        # Per-sample losses line up with the indices unless the loss adds rows of its own (e.g. replayed images).
        named = [indices[i] for i in bad] if len(indices) == values.numel() else indices
        text += f", dataset indices {_short(named)}"
    return text


def nonfinite_parameters(module: torch.nn.Module, prefix: str = "") -> list[str]:
    """Names (after `prefix`) of the parameters holding NaN or Inf."""
    return [prefix + name for name, p in module.named_parameters() if not torch.isfinite(p).all()]


def _stop(message: str, out_dir: Path) -> NonFiniteLossError:
    """Log and return the error that stops a run gone non-finite, naming the checkpoint it can resume from."""
    found = list_checkpoints(out_dir)
    kept = f"the last good checkpoint {found[-1]} is kept" if found else "no checkpoint had been written yet"
    error = NonFiniteLossError(f"{message}; training stopped and {kept}. Every step's batch and noise are a function "
                               "of (train.seed, step), so the step replays exactly once the cause is fixed")
    log.error("%s", error)
    return error


TRACKING_RUN = "tracking"  # the tracker's run name: TensorBoard writes OUT/tracking/


def tracker(cfg) -> str | None:
    """accelerate's `log_with` for `train.log_with` (None for "none"); a tracker that is not installed is a
    ConfigError naming the key and the fix. W&B runs offline unless WANDB_MODE is set."""
    import importlib.util
    import os

    if cfg.log_with == "none":
        return None
    if cfg.log_with not in TRACKERS:  # a config that skipped RunConfig's validation (e.g. the protein stages')
        raise ConfigError(f"config key 'train.log_with' is {cfg.log_with!r}; use one of {', '.join(TRACKERS)}")
    if importlib.util.find_spec(cfg.log_with) is None:  # each tracker's package has its name
        raise ConfigError(f"config key 'train.log_with' is {cfg.log_with!r} but the {cfg.log_with} package is not "
                          f"installed: pip install {cfg.log_with}, or set train.log_with=none")
    if cfg.log_with == "wandb":
        os.environ.setdefault("WANDB_MODE", "offline")  # nothing leaves the machine unless the user asks
    return cfg.log_with


def tracker_config(run: RunConfig) -> dict:
    """The resolved config as flat key → value pairs a tracker stores (None and lists as text)."""
    return {key: value if isinstance(value, (bool, int, float, str)) else str(value)
            for key, value in flat_keys(to_dict(run)).items()}


def train(run: RunConfig, model: torch.nn.Module, loss_fn: LossFn, batches: Callable[[int], dict], out_dir: str | Path,
          ema: torch.nn.Module | None = None, resume: str = "auto", progress: bool = True,
          inputs: dict[str, str] | None = None, on_checkpoint: Callable[[int, torch.nn.Module], None] | None = None):
    """Train `model` for `run.train.steps` steps and return (model, ema), both unwrapped, on CPU.

    `batches(step)` returns the step's batch; `loss_fn(model, batch, generator)` returns per-sample tensors with a
    'loss' key. Parameters with `requires_grad=False` stay frozen. Checkpoints every `checkpoint_every` steps and
    at the end; resumes from the latest checkpoint in `out_dir` unless `resume` says otherwise. `inputs`
    (name → `tunebench.io.input_fingerprint`) is stored in every checkpoint; resuming with other inputs is refused.
    `on_checkpoint(step, model)` runs after each checkpoint with the unwrapped (non-EMA) model, e.g. to score it.
    """
    cfg = run.train
    out_dir = Path(out_dir)
    set_tf32(cfg.tf32)
    # cpu=True on CPU-only machines lets torchrun start gloo data parallelism there too (accelerate would not).
    log_with = tracker(cfg)
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, cpu=not torch.cuda.is_available(),
                              log_with=log_with, project_dir=str(out_dir))
    if log_with:
        accelerator.init_trackers(TRACKING_RUN, config=tracker_config(run))
    ema = ema if ema is not None else copy.deepcopy(model)
    ema.requires_grad_(False).eval()
    optimizer = make_optimizer(model, cfg)
    start, seconds_before = 0, 0.0
    checkpoint = _resume_point(out_dir, resume)
    if checkpoint is not None:
        start, seconds_before = load_checkpoint(checkpoint, model, ema, optimizer, run, inputs)
        log.info("resumed from %s at step %d", checkpoint, start)
    model.train()
    prepare_model(model, cfg.gradient_checkpointing, cfg.compile)
    model, optimizer = accelerator.prepare(model, optimizer)
    rank, world = accelerator.process_index, accelerator.num_processes
    ema.to(accelerator.device)
    # Under data parallelism only the main process writes; its rows log its own share of the batch.
    stats_path = out_dir / "stats.jsonl" if accelerator.is_main_process else None
    _append_stats(stats_path, [], keep_until=start)
    pending, last_logged, tick = [], start, time.perf_counter()
    started = tick
    bar = tqdm(total=cfg.steps, initial=start, desc="training", unit="step",
               disable=not (progress and accelerator.is_local_main_process))
    for step in range(start, cfg.steps):
        batch = shard_batch(batches(step), rank, world)
        losses, loss = training_step(model, optimizer, accelerator, loss_fn, batch,
                                     step_generator(cfg.seed, step, stream=2, rank=rank), lr_at(step, cfg))
        if not math.isfinite(loss):
            broken = nonfinite_parameters(accelerator.unwrap_model(model))
            cause = (f"; the weights were already non-finite ({_short(broken)}): an earlier update diverged"
                     if broken else "")
            raise _stop(f"loss is {loss} at step {step} (0-based), {describe_batch(batch, losses['loss'])}"
                        f"{cause}", out_dir)
        decay = ema_update_decay(step, cfg)
        if decay is not None:
            update_ema(ema, accelerator.unwrap_model(model), decay)
        done = step + 1
        bar.update(1)
        if done % cfg.log_every == 0 or done == cfg.steps:
            now = time.perf_counter()
            row = {"step": done, **{k: float(v.detach().mean()) for k, v in losses.items()},
                   "steps_per_s": (done - last_logged) / max(now - tick, 1e-9)}
            pending.append(row)
            if log_with:
                accelerator.log({**{k: v for k, v in row.items() if k != "step"}, "lr": lr_at(step, cfg),
                                 "ema_decay": decay if decay is not None else float("nan")}, step=done)
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            last_logged, tick = done, now
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            # A finite loss does not guarantee finite weights (an overflowing gradient): never save such a checkpoint.
            broken = nonfinite_parameters(accelerator.unwrap_model(model)) + nonfinite_parameters(ema, "ema.")
            if broken:
                raise _stop(f"weights became non-finite ({_short(broken)}) by step {step} (0-based) although every "
                            "loss was finite (an overflowing gradient); the checkpoint of this step is not written",
                            out_dir)
            _append_stats(stats_path, pending)
            pending = []
            if accelerator.is_main_process:
                seconds = None if seconds_before is None else seconds_before + time.perf_counter() - started
                save_checkpoint(out_dir, done, accelerator.unwrap_model(model), ema, optimizer, run,
                                cfg.checkpoints_keep, inputs, train_seconds=seconds)
                if on_checkpoint is not None:
                    on_checkpoint(done, accelerator.unwrap_model(model))
                    model.train()  # the callback may have switched to eval mode to sample
            accelerator.wait_for_everyone()
    bar.close()
    accelerator.end_training()  # flushes and closes the trackers
    _append_stats(stats_path, pending)
    return accelerator.unwrap_model(model).cpu(), ema.cpu()
