"""When do a prior's clashes form? Unconditional samples followed through the sampler: each sample that ends with a
clash has a closest Cα pair (|i − j| ≥ 3) at the end; this tool measures that pair's distance in every step's x̂0,
beside the share of all samples whose x̂0 is already clash-free at that step.

    python -m deft.protein.clash_trajectory --model assets/mini/protein_prior --scale mini --samples 200 \\
        --out-csv results/bench/protein-clash-trajectory.csv --out-md results/bench/protein-clash-trajectory.md

Samples use the motif table's sampler at --scale (`sample.*`) and seeds 0..samples−1, as `deft.protein.prior_quality`
does, so the last row's clash-free share is that tool's. One CSV row per sampler step, from the top:

| column | meaning |
| --- | --- |
| `t` | the step's timestep |
| `x0hat_clash_free` (`_low`, `_high`) | share of all samples whose x̂0 at this step has no clash; Wilson 95% interval |
| `clash_now_if_clash_end` | share of the samples that end with a clash whose x̂0 at this step has one |
| `clash_now_if_free_end` | share of the samples that end without a clash whose x̂0 at this step has one |
| `clashing_samples` | samples that end with a clash (the same on every row) |
| `pair_distance_median`, `_q25`, `_q75` | their final closest pair's distance in this step's x̂0, Å |
| `pair_below_clash` | share of those pairs already closer than `success.clash_distance` in this step's x̂0 |
| `pair_separation_median` | the median sequence separation |i − j| of those pairs (the same on every row) |

The Markdown table shows every `--table-every`-th step and the last.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deft.protein.config import ProteinConfig
from tunebench.cli import add_config_args, config_from_args, print_config, run_cli, setup_logging
from tunebench.config import ConfigError

PROTOCOL = ("scale", "model", "samples", "seeds", "length", "sampler", "sample_steps", "eta", "noise_scale",
            "clash_distance", "weights_sha256", "git_commit")
COLUMNS = ("t", "x0hat_clash_free", "x0hat_clash_free_low", "x0hat_clash_free_high", "clash_now_if_clash_end",
           "clash_now_if_free_end", "clashing_samples",
           "pair_distance_median", "pair_distance_q25", "pair_distance_q75", "pair_below_clash",
           "pair_separation_median") + PROTOCOL


def trajectory_rows(final: np.ndarray, x0hats: list[tuple[int, np.ndarray]], clash_distance: float,
                    min_separation: int = 3) -> list[dict]:
    """One row per sampler step (`x0hats`: (t, S×N×3 x̂0 in Å) in sampler order) for the S final samples (S×N×3, Å):
    the columns of COLUMNS before the protocol's."""
    from benchmarks.intervals import wilson_interval
    from deft.protein.geometry import clash_count, closest_pair

    pairs = [closest_pair(trace, min_separation) for trace in final]
    ends_clashing = np.array([distance < clash_distance for _, _, distance in pairs])
    clashing = np.flatnonzero(ends_clashing).tolist()
    separation = float(np.median([pairs[k][1] - pairs[k][0] for k in clashing])) if clashing else float("nan")
    rows = []
    for t, x0hat in x0hats:
        clashes_now = np.array([clash_count(trace, clash_distance, min_separation) > 0 for trace in x0hat])
        free = int(np.count_nonzero(~clashes_now))
        low, high = wilson_interval(free, len(x0hat))
        distances = np.array([np.linalg.norm(x0hat[k, pairs[k][0]] - x0hat[k, pairs[k][1]]) for k in clashing])
        q25, median, q75 = np.percentile(distances, [25, 50, 75]) if clashing else (float("nan"),) * 3
        rows.append({"t": int(t), "x0hat_clash_free": free / len(x0hat), "x0hat_clash_free_low": low,
                     "x0hat_clash_free_high": high,
                     "clash_now_if_clash_end": _share(clashes_now[ends_clashing]),
                     "clash_now_if_free_end": _share(clashes_now[~ends_clashing]), "clashing_samples": len(clashing),
                     "pair_distance_median": float(median), "pair_distance_q25": float(q25),
                     "pair_distance_q75": float(q75),
                     "pair_below_clash": float(np.mean(distances < clash_distance)) if clashing else float("nan"),
                     "pair_separation_median": separation})
    return rows


def _share(flags: np.ndarray) -> float:
    """The share of true flags, NaN for none."""
    return float(flags.mean()) if len(flags) else float("nan")


def sample_trajectories(prior, run: ProteinConfig, count: int, length: int,
                        progress: bool = False) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """The final unconditional samples (count×length×3, Å) and every step's x̂0 as (t, count×length×3 in Å), with
    the motif table's sampler and seeds 0..count−1 (`quality_curve.unconditional_samples`)."""
    from deft.protein.quality_curve import unconditional_samples

    steps: dict[int, list[np.ndarray]] = {}

    def keep(t, x0hat):
        """Collect one batch's x̂0 at timestep t, in Å."""
        steps.setdefault(int(t), []).append(x0hat.double().numpy() / run.data.coord_scale)

    final = unconditional_samples(prior, run, count, length, progress=progress, on_step=keep)
    return final, [(t, np.concatenate(batches)) for t, batches in steps.items()]


def _number(value: float, digits: int) -> str:
    """A figure for the table, or '–' where there is none (no sample ends with a clash)."""
    return "–" if np.isnan(value) else f"{value:.{digits}f}"


def markdown(rows: list[dict], every: int) -> str:
    """Every `every`-th step's row and the last, with the protocol as a footnote."""
    shown = [row for k, row in enumerate(rows) if k % every == 0 or k == len(rows) - 1]
    first = rows[0]
    lines = ["| t | x̂0 clash-free [95% CI] | x̂0 clashes, of samples that end clashing | "
             "of samples that end clash-free | final clash pair in x̂0: median distance (Å) [quartiles] | "
             f"pair below {first['clash_distance']:g} Å |",
             "| ---: | --- | ---: | ---: | --- | ---: |"]
    for row in shown:
        lines.append(f"| {row['t']} | {row['x0hat_clash_free']:.2f} [{row['x0hat_clash_free_low']:.2f}, "
                     f"{row['x0hat_clash_free_high']:.2f}] | {_number(row['clash_now_if_clash_end'], 2)} | "
                     f"{_number(row['clash_now_if_free_end'], 2)} | {_number(row['pair_distance_median'], 2)} "
                     f"[{_number(row['pair_distance_q25'], 2)}, {_number(row['pair_distance_q75'], 2)}] | "
                     f"{_number(row['pair_below_clash'], 2)} |")
    lines += ["", f"*{first['samples']} unconditional samples of {first['length']} residues (seeds "
              f"{first['seeds'].replace('-', '–')}) of `{first['model']}` at scale {first['scale']} with the motif "
              f"table's sampler ({first['sampler']}, {first['sample_steps']} "
              f"steps, η = {first['eta']:g}, noise scale {first['noise_scale']:g}); {first['clashing_samples']} end "
              f"with a clash (a Cα pair |i − j| ≥ 3 closer than {first['clash_distance']:g} Å), and the columns on the "
              "right follow each one's closest pair at the end through every step's x̂0 (median sequence separation "
              f"{_number(first['pair_separation_median'], 0)}). Prior weights {first['weights_sha256'][:12]}, "
              f"commit {first['git_commit'][:10]}; `python -m deft.protein.clash_trajectory`.*"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Parse flags, sample, follow the clashes, write the CSV and the Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m deft.protein.clash_trajectory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="an exported prior (save_pretrained folder)")
    add_config_args(parser)
    parser.add_argument("--samples", type=int, default=200, help="unconditional samples (default 200)")
    parser.add_argument("--length", type=int, help="residues per sample (default: problems.length of the scale)")
    parser.add_argument("--out-csv", required=True, type=Path, help="one row per sampler step")
    parser.add_argument("--out-md", required=True, type=Path, help="the Markdown table")
    parser.add_argument("--table-every", type=int, default=3, help="the table shows every N-th step and the last "
                                                                   "(default 3)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    run = config_from_args(args, ProteinConfig)
    if args.dry_run:
        print_config(run)
        return
    length = args.length if args.length is not None else run.problems.length
    if args.samples < 1 or length < 4 or args.table_every < 1:
        raise ConfigError(f"--samples {args.samples} must be at least 1, --length {length} at least 4 (a pair 3 "
                          f"apart) and --table-every {args.table_every} at least 1")
    setup_logging()
    # Here, not at the top: --help and --dry-run need no torch.
    from deft.protein.models import load_prior
    from deft.protein.quality_curve import check_units
    from tunebench.io import atomic_path, git_commit, significant, write_csv
    from tunebench.models import tensors_sha256

    prior = load_prior(args.model)
    check_units(prior, run, str(args.model))
    final, x0hats = sample_trajectories(prior, run, args.samples, length, progress=not args.no_progress)
    sample = run.sample
    protocol = {"scale": run.scale, "model": str(args.model), "samples": args.samples,
                "seeds": f"0-{args.samples - 1}", "length": length, "sampler": f"ddim-{sample.spacing}",
                "sample_steps": sample.steps, "eta": sample.eta, "noise_scale": sample.noise_scale,
                "clash_distance": run.success.clash_distance, "weights_sha256": tensors_sha256(prior),
                "git_commit": git_commit()}
    rows = [{**row, **protocol} for row in trajectory_rows(final, x0hats, run.success.clash_distance)]
    write_csv(args.out_csv, COLUMNS, significant(rows))
    with atomic_path(args.out_md) as tmp:
        tmp.write_text(markdown(rows, args.table_every))
    last = rows[-1]
    print(f"{last['clashing_samples']} of {args.samples} samples end with a clash; x̂0 clash-free at the end "
          f"{last['x0hat_clash_free']:.3f} -> {args.out_csv}, {args.out_md}")


if __name__ == "__main__":
    run_cli(main)
