"""Building, loading and sizing the protein networks (prior, DEFT heads, amortised model).

The prior is loaded by its `_class_name` from `PRIOR_CLASSES`, the plug-in point for a bigger prior at paper scale:
any diffusers model whose `forward(x, t)` returns ε for centred B×N×3 coordinates (e.g. a Genie re-implementation
with its weights converted to a save_pretrained folder) can be registered here and used unchanged by every method.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from deft.protein.config import ProteinConfig, head_name
from deft.protein.egnn import CalphaEgnn, ProteinHead, build_head_for_fraction
from deft.protein.frame_net import CalphaFrameNet
from tunebench.models import ModelLoadError, load_pretrained

PRIOR_CLASSES = {"CalphaEgnn": CalphaEgnn, "CalphaFrameNet": CalphaFrameNet}
NM = 10.0  # Å per nm


def length_unit(run: ProteinConfig) -> float:
    """Model units per nm (coordinates are Å × data.coord_scale)."""
    return NM * run.data.coord_scale


def build_prior(run: ProteinConfig, motif_inputs: bool = False) -> torch.nn.Module:
    """A fresh network of the `prior` section (`prior.arch`): the unconditional prior, or with `motif_inputs` the
    amortised model."""
    p, d = run.prior, run.diffusion
    schedule = {"num_train_timesteps": d.num_train_timesteps, "cosine_s": d.cosine_s, "max_beta": d.max_beta}
    if p.arch == "frames":
        return CalphaFrameNet(hidden=p.hidden, layers=p.layers, heads=p.heads, pair=p.pair, relpos_max=p.relpos_max,
                              length_unit=length_unit(run), sigma_data=p.sigma_data, motif_inputs=motif_inputs,
                              update_pair=p.update_pair, pair_displacement=p.pair_displacement,
                              self_condition=p.self_condition, triangle=p.triangle, **schedule)
    return CalphaEgnn(hidden=p.hidden, layers=p.layers, relpos_max=p.relpos_max, length_unit=length_unit(run),
                      motif_inputs=motif_inputs, predict_x0=True, **schedule)


def build_heads(run: ProteinConfig, prior_parameters: int) -> dict[str, ProteinHead]:
    """One head per `head.fractions` entry, keyed 'deft-4' / 'deft-9' (percent of the prior, rounded)."""
    return {head_name(fraction): build_head_for_fraction(fraction, prior_parameters, run.head.layers,
                                                         run.prior.relpos_max, length_unit(run),
                                                         run.head.init_scaling_bias)
            for fraction in run.head.fraction_list()}


def _class_name(folder: Path) -> str:
    """`_class_name` of a save_pretrained folder, with a clear error when it is not one."""
    config = folder / "config.json"
    if not config.is_file():
        raise ModelLoadError(f"{folder} is not a save_pretrained folder (no config.json); train one with "
                             "python -m deft.protein.train prior")
    return json.loads(config.read_text()).get("_class_name", "")


def load_prior(folder: str | Path) -> torch.nn.Module:
    """The frozen prior (eval mode, no parameter gradients) from a local folder."""
    folder = Path(folder)
    name = _class_name(folder)
    if name not in PRIOR_CLASSES:
        raise ModelLoadError(f"{folder} holds a {name or 'unknown'} model; protein priors are "
                             f"{', '.join(PRIOR_CLASSES)} (register new ones in deft.protein.models.PRIOR_CLASSES)")
    model = load_pretrained(PRIOR_CLASSES[name], folder)
    if getattr(model.config, "motif_inputs", False):
        raise ModelLoadError(f"{folder} is a motif-conditioned (amortised) model; the prior must be unconditional")
    return model.eval().requires_grad_(False)


def load_conditional(folder: str | Path, kind: str) -> torch.nn.Module:
    """A trained DEFT head (`kind` 'head') or amortised model ('amortised') for sampling."""
    folder = Path(folder)
    name = _class_name(folder)
    expected = ["ProteinHead"] if kind == "head" else list(PRIOR_CLASSES)
    if name not in expected:
        raise ModelLoadError(f"{folder} holds a {name or 'unknown'} model, not a protein {kind} "
                             f"({' or '.join(expected)})")
    model = load_pretrained(ProteinHead if kind == "head" else PRIOR_CLASSES[name], folder)
    if kind == "amortised" and not model.config.motif_inputs:
        raise ModelLoadError(f"{folder} is an unconditional model, not an amortised (motif-conditioned) one")
    return model.eval().requires_grad_(False)
