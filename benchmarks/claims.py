"""The claims of the two papers and the rules that turn our numbers into verdicts.

Each `Claim` names the results it reads, the number that tests it here (with a 95% interval where one can be made)
and its verdict rule, written in this file before the numbers it judges were produced. A verdict is one of
VERDICTS: `reproduced` and `not reproduced` need the interval (or the exact test) to decide; `inconclusive` is an
interval that straddles the claim's boundary or a number without one; `not measured` is a claim whose results are
not among the inputs (its study belongs to target `all`). The ledger CLI (`benchmarks.ledger`) renders them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmarks.intervals import newcombe_difference_interval, pooled_successes, spearman_trend, t_interval
from benchmarks.total_time import PAPER_TIME_IMAGES, TIME_BASELINES, ratios_to_deft

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_MEASURED = "reproduced", "not reproduced", "inconclusive", "not measured"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_MEASURED)
TREND_ALPHA = 0.05  # one-sided level of the exact trend test (chain of forgetting)
HEAD_FRACTION_RANGE = (0.035, 0.095)  # the paper's "4–9%" as rounded percentages
DEFT_PAPER_BASELINES = ("dps", "pigdm", "ddrm", "reddiff")  # the baselines the claim names (DDNM is ours)
# DEFT vs a baseline on one metric: the sign of (DEFT − baseline) that favours DEFT.
DEFT_FAVOURED_SIGN = {"psnr_diff": 1, "ssim_diff": 1, "lpips_diff": -1}


@dataclass(frozen=True)
class Measurement:
    """Our number for one claim, its 95% interval (NaN when none), how many units it averages and the verdict."""

    value: float
    verdict: str
    detail: str
    ci_low: float = math.nan
    ci_high: float = math.nan
    n: int | None = None
    commits: tuple[str, ...] = ()


@dataclass(frozen=True)
class Claim:
    """One paper claim: what it says, where, which results test it, what our number is and the verdict rule."""

    claim_id: str
    paper: str
    statement: str
    paper_key: tuple[str, str, str, str] | None  # (experiment, method, dataset, metric) in paper_reference.csv
    needs: tuple[str, ...]  # the results files (by name without .csv) the claim reads
    measure: str
    rule: str
    evaluate: Callable[[dict[str, pd.DataFrame]], Measurement]


#################################################################################
#                                    Helpers                                    #
#################################################################################


def not_measured(needs: tuple[str, ...], inputs: dict[str, pd.DataFrame]) -> Measurement | None:
    """A `not measured` verdict naming the missing results, or None when every needed file is there."""
    missing = [name for name in needs if name not in inputs]
    if not missing:
        return None
    return Measurement(math.nan, NOT_MEASURED, f"needs {', '.join(f'{m}.csv' for m in missing)}, which this "
                       "ledger was not given (its study runs in target all, or has not run)")


def side_verdict(low: float, high: float, claimed: str) -> str:
    """`reproduced` when the interval lies wholly on the claimed side of 0 ('below' or 'above'), `not reproduced`
    when wholly on the other, `inconclusive` when it contains 0 or is missing."""
    if math.isnan(low) or math.isnan(high):
        return INCONCLUSIVE
    below, above = high < 0, low > 0
    if claimed == "below":
        return REPRODUCED if below else NOT_REPRODUCED if above else INCONCLUSIVE
    return REPRODUCED if above else NOT_REPRODUCED if below else INCONCLUSIVE


def commits_of(*frames: pd.DataFrame) -> tuple[str, ...]:
    """The git commits of the rows a number came from, sorted."""
    return tuple(sorted({c for frame in frames if "git_commit" in frame for c in frame["git_commit"] if c}))


def metric_rows(frame: pd.DataFrame, metric: str, **columns: str) -> pd.DataFrame:
    """The rows of `metric` whose other columns equal `columns`."""
    mask = frame["metric"] == metric
    for column, value in columns.items():
        mask &= frame[column] == value
    return frame[mask]


def relative_changes(frame: pd.DataFrame, method: str, baseline: str, metric: str = "fid_local") -> pd.Series:
    """100·(method − baseline)/baseline per dataset (datasets where both have a value), one seed each."""
    rows = frame[frame["metric"] == metric].pivot_table(index="dataset", columns="method", values="value",
                                                        aggfunc="mean")
    if method not in rows or baseline not in rows:
        return pd.Series(dtype="float64")
    both = rows[[method, baseline]].dropna()
    return 100 * (both[method] - both[baseline]) / both[baseline]


def format_interval(value: float, low: float, high: float, digits: int = 2) -> str:
    """'v [low, high]', or 'v' without an interval."""
    if math.isnan(low):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def mean_change(changes: pd.Series, frame: pd.DataFrame, claimed: str, unit: str) -> Measurement:
    """The mean of per-unit changes with its t-interval over the units and the verdict on `claimed` side of 0."""
    if changes.empty:
        return Measurement(math.nan, INCONCLUSIVE, "no pairs of results to compare", commits=commits_of(frame))
    low, high = t_interval(changes.to_numpy())
    pieces = ", ".join(f"{name} {value:+.1f}" for name, value in changes.items())
    detail = f"per {unit}: {pieces}; interval: Student t over the {len(changes)} {unit}s"
    return Measurement(float(changes.mean()), side_verdict(low, high, claimed), detail, low, high, len(changes),
                       commits_of(frame))


#################################################################################
#                                 Diff-Tuning                                   #
#################################################################################


def regime_lengths(regime: pd.DataFrame) -> dict[int, pd.Series]:
    """The fine-tuning-length study's average relative change of Diff-Tuning per length: training steps → its row
    (method `diff_tuning@steps=N`, dataset `average`)."""
    rows = metric_rows(regime, "fid_local_rel_change_pct", dataset="average")
    lengths = {}
    for _, row in rows.iterrows():
        head, _, steps = str(row["method"]).partition("@steps=")
        if head == "diff_tuning" and steps.isdigit():
            lengths[int(steps)] = row
    return dict(sorted(lengths.items()))


def difftune_fid(inputs: dict[str, pd.DataFrame]) -> Measurement:
    """Diff-Tuning's average relative FID change against full fine-tuning: at the longest length of the
    fine-tuning-length study when it ran (the regime nearest the paper's 24k steps; every length in the detail),
    else over training seeds when the seed study ran (its own interval), else one seed per dataset with a
    t-interval over the datasets."""
    regime = inputs.get("difftune_regime")
    lengths = regime_lengths(regime) if regime is not None else {}
    if lengths:
        steps, row = max(lengths.items())
        each = "; ".join(f"{n} steps {format_interval(r['value'], r['ci_low'], r['ci_high'], 1)}"
                         for n, r in lengths.items())
        return Measurement(row["value"], side_verdict(row["ci_low"], row["ci_high"], "below"),
                           f"fine-tuning-length study, judged at its longest length ({steps} steps); per length: "
                           f"{each}; {row['note']}", row["ci_low"], row["ci_high"], commits=commits_of(regime))
    seeds = inputs.get("difftune_seeds")
    if seeds is not None:
        average = metric_rows(seeds, "fid_local_rel_change_pct", method="diff_tuning", dataset="average")
        if not average.empty:
            row = average.iloc[0]
            return Measurement(row["value"], side_verdict(row["ci_low"], row["ci_high"], "below"),
                               f"over training seeds: {row['note']}", row["ci_low"], row["ci_high"],
                               commits=commits_of(seeds))
    return mean_change(relative_changes(inputs["difftune_main"], "diff_tuning", "full_ft"), inputs["difftune_main"],
                       "below", "dataset")


def forgetting_trend(inputs: dict[str, pd.DataFrame]) -> Measurement:
    """Spearman's ρ of fid_local with t0 when the pre-trained model takes over below t0, with the exact one-sided
    permutation test; kid_local's trend in the detail."""
    curve = inputs["forgetting"]
    spliced = curve[curve["direction"] == "finetuned_then_pretrained"].sort_values("t0")
    fid = spliced[spliced["metric"] == "fid_local"]
    if len(fid) < 3:
        return Measurement(math.nan, INCONCLUSIVE, "fewer than 3 switch steps", commits=commits_of(curve))
    rho, p_increasing, p_decreasing = spearman_trend(fid["t0"], fid["value"])
    verdict = (REPRODUCED if p_increasing < TREND_ALPHA else NOT_REPRODUCED if p_decreasing < TREND_ALPHA
               else INCONCLUSIVE)
    detail = (f"fid_local at t0 = {', '.join(f'{t:g}: {v:.1f}' for t, v in zip(fid['t0'], fid['value']))}; "
              f"exact permutation p (increasing) = {p_increasing:.3f}")
    kid = spliced[spliced["metric"] == "kid_local"]
    if len(kid) >= 3:
        kid_rho, kid_p, _ = spearman_trend(kid["t0"], kid["value"])
        detail += f"; kid_local ρ = {kid_rho:+.2f} (p increasing = {kid_p:.3f})"
    return Measurement(rho, verdict, detail, n=len(fid), commits=commits_of(curve))


def retention_set_vs_source(inputs: dict[str, pd.DataFrame]) -> Measurement:
    """fid_local of Diff-Tuning with the whole pre-sampled retention set against the same with real source images:
    the relative change, and the verdict from the two runs' fid_local intervals (separated or not)."""
    frame = inputs["ablation_retention_set"]
    fid = frame[frame["metric"] == "fid_local"]
    sizes = fid[fid["method"].str.startswith("diff_tuning@retention_size=")]
    source = fid[fid["method"] == "diff_tuning@retention=source"]
    if sizes.empty or source.empty:
        return Measurement(math.nan, INCONCLUSIVE, "the ablation lacks the full set or the source run",
                           commits=commits_of(frame))
    generated = sizes.loc[sizes["method"].str.rsplit("=", n=1).str[1].astype(int).idxmax()]
    source = source.iloc[0]
    change = 100 * (generated["value"] - source["value"]) / source["value"]
    if math.isnan(generated["ci_low"]) or math.isnan(source["ci_low"]):
        verdict, how = INCONCLUSIVE, "no fid_local intervals to compare"
    elif generated["ci_high"] < source["ci_low"]:
        verdict, how = REPRODUCED, "the fid_local intervals are separated"
    elif generated["ci_low"] > source["ci_high"]:
        verdict, how = NOT_REPRODUCED, "the fid_local intervals are separated"
    else:
        verdict, how = INCONCLUSIVE, "the fid_local intervals overlap"
    generated_fid = format_interval(generated["value"], generated["ci_low"], generated["ci_high"], 1)
    source_fid = format_interval(source["value"], source["ci_low"], source["ci_high"], 1)
    detail = f"{generated['method']} {generated_fid} vs source images {source_fid}; {how}"
    return Measurement(change, verdict, detail, commits=commits_of(frame))


def peft_gain(peft: str) -> Callable[[dict[str, pd.DataFrame]], Measurement]:
    """Diff-Tuning's average relative FID change against standard fine-tuning, both with the PEFT method `peft`."""

    def evaluate(inputs: dict[str, pd.DataFrame]) -> Measurement:
        """The change over the PEFT table's datasets."""
        frame = inputs["difftune_peft"]
        return mean_change(relative_changes(frame, f"diff_tuning+{peft}", f"full_ft+{peft}"), frame, "below",
                           "dataset")

    return evaluate


def controlnet_speedup(inputs: dict[str, pd.DataFrame]) -> Measurement:
    """How many fewer steps the Diff-Tuning objective needs to converge, in % of the standard objective's:
    100·(1 − 1/a) for the summary's `acceleration:all` a (the ratio of geometric-mean convergence steps over seeds,
    across conditions), its Welch interval carried through the same monotone map."""
    frame = inputs["controlnet"]
    rows = metric_rows(frame, "acceleration:all", method="diff_tuning")
    if rows.empty or pd.isna(rows.iloc[0]["value"]):
        return Measurement(math.nan, INCONCLUSIVE, "no acceleration over the conditions (an arm never converged, or "
                           "no diff_tuning arm)", commits=commits_of(frame))
    row = rows.iloc[0]

    def speedup(ratio: float) -> float:
        """Fewer steps, in % of the standard objective's."""
        return 100 * (1 - 1 / ratio)

    low, high = (speedup(row["ci_low"]), speedup(row["ci_high"])) if not pd.isna(row["ci_low"]) else (math.nan,) * 2
    per_condition = frame[frame["metric"].str.startswith("acceleration:") & (frame["metric"] != "acceleration:all")
                          & (frame["method"] == "diff_tuning")]
    pieces = ", ".join(f"{m.split(':', 1)[1]} {v:.2f}×" for m, v in zip(per_condition["metric"],
                                                                        per_condition["value"]))
    detail = (f"acceleration over the conditions {row['value']:.2f}× (standard / Diff-Tuning convergence steps, "
              f"geometric means over seeds); per condition: {pieces}; interval: Welch on the log ratio")
    return Measurement(speedup(row["value"]), side_verdict(low, high, "above"), detail, low, high,
                       commits=commits_of(frame))


#################################################################################
#                                     DEFT                                      #
#################################################################################


def deft_competitive(task: str) -> Callable[[dict[str, pd.DataFrame]], Measurement]:
    """DEFT against each of the paper's baselines run on `task`, by the paired per-image intervals of the PSNR,
    SSIM and LPIPS differences; our number is the smallest PSNR difference (DEFT − baseline)."""

    def evaluate(inputs: dict[str, pd.DataFrame]) -> Measurement:
        """The verdict over the baselines of that task."""
        frame = inputs["deft_paired"]
        rows = frame[(frame["dataset"] == task) & frame["method"].isin(DEFT_PAPER_BASELINES)
                     & frame["metric"].isin(list(DEFT_FAVOURED_SIGN))]
        if rows.empty:
            return Measurement(math.nan, NOT_MEASURED, f"no paired rows for {task}", commits=commits_of(frame))
        # A metric skipped for want of local weights (LPIPS without AlexNet) has no value: judged on the others.
        skipped = sorted(set(rows.loc[rows["value"].isna(), "metric"]))
        rows = rows[rows["value"].notna()]
        if rows.empty or rows["ci_low"].isna().any():
            return Measurement(math.nan, INCONCLUSIVE, "paired rows without intervals", commits=commits_of(frame))
        signed_low = np.where(rows["metric"].map(DEFT_FAVOURED_SIGN) > 0, rows["ci_low"], -rows["ci_high"])
        signed_high = np.where(rows["metric"].map(DEFT_FAVOURED_SIGN) > 0, rows["ci_high"], -rows["ci_low"])
        rows = rows.assign(deft_better=signed_low > 0, baseline_better=signed_high < 0)
        worse_by_baseline = rows.groupby("method")["baseline_better"].sum()
        if (worse_by_baseline >= 2).any():
            verdict = NOT_REPRODUCED
        elif worse_by_baseline.sum() > 0:
            verdict = INCONCLUSIVE
        else:
            verdict = REPRODUCED
        summary = [f"vs {method}: DEFT better on {int(group['deft_better'].sum())}, worse on "
                   f"{int(group['baseline_better'].sum())} of {len(group)}"
                   for method, group in rows.groupby("method")]
        if skipped:
            summary.append(f"not measured: {', '.join(skipped)} (judged on the other metrics)")
        psnr = rows[rows["metric"] == "psnr_diff"]
        if psnr.empty:
            return Measurement(math.nan, verdict, "; ".join(summary), commits=commits_of(frame))
        weakest = psnr.loc[psnr["value"].idxmin()]
        detail = f"smallest PSNR difference vs {weakest['method']}; " + "; ".join(summary)
        return Measurement(weakest["value"], verdict, detail, weakest["ci_low"], weakest["ci_high"],
                           int(weakest["n_samples"]) if not pd.isna(weakest["n_samples"]) else None,
                           commits_of(frame))

    return evaluate


def deft_total_time(inputs: dict[str, pd.DataFrame]) -> Measurement:
    """Total time (DEFT's head training included) of DPS and RED-diff over DEFT's, per task, on the run's test images:
    our number is the smallest ratio; the verdict counts the (task, baseline) pairs where DEFT is slower. The detail
    adds the ratios at the paper's count of images (benchmarks.total_time)."""
    frame = inputs["deft_main"]
    if metric_rows(frame, "time_total_s", method="deft").empty:
        return Measurement(math.nan, NOT_MEASURED, "no DEFT time rows", commits=commits_of(frame))
    ratios = ratios_to_deft(frame, against=TIME_BASELINES)
    if not ratios:
        return Measurement(math.nan, NOT_MEASURED, "no DPS or RED-diff time rows", commits=commits_of(frame))
    slower = sum(ratio < 1 for ratio in ratios.values())
    verdict = REPRODUCED if slower == 0 else NOT_REPRODUCED if 2 * slower > len(ratios) else INCONCLUSIVE
    at_paper_count = ratios_to_deft(frame, PAPER_TIME_IMAGES, against=TIME_BASELINES)
    detail = ("baseline/DEFT total time on the test images: "
              + ", ".join(f"{b} on {t} {r:.2f}×" for (t, b), r in ratios.items())
              + f"; DEFT slower in {slower} of {len(ratios)}. At the paper's count ({PAPER_TIME_IMAGES} images, the "
              "sampling time scaled): " + ", ".join(f"{b} on {t} {r:.2f}×" for (t, b), r in at_paper_count.items())
              + f"; DEFT slower in {sum(r < 1 for r in at_paper_count.values())} of {len(at_paper_count)}")
    return Measurement(min(ratios.values()), verdict, detail, n=len(ratios), commits=commits_of(frame))


def head_fractions(inputs: dict[str, pd.DataFrame]) -> Measurement:
    """Every DEFT head's size as a share of its frozen model (`head_fraction` rows, images and protein): our number
    is the largest."""
    frames = [inputs[name] for name in ("deft_main", "protein_motif") if name in inputs]
    rows = pd.concat([metric_rows(frame, "head_fraction") for frame in frames])
    if rows.empty:
        return Measurement(math.nan, NOT_MEASURED, "no head_fraction rows", commits=commits_of(*frames))
    fractions = rows.groupby(["experiment", "method"])["value"].max()
    low, high = HEAD_FRACTION_RANGE
    verdict = REPRODUCED if fractions.between(low, high).all() else NOT_REPRODUCED
    detail = ", ".join(f"{method} ({experiment}) {value:.3f}" for (experiment, method), value in fractions.items())
    return Measurement(float(fractions.max()), verdict, detail, n=len(fractions), commits=commits_of(rows))


def protein_solved(inputs: dict[str, pd.DataFrame]) -> Measurement:
    """The pooled success rate of the larger DEFT head minus DPS's, in percentage points, with Newcombe's interval;
    the solved counts decide together with it."""
    frame = inputs["protein_motif"]
    heads = sorted({m for m in frame["method"] if m.startswith("deft-")}, key=lambda m: int(m.split("-")[1]))
    if not heads or "dps" not in set(frame["method"]):
        return Measurement(math.nan, NOT_MEASURED, "no DEFT head or DPS rows", commits=commits_of(frame))
    deft = heads[-1]

    def pooled(method: str) -> tuple[int, int, int]:
        """Successes, samples and solved problems of one method."""
        rates = metric_rows(frame, "success_rate", method=method)
        successes, samples = pooled_successes(rates["value"], rates["n_samples"])
        return successes, samples, int(metric_rows(frame, "solved", method=method)["value"].sum())

    (s_deft, n_deft, solved_deft), (s_dps, n_dps, solved_dps) = pooled(deft), pooled("dps")
    if not (n_deft and n_dps):
        return Measurement(math.nan, NOT_MEASURED, "no success_rate rows", commits=commits_of(frame))
    low, high = (100 * bound for bound in newcombe_difference_interval(s_deft, n_deft, s_dps, n_dps))
    difference = 100 * (s_deft / n_deft - s_dps / n_dps)
    if solved_deft > solved_dps and low > 0:
        verdict = REPRODUCED
    elif solved_deft < solved_dps or high < 0:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    problems = frame.loc[frame["metric"] == "solved", "dataset"].nunique()
    detail = (f"solved: {deft} {solved_deft} of {problems}, dps {solved_dps} of {problems}; pooled success "
              f"{s_deft}/{n_deft} vs {s_dps}/{n_dps}; interval: Newcombe (Wilson) over samples")
    return Measurement(difference, verdict, detail, low, high, n_deft + n_dps, commits_of(frame))


#################################################################################
#                                  The claims                                   #
#################################################################################


def paper_claims(tasks: list[str]) -> list[Claim]:
    """Every claim of both papers the ledger judges, in reading order; one DEFT row per image task of `tasks`."""
    below = ("reproduced if the 95% interval lies below 0, not reproduced if above 0, inconclusive if it contains 0")
    claims = [
        Claim("DT-1", "Diff-Tuning", "Diff-Tuning lowers FID against full fine-tuning, on average over the datasets",
              ("difftune_main", "diff_tuning", "average", "fid_rel_change_pct"), ("difftune_main",),
              "mean relative change of fid_local, Diff-Tuning vs full fine-tuning, % (over training seeds when the "
              "seed study ran; in the fine-tuning-length ledger, at its longest length)", below, difftune_fid),
        Claim("DT-2", "Diff-Tuning", "The chain of forgetting is monotone: the more of the low-noise end of the "
              "chain the pre-trained denoiser takes over, the worse the FID on the target",
              ("forgetting", "full_ft", "per-step", "fid"), ("forgetting",),
              "Spearman ρ of fid_local with the switch step t0 (fine-tuned above t0, pre-trained below)",
              f"reproduced if the exact one-sided permutation test finds an increasing trend at p < {TREND_ALPHA}, "
              "not reproduced if it finds a decreasing one, inconclusive otherwise", forgetting_trend),
        Claim("DT-3", "Diff-Tuning", "A retention set pre-sampled from the pre-trained model beats original source "
              "images", ("ablation_retention_set", "diff_tuning", "per-dataset", "fid"), ("ablation_retention_set",),
              "relative fid_local change, whole pre-sampled set vs as many real source images, %",
              "reproduced if the generated set's FID interval lies wholly below the source run's, not reproduced if "
              "wholly above, inconclusive if they overlap", retention_set_vs_source),
    ]
    for peft, name in (("bitfit", "BitFit"), ("difffit", "DiffFit"), ("lora", "LoRA")):
        claims.append(Claim(f"DT-4-{peft}", "Diff-Tuning", f"The gain holds with {name}",
                            ("difftune_peft", "diff_tuning", "per-dataset", "fid"), ("difftune_peft",),
                            f"mean relative change of fid_local, Diff-Tuning+{name} vs fine-tuning+{name}, %", below,
                            peft_gain(peft)))
    claims.append(Claim("DT-5", "Diff-Tuning", "ControlNet converges about 24% faster with Diff-Tuning",
                        ("controlnet", "diff_tuning", "average", "convergence_speedup_pct"), ("controlnet",),
                        "mean reduction of the sudden-convergence step, %",
                        "reproduced if the 95% interval lies above 0, not reproduced if below 0, inconclusive if it "
                        "contains 0", controlnet_speedup))
    for task in tasks:
        claims.append(Claim(f"DEFT-1-{task}", "DEFT", f"DEFT is competitive with or better than DPS, ΠGDM, DDRM and "
                            f"RED-diff on {task} (PSNR, SSIM, LPIPS)", ("deft_main", "deft", "per-task", "psnr"),
                            ("deft_paired",), "smallest paired PSNR difference, DEFT − baseline, dB",
                            "per baseline and metric, a paired 95% interval that excludes 0 makes one side better; "
                            "not reproduced if a baseline is better on 2 or more of the 3 metrics, inconclusive if "
                            "on 1, reproduced if on none", deft_competitive(task)))
    claims += [
        Claim("DEFT-2", "DEFT", "DEFT is faster in total than DPS and RED-diff, its training included (up to 1.6×)",
              ("deft_main", "deft", "image tasks", "speedup_total_max"), ("deft_main",),
              "smallest ratio of total time, baseline / DEFT, over tasks and the two baselines",
              "reproduced if DEFT is faster in every (task, baseline) pair, not reproduced if slower in more than "
              "half of them, inconclusive otherwise", deft_total_time),
        Claim("DEFT-3", "DEFT", "The h-transform head is 4–9% of the frozen model",
              ("protein_motif", "deft-9", "rfdiffusion-contiguous", "head_fraction"), ("protein_motif",),
              "largest head size as a share of the frozen model's parameters",
              f"reproduced if every head lies in [{HEAD_FRACTION_RANGE[0]}, {HEAD_FRACTION_RANGE[1]}] (4% and 9% "
              "as rounded percentages), not reproduced otherwise", head_fractions),
        Claim("DEFT-4", "DEFT", "DEFT solves more motif-scaffolding problems than DPS (10 of 12 against 5 of 12)",
              ("protein_motif", "deft", "rfdiffusion-contiguous", "solved"), ("protein_motif",),
              "pooled success rate, larger DEFT head − DPS, percentage points",
              "reproduced if DEFT solves more problems and the interval lies above 0; not reproduced if it solves "
              "fewer or the interval lies below 0; inconclusive otherwise (also when neither solves any)",
              protein_solved),
    ]
    return claims


def judge(claim: Claim, inputs: dict[str, pd.DataFrame]) -> Measurement:
    """The claim's measurement, or `not measured` when a results file it needs is not among the inputs."""
    return not_measured(claim.needs, inputs) or claim.evaluate(inputs)
