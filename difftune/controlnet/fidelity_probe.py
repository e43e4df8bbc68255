"""The held-out control-fidelity evaluation of a ControlNet during training: samples from the conditions of fixed test
images, scored against them at step 0 and every checkpoint (`python -m difftune.controlnet.train`). The evaluation set
(images, conditions, labels, seeds) and each step's samples are kept beside the scores, for the report's pictures
(`difftune.controlnet.pictures`)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from difftune.controlnet.conditions import chance_fidelity, convergence_threshold, fidelity, make_conditions
from difftune.controlnet.config import ControlTrainConfig
from difftune.controlnet.model import ControlledDiT
from tunebench.datasets import load_dataset
from tunebench.io import read_json, save_npz, to_uint8, write_json
from tunebench.sampling import sample_batches

log = logging.getLogger("difftune.controlnet.train")  # the training CLI's log, which these scores belong to
EVAL_SEED = 20_240_613  # orders the test split for the held-out evaluation images
EVAL_SET = "eval_set.npz"  # in the run's fidelity/ folder, beside step-NNNNNNN.json (scores) and .npz (samples)


class FidelityProbe:
    """Samples the held-out evaluation images from their conditions and scores how well the samples follow them."""

    def __init__(self, run: ControlTrainConfig, out_dir: Path, vae=None):
        """Fix the evaluation images (a seeded draw from the test split), their conditions, labels and seeds."""
        test = load_dataset(run.data.dataset, "test", run.data.resolution, run.data.channels, run.data.root)
        count = min(run.control.eval_images, len(test))
        order = torch.randperm(len(test), generator=torch.Generator().manual_seed(EVAL_SEED))[:count]
        items = [test[int(i)] for i in order]
        self.images = torch.stack([image for image, _ in items]).permute(0, 2, 3, 1).numpy()
        self.labels = [int(label) for _, label in items]
        self.controls = torch.from_numpy(make_conditions(run.control.condition, self.images))
        self.run, self.vae, self.folder = run, vae, out_dir / "fidelity"
        self.chance = chance_fidelity(run.control.condition, self.images)
        given = run.control.threshold
        self.threshold = convergence_threshold(run.control.condition, self.chance) if given is None else given
        self.sample = type(run.sample)(**{**vars(run.sample), "steps": run.control.eval_sample_steps,
                                          "guidance_scale": 1.0})

    def path(self, step: int) -> Path:
        """The score file of one evaluation step (written last: it marks the step done)."""
        return self.folder / f"step-{step:07d}.json"

    def write_eval_set(self) -> None:
        """The evaluation images (uint8 N×H×W×C), their conditions (the model's input), labels and seeds."""
        save_npz(self.folder / EVAL_SET, images=self.images, controls=self.controls.numpy(),
                 labels=np.array(self.labels), seeds=np.arange(len(self.labels)))

    def __call__(self, step: int, model: ControlledDiT) -> None:
        """Score the model at `step` (skipped when a resumed run already has that step's file)."""
        if self.path(step).is_file():
            return
        device = next(model.parameters()).device
        seeds = list(range(len(self.labels)))
        chunks = [images for _, images in sample_batches(
            model, self.run.diffusion, self.sample, seeds, self.labels, vae=self.vae,
            vae_scaling=self.run.model.vae_scaling, device=device, progress=False, controls=self.controls)]
        samples = to_uint8(torch.cat(chunks).cpu())
        scores = fidelity(self.run.control.condition, self.images, samples)
        if not (self.folder / EVAL_SET).is_file():
            self.write_eval_set()
        save_npz(self.path(step).with_suffix(".npz"), samples=samples)
        write_json(self.path(step), {"step": step, "condition": self.run.control.condition,
                                     "mean": float(scores.mean()), "std": float(scores.std(ddof=1)),
                                     "n": len(scores), "chance": self.chance, "threshold": self.threshold})
        log.info("step %d: %s fidelity %.4f", step, self.run.control.condition, scores.mean())

    def curve(self) -> list[dict]:
        """Every evaluated step's scores, by step."""
        return sorted((read_json(path) for path in self.folder.glob("step-*.json")), key=lambda row: row["step"])
