"""The DiT ControlNet: zero start, residual path, export, conditioned sampling, the training CLI and its summary."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks.results import read_results
from benchmarks.tables import to_markdown
from difftune.controlnet import summary as control_summary
from difftune.controlnet import train as control_train
from difftune.controlnet.conditions import chance_fidelity, convergence_threshold
from difftune.controlnet.model import ControlledDiT, DiTControlNet, export_controlnet, load_controlnet
from difftune.controlnet.report import controlnet_table
from tunebench.config import ConfigError, resolve
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
    export_controlnet(controlnet, tmp_path / "controlnet", smoke_run)
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


def _train(out, pretrained, *extra):
    control_train.main(["--scale", "smoke", "--base", str(pretrained), "--out", str(out), "--no-progress", *extra])


def test_control_train_scores_every_checkpoint_and_resumes(tmp_path, pretrained):
    out = tmp_path / "canny" / "pretrained"
    _train(out, pretrained, "--condition", "canny", "--set", "train.steps=2")
    _train(out, pretrained, "--condition", "canny")  # resumes at step 2 up to the smoke scale's 4 steps
    curve = pd.read_csv(out / "fidelity.csv")
    assert list(curve["step"]) == [0, 2, 4] and (curve["n"] == 4).all()
    assert curve["threshold"].iloc[0] == pytest.approx(convergence_threshold("canny", curve["chance"].iloc[0]))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["condition"] == "canny" and summary["evaluated_steps"] == [0, 2, 4]
    assert (out / "controlnet/diffusion_pytorch_model.safetensors").is_file()
    fresh = tmp_path / "fresh"
    _train(fresh, pretrained, "--condition", "canny")
    assert pd.read_csv(fresh / "fidelity.csv")["mean"].tolist() == pytest.approx(curve["mean"].tolist())


def test_control_train_errors_name_the_key(tmp_path, pretrained):
    with pytest.raises(ConfigError, match="--base"):
        control_train.main(["--scale", "smoke", "--out", str(tmp_path)])
    with pytest.raises(ConfigError, match="data.hflip"):
        _train(tmp_path, pretrained, "--set", "data.hflip=true")
    with pytest.raises(ConfigError, match="control.condition"):
        _train(tmp_path, pretrained, "--set", "control.condition=depth")


def _fake_run(folder, condition, means, steps=(0, 100, 200, 300)):
    folder.mkdir(parents=True)
    run = resolve("mini", {"control": {"condition": condition}}, cls=control_train.ControlTrainConfig)
    from tunebench.config import to_dict

    (folder / "config.json").write_text(json.dumps(to_dict(run)))
    (folder / "summary.json").write_text(json.dumps({"condition": condition, "dataset": "mnist5k", "base": "b",
                                                     "steps": 300, "git_commit": "abc"}))
    lines = ["step,condition,mean,std,n,chance,threshold"]
    lines += [f"{s},{condition},{m},0.1,64,0.3,0.65" for s, m in zip(steps, means)]
    (folder / "fidelity.csv").write_text("\n".join(lines) + "\n")


def test_summary_finds_sudden_convergence_and_the_acceleration(tmp_path):
    _fake_run(tmp_path / "canny/pretrained", "canny", [0.3, 0.5, 0.7, 0.8])
    _fake_run(tmp_path / "canny/diff_tuning", "canny", [0.3, 0.7, 0.6, 0.9])  # dips back below: converges at 300
    _fake_run(tmp_path / "blur/pretrained", "blur", [0.3, 0.7, 0.7, 0.7])
    _fake_run(tmp_path / "blur/diff_tuning", "blur", [0.3, 0.4, 0.5, 0.6])  # never
    runs = [tmp_path / name for name in ("canny/pretrained", "canny/diff_tuning", "blur/pretrained",
                                         "blur/diff_tuning")]
    control_summary.main([*map(str, runs), "--curves", str(tmp_path / "curves.csv"),
                          "--results", str(tmp_path / "rows.csv")])
    rows = read_results(tmp_path / "rows.csv").set_index(["method", "metric"])["value"]
    assert rows["pretrained", "convergence_step:canny"] == 200 and rows["diff_tuning", "convergence_step:canny"] == 300
    assert rows["diff_tuning", "acceleration:canny"] == pytest.approx(200 / 300)
    assert np.isnan(rows["diff_tuning", "convergence_step:blur"]) and np.isnan(rows["diff_tuning", "acceleration:blur"])
    assert len(pd.read_csv(tmp_path / "curves.csv")) == 16
    table = to_markdown(controlnet_table(read_results(tmp_path / "rows.csv"), "controlnet"))
    assert "| canny | 0.300 | 0.650 | **200**" in table and "never stays >= 0.65" in table
    misplaced = tmp_path / "inpaint" / "pretrained"
    misplaced.parent.mkdir()
    (tmp_path / "canny/pretrained").rename(misplaced)
    with pytest.raises(ConfigError, match="trained the canny condition"):
        control_summary.read_run(misplaced)
