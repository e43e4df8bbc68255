"""The paper's designability criterion as a plug-in: scRMSD < 2 Å after inverse folding and refolding (ProteinMPNN +
ESMFold in DEFT's Genie pipeline). Neither model's weights exist offline here, so nothing is built in; a user with
local weights supplies a factory and the evaluation adds the metric, otherwise it is skipped with a note.

A plug-in is named 'package.module:factory'. `factory(weights: Path)` loads the models from the local folder (no
download) and returns a callable mapping a list of N×3 Cα arrays (Å) to their scRMSD values (Å): e.g. design
sequences for each backbone with ProteinMPNN's Cα-only model, fold each with ESMFold, and take the Cα RMSD between the
fold and the backbone after Kabsch superposition (Genie's `evaluations/pipeline`, best of its 8 sequences).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from tunebench.config import ConfigError

SC_RMSD_THRESHOLD = 2.0  # Å (paper App. E.2)
SKIP_NOTE = ("designability skipped: scRMSD needs ProteinMPNN and ESMFold weights, which are not available offline; "
             "pass --designability MODULE:FACTORY --designability-weights DIR (docs/protein.md)")

ScRmsd = Callable[[list], list[float]]


def load_plugin(spec: str, weights: str | Path) -> ScRmsd:
    """Import 'module:factory' and build the scorer from the local `weights` folder, naming what is wrong."""
    module_name, _, factory_name = spec.partition(":")
    if not module_name or not factory_name:
        raise ConfigError(f"--designability {spec!r} must be 'package.module:factory'")
    if not Path(weights).exists():
        raise ConfigError(f"--designability-weights {weights} does not exist; point it at the local "
                          "ProteinMPNN/ESMFold weights (nothing is downloaded)")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"--designability {spec!r} cannot be loaded ({err})") from None
    return factory(Path(weights))
