"""The DiT ControlNet: zero start, residual path, export, conditioned sampling, the two objectives' batches and loss,
the training CLI and its summary over objectives and seeds."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks.results import read_results
from benchmarks.tables import to_markdown
from difftune.controlnet import report as control_report
from difftune.controlnet import summary as control_summary
from difftune.controlnet import train as control_train
from difftune.controlnet.conditions import chance_fidelity, convergence_threshold, make_conditions
from difftune.controlnet.config import ControlTrainConfig
from difftune.controlnet.model import ControlledDiT, DiTControlNet, export_controlnet, load_controlnet
from difftune.controlnet.report import controlnet_table, plot_controlnet_curves
from difftune.objective import make_objective
from difftune.retention_set import RetentionSet
from tests.conftest import TEST_FACTS
from tunebench.config import ConfigError, resolve, to_dict
from tunebench.datasets import load_dataset
from tunebench.io import save_npz, to_uint8
from tunebench.sampling import sample_batches


def _inputs(n=3, channels=1, side=16):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, 16, 16, generator=generator)
    controls = torch.rand(n, channels, side, side, generator=generator) * 2 - 1
    return x, torch.tensor([3, 400, 999])[:n], torch.tensor([0, 5, 13])[:n], controls


def _perturb(controlnet):
    with torch.no_grad():
        for layer in (controlnet.control_in, *controlnet.control_out):
            layer.weight.normal_(0, 0.1)


def test_controlnet_starts_as_the_base_and_then_steers_it(tiny_model):
    x, t, y, controls = _inputs()
    controlnet = DiTControlNet.from_transformer(tiny_model, control_channels=1)
    assert controlnet.config.num_blocks == 1  # half of the smoke DiT's 2 blocks
    model = ControlledDiT(tiny_model, controlnet)
    base_out = tiny_model(x, t, y).sample
    assert torch.equal(model(x, t, y, controls=controls).sample, base_out)  # zero projections: exactly the base
    assert not any(p.requires_grad for p in tiny_model.parameters())
    _perturb(controlnet)
    steered = model(x, t, y, controls=controls).sample
    assert (steered - base_out).abs().max() > 1e-3
    assert not torch.allclose(steered, model(x, t, y, controls=-controls).sample)  # the condition matters
    assert torch.equal(model(x, t, y).sample, base_out)  # no controls: no residuals left behind


def test_only_the_output_projections_get_gradient_at_the_first_step(tiny_model):
    x, t, y, controls = _inputs()
    controlnet = DiTControlNet.from_transformer(tiny_model, control_channels=1)
    ControlledDiT(tiny_model, controlnet)(x, t, y, controls=controls).sample.square().mean().backward()
    assert controlnet.control_out[0].weight.grad.abs().sum() > 0
    # Everything behind the zero output projections waits one step, as in ControlNet's zero convolutions.
    assert controlnet.control_in.weight.grad.abs().sum() == 0 and controlnet.control_embed.weight.grad.abs().sum() == 0


def test_condition_images_larger_than_the_model_input_map_to_its_tokens(tiny_model):
    x, t, y, controls = _inputs(channels=4, side=128)
    controlnet = DiTControlNet.from_transformer(tiny_model, control_channels=4, image_scale=8)
    _perturb(controlnet)
    assert ControlledDiT(tiny_model, controlnet)(x, t, y, controls=controls).sample.shape == (3, 6, 16, 16)
    with pytest.raises(ValueError, match="between 1 and the base's 2 blocks"):
        DiTControlNet.from_transformer(tiny_model, 1, num_blocks=3)


def test_export_round_trip_keeps_the_function(tiny_model, smoke_run, tmp_path):
    x, t, y, controls = _inputs()
    controlnet = DiTControlNet.from_transformer(tiny_model, control_channels=1, num_blocks=2)
    _perturb(controlnet)
    expected = ControlledDiT(tiny_model, controlnet)(x, t, y, controls=controls).sample
    export_controlnet(controlnet, tmp_path / "controlnet", smoke_run, facts=TEST_FACTS)
    assert (tmp_path / "controlnet/diffusion_pytorch_model.safetensors").is_file()
    loaded = load_controlnet(tmp_path / "controlnet")
    trunk = loaded.trunk.transformer_blocks
    assert trunk[1].norm1.emb is trunk[0].norm1.emb  # the embedders are tied again
    again = ControlledDiT(tiny_model, loaded)(x, t, y, controls=controls).sample
    assert torch.allclose(again, expected, atol=1e-6)


def test_conditioned_samples_depend_only_on_their_seed_and_condition(tiny_model, smoke_run):
    controlnet = DiTControlNet.from_transformer(tiny_model, control_channels=1)
    _perturb(controlnet)
    model = ControlledDiT(tiny_model, controlnet)
    controls = torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    sample = smoke_run.sample
    seeds, labels = [0, 1, 2, 3, 4], [1, 2, 3, 4, 5]

    def draw(batch_size, guidance):
        cfg = type(sample)(**{**vars(sample), "batch_size": batch_size, "compute_chunk": 4, "steps": 3,
                              "guidance_scale": guidance})
        return torch.cat([images for _, images in sample_batches(model, smoke_run.diffusion, cfg, seeds, labels,
                                                                 progress=False, controls=controls)])

    for guidance in (1.0, 2.0):
        assert torch.allclose(draw(5, guidance), draw(2, guidance), atol=1e-5)
    with pytest.raises(ValueError, match="one control image per seed"):
        next(sample_batches(model, smoke_run.diffusion, sample, seeds, labels, progress=False, controls=controls[:2]))


def test_thresholds_sit_between_chance_and_a_perfect_score():
    images = np.zeros((2, 16, 16, 1), dtype=np.uint8)
    images[0, 4:12, 4:12] = 255
    images[1, :, 8:] = 255
    chance = chance_fidelity("segmentation", images)
    assert 0 <= chance < 0.5
    assert convergence_threshold("segmentation", chance) == pytest.approx(chance + 0.5 * (1 - chance))
    assert convergence_threshold("blur", 12.0) == 17.0
    with pytest.raises(ValueError, match="at least two"):
        chance_fidelity("canny", images[:1])


#################################################################################
#                         The objectives' batches and loss                       #
#################################################################################


def _retention_folder(folder, n=120, side=16):
    """A retention set on disk (random images) as `python -m difftune.retention` lays it out."""
    images = np.random.default_rng(3).integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    save_npz(folder / "samples.npz", images=images)
    (folder / "manifest.json").write_text(json.dumps({"kind": "generated", "n": n}))
    return folder


def _control_run(objective, **overrides):
    """A smoke ControlNet run of one objective ('standard' or 'diff_tuning') with a larger batch, for statistics."""
    method = {"standard": "full_ft", "diff_tuning": "diff_tuning"}[objective]
    return resolve("smoke", {"difftune": {"method": method, **overrides}, "train": {"batch_size": 400},
                             "control": {"condition": "canny"}}, cls=ControlTrainConfig)


class Spy(torch.nn.Module):
    """Wraps a ControlledDiT and records the timesteps, labels and conditions of every forward pass."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, x, t, y, controls=None):
        self.calls.append({"t": t.clone(), "y": y.clone(), "controls": controls.clone(), "rows": x.shape[0]})
        return self.model(x, t, y, controls=controls)


def _first_batch_and_pass(run, tiny_model, retention=None):
    """The batch of step 0 and what the model saw in the objective's one forward pass over it."""
    dataset = load_dataset(run.data.dataset, "train", run.data.resolution, run.data.channels)
    batch = control_train.make_batches(run, dataset, retention)(0)
    spy = Spy(ControlledDiT(tiny_model, DiTControlNet.from_transformer(tiny_model, control_channels=1)))
    with torch.no_grad():
        losses = make_objective(run, 13)(spy, batch, torch.Generator().manual_seed(0))
    assert len(spy.calls) == 1
    return batch, spy.calls[0], losses


def test_the_diff_tuning_arm_replays_retention_images_with_their_conditions_at_the_mirrored_law(tmp_path, tiny_model):
    run = _control_run("diff_tuning", retention=str(_retention_folder(tmp_path)))
    retention = RetentionSet(run.difftune.retention, run.data.resolution, run.data.channels)
    batch, call, losses = _first_batch_and_pass(run, tiny_model, retention)
    n_target, n_retention = 320, 80  # int(400 · 0.2) retention images
    assert batch["images"].shape[0] == n_target and batch["retention"].shape[0] == n_retention
    assert call["rows"] == n_target + n_retention  # one forward pass over both parts
    expected = torch.from_numpy(make_conditions("canny", to_uint8(batch["retention"])))
    assert torch.equal(batch["retention_controls"], expected)  # each retention image's own condition
    assert torch.equal(call["controls"], torch.cat([batch["controls"], expected]))
    assert (call["y"][n_target:] == 13).all()  # retention rows train the unconditional branch
    # target t ∝ (t+1)^τ (mean 666 at τ = 1), retention t at the mirrored law (mean 333)
    assert call["t"][:n_target].float().mean() > 600 and call["t"][n_target:].float().mean() < 400
    assert "retention" in losses


def test_the_standard_arm_has_no_retention_rows_and_uniform_t(tiny_model):
    batch, call, losses = _first_batch_and_pass(_control_run("standard"), tiny_model)
    assert "retention" not in batch and "retention_controls" not in batch and "retention" not in losses
    assert call["rows"] == 400 and torch.equal(call["controls"], batch["controls"])
    assert abs(call["t"].float().mean().item() - 499.5) < 45  # uniform, not the (t+1)^τ law's 666


def test_control_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="difftune.method"):
        _control_run("standard", method="tweight_only")
    with pytest.raises(ConfigError, match="difftune.method.*difftune.peft 'lora'"):
        _control_run("diff_tuning", peft="lora")
    with pytest.raises(ConfigError, match="retention_ratio"):
        _control_run("diff_tuning", retention_ratio=0.001)  # int(400 · 0.001) = 0 retention images


#################################################################################
#                              The training CLI                                  #
#################################################################################


def _train(out, pretrained, *extra):
    control_train.main(["--scale", "smoke", "--base", str(pretrained), "--out", str(out), "--no-progress", *extra])


def test_control_train_scores_every_checkpoint_and_resumes(tmp_path, pretrained):
    out = tmp_path / "canny" / "standard"
    _train(out, pretrained, "--condition", "canny", "--set", "train.steps=2")
    _train(out, pretrained, "--condition", "canny")  # resumes at step 2 up to the smoke scale's 4 steps
    curve = pd.read_csv(out / "fidelity.csv")
    assert list(curve["step"]) == [0, 2, 4] and (curve["n"] == 4).all()
    assert curve["threshold"].iloc[0] == pytest.approx(convergence_threshold("canny", curve["chance"].iloc[0]))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["condition"] == "canny" and summary["evaluated_steps"] == [0, 2, 4]
    assert summary["objective"] == "standard" and summary["retention_per_batch"] == 0
    assert (out / "controlnet/diffusion_pytorch_model.safetensors").is_file()
    fresh = tmp_path / "fresh"
    _train(fresh, pretrained, "--condition", "canny")
    assert pd.read_csv(fresh / "fidelity.csv")["mean"].tolist() == pytest.approx(curve["mean"].tolist())
    # Each evaluated step's samples are kept (the report's pictures read them): the same after a resume.
    for step in (0, 2, 4):
        kept = np.load(out / f"fidelity/step-{step:07d}.npz")["samples"]
        assert kept.shape == (4, 16, 16, 3) and kept.dtype == np.uint8
        np.testing.assert_array_equal(kept, np.load(fresh / f"fidelity/step-{step:07d}.npz")["samples"])
    eval_set = np.load(out / "fidelity/eval_set.npz")
    assert eval_set["controls"].shape == (4, 1, 16, 16) and list(eval_set["seeds"]) == [0, 1, 2, 3]

    png = tmp_path / "pictures.png"
    control_report.main(["figure", "pictures", "--runs", f"standard={out}", f"again={fresh}", "--out", str(png)])
    assert png.stat().st_size > 2_000
    caption = json.loads(png.with_suffix(".json").read_text())
    assert caption["protocol"]["seeds"] == "0-3" and caption["protocol"]["steps"] == "4"  # eval_sample_steps
    assert "training steps 2, 4" in caption["caption"]  # step 0 is the untrained branch: not shown
    blur = tmp_path / "blur"
    _train(blur, pretrained, "--condition", "blur", "--set", "train.steps=2")
    with pytest.raises(ConfigError, match="different conditions"):
        control_report.main(["figure", "pictures", "--runs", f"standard={out}", f"blur={blur}", "--out", str(png)])


def test_control_train_with_diff_tuning_replays_the_retention_set(tmp_path, pretrained):
    out = tmp_path / "run"
    retention = _retention_folder(tmp_path / "retention", n=12)
    _train(out, pretrained, "--condition", "blur", "--objective", "diff_tuning", "--retention", str(retention),
           "--set", "train.batch_size=10", "--set", "train.seed=3")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["objective"] == "diff_tuning" and summary["method"] == "diff_tuning" and summary["seed"] == 3
    assert (summary["target_per_batch"], summary["retention_per_batch"], summary["retention_images"]) == (8, 2, 12)
    assert summary["base"] == str(pretrained)
    assert json.loads((out / "config.json").read_text())["difftune"]["retention"] == str(retention)


def test_control_train_errors_name_the_key(tmp_path, pretrained):
    with pytest.raises(ConfigError, match="--base"):
        control_train.main(["--scale", "smoke", "--out", str(tmp_path)])
    with pytest.raises(ConfigError, match="data.hflip"):
        _train(tmp_path, pretrained, "--set", "data.hflip=true")
    with pytest.raises(ConfigError, match="control.condition"):
        _train(tmp_path, pretrained, "--set", "control.condition=depth")
    with pytest.raises(ConfigError, match="objective 'diff_tuning' replays a retention set: pass --retention"):
        _train(tmp_path, pretrained, "--objective", "diff_tuning")


#################################################################################
#                         The summary over objectives and seeds                   #
#################################################################################


def _fake_run(folder, condition, objective, seed, means, base="assets/mini/source_dit", steps=(0, 100, 200, 300)):
    """A finished run's files: config.json, summary.json and a fidelity curve of `means` at `steps`."""
    folder.mkdir(parents=True)
    run = _control_run(objective, retention="r" if objective == "diff_tuning" else None)
    run.control.condition, run.train.seed = condition, seed
    (folder / "config.json").write_text(json.dumps(to_dict(run)))
    (folder / "summary.json").write_text(json.dumps({"condition": condition, "objective": objective, "seed": seed,
                                                     "dataset": "mnist5k", "base": base, "steps": 300,
                                                     "git_commit": "abc"}))
    lines = ["step,condition,mean,std,n,chance,threshold"]
    lines += [f"{s},{condition},{m},0.1,64,0.3,0.65" for s, m in zip(steps, means)]
    (folder / "fidelity.csv").write_text("\n".join(lines) + "\n")
    return folder


CURVES = {  # (condition, objective, seed) → fidelity at steps 0, 100, 200, 300
    ("canny", "standard", 0): [0.3, 0.5, 0.7, 0.8],  # converges at 200
    ("canny", "standard", 1): [0.3, 0.4, 0.5, 0.7],  # 300
    ("canny", "diff_tuning", 0): [0.3, 0.7, 0.6, 0.9],  # dips back below: 300
    ("canny", "diff_tuning", 1): [0.3, 0.7, 0.7, 0.7],  # 100
    ("blur", "standard", 0): [0.3, 0.7, 0.7, 0.7],  # 100
    ("blur", "standard", 1): [0.3, 0.7, 0.7, 0.7],  # 100
    ("blur", "diff_tuning", 0): [0.3, 0.4, 0.5, 0.6],  # never
    ("blur", "diff_tuning", 1): [0.3, 0.4, 0.7, 0.7],  # 200
}


def _summarise(tmp_path, curves=CURVES, bases=None):
    """Summarise fake runs of `curves` (`bases`: the base of some runs, by key) into tmp_path/rows.csv."""
    bases = bases or {}
    runs = [_fake_run(tmp_path / c / o / f"seed{s}", c, o, s, means, **({"base": bases[c, o, s]} if (c, o, s) in bases
                                                                        else {}))
            for (c, o, s), means in curves.items()]
    control_summary.main([*map(str, runs), "--curves", str(tmp_path / "curves.csv"),
                          "--results", str(tmp_path / "rows.csv")])
    return read_results(tmp_path / "rows.csv")


def test_summary_finds_sudden_convergence_and_the_acceleration_over_seeds(tmp_path):
    rows = _summarise(tmp_path)
    values = rows.set_index(["method", "metric", "seed"])["value"]
    assert [values["standard", "convergence_step:canny", seed] for seed in (0, 1)] == [200, 300]
    assert values["diff_tuning", "convergence_step:canny", 0] == 300
    assert np.isnan(values["diff_tuning", "convergence_step:blur", 0])
    canny = rows[rows["metric"] == "acceleration:canny"].iloc[0]
    assert canny["method"] == "diff_tuning" and canny["seed"] == 0  # one row per objective, at the first seed
    assert canny["value"] == pytest.approx(np.sqrt(200 * 300) / np.sqrt(300 * 100))  # ratio of geometric means
    assert canny["ci_low"] < canny["value"] < canny["ci_high"] and "Welch" in canny["note"]
    blur = rows[rows["metric"] == "acceleration:blur"].iloc[0]
    assert np.isnan(blur["value"]) and "1 run(s) never converge" in blur["note"]
    assert np.isnan(rows[rows["metric"] == "acceleration:all"]["value"].iloc[0])  # blur has no ratio
    assert set(rows[rows["metric"].str.startswith("acceleration")]["method"]) == {"diff_tuning"}
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert len(curves) == 32 and set(curves["objective"]) == {"standard", "diff_tuning"}
    assert set(curves["seed"]) == {0, 1}
    # Every curve point carries its run's protocol, as the results rows do.
    assert set(curves["model"]) == {"assets/mini/source_dit"} and set(curves["git_commit"]) == {"abc"}
    protocol = ["scale", "model", "steps", "sampler", "guidance", "git_commit"]
    assert curves[protocol].drop_duplicates().values.tolist() == rows[protocol].drop_duplicates().values.tolist()
    table = to_markdown(controlnet_table(rows, "controlnet"))
    assert "| canny | 0.300 | 0.650 | 250 ± 71[^1] | 0.750 ± 0.071 | **200 ± 141**[^1] |" in table
    assert "never stays >= 0.65 up to step 4; scored every 2 of 4 training steps" in table
    assert f"{canny['value']:.2f} [{canny['ci_low']:.2f}, {canny['ci_high']:.2f}]" in table
    assert "| all |" in table and "over 2 seeds" in table
    plot_controlnet_curves(curves, tmp_path / "curves.png")  # a panel per condition, a line per objective
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_summary_of_every_condition_and_its_errors(tmp_path):
    curves = {key: means for key, means in CURVES.items() if key[0] == "canny"}
    curves |= {("blur", "standard", s): [0.3, 0.4, 0.7, 0.7] for s in (0, 1)}  # 200, 200
    curves |= {("blur", "diff_tuning", s): [0.3, 0.7, 0.7, 0.7] for s in (0, 1)}  # 100, 100: twice as fast
    rows = _summarise(tmp_path / "ok", curves).set_index("metric")
    assert rows.loc["acceleration:blur", "value"] == pytest.approx(2.0)
    assert rows.loc["acceleration:blur", "ci_low"] == pytest.approx(2.0)  # no spread over seeds
    every = rows.loc["acceleration:all"]
    assert every["value"] == pytest.approx(np.sqrt(2.0 * np.sqrt(200 * 300) / np.sqrt(300 * 100)))
    assert every["ci_low"] < every["value"] < every["ci_high"] and "every condition" in every["note"]
    with pytest.raises(ConfigError, match="different bases"):
        _summarise(tmp_path / "bases", curves, {("blur", "diff_tuning", 1): "runs/mini/finetune/x/model"})
    without = {key: means for key, means in curves.items() if key[:2] != ("blur", "standard")}
    with pytest.raises(ConfigError, match="lacks a 'standard' or 'diff_tuning' run"):
        _summarise(tmp_path / "missing", without)
