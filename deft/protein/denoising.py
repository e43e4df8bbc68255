"""How well a protein prior denoises held-out structures, per noise level: the check that separates "the prior is
limiting" from "the sampler is".

    python -m deft.protein.denoising --prior runs/mini/protein/prior/model --problems runs/mini/protein/problems \\
        --out results/mini/protein_prior_denoising.csv [--table results/mini/tables/protein_prior_denoising.md]

For each timestep t the problems' native windows (never trained on) are noised with seeded centred noise; the CSV
row gives ᾱ_t, the ε-MSE per residue (predicting zero scores ≈ 3), the RMSD of x̂0 to the native in Å and of the
noisy input x_t/sqrt(ᾱ_t) (what x̂0 improves on), the share of x̂0's Cα–Cα bonds within tolerance and the share of
x̂0s without a Cα clash (the success criterion's thresholds).

The `restart_*` columns answer "from how much noise does the prior still bring a native back to a valid chain?":
the windows are noised to `restart_t`, the motif table's first sampler timestep at or below t, and sampled from
there to the end with the table's unconditional sampler (`samplers.sample_motif` with `start`); the columns give
the share of the results' bonds within tolerance and of results without a clash, with its Wilson 95% interval. The
unconditional samples' own clash-free share is the restart from the top. Window k of repeat r uses seed
r·len(windows) + k for both its noising and the sampler.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from deft.protein.config import ProteinConfig
from tunebench.cli import run_cli
from tunebench.config import from_dict

if TYPE_CHECKING:
    import numpy as np

TIMESTEPS = (5, 20, 50, 100, 200, 400, 600, 800)
COLUMNS = ("t", "abar", "eps_mse", "x0hat_rmsd_A", "input_rmsd_A", "x0hat_valid_bonds", "x0hat_clash_free",
           "restart_t", "restart_valid_bonds", "restart_clash_free", "restart_clash_free_low",
           "restart_clash_free_high", "chains")


def denoising_rows(prior, run: ProteinConfig, windows: np.ndarray, repeats: int = 20) -> list[dict]:
    """One row per timestep in TIMESTEPS over `repeats` noise draws of every window (Å in, Å out)."""
    import numpy as np
    import torch

    from deft.protein.diffusion import CentredNoise, protein_schedule
    from deft.protein.quality import quality_summary
    from deft.protein.samplers import sample_motif
    from tunebench.sampling import chunked

    with torch.no_grad():
        schedule = protein_schedule(run.diffusion)
        x0 = torch.from_numpy(np.tile(windows, (repeats, 1, 1))).float() * run.data.coord_scale
        count, length = x0.shape[:2]
        sampler_steps = [step.t for step in schedule.steps(run.sample.steps, run.sample.spacing)]
        to_a = 1.0 / run.data.coord_scale
        rows = []
        for t in TIMESTEPS:
            # Fresh streams per timestep: row i's noise comes from seed i alone, as in the motif table.
            noise = CentredNoise(list(range(count)))
            steps = torch.full((count,), t)
            epsilon = noise.randn((length, 3))
            xt = schedule.q_sample(x0, steps, epsilon)
            eps = chunked(prior, run.sample.compute_chunk, xt, steps)  # the sampler's row chunks: one shape
            x0hat = schedule.predict_x0(xt, steps, eps)
            abar = float(schedule.abar(t))
            one_step = quality_summary(x0hat.double().numpy() * to_a, run.success)
            restart_t = max(s for s in sampler_steps if s <= t)
            start = schedule.q_sample(x0, torch.full((count,), restart_t), noise.randn((length, 3)))
            restarted, _ = sample_motif("unconditional", prior, schedule, run, torch.zeros(count, length),
                                        torch.zeros(count, length, 3), noise, start=(restart_t, start))
            restart = quality_summary(restarted.double().numpy() * to_a, run.success)
            rows.append({"t": t, "abar": abar, "eps_mse": float((eps - epsilon).pow(2).sum(-1).mean()),
                         "x0hat_rmsd_A": float((x0hat - x0).pow(2).sum(-1).mean().sqrt()) * to_a,
                         "input_rmsd_A": float((xt / abar ** 0.5 - x0).pow(2).sum(-1).mean().sqrt()) * to_a,
                         "x0hat_valid_bonds": one_step["valid_bonds"], "x0hat_clash_free": one_step["clash_free"],
                         "restart_t": restart_t, "restart_valid_bonds": restart["valid_bonds"],
                         "restart_clash_free": restart["clash_free"],
                         "restart_clash_free_low": restart["clash_free_low"],
                         "restart_clash_free_high": restart["clash_free_high"], "chains": count})
        return rows


def markdown(rows: list[dict], run: ProteinConfig, windows: int) -> str:
    """The table for docs: per t, the noisy input's and x̂0's RMSD, x̂0's bonds and clashes, and the restart's."""
    lines = ["| t | ᾱ_t | input RMSD (Å) | x̂0 RMSD (Å) | x̂0 valid bonds | x̂0 clash-free | restart from | "
             "restart valid bonds | restart clash-free [95% CI] |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        lines.append(f"| {row['t']} | {row['abar']:.3f} | {row['input_rmsd_A']:.2f} | {row['x0hat_rmsd_A']:.2f} | "
                     f"{row['x0hat_valid_bonds']:.3f} | {row['x0hat_clash_free']:.2f} | {row['restart_t']} | "
                     f"{row['restart_valid_bonds']:.3f} | {row['restart_clash_free']:.2f} "
                     f"[{row['restart_clash_free_low']:.2f}, {row['restart_clash_free_high']:.2f}] |")
    sample = run.sample
    lines += ["", f"*The prior on the {windows} held-out problem windows ({rows[0]['chains']} noised copies per t): "
              "one-step x̂0, and restarts sampled from t to the end (the first sampler timestep at or below t) with "
              f"the motif table's sampler (DDIM, {sample.spacing} spacing, {sample.steps} steps, η = {sample.eta:g}, "
              f"noise scale {sample.noise_scale:g}). Valid bonds: Cα–Cα within {run.success.bond_length:g} ± "
              f"{run.success.bond_tolerance:g} Å; clash-free: no Cα pair (|i − j| ≥ 3) closer than "
              f"{run.success.clash_distance:g} Å; interval: Wilson score.*"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Parse flags, measure, write the CSV."""
    parser = argparse.ArgumentParser(prog="python -m deft.protein.denoising", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", required=True, type=Path, help="the prior's model folder")
    parser.add_argument("--problems", required=True, type=Path, help="problems folder (its windows are held out)")
    parser.add_argument("--out", required=True, type=Path, help="CSV to write")
    parser.add_argument("--table", type=Path, help="also write the Markdown table for the docs here")
    args = parser.parse_args(argv)
    # Here, not at the top: --help needs no torch.
    import numpy as np

    from deft.protein.models import load_prior
    from deft.protein.motif_problems import load_problems
    from tunebench.io import atomic_path, read_json, significant, write_csv
    from tunebench.speed import prepare_model

    run = from_dict(read_json(args.problems / "config.json"), ProteinConfig)
    windows = np.stack([p.window for p in load_problems(args.problems)])
    prior = prepare_model(load_prior(args.prior), compile_model=run.sample.compile, compile_key="sample.compile")
    rows = denoising_rows(prior, run, windows)
    print(write_csv(args.out, COLUMNS, significant(rows)), end="")
    if args.table:
        with atomic_path(args.table) as tmp:
            tmp.write_text(markdown(rows, run, len(windows)))


if __name__ == "__main__":
    run_cli(main)
