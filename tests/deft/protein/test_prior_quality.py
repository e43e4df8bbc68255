"""The prior-quality measurement: its metrics on hand-built traces, the training crops, per-sample seeds, and the CLI
on the smoke prior (one row per kept checkpoint plus the data row, resumption, the exported weights)."""

import json

import numpy as np
import pytest

from deft.protein import prior_quality, quality_curve
from deft.protein.config import ProteinConfig
from deft.protein.geometry import chain_metrics
from deft.protein.models import load_prior
from deft.protein.quality import DATA_STEP, METRICS, WITH_INTERVALS, quality_summary, training_crops
from deft.protein.quality_curve import read_table
from deft.protein.structures import Chain
from tunebench.cli import run_cli
from tunebench.config import resolve
from tunebench.dataset_registry import DatasetError

pytestmark = pytest.mark.usefixtures("one_thread", "restore_logging")
CRITERIA = ProteinConfig().success  # bonds 3.8 ± 0.3 Å, clashes under 3 Å at |i − j| ≥ 3


def straight(n: int = 10, spacing: float = 3.8) -> np.ndarray:
    """n Cα on the x axis, `spacing` Å apart."""
    return np.stack([np.arange(n) * spacing, np.zeros(n), np.zeros(n)], axis=1)


def assert_intervals_hold(row: dict) -> None:
    """Every interval contains its point estimate."""
    for metric in WITH_INTERVALS:
        assert row[f"{metric}_low"] <= row[metric] <= row[f"{metric}_high"], (metric, row)


def test_metrics_of_hand_built_traces():
    assert chain_metrics(straight(), CRITERIA)["bond_valid_fraction"] == 1.0
    gapped = straight()
    gapped[5:, 0] += 6.0 - 3.8  # one 6 Å bond among 9
    assert chain_metrics(gapped, CRITERIA)["bond_valid_fraction"] == pytest.approx(8 / 9)
    overlapping = straight()
    overlapping[9] = overlapping[0]  # residues 0 and 9 on one spot (and the bond 8–9 broken)
    assert chain_metrics(overlapping, CRITERIA)["clashes"] == 1 and chain_metrics(straight(), CRITERIA)["clashes"] == 0

    row = quality_summary(np.stack([straight()] * 3 + [overlapping]), CRITERIA)
    assert set(METRICS) <= set(row)
    assert row["clash_free"] == 0.75 and row["valid_bonds"] == pytest.approx((3 + 8 / 9) / 4)
    assert row["rg_mean"] == pytest.approx(np.mean([np.sqrt(((t - t.mean(0)) ** 2).sum(1).mean())
                                                    for t in [straight()] * 3 + [overlapping]]))
    assert_intervals_hold(row)
    random = quality_summary(np.random.default_rng(0).normal(0, 10, (20, 30, 3)), CRITERIA)
    assert random["valid_bonds"] < 0.1 and random["valid_bonds_high"] < 0.2
    assert_intervals_hold(random)


def test_training_crops_are_seeded_one_by_one_and_need_long_enough_chains():
    chains = [Chain(name=f"c{k}", source="s", file="f", chain_id="A", sequence="A" * n,
                    ca=straight(n).astype(np.float32)) for k, n in enumerate((30, 50))]
    crops = training_crops(chains, 8, 20, "chains.npz")
    assert crops.shape == (8, 20, 3)
    np.testing.assert_array_equal(training_crops(chains, 3, 20, "chains.npz"), crops[:3])
    assert quality_summary(crops, CRITERIA)["valid_bonds"] == 1.0
    with pytest.raises(DatasetError, match=r"chains.npz has 60 residues \(the longest has 50\).*smaller --length"):
        training_crops(chains, 2, 60, "chains.npz")


def test_sample_k_uses_seed_k_alone(smoke_prior):
    run = resolve("smoke", cls=ProteinConfig)  # batches of 4: six samples take two
    prior = load_prior(smoke_prior / "prior/model")
    six = quality_curve.unconditional_samples(prior, run, 6, 12)
    assert six.shape == (6, 12, 3)
    np.testing.assert_array_equal(quality_curve.unconditional_samples(prior, run, 2, 12), six[:2])
    np.testing.assert_array_equal(quality_curve.unconditional_samples(prior, run, 5, 12), six[:5])


def _cli(root, out, source: list[str], *extra: str) -> list[dict]:
    """Run the CLI at smoke scale with 6 samples and return the table's rows."""
    prior_quality.main([*source, "--data", str(root / "data"), "--scale", "smoke", "--samples", "6", "--out-csv",
                        str(out / "curve.csv"), "--out-json", str(out / "quality.json"), "--no-progress", *extra])
    return read_table(out / "curve.csv")


def test_curve_has_the_data_row_and_one_row_per_checkpoint_and_resumes(smoke_prior, tmp_path, monkeypatch):
    rows = _cli(smoke_prior, tmp_path, ["--run", str(smoke_prior / "prior")], "--figure", str(tmp_path / "c.png"))
    assert [r["step"] for r in rows] == [DATA_STEP, 3, 6]
    run = resolve("smoke", cls=ProteinConfig)
    for row in rows:
        assert (row["samples"], row["length"]) == (6, run.problems.length)
        assert_intervals_hold(row)
    data, last = rows[0], rows[-1]
    assert data["valid_bonds"] >= 0.99 and data["sampler"] is None and data["weights_sha256"] is None
    assert (last["sampler"], last["sample_steps"], last["eta"], last["noise_scale"]) == (
        "ddim", run.sample.steps, run.sample.eta, run.sample.noise_scale)
    assert rows[1]["weights_sha256"] != last["weights_sha256"]
    summary = json.loads((tmp_path / "quality.json").read_text())
    assert {key: summary[key] for key in last} == last and summary["data"] == data
    assert (tmp_path / "c.png").stat().st_size > 1000

    before = (tmp_path / "curve.csv").read_bytes()

    def refuse(*args, **kwargs):
        raise AssertionError("a rerun must not score anything again")

    monkeypatch.setattr(quality_curve, "quality_summary", refuse)
    assert _cli(smoke_prior, tmp_path, ["--run", str(smoke_prior / "prior")]) == rows
    assert (tmp_path / "curve.csv").read_bytes() == before


def test_exported_prior_is_the_last_checkpoints_trained_weights(smoke_prior, tmp_path):
    curve = _cli(smoke_prior, tmp_path / "run", ["--run", str(smoke_prior / "prior")])
    model = _cli(smoke_prior, tmp_path / "model", ["--model", str(smoke_prior / "prior/model")])
    assert [r["step"] for r in model] == [DATA_STEP, 6]
    assert model == [curve[0], curve[-1]]  # same weights (sha256 of the tensors) and so the same figures


def test_errors_name_the_file_and_the_fix(smoke_prior, tmp_path, capsys):
    _cli(smoke_prior, tmp_path, ["--model", str(smoke_prior / "prior/model")])

    def fails(table: str, *flags: str) -> str:
        """The one-line error of a CLI run (6 samples unless `flags` say otherwise) that writes `table`."""
        with pytest.raises(SystemExit):
            run_cli(prior_quality.main, ["--samples", "6", "--data", str(smoke_prior / "data"), "--scale", "smoke",
                                         "--out-csv", str(tmp_path / table), "--out-json", str(tmp_path / "q.json"),
                                         "--no-progress", *flags])
        return capsys.readouterr().err

    assert "samples 6, now 7" in fails("curve.csv", "--model", str(smoke_prior / "prior/model"), "--samples", "7")
    assert "no complete checkpoint-NNNNNNN" in fails("other.csv", "--run", str(smoke_prior / "data"))
    table = tmp_path / "curve.csv"
    table.write_text(table.read_text().replace(read_table(table)[-1]["weights_sha256"], "0" * 64))
    assert "other weights" in fails("curve.csv", "--model", str(smoke_prior / "prior/model"))
    assert "data.coord_scale" in fails("other.csv", "--model", str(smoke_prior / "prior/model"), "--set",
                                       "data.coord_scale=1")


def test_quality_figure_keeps_long_runs_step_labels_apart(tmp_path, monkeypatch):
    from deft.protein import quality_figure

    shown = {}
    monkeypatch.setattr(quality_figure, "save_figure", lambda fig, out: shown.setdefault("fig", fig))
    figures = {metric: 0.5 for metric in WITH_INTERVALS} | {f"{m}_{end}": 0.5 for m in WITH_INTERVALS
                                                            for end in ("low", "high")}
    rows = [{"step": DATA_STEP, "samples": 200, "length": 48, **figures}]
    rows += [{"step": step, **figures} for step in range(2500, 30001, 2500)]
    quality_figure.plot_quality_curve(rows, tmp_path / "curve.png")
    for ax in shown["fig"].axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert 3 <= len(ticks) <= 6 and all(float(t).is_integer() for t in ticks)  # 30000 steps had 7, run together
