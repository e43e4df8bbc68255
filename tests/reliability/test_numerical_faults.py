"""Numerical faults: NaN/Inf in a loss, an image, a weight or a gradient stop training at the step, name the batch,
and keep the last good checkpoint, from which the run resumes to exactly the uninterrupted result.

Each case injects one fault into the real `train` loop.
"""

import dataclasses
import json
import logging
import math
import re

import pytest
import safetensors.torch
import torch

from tunebench import pretrain
from tunebench.checkpoint import list_checkpoints
from tunebench.cli import run_cli
from tunebench.config import resolve
from tunebench.datasets import load_dataset
from tunebench.models import build_dit, null_class
from tunebench.pretraining import make_loss
from tunebench.training import ImageBatches, NonFiniteLossError, train

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS, EVERY, BATCH, POSITION = 8, 2, 8, 3  # POSITION: the poisoned sample of a batch
NAN, INF = float("nan"), float("inf")
CASES = [("loss", value, step) for value in (NAN, INF, -INF) for step in (3, 6)] + [
    ("image", NAN, 5), ("weight", INF, 5), ("gradient", NAN, 3), ("gradient", NAN, 4)]


@pytest.fixture(scope="module")
def digits():
    """The digits training split at 16 px (the smallest registered dataset)."""
    return load_dataset("digits", "train", resolution=16, channels=3)


@pytest.fixture(scope="module")
def run():
    """Smoke config: 8 steps of 8 images, a checkpoint every 2 steps (2 kept), a stats row every step."""
    smoke = resolve("smoke")
    return dataclasses.replace(smoke, train=dataclasses.replace(
        smoke.train, steps=STEPS, batch_size=BATCH, checkpoint_every=EVERY, log_every=1))


def fit(run, out, digits, loss_wrapper=None, batch_wrapper=None):
    """Train from scratch (or resume) in `out`; the wrappers inject a fault into the loss or the batches."""
    torch.manual_seed(0)
    model = build_dit(run.model)
    loss_fn = make_loss(run, null_class(model))
    images = ImageBatches(digits, run.train.batch_size, run.train.seed, hflip=True)

    def batches(step):
        """The step's batch, tagged with its step for the fault wrappers."""
        batch = {**images.batch(step), "step": step}
        return batch_wrapper(batch) if batch_wrapper else batch

    return train(run, model, loss_wrapper(loss_fn) if loss_wrapper else loss_fn, batches, out, progress=False)


def stats(out):
    """(step, loss) of every stats.jsonl row."""
    return [(r["step"], r["loss"]) for r in map(json.loads, (out / "stats.jsonl").read_text().splitlines())]


@pytest.fixture(scope="module")
def straight(run, digits, tmp_path_factory):
    """The uninterrupted run: (model, ema, stats)."""
    out = tmp_path_factory.mktemp("straight")
    model, ema = fit(run, out, digits)
    return model, ema, stats(out)


def poison(kind, value, fault_step):
    """(loss wrapper, batch wrapper) that inject `value` at `fault_step`: into one sample's loss, one pixel of one
    image, one weight before the forward pass, or (with a finite loss) every gradient of the output layer."""

    def wrap_loss(loss_fn):
        """The loss with the fault."""

        def poisoned(model, batch, generator):
            if batch["step"] == fault_step and kind == "weight":
                with torch.no_grad():
                    model.proj_out_2.weight[0, 0] = value
            losses = loss_fn(model, batch, generator)
            if batch["step"] == fault_step and kind == "loss":
                loss = losses["loss"].clone()
                loss[POSITION] = value
                losses = {**losses, "loss": loss}
            if batch["step"] == fault_step and kind == "gradient":  # d sqrt(0·w)/dw = ∞·0 = NaN, value stays 0
                losses = {**losses, "loss": losses["loss"] + (model.proj_out_2.weight.sum() * 0).sqrt()}
            return losses

        return poisoned

    def wrap_batch(batch):
        """The batch with the fault."""
        if batch["step"] == fault_step and kind == "image":
            batch["images"] = batch["images"].clone()
            batch["images"][POSITION, 0, 5, 7] = value
        return batch

    return wrap_loss, wrap_batch


@pytest.mark.parametrize("kind,value,fault_step", CASES, ids=[f"{k}-{v}-step{s}" for k, v, s in CASES])
def test_nonfinite_fault_stops_names_the_batch_and_keeps_the_last_good_checkpoint(
        kind, value, fault_step, run, digits, straight, tmp_path, caplog):
    wrap_loss, wrap_batch = poison(kind, value, fault_step)
    with caplog.at_level(logging.ERROR, logger="tunebench.training"), pytest.raises(NonFiniteLossError) as info:
        fit(run, tmp_path, digits, wrap_loss, wrap_batch)
    message = str(info.value)
    assert [r.getMessage() for r in caplog.records if r.name == "tunebench.training"] == [message]  # logged too

    # The step the loss (or the weights) first went non-finite, and what the message must say about the batch.
    index = int(ImageBatches(digits, BATCH, run.train.seed, hflip=True).indices(fault_step)[POSITION])
    one_sample = f"non-finite for 1 of {BATCH} samples, at batch positions [{POSITION}], dataset indices [{index}]"
    expected = {
        "loss": [f"loss is {value} at step {fault_step} (0-based), {one_sample}"],
        "image": [f"loss is nan at step {fault_step} (0-based), {one_sample}"],
        "weight": [f" at step {fault_step} (0-based), non-finite for all {BATCH} samples",
                   "the weights were already non-finite (['proj_out_2.weight'])"],
    }
    if kind == "gradient" and (fault_step + 1) % EVERY == 0:  # caught before writing the checkpoint after it
        expected["gradient"] = [f"weights became non-finite (['proj_out_2.weight', 'ema.proj_out_2.weight']) by step "
                                f"{fault_step} (0-based)", "the checkpoint of this step is not written"]
    elif kind == "gradient":  # caught by the next step's loss
        expected["gradient"] = [f" at step {fault_step + 1} (0-based), non-finite for all {BATCH} samples",
                                "the weights were already non-finite (['proj_out_2.weight'])"]
    assert re.match(r"(loss is (nan|inf|-inf) at step|weights became non-finite)", message)
    for part in expected[kind]:
        assert part in message
    good = fault_step // EVERY * EVERY  # the updates before the fault step are good: the last checkpoint up to it
    last = tmp_path / "checkpoints" / f"checkpoint-{good:07d}"
    assert f"the last good checkpoint {last} is kept" in message

    # Only checkpoints up to the last good one exist (2 kept), they hold finite weights, and no stats row is past it.
    assert [p.name for p in list_checkpoints(tmp_path)] == [f"checkpoint-{s:07d}" for s in (good - EVERY, good) if s]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")] == []
    for name in ("model", "ema"):
        weights = safetensors.torch.load_file(last / f"{name}.safetensors")
        assert all(torch.isfinite(t).all() for t in weights.values())
    assert stats(tmp_path) == straight[2][:good]

    # With the fault gone, the run resumes from that checkpoint and ends exactly as the uninterrupted one.
    model, ema = fit(run, tmp_path, digits)
    for a, b in zip([*straight[0].state_dict().values(), *straight[1].state_dict().values()],
                    [*model.state_dict().values(), *ema.state_dict().values()]):
        assert torch.equal(a, b)
    assert stats(tmp_path) == straight[2]


def test_diverging_cli_run_exits_3_with_one_line_naming_the_step(tmp_path, capsys, restore_logging):
    out = tmp_path / "run"
    argv = ["--scale", "smoke", "--out", str(out), "--set", "data.dataset=digits", "--set", "train.lr=1.0e+30",
            "--set", "train.steps=20", "--set", "train.checkpoint_every=1", "--set", "train.log_every=1",
            "--no-progress"]
    with pytest.raises(SystemExit) as info:
        run_cli(pretrain.main, argv)
    assert info.value.code == 3
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    step = int(re.search(r"^error: loss is (?:nan|inf|-inf) at step (\d+) \(0-based\)", errors[0]).group(1))
    assert 0 < step < 20
    assert f"the last good checkpoint {out / 'checkpoints' / f'checkpoint-{step:07d}'} is kept" in errors[0]
    assert errors[0][len("error: "):] in (out / "log.txt").read_text()  # the run's own log says why it stopped
    assert [r[0] for r in stats(out)] == list(range(1, step + 1))
    assert all(math.isfinite(loss) for _, loss in stats(out))
    assert not (out / "model").exists()
