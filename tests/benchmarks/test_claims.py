"""The claims ledger: the intervals behind it (checked against published examples and hand counts), each verdict
rule on made-up results, the paper reference reader and the CLI end to end."""

import csv
import math
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import ledger
from benchmarks.claims import (
    INCONCLUSIVE,
    NOT_MEASURED,
    NOT_REPRODUCED,
    REPRODUCED,
    deft_competitive,
    deft_total_time,
    difftune_fid,
    forgetting_trend,
    judge,
    paper_claims,
    protein_solved,
)
from benchmarks.intervals import newcombe_difference_interval, spearman_trend, t_interval
from benchmarks.paper_reference import read_paper_reference
from benchmarks.results import RESULT_COLUMNS, ResultsError, append_rows

ROOT = Path(__file__).resolve().parents[2]


def frame(rows: list[dict]) -> pd.DataFrame:
    """Results rows with the columns a claim reads (the others empty)."""
    full = [{column: row.get(column, math.nan if column in ("value", "ci_low", "ci_high") else "")
             for column in RESULT_COLUMNS} for row in rows]
    return pd.DataFrame(full)


#################################################################################
#                                   Intervals                                   #
#################################################################################


def test_newcombe_interval_matches_the_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, Table II example: 56/70 − 48/80, method 10: 0.0524 to 0.3339.
    low, high = newcombe_difference_interval(56, 70, 48, 80)
    assert low == pytest.approx(0.0524, abs=1e-4) and high == pytest.approx(0.3339, abs=1e-4)


def test_t_interval_of_a_known_sample():
    low, high = t_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2) = 4.3027
    assert (low, high) == pytest.approx((2 - 4.30265 / math.sqrt(3), 2 + 4.30265 / math.sqrt(3)), abs=1e-4)
    assert all(math.isnan(bound) for bound in t_interval([5.0]))


def test_spearman_trend_counts_the_orderings():
    rho, p_up, p_down = spearman_trend([0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6])
    assert rho == pytest.approx(1.0) and p_up == pytest.approx(1 / 720) and p_down == pytest.approx(1.0)
    # one adjacent swap (Σd² = 2): as high only for the identity and the 5 adjacent swaps
    rho, p_up, _ = spearman_trend([0, 1, 2, 3, 4, 5], [1, 3, 2, 4, 5, 6])
    assert rho == pytest.approx(1 - 6 * 2 / (6 * 35)) and p_up == pytest.approx(6 / 720)
    with pytest.raises(ValueError, match="above 8"):
        spearman_trend(range(9), range(9))


#################################################################################
#                                 Verdict rules                                 #
#################################################################################


def test_difftune_claim_averages_relative_changes_over_datasets():
    rows = [{"experiment": "difftune_main", "method": method, "dataset": dataset, "metric": "fid_local",
             "value": value, "git_commit": "abc"}
            for dataset, ft, dt in (("a", 100, 80), ("b", 50, 45), ("c", 10, 8.5))
            for method, value in (("full_ft", ft), ("diff_tuning", dt))]
    measured = difftune_fid({"difftune_main": frame(rows)})
    assert measured.value == pytest.approx((-20 - 10 - 15) / 3) and measured.n == 3
    assert measured.ci_high < 0 and measured.verdict == REPRODUCED and measured.commits == ("abc",)
    rows[0]["value"], rows[1]["value"] = 300, 400  # dataset a: +33% against −10% and −15%, so 0 is inside
    assert difftune_fid({"difftune_main": frame(rows)}).verdict == INCONCLUSIVE


def test_difftune_claim_prefers_the_seed_study():
    seeds = frame([{"method": "diff_tuning", "dataset": "average", "metric": "fid_local_rel_change_pct",
                    "value": 5.0, "ci_low": 2.0, "ci_high": 8.0, "note": "t over seeds"}])
    measured = difftune_fid({"difftune_main": frame([]), "difftune_seeds": seeds})
    assert (measured.value, measured.verdict) == (5.0, NOT_REPRODUCED) and "t over seeds" in measured.detail


def test_difftune_claim_of_the_length_study_is_judged_at_its_longest_length():
    regime = frame([{"method": f"diff_tuning@steps={steps}", "dataset": "average", "metric": "fid_local_rel_change_pct",
                     "value": value, "ci_low": value - 3.0, "ci_high": value + 3.0, "note": "t over seeds",
                     "git_commit": "abc"}
                    for steps, value in ((1000, 12.0), (8000, -6.0), (4000, 2.0))])
    measured = difftune_fid({"difftune_main": frame([]), "difftune_regime": regime})
    assert (measured.value, measured.ci_high, measured.verdict) == (-6.0, -3.0, REPRODUCED)
    assert "longest length (8000 steps)" in measured.detail
    assert "1000 steps 12.0 [9.0, 15.0]; 4000 steps 2.0 [-1.0, 5.0]; 8000 steps -6.0" in measured.detail


def test_forgetting_claim_is_an_exact_trend_test():
    curve = pd.DataFrame([{"t0": t0, "direction": direction, "metric": "fid_local", "value": value}
                          for t0, value in zip(range(0, 1200, 200), (10, 12, 11, 15, 18, 20))
                          for direction in ("finetuned_then_pretrained", "pretrained_then_finetuned")])
    measured = forgetting_trend({"forgetting": curve})
    assert measured.verdict == REPRODUCED and measured.value == pytest.approx(1 - 6 * 2 / (6 * 35))
    curve["value"] = curve["value"][::-1].to_numpy()  # the reverse trend
    assert forgetting_trend({"forgetting": curve}).verdict == NOT_REPRODUCED


def paired(task: str, baseline: str, psnr: tuple, lpips: tuple) -> list[dict]:
    """deft_paired rows of one baseline: PSNR and LPIPS differences (value, low, high)."""
    return [{"experiment": "deft_paired", "method": baseline, "dataset": task, "metric": metric, "value": v,
             "ci_low": low, "ci_high": high, "n_samples": 100} for metric, (v, low, high) in
            (("psnr_diff", psnr), ("lpips_diff", lpips))]


def test_deft_claim_counts_metrics_where_a_baseline_is_better():
    better = paired("sr4", "dps", (1.0, 0.5, 1.5), (-0.02, -0.03, -0.01))
    tie = paired("sr4", "ddrm", (0.2, -0.1, 0.5), (0.0, -0.01, 0.01))
    ddnm_wins = paired("sr4", "ddnm", (-3.0, -3.5, -2.5), (0.1, 0.05, 0.15))  # not a baseline the paper names
    measured = deft_competitive("sr4")({"deft_paired": frame(better + tie + ddnm_wins)})
    assert measured.verdict == REPRODUCED and measured.value == 0.2
    assert (measured.ci_low, measured.ci_high) == (-0.1, 0.5)
    worse = paired("sr4", "reddiff", (-1.0, -1.5, -0.5), (0.02, 0.01, 0.03))  # better on both
    assert deft_competitive("sr4")({"deft_paired": frame(better + worse)}).verdict == NOT_REPRODUCED
    one = paired("sr4", "reddiff", (-1.0, -1.5, -0.5), (0.0, -0.01, 0.01))
    assert deft_competitive("sr4")({"deft_paired": frame(better + one)}).verdict == INCONCLUSIVE
    assert deft_competitive("hdr")({"deft_paired": frame(better)}).verdict == NOT_MEASURED
    # LPIPS skipped (no local AlexNet weights): a row without a value, judged on PSNR and SSIM alone.
    skipped = [{"experiment": "deft_paired", "method": method, "dataset": "sr4", "metric": "lpips_diff",
                "note": "lpips skipped"} for method in ("dps", "reddiff")]
    measured = deft_competitive("sr4")({"deft_paired": frame(better + worse + skipped)})
    assert measured.verdict == NOT_REPRODUCED and "not measured: lpips_diff" in measured.detail
    assert deft_competitive("sr4")({"deft_paired": frame(better + skipped[:1])}).verdict == REPRODUCED


def test_deft_speed_claim_compares_total_times():
    times = {("inpaint", "deft"): 100, ("inpaint", "dps"): 160, ("inpaint", "reddiff"): 120,
             ("sr4", "deft"): 100, ("sr4", "dps"): 90, ("sr4", "reddiff"): 150}
    rows = frame([{"method": m, "dataset": t, "metric": "time_total_s", "value": v} for (t, m), v in times.items()])
    measured = deft_total_time({"deft_main": rows})
    assert measured.value == pytest.approx(0.9) and measured.verdict == INCONCLUSIVE and measured.n == 4
    assert "dps on sr4 0.90×" in measured.detail


def test_deft_speed_claim_states_the_papers_count_beside_ours():
    # 100 test images: DEFT trains 90 s and samples 10 s, DPS samples 90 s. At 1000 images DEFT takes 90 + 100 s and
    # DPS 900 s, 4.74×; the verdict stays on the measured images, where DEFT is slower.
    rows = frame([{"method": m, "dataset": "sr4", "metric": metric, "value": v, "n_samples": 100}
                  for m, metric, v in (("deft", "time_train_s", 90), ("deft", "time_sample_s", 10),
                                       ("deft", "time_total_s", 100), ("dps", "time_sample_s", 90),
                                       ("dps", "time_total_s", 90))])
    measured = deft_total_time({"deft_main": rows})
    assert measured.value == pytest.approx(0.9) and measured.verdict == NOT_REPRODUCED
    assert "At the paper's count (1000 images, the sampling time scaled): dps on sr4 4.74×" in measured.detail


def test_protein_claim_pools_samples_and_counts_solved_problems():
    def rows(method, rates):
        return [{"method": method, "dataset": f"P{i}", "metric": metric, "value": value, "n_samples": 100}
                for i, rate in enumerate(rates) for metric, value in (("success_rate", rate), ("solved", rate > 0))]
    motif = frame(rows("deft-4", [0.0, 0.0]) + rows("deft-9", [0.3, 0.2]) + rows("dps", [0.0, 0.05]))
    measured = protein_solved({"protein_motif": motif})
    assert measured.value == pytest.approx(100 * (50 / 200 - 5 / 200)) and measured.ci_low > 0
    assert measured.verdict == REPRODUCED and "deft-9 2 of 2, dps 1 of 2" in measured.detail


def test_a_claim_without_its_results_is_not_measured():
    claim = next(c for c in paper_claims(["inpaint"]) if c.claim_id == "DT-4-lora")
    measured = judge(claim, {"difftune_main": frame([])})
    assert measured.verdict == NOT_MEASURED and "difftune_peft.csv" in measured.detail


#################################################################################
#                          Paper reference and the CLI                          #
#################################################################################


def test_the_committed_paper_reference_reads_and_names_its_sources():
    reference = read_paper_reference(ROOT / "results/paper_reference.csv")
    claimed = reference.set_index(["experiment", "method", "dataset", "metric"])["value"]
    assert claimed["difftune_main", "diff_tuning", "average", "fid_rel_change_pct"] == -24.6
    assert claimed["protein_motif", "dps", "rfdiffusion-contiguous", "solved"] == 5
    assert reference["source"].str.len().gt(0).all()
    assert reference.loc[reference["value"].isna(), "note"].str.startswith("not found").all()
    keys = {claim.paper_key for claim in paper_claims(["inpaint"]) if claim.paper_key}
    assert keys <= set(claimed.index)  # every claim's paper row exists


@pytest.mark.parametrize("edit, message", [
    ({"source": " "}, "'source' is empty"),
    ({"value": ""}, "must have a note that begins 'not found'"),
])
def test_paper_reference_errors_name_the_line(tmp_path, edit, message):
    with open(ROOT / "results/paper_reference.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        first = next(reader) | edit
    with open(tmp_path / "ref.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerow(first)
    with pytest.raises(ResultsError, match=f"line 2: .*{message}"):
        read_paper_reference(tmp_path / "ref.csv")


def test_ledger_cli_writes_every_claim(tmp_path):
    results = tmp_path / "difftune_main.csv"
    append_rows(results, [{**{c: "" for c in RESULT_COLUMNS}, "experiment": "difftune_main", "method": method,
                           "dataset": dataset, "metric": "fid_local", "value": value, "seed": 0}
                          for dataset, ft, dt in (("a", 100, 80), ("b", 50, 45))
                          for method, value in (("full_ft", ft), ("diff_tuning", dt))])
    out_csv, out_md = tmp_path / "claims/headline.csv", tmp_path / "claims/headline.md"
    ledger.main(["--results", str(results), "--paper-reference", str(ROOT / "results/paper_reference.csv"),
                 "--tasks", "inpaint,sr4", "--scale", "smoke", "--out-csv", str(out_csv), "--out-md", str(out_md)])
    rows = pd.read_csv(out_csv).set_index("claim_id")
    assert list(rows.columns) == list(ledger.LEDGER_COLUMNS)[1:]
    assert rows.loc["DT-1", "value"] == pytest.approx(-15.0) and rows.loc["DT-1", "paper_value"] == -24.6
    assert {"DEFT-1-inpaint", "DEFT-1-sr4"} <= set(rows.index)
    assert set(rows.drop(index="DT-1")["verdict"]) == {NOT_MEASURED}
    page = out_md.read_text()
    assert "| DT-1 |" in page and "-15 [" in page and "**not measured**" in page


def test_controlnet_claim_maps_the_acceleration_to_fewer_steps():
    from benchmarks.claims import controlnet_speedup

    rows = frame([{"method": "diff_tuning", "metric": "acceleration:all", "value": 1.25, "ci_low": 1.1,
                   "ci_high": 1.5, "seed": 0},
                  {"method": "diff_tuning", "metric": "acceleration:canny", "value": 1.25, "seed": 0}])
    measured = controlnet_speedup({"controlnet": rows})
    assert measured.value == pytest.approx(20.0) and measured.ci_low == pytest.approx(100 * (1 - 1 / 1.1))
    assert measured.verdict == REPRODUCED and "canny 1.25×" in measured.detail
    rows.loc[0, ["ci_low", "ci_high"]] = [0.8, 1.5]
    assert controlnet_speedup({"controlnet": rows}).verdict == INCONCLUSIVE
