"""A figure of scaffolds: for every problem (or --count of them, one per motif kind first), each method's best
sample (lowest motif RMSD) and median one, superposed on the native window by its motif, drawn as 3-D Cα traces
(native grey, scaffold blue, motif red). With --pdb-dir, the same best samples as Cα PDB files,
DIR/METHOD/PROBLEM_best.pdb: chain A the scaffold, chain B the native window, motif residues at B-factor 1.

    python -m deft.protein.figure --problems runs/mini/protein/problems \\
        --samples deft-4=runs/mini/protein/samples/deft-4 dps=runs/mini/protein/samples/dps --out scaffolds.png \\
        --pdb-dir best_scaffolds
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tunebench.cli import run_cli
from tunebench.config import ConfigError

if TYPE_CHECKING:  # the functions import numpy, torch and matplotlib themselves: --help needs none of them
    import numpy as np

    from deft.protein.motif_problems import Problem


def shown_problems(problems: list[Problem], count: int) -> list[int]:
    """Indices of up to `count` problems, one per motif kind first."""
    first_of_kind = {}
    for index, problem in enumerate(problems):
        first_of_kind.setdefault(problem.kind, index)
    chosen = list(first_of_kind.values())[:count]
    return chosen + [i for i in range(len(problems)) if i not in chosen][:count - len(chosen)]


PICKS = ("best", "median")


def picked_sample(samples: np.ndarray, problem: Problem, pick: str) -> tuple[np.ndarray, float]:
    """The sample with the lowest (`best`) or the median (`median`: the lower middle one) motif RMSD, moved onto the
    native window by its motif, and that RMSD."""
    import numpy as np

    from deft.protein.geometry import kabsch_fit, motif_rmsd

    idx = problem.motif_indices()
    motif = problem.window[idx]
    rmsds = np.array([motif_rmsd(sample, motif, idx) for sample in samples])
    order = np.argsort(rmsds, kind="stable")
    chosen = int(order[0] if pick == "best" else order[(len(order) - 1) // 2])
    rotation, shift = kabsch_fit(samples[chosen][idx], motif)
    return samples[chosen] @ rotation.T + shift, float(rmsds[chosen])


def draw(problems: list[Problem], samples: dict[str, np.ndarray], out: Path, count: int | None) -> None:
    """Grid of problems (rows) × each method's best and median sample (columns); every problem when count is None."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on cluster or CI machines
    import matplotlib.pyplot as plt

    from tunebench.io import atomic_path

    rows = shown_problems(problems, len(problems) if count is None else count)
    columns = [(method, pick) for method in samples for pick in PICKS]
    fig = plt.figure(figsize=(2.0 * len(columns), 2.0 * len(rows)))
    for r, index in enumerate(rows):
        problem = problems[index]
        idx = problem.motif_indices()
        for c, (method, pick) in enumerate(columns):
            ax = fig.add_subplot(len(rows), len(columns), r * len(columns) + c + 1, projection="3d")
            scaffold, rmsd = picked_sample(samples[method][index], problem, pick)
            ax.plot(*problem.window.T, color="0.75", lw=1)
            ax.plot(*scaffold.T, color="tab:blue", lw=1.2)
            ax.scatter(*problem.window[idx].T, color="tab:red", s=6)
            ax.set_title(f"{method}, {pick}\n{problem.name} motif RMSD {rmsd:.2f} Å", fontsize=6)
            ax.set_axis_off()
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write_best_pdbs(problems: list[Problem], samples: dict[str, np.ndarray], folder: Path) -> None:
    """Each method's best sample of every problem beside the native window, as DIR/METHOD/PROBLEM_best.pdb."""
    from deft.protein.pdb_out import write_chains

    for method, coords in samples.items():
        for problem, scaffolds in zip(problems, coords):
            scaffold, rmsd = picked_sample(scaffolds, problem, "best")
            write_chains(folder / method / f"{problem.name}_best.pdb", {"A": scaffold, "B": problem.window},
                         problem.mask() > 0, f"{method} best of {len(scaffolds)} on {problem.name}: motif RMSD "
                         f"{rmsd:.2f} A; chain B native")


def parse_samples(items: list[str]) -> dict[str, np.ndarray]:
    """METHOD=FOLDER pairs → coords arrays (problems × samples × residues × 3)."""
    import numpy as np

    found = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--samples expects METHOD=FOLDER, got {item!r}")
        method, folder = item.split("=", 1)
        path = Path(folder) / "samples.npz"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (python -m deft.protein.sample)")
        with np.load(path, allow_pickle=False) as data:
            found[method] = data["coords"]
    return found


def main(argv: list[str] | None = None) -> None:
    """Parse flags and draw."""
    parser = argparse.ArgumentParser(prog="python -m deft.protein.figure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", required=True, type=Path, help="problems folder")
    parser.add_argument("--samples", required=True, nargs="+", metavar="METHOD=FOLDER", help="sample folders")
    parser.add_argument("--count", type=int, default=None,
                        help="problems shown, one per motif kind first (default: every problem)")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument("--pdb-dir", type=Path, help="also write each method's best scaffold per problem as PDB here")
    args = parser.parse_args(argv)
    from deft.protein.motif_problems import load_problems

    problems, samples = load_problems(args.problems), parse_samples(args.samples)
    draw(problems, samples, args.out, args.count)
    if args.pdb_dir:
        write_best_pdbs(problems, samples, args.pdb_dir)
    print(args.out)


if __name__ == "__main__":
    run_cli(main)
