"""Following clashes through the sampler: the rows on hand-built trajectories with known answers, the sampler's
per-step x̂0 hook, and the CLI on the smoke prior."""

import csv

import numpy as np
import pytest
import torch

from deft.protein import clash_trajectory
from deft.protein.clash_trajectory import COLUMNS, markdown, sample_trajectories, trajectory_rows
from deft.protein.config import ProteinConfig
from deft.protein.diffusion import centre, protein_schedule
from deft.protein.models import load_prior
from deft.protein.quality_curve import unconditional_samples
from tunebench.config import resolve

pytestmark = pytest.mark.usefixtures("one_thread", "restore_logging")


def straight(n: int = 8) -> np.ndarray:
    """n Cα on the x axis, 3.8 Å apart: no clash."""
    return np.stack([np.arange(n) * 3.8, np.zeros(n), np.zeros(n)], axis=1)


def folded(gap: float, n: int = 8) -> np.ndarray:
    """The straight chain with residue n−1 moved to `gap` Å above residue 0 (a pair n−1 apart at distance gap)."""
    trace = straight(n)
    trace[-1] = [0.0, 0.0, gap]
    return trace


def test_rows_follow_the_final_clash_pair_back_through_the_steps():
    # Sample 0 closes in from 6 Å to a 2 Å clash, sample 1 stays straight, sample 2 clashes midway and comes apart;
    # steps in sampler order (t falls).
    steps = [(900, np.stack([folded(6.0), straight(), folded(6.0)])),
             (400, np.stack([folded(4.0), straight(), folded(2.0)])),
             (0, np.stack([folded(2.0), straight(), straight()]))]
    rows = trajectory_rows(steps[-1][1], steps, clash_distance=3.0)
    assert [row["t"] for row in rows] == [900, 400, 0]
    assert [row["x0hat_clash_free"] for row in rows] == pytest.approx([1.0, 2 / 3, 2 / 3])
    assert [row["clash_now_if_clash_end"] for row in rows] == [0.0, 0.0, 1.0]
    assert [row["clash_now_if_free_end"] for row in rows] == [0.0, 0.5, 0.0]
    assert all(row["clashing_samples"] == 1 and row["pair_separation_median"] == 7 for row in rows)
    assert [row["pair_distance_median"] for row in rows] == pytest.approx([6.0, 4.0, 2.0])
    assert [row["pair_below_clash"] for row in rows] == [0.0, 0.0, 1.0]
    assert rows[0]["x0hat_clash_free_low"] < 1.0 == rows[0]["x0hat_clash_free_high"]


def test_without_a_clash_the_pair_columns_are_empty_and_the_table_says_so():
    steps = [(500, np.stack([straight(), straight()])), (0, np.stack([straight(), straight()]))]
    rows = trajectory_rows(steps[-1][1], steps, clash_distance=3.0)
    assert rows[-1]["clashing_samples"] == 0 and np.isnan(rows[-1]["pair_distance_median"])
    protocol = {"scale": "smoke", "model": "runs/prior/model", "samples": 2, "seeds": "0-1", "length": 8,
                "sampler": "ddim-quadratic", "sample_steps": 2, "eta": 1.0,
                "noise_scale": 1.0, "clash_distance": 3.0, "weights_sha256": "ab" * 32, "git_commit": "abc1234"}
    table = markdown([{**row, **protocol} for row in rows], every=5).splitlines()
    assert len(table) == 2 + 2 + 2  # header, the first and the last step, blank line, footnote
    assert table[3] == "| 0 | 1.00 [0.34, 1.00] | – | 0.00 | – [–, –] | – |"
    assert "0 end with a clash" in table[-1] and "commit abc1234" in table[-1]
    assert ("(seeds 0–1) of `runs/prior/model` at scale smoke with the motif table's sampler (ddim-quadratic, "
            "2 steps, η = 1, noise scale 1)") in table[-1]


def test_the_sampler_shows_every_step_and_ends_on_the_last_x0hat(smoke_prior):
    run = resolve("smoke", {"sample": {"batch_size": 3}}, cls=ProteinConfig)
    prior = load_prior(smoke_prior / "prior/model")
    with torch.no_grad():
        final, steps = sample_trajectories(prior, run, count=5, length=12)
        alone = unconditional_samples(prior, run, 5, 12)
    sampler_t = [step.t for step in protein_schedule(run.diffusion).steps(run.sample.steps, run.sample.spacing)]
    assert [t for t, _ in steps] == sampler_t and all(x0.shape == (5, 12, 3) for _, x0 in steps)
    np.testing.assert_array_equal(final, alone)  # the hook changes nothing
    last = centre(torch.from_numpy(steps[-1][1])).numpy()
    np.testing.assert_allclose(final, last, atol=1e-4)  # the last step returns its x̂0


def test_cli_writes_one_row_per_step(smoke_prior, tmp_path):
    out_csv, out_md = tmp_path / "t.csv", tmp_path / "t.md"
    clash_trajectory.main(["--model", str(smoke_prior / "prior/model"), "--scale", "smoke", "--samples", "4",
                           "--length", "12", "--out-csv", str(out_csv), "--out-md", str(out_md), "--no-progress"])
    with out_csv.open() as f:
        rows = list(csv.DictReader(f))
    run = resolve("smoke", {}, cls=ProteinConfig)
    assert tuple(rows[0]) == COLUMNS and len(rows) == run.sample.steps
    assert {row["samples"] for row in rows} == {"4"} and int(rows[-1]["t"]) < int(rows[0]["t"])
    assert {(row["scale"], row["seeds"]) for row in rows} == {("smoke", "0-3")}
    assert out_md.read_text().startswith("| t | x̂0 clash-free")
    with pytest.raises(Exception, match="--samples 0"):
        clash_trajectory.main(["--model", str(smoke_prior / "prior/model"), "--scale", "smoke", "--samples", "0",
                               "--out-csv", str(out_csv), "--out-md", str(out_md)])
