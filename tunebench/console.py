"""Console scripts: `tunebench-pretrain ARGS` runs exactly what `python -m tunebench.pretrain ARGS` runs.

Every command-line module has one script, named after it with dots and underscores as dashes. They all point at
`main`, which finds the module from the script's name and runs it as `__main__` (`runpy`), so a script and
`python -m` share one code path: the module's `__main__` block with its one-line errors (`tunebench.cli.run_cli`).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

CLI_MODULES = (
    "tunebench.pretrain", "tunebench.sample", "tunebench.latents", "tunebench.show_datasets", "tunebench.assets",
    "benchmarks.features", "benchmarks.bench_features", "benchmarks.fid", "benchmarks.dit_quality",
    "benchmarks.image_scores", "benchmarks.merge_results", "benchmarks.report", "benchmarks.thread_layout",
    "benchmarks.throughput", "benchmarks.gpu_check", "benchmarks.timing_summary", "benchmarks.ledger",
    "benchmarks.render_docs",
    "difftune.retention", "difftune.finetune", "difftune.forgetting", "difftune.param_rows", "difftune.seeds",
    "difftune.report",
    "difftune.controlnet.train", "difftune.controlnet.summary", "difftune.controlnet.report",
    "deft.train", "deft.amortised", "deft.reconstruct", "deft.evaluate", "deft.paired", "deft.report",
    "deft.convert_adm", "deft.rehearsal_inputs",
    "deft.protein.prepare", "deft.protein.problems", "deft.protein.train", "deft.protein.denoising",
    "deft.protein.sample", "deft.protein.evaluate", "deft.protein.figure", "deft.protein.report",
    "deft.protein.prior_quality", "deft.protein.split_bench", "deft.protein.lever_table",
    "deft.protein.clash_trajectory", "deft.protein.sample_agreement",
)


def script_name(module: str) -> str:
    """The console script of a CLI module: `deft.protein.sample` → `deft-protein-sample`."""
    return module.replace(".", "-").replace("_", "-")


SCRIPTS = {script_name(module): module for module in CLI_MODULES}


def main() -> None:
    """Run the CLI module of the script this process was started as, with the script's arguments."""
    script = Path(sys.argv[0]).stem  # a Windows launcher is NAME.exe
    if script not in SCRIPTS:
        sys.exit(f"error: {script} is not one of the suite's console scripts ({', '.join(sorted(SCRIPTS))})")
    runpy.run_module(SCRIPTS[script], run_name="__main__", alter_sys=True)
