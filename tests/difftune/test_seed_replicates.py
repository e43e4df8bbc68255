"""The training-seed replicates: their summary rows (hand-checked means, paired relative changes and intervals), the
checks on the replicates, the CLI and the table layout."""

import pandas as pd
import pytest

from benchmarks.results import ResultsError, read_results
from benchmarks.tables import to_markdown
from difftune import seeds
from difftune.report import plot_regime, regime_table, seeds_table
from difftune.seed_replicates import summary_rows

# FID per (method, dataset) of training seeds 0, 1, 2. mnist5k: diff_tuning changes full_ft by −10%, −5%, 0%;
# digits: by 0%, −20%, −10%.
FIDS = {("full_ft", "mnist5k"): [40.0, 40.0, 50.0], ("diff_tuning", "mnist5k"): [36.0, 38.0, 50.0],
        ("full_ft", "digits"): [20.0, 25.0, 20.0], ("diff_tuning", "digits"): [20.0, 20.0, 18.0]}


def fid_row(method, dataset, value, seed, **fields):
    """A FID row as rule fid_finetuned writes it (seed 0 under the main comparison's plain run name)."""
    return {"experiment": "difftune_main" if seed == 0 else "difftune_seeds",
            "method": method if seed == 0 else f"{method}@seed={seed}", "dataset": dataset, "metric": "fid_local",
            "value": value, "ci_low": value + 1.0, "ci_high": value + 3.0, "seed": 0, "scale": "mini",
            "model": f"runs/mini/finetune/{dataset}/{method}/{seed}", "steps": 50, "sampler": "ddpm",
            "guidance": 1.5, "n_samples": 500, "extractor": "local-x", "reference": f"{dataset}.npz",
            "git_commit": "", "config_hash": "", "note": "bootstrap", **fields}


def replicate_rows(fids=FIDS, **fields):
    """The FID rows of every replicate, and a KID row the summary leaves out."""
    rows = [fid_row(method, dataset, value, seed, **fields)
            for (method, dataset), values in fids.items() for seed, value in enumerate(values)]
    return pd.DataFrame(rows + [{**rows[0], "metric": "kid_local"}])


def by_key(rows):
    """Summary rows keyed by (dataset, method, metric)."""
    return {(row["dataset"], row["method"], row["metric"]): row for row in rows}


def test_summary_by_hand():
    rows = by_key(summary_rows(replicate_rows(), "fid_local", "full_ft"))
    full = rows[("mnist5k", "full_ft", "fid_local")]
    # [40, 40, 50]: mean 43.333, s = √(100/3) = 5.7735, t(0.975; 2) s/√3 = 4.302653 · 3.333333 = 14.342177.
    assert full["value"] == pytest.approx(130 / 3)
    assert (full["ci_low"], full["ci_high"]) == pytest.approx((130 / 3 - 14.342177, 130 / 3 + 14.342177))
    assert rows[("mnist5k", "full_ft", "fid_local_std")]["value"] == pytest.approx(5.773503)
    assert "per seed: 40, 40, 50" in full["note"] and full["experiment"] == "difftune_seeds"
    # Paired changes −10, −5, 0 %: mean −5, s = 5, half-width 4.302653 · 5 / √3 = 12.420689.
    change = rows[("mnist5k", "diff_tuning", "fid_local_rel_change_pct")]
    assert change["value"] == pytest.approx(-5.0)
    assert (change["ci_low"], change["ci_high"]) == pytest.approx((-17.420689, 7.420689))
    assert "paired relative change" in change["note"] and "t-interval" in change["note"]
    # digits: 0, −20, −10 %: mean −10, s = 10, half-width 24.841377.
    assert (rows[("digits", "diff_tuning", "fid_local_rel_change_pct")]["ci_low"]) == pytest.approx(-34.841377)
    # Average of −5 and −10 = −7.5; v = s²/n = 25/3 and 100/3, standard error √(125/3) / 2 = 3.227486, Welch–
    # Satterthwaite df = (125/3)² / ((25/3)²/2 + (100/3)²/2) = 50/17, t(0.975; 50/17) = 3.218759 → ±10.388499.
    average = rows[("average", "diff_tuning", "fid_local_rel_change_pct")]
    assert average["value"] == pytest.approx(-7.5)
    assert (average["ci_low"], average["ci_high"]) == pytest.approx((-17.888499, 2.888499))
    assert "Welch–Satterthwaite" in average["note"] and average["reference"] == ""
    assert rows[("average", "full_ft", "fid_local")]["value"] == pytest.approx((130 / 3 + 65 / 3) / 2)
    assert ("mnist5k", "full_ft", "fid_local_rel_change_pct") not in rows  # the baseline has no change
    # Each replicate's own row, seed 0 included, under its run name and with its bootstrap interval.
    replicate = rows[("digits", "full_ft@seed=0", "fid_local")]
    assert (replicate["value"], replicate["ci_low"], replicate["note"]) == (20.0, 21.0, "bootstrap")
    assert ("digits", "full_ft", "kid_local") not in rows and ("digits", "full_ft@seed=0", "kid_local") not in rows


@pytest.mark.parametrize("change, message", [
    (lambda rows: rows.drop(index=2), "the same training seeds"),
    (lambda rows: rows.assign(method=rows["method"].replace("full_ft@seed=1", "full_ft@tau=0.5")),
     r"not \['full_ft@tau=0.5'\]"),
    (lambda rows: rows.assign(value=rows["value"].where(rows.index != 4)), "has no fid_local value"),
    (lambda rows: rows[rows["method"].isin(["full_ft", "diff_tuning"])], "at least 2 training seeds"),
    (lambda rows: rows.assign(n_samples=range(len(rows))), "disagree on n_samples"),
    (lambda rows: rows[~rows["method"].str.startswith("full_ft")], r"baseline \['full_ft'\]"),
])
def test_bad_replicates_are_errors(change, message):
    with pytest.raises(ResultsError, match=message):
        summary_rows(change(replicate_rows()), "fid_local", "full_ft")


def test_cli_writes_the_study_and_the_table_renders_it(tmp_path):
    inputs = []
    for index, row in enumerate(replicate_rows().to_dict("records")):
        path = tmp_path / f"in{index}.csv"
        pd.DataFrame([row]).to_csv(path, index=False)
        inputs.append(str(path))
    out = tmp_path / "difftune_seeds.csv"
    seeds.main(["--out", str(out), *inputs])
    study = read_results(out)
    assert set(study["experiment"]) == {"difftune_seeds"} and set(study["dataset"]) == {"mnist5k", "digits",
                                                                                        "average"}
    table = to_markdown(seeds_table(study, "difftune_seeds"))
    lines = table.splitlines()
    assert lines[0] == ("| Dataset | full_ft | diff_tuning | Rel. change of diff_tuning vs full_ft [95% CI] |")
    assert "| mnist5k | 43.33 ± 5.77 | **41.33 ± 7.57** | -5.0% [-17.4, +7.4] |" in lines
    assert "| Average | 32.50 | **30.33** | -7.5% [-17.9, +2.9] |" in lines
    assert "3 training seeds (0, 1, 2)" in table and "Welch–Satterthwaite" in table


def regime_rows():
    """The replicates' FID rows at two fine-tuning lengths, named as the fine-tuning-length study names them: at
    4000 steps every value is the 1000-step one plus 10 for full_ft and minus 10 for diff_tuning."""
    rows = replicate_rows().query("metric == 'fid_local'")
    short = rows.assign(method=rows["method"].map(lambda m: m if "@seed=" in m else f"{m}@seed=0") + "@steps=1000")
    long = short.assign(method=short["method"].str.replace("@steps=1000", "@steps=4000"),
                        value=short["value"] + short["method"].str.startswith("full_ft").map({True: 10.0,
                                                                                               False: -10.0}))
    return pd.concat([short, long], ignore_index=True)


def test_regime_summaries_pair_each_length_with_the_baseline_of_that_length(tmp_path):
    rows = by_key(summary_rows(regime_rows(), "fid_local", "full_ft", "difftune_regime"))
    assert rows[("mnist5k", "full_ft@steps=1000", "fid_local")]["value"] == pytest.approx(130 / 3)
    assert rows[("mnist5k", "full_ft@steps=4000", "fid_local")]["value"] == pytest.approx(130 / 3 + 10)
    # 1000 steps: the seed study's −10, −5, 0 %; 4000 steps: (26−50)/50, (28−50)/50, (40−60)/60.
    assert rows[("mnist5k", "diff_tuning@steps=1000", "fid_local_rel_change_pct")]["value"] == pytest.approx(-5.0)
    change = rows[("mnist5k", "diff_tuning@steps=4000", "fid_local_rel_change_pct")]
    assert change["value"] == pytest.approx(100 * (-24 / 50 - 22 / 50 - 20 / 60) / 3)
    assert "full_ft@steps=4000" in change["note"] and change["experiment"] == "difftune_regime"
    assert ("digits", "diff_tuning@seed=2@steps=4000", "fid_local") in rows  # each run's own row
    out = tmp_path / "regime.csv"
    inputs = []
    for index, row in enumerate(regime_rows().to_dict("records")):
        inputs.append(str(tmp_path / f"in{index}.csv"))
        pd.DataFrame([row]).to_csv(inputs[-1], index=False)
    seeds.main(["--out", str(out), "--experiment", "difftune_regime", *inputs])
    lines = to_markdown(regime_table(read_results(out), "difftune_regime")).splitlines()
    assert lines[0] == ("| Fine-tuning steps | Dataset | full_ft | diff_tuning | Rel. change of diff_tuning vs "
                        "full_ft [95% CI] |")
    assert "| 1000 | mnist5k | 43.33 ± 5.77 | **41.33 ± 7.57** | -5.0% [-17.4, +7.4] |" in lines
    assert any(line.startswith("| 4000 | mnist5k | 53.33 ± 5.77 | **31.33 ± 7.57** |") for line in lines)
    plot_regime(read_results(out), tmp_path / "regime.png")
    assert (tmp_path / "regime.png").stat().st_size > 10_000


def test_a_length_without_its_baseline_is_an_error():
    rows = regime_rows()
    with pytest.raises(ResultsError, match=r"baseline \['full_ft@steps=4000'\]"):
        summary_rows(rows[rows["method"] != "full_ft@seed=1@steps=4000"].query(
            "~method.str.startswith('full_ft') or method.str.endswith('=1000')"), "fid_local", "full_ft")
