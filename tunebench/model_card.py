"""The README.md of every exported model folder, generated from its run: what it is, how it was trained, what was
measured by export time, how to load it and what plain `diffusers` loading gets wrong.

`tunebench.models.export_pretrained` writes it for every export path (DiTs, DEFT heads, amortised models, protein
models, ControlNet branches); `tunebench.pinned_assets` keeps its training section in a pinned asset's card. Torch-free:
Snakemake imports the pinned-asset code while planning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SIDECAR = "tunebench.json"  # beside config.json: resolved run config, the exporter's record and its CardFacts
CARD_KEY = "card"  # the sidecar key holding the exporter's CardFacts
FINAL_TRAINING_KEY = "final_training"  # the sidecar key holding the last row of the run's stats.jsonl


@dataclass(frozen=True)
class CardFacts:
    """What the CLI that trained a model says about it (the resolved run config gives steps, seed and settings)."""

    method: str  # what was trained and how, e.g. "Diff-Tuning fine-tuning (PEFT: none)"
    base_model: str | None  # the folder or hub id it started from or was trained on top of; None: random weights
    data: str  # what it was trained on
    loader: str  # the call that loads it with the suite's fixes, e.g. "tunebench.models.load_dit(folder)"


# Why a DiT must be loaded through the suite (tunebench.models.apply_dit_fixes; the fixes' names in DIT_FIXES).
DIT_PITFALLS = ("Loaded by plain diffusers (`from_pretrained`), its DiT differs from DiT (facebookresearch/DiT "
                "`models.py`) in four ways, which the loader above fixes: each block holds its "
                "own copy of the timestep and label embedder (written once per block because safetensors cannot "
                "store one tensor under several names, tied again on loading), each block would drop labels on its "
                "own (the suite drops a label once per sample, outside the model), the timestep frequencies are "
                "divided by 127 instead of 128, and the LayerNorms keep diffusers' eps 1e-5 wherever config.json "
                "says so or has no `norm_eps`, instead of DiT's 1e-6.")


def suite_class_pitfalls(module: str, name: str) -> str:
    """What plain diffusers makes of a folder of one of the suite's own model classes."""
    return (f"`diffusers` alone cannot load it: `{name}` is tunebench's class (`{module}.{name}`), unknown to "
            "diffusers' `AutoModel` and pipelines. With that class imported, its `from_pretrained(folder)` loads "
            "the weights but only warns when tensors are missing or left over; the loader refuses such a folder.")


def ema_updates(train: dict) -> int:
    """EMA averaging updates of a finished run (`tunebench.training.ema_update_decay`: the EMA copies the weights for
    the first `ema_start` updates, then averages every `ema_every`)."""
    averaging = train["steps"] - train["ema_start"]
    return max(0, math.ceil(averaging / train["ema_every"]))


def _value(value) -> str:
    """A number or name for a table cell."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return str(value)
    return f"`{value}`" if value not in (None, "") else "–"


def training_section(sidecar: dict) -> str:
    """The card's account of the run: base model, data, method, settings, steps, seed, and what was measured by
    export time (the last logged training losses, the EMA, the sizes the exporter recorded)."""
    facts, run = sidecar.get(CARD_KEY, {}), sidecar["run_config"]
    train = run["train"]
    ema = (f"EMA of {ema_updates(train)} updates at decay {train['ema_decay']:g}"
           f"{' (warm-up)' if train.get('ema_warmup') else ''}, copying the weights for the first "
           f"{train['ema_start']} updates, then averaging every {train['ema_every']}")
    settings = (f"AdamW lr {train['lr']:g} ({train['lr_schedule']}), weight decay {train['weight_decay']:g}, batch "
                f"{train['batch_size']}, label dropout {train['label_dropout']:g}, mixed precision "
                f"{train['mixed_precision']}; the full resolved config is `run_config` in `tunebench.json`")
    rows = [("base model", _value(facts.get("base_model")) if facts.get("base_model") else "none: random weights"),
            ("data", facts.get("data", "–")), ("method", facts.get("method", "–")), ("settings", settings),
            ("steps", str(train["steps"])), ("seed", str(train["seed"])), ("scale", _value(run.get("scale"))),
            ("weights", f"{sidecar.get('weights', '–')}" + (f"; {ema}" if sidecar.get("weights") == "ema" else "")),
            ("git commit", _value(sidecar.get("git_commit")))]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    final = sidecar.get(FINAL_TRAINING_KEY) or {}
    losses = ", ".join(f"{key} {value:.4g}" for key, value in final.items()
                       if key not in ("step", "steps_per_s") and isinstance(value, (int, float)))
    measured = [f"- training loss at step {final['step']} (the last logged, `stats.jsonl`): {losses}"] if losses else []
    measured += [f"- {key}: {_value(value)}" for key, value in sorted(sidecar.items())
                 if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "steps"]
    return f"""## How it was trained

| | |
| --- | --- |
{table}

## Measured at export

{chr(10).join(measured) or "- nothing beyond the training run's own logs"}

Sample quality is measured after export (e.g. `python -m benchmarks.dit_quality`); a pinned asset's card and
`manifest.json` carry its quality figures.
"""


def model_card(class_module: str, class_name: str, holds_dit: bool, sidecar: dict) -> str:
    """The README.md of an exported folder of a `class_module.class_name` model (`holds_dit`: it is or contains a
    diffusers DiT), from its sidecar (resolved run config, the exporter's record and CardFacts)."""
    facts = sidecar.get(CARD_KEY, {})
    what = facts.get("method", class_name)
    pitfalls = [] if class_module.startswith("diffusers") else [suite_class_pitfalls(class_module, class_name)]
    pitfalls += [DIT_PITFALLS] if holds_dit else []
    if sidecar.get("fixes"):
        pitfalls.append(f"The fixes, as `fixes` in `{SIDECAR}` names them: {', '.join(sidecar['fixes'])}.")
    if not pitfalls:
        pitfalls = [f"It is a plain diffusers `{class_name}`; the loader also refuses weights that do not fit its "
                    "config.json, where `from_pretrained` only warns."]
    return f"""# {class_name} exported by tunebench

{what[:1].upper() + what[1:]}, as a diffusers `save_pretrained` folder (safetensors) with the resolved run
config and the exporter's record in `tunebench.json`.

## Loading

Load it with `{facts.get('loader', 'tunebench.models.load_pretrained')}` (offline, `HF_HUB_OFFLINE=1`).

{(chr(10) * 2).join(pitfalls)}

{training_section(sidecar)}"""
