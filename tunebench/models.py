"""The DiT core on diffusers' `DiTTransformer2DModel`, with the original DiT's behaviour restored.

diffusers' DiT differs from facebookresearch/DiT in ways that change training (diffusers
`AdaLayerNormZero`, `LabelEmbedding`, `CombinedTimestepLabelEmbeddings`; DiT `models.py` `TimestepEmbedder`):
every block owns a copy of the timestep/label embedder, each copy drops labels on its own random draw, and the
timestep frequencies are divided by 127 instead of 128. `apply_dit_fixes` restores the original behaviour; every
model this suite builds or loads goes through it.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import asdict
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DiTTransformer2DModel
from diffusers.utils import SAFETENSORS_WEIGHTS_NAME
from torch import nn

from tunebench.config import ModelConfig, RunConfig, to_dict
from tunebench.io import atomic_dir, file_sha256, is_main_process, read_json, state_dict_sha256
from tunebench.model_card import CARD_KEY, SIDECAR, CardFacts, model_card
from tunebench.pinned_assets import verify_if_pinned

log = logging.getLogger(__name__)

MODEL_CARD = "README.md"  # what an exported model is and how to load it (`tunebench.model_card`)
DIT_FIXES = ("tied_embedders", "label_dropout_outside_model", "timestep_freq_shift_0", "layernorm_eps_1e-6")


class ModelLoadError(OSError):
    """A model folder or hub id cannot be loaded offline; the message says how to point at a local folder."""


#################################################################################
#                          Building and fixing the model                        #
#################################################################################


def build_dit(cfg: ModelConfig) -> DiTTransformer2DModel:
    """Create a randomly initialised DiT (original DiT initialisation) with the fixes applied."""
    model = DiTTransformer2DModel(
        num_attention_heads=cfg.num_heads,
        attention_head_dim=cfg.head_dim,
        in_channels=cfg.in_channels,
        out_channels=cfg.in_channels * (2 if cfg.learn_sigma else 1),
        num_layers=cfg.num_layers,
        sample_size=cfg.sample_size,
        patch_size=cfg.patch_size,
        num_embeds_ada_norm=cfg.num_classes,
        norm_eps=cfg.norm_eps,
    )
    apply_dit_fixes(model, check_tied=False)
    initialize_dit_weights(model)
    return model


def apply_dit_fixes(model: DiTTransformer2DModel, check_tied: bool = True) -> DiTTransformer2DModel:
    """Make a diffusers DiT behave like the original: one shared embedder, no in-model label dropout, DiT frequencies
    and DiT's LayerNorm eps.

    With `check_tied`, the per-block embedder copies must already be identical (true for converted checkpoints
    and for our exports); otherwise tying would silently discard trained weights, so we refuse.
    """
    blocks = model.transformer_blocks
    shared = blocks[0].norm1.emb
    for index, block in enumerate(blocks[1:], start=1):
        if block.norm1.emb is shared:
            continue
        if check_tied:
            for (name, mine), theirs in zip(block.norm1.emb.state_dict().items(), shared.state_dict().values()):
                if not torch.equal(mine, theirs):
                    raise ModelLoadError(
                        f"block {index} embedder '{name}' differs from block 0; this DiT was trained with untied "
                        "embedders and cannot be tied without changing it")
        block.norm1.emb = shared
    # Label dropout is applied once per sample by the trainer (drop_labels); inside the model each block would
    # draw its own mask. The table keeps its null row because it was sized when dropout_prob was > 0.
    shared.class_embedder.dropout_prob = 0.0
    # Original DiT: freqs = exp(-log(10000) * arange(128) / 128); diffusers' shift=1 divides by 127.
    shared.time_proj.downscale_freq_shift = 0
    # Original DiT: every LayerNorm (both of each block, the final one) has eps 1e-6 (facebookresearch/DiT models.py,
    # DiTBlock and FinalLayer); a folder converted with diffusers' default norm_eps keeps 1e-5.
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            module.eps = ModelConfig.norm_eps
    model.register_to_config(norm_eps=ModelConfig.norm_eps)
    return model


def initialize_dit_weights(model: DiTTransformer2DModel) -> None:
    """DiT's initialisation: xavier linears, N(0, 0.02) embeddings, zero adaLN modulation and output layer."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    proj = model.pos_embed.proj
    nn.init.xavier_uniform_(proj.weight.view(proj.weight.shape[0], -1))
    nn.init.zeros_(proj.bias)
    emb = model.transformer_blocks[0].norm1.emb
    nn.init.normal_(emb.class_embedder.embedding_table.weight, std=0.02)
    nn.init.normal_(emb.timestep_embedder.linear_1.weight, std=0.02)
    nn.init.normal_(emb.timestep_embedder.linear_2.weight, std=0.02)
    for block in model.transformer_blocks:
        nn.init.zeros_(block.norm1.linear.weight)
        nn.init.zeros_(block.norm1.linear.bias)
    for layer in (model.proj_out_1, model.proj_out_2):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)


def fill_zero_parameters(model: nn.Module, std: float) -> nn.Module:
    """Give the all-zero parameters of a fresh DiT (adaLN modulation, output layer) N(0, std²) values from torch's
    global generator (seed it first), so that a random model's outputs are not trivially zero (tests, speed and
    precision measurements)."""
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0, std)
    return model


def null_class(model: DiTTransformer2DModel) -> int:
    """Index of the unconditional label (ImageNet DiT: 1000)."""
    return model.config.num_embeds_ada_norm


def drop_labels(labels: torch.Tensor, prob: float, null: int, generator: torch.Generator) -> torch.Tensor:
    """Classifier-free label dropout, one draw per sample: replace each label by `null` with probability `prob`."""
    draw = torch.rand(labels.shape[0], generator=generator).to(labels.device)
    return torch.where(draw < prob, torch.full_like(labels, null), labels)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of distinct parameters (shared ones counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


#################################################################################
#                         Loading and exporting (offline)                       #
#################################################################################


def _offline_error(name: str, what: str, err: Exception) -> ModelLoadError:
    """The error for a model that is neither a local folder nor in the local hub cache."""
    return ModelLoadError(
        f"cannot load {what} '{name}' offline: it is not a local folder and not in the Hugging Face cache ({err}). "
        f"This suite never downloads at run time. On a machine with network run "
        f"`huggingface-cli download {name} --local-dir /path/to/{Path(name).name}` (or copy the folder), "
        f"then pass that folder, e.g. --set model.pretrained=/path/to/{Path(name).name}.")


def _looks_like_hub_id(name: str) -> bool:
    """'org/name' (a Hugging Face repo id) rather than a filesystem path."""
    return not Path(name).is_absolute() and not name.startswith(".") and name.count("/") == 1


def _subfolder(path: Path, name: str) -> str | None:
    """Return `name` if `path` is a pipeline folder holding that component, else None."""
    return name if (path / name / "config.json").is_file() else None


def _load_component(cls, name: str | Path, component: str, what: str, hub_subfolder: str | None):
    """`cls.from_pretrained` from a local folder (or its `component/` subfolder), or from the local hub cache."""
    path = Path(name)
    if not path.is_dir() and not _looks_like_hub_id(str(name)):
        raise ModelLoadError(f"{what} folder {path} does not exist (expected a save_pretrained folder)")
    if path.is_dir():
        verify_if_pinned(path)
    try:
        if path.is_dir():
            model, info = cls.from_pretrained(path, subfolder=_subfolder(path, component), output_loading_info=True)
        else:
            model, info = cls.from_pretrained(str(name), subfolder=hub_subfolder, local_files_only=True,
                                              output_loading_info=True)
    except (OSError, ValueError) as err:
        if path.is_dir():
            raise ModelLoadError(f"{path} is not a {what} save_pretrained folder ({err})") from None
        raise _offline_error(str(name), what, err) from None
    check_weights_fit(name, info)
    return model


def check_weights_fit(name: str | Path, info: dict) -> None:
    """Refuse a load whose weights do not fit config.json (`output_loading_info` of `from_pretrained`).

    diffusers only warns: missing tensors stay random (or meta), extra ones are dropped, so a folder of another
    architecture would load as a different, partly untrained model.
    """
    missing, unexpected = info["missing_keys"], info["unexpected_keys"]
    if missing or unexpected:
        found = "; ".join(f"{len(keys)} tensors {kind}, e.g. {keys[0]}"
                          for kind, keys in (("missing", missing), ("unexpected", unexpected)) if keys)
        raise ModelLoadError(f"the weights in {name} do not match its config.json ({found}): the folder mixes two "
                             "architectures; export it again with save_pretrained, or restore its config.json")


def load_pretrained(cls, folder: str | Path):
    """`cls.from_pretrained(folder)` for a local save_pretrained folder of any of the suite's models, refusing
    weights that do not fit its config.json (missing, extra or of another shape) with a ModelLoadError; a pinned
    folder (one with a manifest.json) is first checked against its manifest."""
    verify_if_pinned(folder)
    try:
        model, info = cls.from_pretrained(folder, output_loading_info=True)
    except (OSError, ValueError) as err:  # diffusers raises ValueError for a tensor of another shape
        raise ModelLoadError(f"{folder} is not a {cls.__name__} save_pretrained folder that loads "
                             f"({' '.join(str(err).split())[:300]})") from None
    check_weights_fit(folder, info)
    return model


def load_dit(name: str | Path) -> DiTTransformer2DModel:
    """Load a DiT from a save_pretrained folder (or a pipeline folder with `transformer/`) and apply the fixes.

    A hub id works only if it is already in the local Hugging Face cache; anything else raises ModelLoadError
    explaining how to point at a local folder.
    """
    return apply_dit_fixes(_load_component(DiTTransformer2DModel, name, "transformer", "DiT", "transformer"))


def load_vae(name: str | Path) -> AutoencoderKL:
    """Load an AutoencoderKL from a local folder (or `vae/` inside a pipeline folder) or a cached standalone hub id
    such as stabilityai/sd-vae-ft-ema, offline."""
    return _load_component(AutoencoderKL, name, "vae", "VAE", None).eval().requires_grad_(False)


def vae_folder(name: str | Path) -> str | Path:
    """What `load_vae` reads: a pipeline folder's `vae/`, a VAE folder itself, or a hub id unchanged (so that a
    fingerprint of it covers the VAE's weights only, not a pipeline's transformer)."""
    path = Path(name)
    subfolder = _subfolder(path, "vae") if path.is_dir() else None
    return path / subfolder if subfolder else name


def export_dit(model: DiTTransformer2DModel, folder: str | Path, run: RunConfig, extra: dict | None = None, *,
               facts: CardFacts) -> Path:
    """Write `model` as a diffusers save_pretrained folder (safetensors) plus the resolved config and its model card,
    atomically.

    safetensors cannot store one tensor under 28 names, so the shared embedder is written once per block (as in
    converted hub checkpoints); `load_dit` ties the identical copies again.
    """
    return export_pretrained(untied_embedders(model), folder, run, {"fixes": list(DIT_FIXES), **(extra or {})},
                             facts=facts)


def untied_embedders(model: DiTTransformer2DModel) -> DiTTransformer2DModel:
    """A copy whose blocks each hold their own copy of the shared embedder (what safetensors can store)."""
    untied = copy.deepcopy(model)
    for block in untied.transformer_blocks[1:]:
        block.norm1.emb = copy.deepcopy(block.norm1.emb)
    return untied


def export_pretrained(model, folder: str | Path, run: RunConfig, extra: dict | None = None, *,
                      facts: CardFacts) -> Path:
    """Write any diffusers model as a save_pretrained folder (safetensors) with the resolved run config, `extra` and
    `facts` in its `tunebench.json` sidecar and the model card made from them as its README.md, atomically; under
    data parallelism only rank 0 writes (the weights agree)."""
    if not is_main_process():
        return Path(folder)
    sidecar = {"run_config": to_dict(run), **(extra or {}), CARD_KEY: asdict(facts)}
    holds_dit = any(isinstance(module, DiTTransformer2DModel) for module in model.modules())
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        (tmp / SIDECAR).write_text(json.dumps(sidecar, indent=2, sort_keys=True, default=str) + "\n")
        (tmp / MODEL_CARD).write_text(model_card(type(model).__module__, type(model).__name__, holds_dit, sidecar))
    return Path(folder)


def weights_sha256(folder: str | Path) -> str:
    """SHA-256 of an exported folder's weights file: two runs made the same model exactly when these agree."""
    return file_sha256(Path(folder) / SAFETENSORS_WEIGHTS_NAME)


def tensors_sha256(module: nn.Module) -> str:
    """SHA-256 of a module's weights as tensors (`tunebench.io.state_dict_sha256`): unlike a file's hash, the same for
    a training checkpoint's model.safetensors and the save_pretrained folder exported from it."""
    return state_dict_sha256(module.state_dict())


def read_sidecar(folder: str | Path) -> dict:
    """The `tunebench.json` beside an exported model ({} for folders made elsewhere, e.g. a converted hub model)."""
    path = Path(folder) / SIDECAR
    return read_json(path) if path.is_file() else {}  # read_json names the file if it is malformed
