"""Which DiT weights a fine-tuning run trains: all, BitFit, DiffFit or LoRA (peft), and merging them for export.

Every variant also trains the label table, because downstream class k starts from source row k and must move to its
new class (the official DiffFit code trains `y_embed` for the same reason: `train.py`, `trainable_names`).
"""

from __future__ import annotations

import copy

import torch
from diffusers import DiTTransformer2DModel
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

from difftune.config import DiffTuneConfig

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]  # the attention projections of every block
GAMMA = "difffit_gamma"


def _scale_output(module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
    """Forward hook: multiply a linear layer's output by its DiffFit scale (uses the hooked module, so deep copies
    of the model use their own scales)."""
    return output * getattr(module, GAMMA)


def difffit_layers(model: DiTTransformer2DModel, blocks: int | None) -> list[nn.Linear]:
    """The linear layers DiffFit scales in the first `blocks` blocks (default: half, the official 14 of 28).

    Official DiT-DiffFit scales q, k, v, the attention projection and both residual branches. In diffusers' block
    the attention branch ends in `to_out.0` with nothing between it and the residual add but the adaLN gate, so one
    per-channel scale there stands for both the projection scale and the branch scale; `ff.net.2` carries the MLP
    branch scale.
    """
    count = len(model.transformer_blocks) // 2 if blocks is None else blocks
    if not 0 < count <= len(model.transformer_blocks):
        raise ValueError(f"difftune.difffit_blocks={blocks} must be between 1 and {len(model.transformer_blocks)}")
    layers = []
    for block in model.transformer_blocks[:count]:
        attn = block.attn1
        layers += [attn.to_q, attn.to_k, attn.to_v, attn.to_out[0], block.ff.net[2]]
    return layers


def label_table(model: DiTTransformer2DModel) -> nn.Parameter:
    """The shared class-embedding table (num_classes + 1 rows, the last one null)."""
    return model.transformer_blocks[0].norm1.emb.class_embedder.embedding_table.weight


def apply_peft(model: DiTTransformer2DModel, cfg: DiffTuneConfig) -> DiTTransformer2DModel:
    """Set which parameters train (adding DiffFit scales or LoRA adapters in place) and return the model."""
    if cfg.peft == "none":
        return model.requires_grad_(True)
    if cfg.peft == "lora":
        config = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, target_modules=LORA_TARGETS)
        inject_adapter_in_model(config, model)  # freezes the rest; B starts at 0, so the model starts unchanged
    else:
        model.requires_grad_(False)
        for name, param in model.named_parameters():
            param.requires_grad_(name.endswith(".bias"))  # BitFit; DiffFit trains biases too
        if cfg.peft == "difffit":
            for layer in difffit_layers(model, cfg.difffit_blocks):
                layer.register_parameter(GAMMA, nn.Parameter(torch.ones(layer.out_features)))
                layer.register_forward_hook(_scale_output)
    label_table(model).requires_grad_(True)
    return model


def merged_copy(model: DiTTransformer2DModel) -> DiTTransformer2DModel:
    """A plain DiT computing the same function: DiffFit scales folded into their layers, LoRA merged and removed."""
    plain = copy.deepcopy(model)
    for name, layer in list(plain.named_modules()):
        if isinstance(layer, LoraLayer):
            layer.merge()
            parent, _, child = name.rpartition(".")
            setattr(plain.get_submodule(parent), child, layer.get_base_layer())
    for layer in plain.modules():
        if isinstance(layer, nn.Linear) and hasattr(layer, GAMMA):
            gamma = getattr(layer, GAMMA).detach()
            with torch.no_grad():
                layer.weight.mul_(gamma[:, None])
                if layer.bias is not None:
                    layer.bias.mul_(gamma)
            layer._forward_hooks.clear()
            del layer._parameters[GAMMA]
    return plain.requires_grad_(False)
