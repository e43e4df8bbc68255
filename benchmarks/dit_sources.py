"""The DiT weights a quality curve measures: the EMA weights of every checkpoint a `tunebench.pretrain` run kept, or
one exported model folder. Both give the run config they were trained with and their `quality_curve.Checkpoint`s
(step, folder, loader)."""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

from benchmarks.quality_curve import Checkpoint
from tunebench.checkpoint import list_checkpoints, load_weights
from tunebench.config import ConfigError, RunConfig, from_dict
from tunebench.io import read_json
from tunebench.models import SIDECAR, ModelLoadError, load_dit, read_sidecar
from tunebench.pretraining import make_model

CORE_SECTIONS = {field.name for field in dataclasses.fields(RunConfig)}


def core_config(saved: dict) -> RunConfig:
    """The RunConfig sections of a saved run config; a method's own sections (fine-tuning, DEFT) are dropped, since
    measuring a DiT needs only its model, diffusion, data and sampling settings."""
    return from_dict({key: value for key, value in saved.items() if key in CORE_SECTIONS})


class RunSource:
    """The EMA weights of every complete checkpoint in a run folder, oldest first; one model is reloaded in place."""

    def __init__(self, run_dir: str | Path):
        """List the checkpoints and read the newest one's run config; a folder without any is an error."""
        self.run_dir = Path(run_dir)
        found = list_checkpoints(self.run_dir)
        if not found:
            raise ConfigError(f"{self.run_dir / 'checkpoints'} holds no complete checkpoint-NNNNNNN folder (with "
                              f"state.json); train with `python -m tunebench.pretrain --out {self.run_dir}`, or pass "
                              "--model for an exported model folder")
        states = [read_json(folder / "state.json") for folder in found]
        self.run = core_config(states[-1]["run_config"])
        self.train = states[-1]["run_config"]["train"]
        self.checkpoints = [Checkpoint(state["step"], folder, partial(self.load, folder))
                            for folder, state in zip(found, states)]
        self._model = None

    def load(self, folder: Path):
        """The DiT with the EMA weights of checkpoint `folder` loaded (the same module each time: every checkpoint of
        a run has its architecture)."""
        if self._model is None:
            self._model = make_model(self.run)
        load_weights(folder, self._model, "ema")
        return self._model

    def lost_steps(self, measured: set[int]) -> list[int]:
        """Checkpoint steps up to the newest one that were neither measured nor kept: the run deleted them
        (train.checkpoints_keep) before they were measured, so the curve lacks them."""
        every, last = self.train["checkpoint_every"], self.checkpoints[-1].step
        expected = set(range(every, last + 1, every)) | {last}
        return sorted(expected - measured - {item.step for item in self.checkpoints})


class ModelSource:
    """One exported model folder (`tunebench.models.export_dit`), at the step its sidecar records."""

    def __init__(self, model_dir: str | Path):
        """Load the model and read its sidecar; a folder without the sidecar's run config and steps is an error."""
        self.model = load_dit(model_dir)
        sidecar = read_sidecar(model_dir)
        if "run_config" not in sidecar or "steps" not in sidecar:
            raise ModelLoadError(f"{Path(model_dir) / SIDECAR} does not record the run config and steps; pass a folder "
                                 "exported by this suite (e.g. RUN/model of `python -m tunebench.pretrain`)")
        self.run = core_config(sidecar["run_config"])
        self.checkpoints = [Checkpoint(sidecar["steps"], Path(model_dir), lambda: self.model)]

    def lost_steps(self, measured: set[int]) -> list[int]:
        """None: a model folder has one step."""
        return []
