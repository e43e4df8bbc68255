"""How well a protein prior denoises held-out structures, per noise level: the check that separates "the prior is
limiting" from "the sampler is".

    python -m deft.protein.denoising --prior runs/mini/protein/prior/model --problems runs/mini/protein/problems \\
        --out results/mini/protein_prior_denoising.csv

For each timestep t the problems' native windows (never trained on) are noised with seeded centred noise; the CSV
row gives ᾱ_t, the ε-MSE per residue (predicting zero scores ≈ 3), the RMSD of x̂0 to the native in Å and of the
noisy input x_t/sqrt(ᾱ_t) (what x̂0 improves on), and the share of x̂0's Cα–Cα bonds within tolerance.
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
COLUMNS = ("t", "abar", "eps_mse", "x0hat_rmsd_A", "input_rmsd_A", "x0hat_valid_bonds")


def denoising_rows(prior, run: ProteinConfig, windows: np.ndarray, repeats: int = 4, seed: int = 0) -> list[dict]:
    """One row per timestep in TIMESTEPS, averaged over `repeats` noise draws of every window (Å in, Å out)."""
    import numpy as np
    import torch

    from deft.protein.diffusion import centred_randn, protein_schedule
    from deft.protein.geometry import bond_valid_fraction

    with torch.no_grad():
        schedule = protein_schedule(run.diffusion)
        x0 = torch.from_numpy(np.repeat(windows, repeats, axis=0)) * run.data.coord_scale
        generator = torch.Generator().manual_seed(seed)
        rows = []
        for t in TIMESTEPS:
            steps = torch.full((len(x0),), t)
            noise = centred_randn(tuple(x0.shape), generator)
            xt = schedule.q_sample(x0, steps, noise).float()
            eps = prior(xt, steps)
            x0hat = schedule.predict_x0(xt, steps, eps).float()
            abar = float(schedule.abar(t))
            to_a = 1.0 / run.data.coord_scale
            rows.append({"t": t, "abar": abar, "eps_mse": float((eps - noise).pow(2).sum(-1).mean()),
                         "x0hat_rmsd_A": float((x0hat - x0).pow(2).sum(-1).mean().sqrt()) * to_a,
                         "input_rmsd_A": float((xt / abar ** 0.5 - x0).pow(2).sum(-1).mean().sqrt()) * to_a,
                         "x0hat_valid_bonds": float(np.mean([bond_valid_fraction(c.numpy() * to_a,
                                                                                 run.success.bond_length,
                                                                                 run.success.bond_tolerance)
                                                             for c in x0hat]))})
        return rows


def main(argv: list[str] | None = None) -> None:
    """Parse flags, measure, write the CSV."""
    parser = argparse.ArgumentParser(prog="python -m deft.protein.denoising", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", required=True, type=Path, help="the prior's model folder")
    parser.add_argument("--problems", required=True, type=Path, help="problems folder (its windows are held out)")
    parser.add_argument("--out", required=True, type=Path, help="CSV to write")
    args = parser.parse_args(argv)
    # Here, not at the top: --help needs no torch.
    import numpy as np

    from deft.protein.models import load_prior
    from deft.protein.motif_problems import load_problems
    from tunebench.io import read_json, write_csv

    run = from_dict(read_json(args.problems / "config.json"), ProteinConfig)
    windows = np.stack([p.window for p in load_problems(args.problems)])
    rows = denoising_rows(load_prior(args.prior), run, windows)
    print(write_csv(args.out, COLUMNS, [{k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()}
                                        for row in rows]), end="")


if __name__ == "__main__":
    run_cli(main)
