"""Motif-scaffolding problems cut from held-out chains, and their storage.

Fixed-frame problems (docs/protein.md "Problems"): a window of `problems.length` residues of a test chain, centred; the
motif is a set of residues of that window, y = their Cα in the window's frame, and the scaffold has the window's
length with the motif at its native positions (SMCDiff's protocol; DEFT's masking operator y = A x). Kinds cycle
through helix, strand, loop and two-segment (two sequence-distant segments in contact, like the discontiguous
RFdiffusion targets). Secondary structure is the shipped DSSP string when there is one, else P-SEA on the Cα.

    python -m deft.protein.problems --scale mini --data runs/mini/protein/data --out runs/mini/protein/problems

Writes OUT/problems.csv (name, chain, window start, length, kind, motif segments as 'a-b,c-d' in window
positions, residues), OUT/problems.npz (the centred windows, Å) and OUT/config.json.
"""

from __future__ import annotations

import argparse
import logging

from deft.protein.config import ProteinConfig
from tunebench.cli import add_config_args, config_from_args, print_config, run_cli, setup_logging
from tunebench.config import to_dict

log = logging.getLogger("deft.protein.problems")


def main(argv: list[str] | None = None) -> None:
    """Parse flags, select and save the problems."""
    parser = argparse.ArgumentParser(prog="python -m deft.protein.problems", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.add_argument("--data", required=True, help="prepared chains (python -m deft.protein.prepare)")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)
    run = config_from_args(args, ProteinConfig)
    if args.dry_run:
        print_config(run)
        return
    setup_logging(args.out)
    from deft.protein.chain_set import load_prepared  # here: --help needs no torch
    from deft.protein.motif_problems import save_problems, select_problems
    from tunebench.io import write_json
    problems = select_problems(load_prepared(args.data)["test"], run)
    save_problems(args.out, problems)
    write_json(f"{args.out}/config.json", to_dict(run))
    for p in problems:
        log.info("%s: chain %s residues %d-%d, motif %s (%d residues)", p.name, p.chain, p.start,
                 p.start + p.length - 1, p.segments, len(p.motif_indices()))


if __name__ == "__main__":
    run_cli(main)
