"""The shared training loop: exact resume, deterministic batches, frozen parameters, NaN handling."""

import dataclasses

import pytest
import safetensors.torch
import torch

from tunebench.checkpoint import CheckpointError, list_checkpoints, load_weights
from tunebench.config import ConfigError
from tunebench.datasets import load_dataset
from tunebench.models import build_dit, null_class
from tunebench.pretraining import make_loss
from tunebench.training import ImageBatches, NonFiniteLossError, train, wall_time_record


def _run(smoke_run, steps, **train_changes):
    return dataclasses.replace(smoke_run, train=dataclasses.replace(
        smoke_run.train, steps=steps, batch_size=8, checkpoint_every=3, log_every=1, **train_changes))


def _fit(run, out, dataset, resume="auto", model=None):
    torch.manual_seed(0)
    model = model or build_dit(run.model)
    images = ImageBatches(dataset, run.train.batch_size, run.train.seed, hflip=True)

    def batches(step):
        x, y = images.get(step)
        return {"images": x, "labels": y}

    return train(run, model, make_loss(run, null_class(model)), batches, out, resume=resume, progress=False)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train", resolution=16, channels=3)


def test_resume_is_exact(smoke_run, digits, tmp_path):
    straight, straight_ema = _fit(_run(smoke_run, 6), tmp_path / "a", digits)
    _fit(_run(smoke_run, 3), tmp_path / "b", digits)
    assert [p.name for p in list_checkpoints(tmp_path / "b")] == ["checkpoint-0000003"]
    resumed, resumed_ema = _fit(_run(smoke_run, 6), tmp_path / "b", digits)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(straight_ema.state_dict().values(), resumed_ema.state_dict().values()):
        assert torch.equal(a, b)
    steps = [line for line in (tmp_path / "b" / "stats.jsonl").read_text().splitlines()]
    assert len(steps) == 6  # no duplicated rows after the resume


def _set_train_seconds(checkpoint, seconds):
    """Rewrite a checkpoint's recorded training time; `seconds` None removes the record (an older checkpoint)."""
    import json

    state_file = checkpoint / "state.json"
    state = json.loads(state_file.read_text())
    if seconds is None:
        del state["train_seconds"]
    else:
        state["train_seconds"] = seconds
    state_file.write_text(json.dumps(state))


def test_training_time_adds_up_over_resumes(smoke_run, digits, tmp_path):
    import json

    _fit(_run(smoke_run, 3), tmp_path / "a", digits)
    first = json.loads((list_checkpoints(tmp_path / "a")[-1] / "state.json").read_text())["train_seconds"]
    assert 0 < first < 600
    # As if the first invocation had taken 1000 s: the resumed run's checkpoints carry that on.
    _set_train_seconds(list_checkpoints(tmp_path / "a")[-1], 1000.0)
    _fit(_run(smoke_run, 6), tmp_path / "a", digits)
    resumed = json.loads((list_checkpoints(tmp_path / "a")[-1] / "state.json").read_text())["train_seconds"]
    assert 1000.0 < resumed < 1600.0  # unrounded: three smoke steps can take under 0.05 s
    record = wall_time_record(tmp_path / "a", 2.04)
    assert record["wall_seconds_this_invocation"] == 2.0
    assert record["wall_seconds"] == round(resumed, 1)
    # A run resumed from a checkpoint that predates the record cannot know its total: None, not a partial sum.
    _fit(_run(smoke_run, 3), tmp_path / "b", digits)
    _set_train_seconds(list_checkpoints(tmp_path / "b")[-1], None)
    _fit(_run(smoke_run, 6), tmp_path / "b", digits)
    assert wall_time_record(tmp_path / "b", 1.0)["wall_seconds"] is None
    assert wall_time_record(tmp_path / "none", 1.0) == {"wall_seconds_this_invocation": 1.0, "wall_seconds": None}


def test_resume_refuses_another_config(smoke_run, digits, tmp_path):
    _fit(_run(smoke_run, 3), tmp_path, digits)
    with pytest.raises(CheckpointError, match="train.lr"):
        _fit(_run(smoke_run, 6, lr=0.5), tmp_path, digits)
    with pytest.raises(CheckpointError, match="no checkpoint there"):
        _fit(_run(smoke_run, 6), tmp_path, digits, resume=str(tmp_path / "nope"))


def test_batches_are_a_function_of_the_step(digits):
    a = ImageBatches(digits, 10, seed=1, hflip=True)
    b = ImageBatches(digits, 10, seed=1, hflip=True)
    xa, ya = a.get(5)
    b.get(0)
    xb, yb = b.get(5)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    epoch = torch.cat([a.indices(s) for s in range(len(digits) // 10)])
    assert len(set(epoch.tolist())) == len(epoch)  # no repeats within an epoch
    assert xa.min() >= -1 and xa.max() <= 1


def test_frozen_parameters_do_not_move(smoke_run, digits, tmp_path):
    run = _run(smoke_run, 2)
    torch.manual_seed(0)
    model = build_dit(run.model)
    model.pos_embed.requires_grad_(False)
    before = model.pos_embed.proj.weight.clone()
    trained, _ = _fit(run, tmp_path, digits, model=model)
    assert torch.equal(trained.pos_embed.proj.weight, before)
    assert not torch.equal(trained.proj_out_2.weight, torch.zeros_like(trained.proj_out_2.weight))


def test_nan_loss_stops_with_step_and_keeps_checkpoint(smoke_run, digits, tmp_path):
    _fit(_run(smoke_run, 3), tmp_path, digits)
    run = _run(smoke_run, 8)
    model = build_dit(run.model)
    base = make_loss(run, null_class(model))
    images = ImageBatches(digits, run.train.batch_size, run.train.seed, hflip=True)

    def poisoned_loss(model, batch, generator):
        losses = base(model, batch, generator)
        return {"loss": losses["loss"] * (float("nan") if batch["step"] == 5 else 1.0)}

    def batches(step):
        x, y = images.get(step)
        return {"images": x, "labels": y, "step": step}

    with pytest.raises(NonFiniteLossError, match="at step 5"):
        train(run, model, poisoned_loss, batches, tmp_path, progress=False)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-0000003"]


def test_ema_update_and_warmup():
    from tunebench.training import ema_decay_at, update_ema

    assert ema_decay_at(0, 0.999, warmup=False) == 0.999
    assert ema_decay_at(0, 0.999, warmup=True) == 0.1 and ema_decay_at(10_000, 0.999, warmup=True) == 0.999
    ema, model = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        ema.weight.fill_(1.0)
        model.weight.fill_(3.0)
    update_ema(ema, model, 0.75)
    assert torch.allclose(ema.weight, torch.full((2, 2), 1.5))


def test_linear_lr_schedule_and_ema_start_every(smoke_run):
    from tunebench.training import ema_update_decay, lr_at

    cfg = dataclasses.replace(smoke_run.train, steps=100, lr=1e-3, lr_schedule="linear", ema_start=40, ema_every=10,
                              ema_decay=0.999, ema_warmup=False)
    assert lr_at(0, cfg) == 1e-3 and lr_at(50, cfg) == pytest.approx(5e-4) and lr_at(99, cfg) == pytest.approx(1e-5)
    assert lr_at(99, dataclasses.replace(cfg, lr_schedule="constant")) == 1e-3
    assert ema_update_decay(0, cfg) == 0.0 and ema_update_decay(39, cfg) == 0.0  # copy until update 40
    assert [ema_update_decay(s, cfg) for s in (40, 41, 49, 50)] == [0.999, None, None, 0.999]


def test_linear_schedule_resumes_exactly_and_fixes_the_step_budget(smoke_run, digits, tmp_path):
    import shutil

    run = _run(smoke_run, 6, lr_schedule="linear", ema_start=2, ema_every=2)
    straight, straight_ema = _fit(run, tmp_path / "a", digits)
    _fit(run, tmp_path / "b", digits)
    shutil.rmtree(list_checkpoints(tmp_path / "b")[-1])  # as if killed after step 3
    resumed, resumed_ema = _fit(run, tmp_path / "b", digits)
    for a, b in zip([*straight.parameters(), *straight_ema.parameters()],
                    [*resumed.parameters(), *resumed_ema.parameters()]):
        assert torch.equal(a, b)
    with pytest.raises(CheckpointError, match="train.steps"):  # the schedule's end point would move
        _fit(_run(smoke_run, 9, lr_schedule="linear", ema_start=2, ema_every=2), tmp_path / "b", digits)


def test_resume_accepts_a_checkpoint_older_than_a_new_setting(smoke_run, digits, tmp_path):
    import json

    from tunebench.checkpoint import list_checkpoints as found

    _fit(_run(smoke_run, 3), tmp_path, digits)
    state_file = found(tmp_path)[-1] / "state.json"
    state = json.loads(state_file.read_text())
    del state["run_config"]["train"]["lr_schedule"]  # as written before the setting existed
    state_file.write_text(json.dumps(state))
    _fit(_run(smoke_run, 4), tmp_path, digits)  # the default reproduces the old behaviour: resumes
    _fit(_run(smoke_run, 6, lr_schedule="linear"), tmp_path / "other", digits)
    with pytest.raises(CheckpointError, match="train.lr_schedule"):
        _fit(_run(smoke_run, 8, lr_schedule="constant"), tmp_path / "other", digits)


def test_load_weights_fills_a_module_or_names_the_file_that_does_not_fit(tmp_path):
    torch.manual_seed(0)
    saved = torch.nn.Linear(2, 2)
    safetensors.torch.save_model(saved, str(tmp_path / "ema.safetensors"))
    same = torch.nn.Linear(2, 2)
    load_weights(tmp_path, same, "ema")
    assert torch.equal(same.weight, saved.weight)
    with pytest.raises(CheckpointError, match="ema.safetensors does not match"):
        load_weights(tmp_path, torch.nn.Sequential(torch.nn.Linear(2, 2)), "ema")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_weights(tmp_path, same, "model")


def test_training_curves_go_to_the_configured_tracker(smoke_run, digits, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _fit(_run(smoke_run, 4), tmp_path / "tb", digits)  # train.log_with's default: TensorBoard
    events = EventAccumulator(str(tmp_path / "tb/tracking"))
    events.Reload()
    assert {"loss", "lr", "steps_per_s", "ema_decay"} <= set(events.Tags()["scalars"])
    losses = events.Scalars("loss")
    assert [point.step for point in losses] == [1, 2, 3, 4]  # log_every 1
    stats = [float(line.split('"loss": ')[1].split(",")[0])
             for line in (tmp_path / "tb/stats.jsonl").read_text().splitlines()]
    assert [point.value for point in losses] == pytest.approx(stats, rel=1e-6)  # the same numbers as stats.jsonl
    assert events.Scalars("lr")[0].value == pytest.approx(smoke_run.train.lr)
    _fit(_run(smoke_run, 2, log_with="none"), tmp_path / "none", digits)
    assert not (tmp_path / "none/tracking").exists()
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *args: None if name == "wandb" else object())
    with pytest.raises(ConfigError, match="'train.log_with' is 'wandb' but the wandb package is not installed"):
        _fit(_run(smoke_run, 2, log_with="wandb"), tmp_path / "wandb", digits)
