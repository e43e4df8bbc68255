"""E(3)-equivariant Cα networks (dense EGNN, Satorras et al. 2021, ProtDiff-style) for the prior, the amortised
model and DEFT's h-transform head; all are diffusers models saved with `save_pretrained`.

One trunk serves all three. Nodes are residues with a time embedding (plus motif flags when conditioned); edges are
all residue pairs with a learned embedding of the clipped sequence offset, the squared distance, and, when
conditioned, the motif's own pair distances (the paper's "conditional pair features", zero off the motif).
Coordinates move along differences to the other residues and to *anchor* coordinate sets (the motif y, x̂0), which
keeps the output equivariant under a joint rigid motion of x and the anchors and invariant to translation. The prior
and the amortised model read the moved coordinates as x̂0 and return the ε it implies; DEFT's NN1 returns the
displacement itself as its ε correction; outputs are projected to zero mean (the diffusion lives in the centred
subspace).
"""

from __future__ import annotations

import torch
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import get_timestep_embedding
from torch import nn

from deft.protein.config import ProteinDiffusion
from deft.protein.diffusion import centre, protein_schedule
from tunebench.models import count_parameters

RBF_CENTRES = torch.linspace(0.2, 1.6, 15)  # nm: Cα–Cα bond (0.38) to contact distances
RBF_WIDTH = 0.1  # nm


def radial_basis(x: torch.Tensor) -> torch.Tensor:
    """B×N×N×K Gaussian radial basis of the pair distances of x (nm): fine enough to resolve sub-Å deviations of a
    bond, which log(1 + d²) alone cannot at low noise."""
    dist = ((x[:, :, None] - x[:, None]).pow(2).sum(-1, keepdim=True) + 1e-8).sqrt()
    return torch.exp(-((dist - RBF_CENTRES.to(x)) / RBF_WIDTH) ** 2)


class EgnnLayer(nn.Module):
    """One message-passing layer: invariant messages, node update, equivariant coordinate update."""

    def __init__(self, hidden: int, relpos_classes: int, edge_scalars: int, anchors: int):
        """`edge_scalars`: per-pair inputs besides the current distance (the radial basis of the input distances and
        any conditioning); `anchors`: coordinate sets the residues can move towards."""
        super().__init__()
        self.anchors = anchors
        self.source, self.target = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden, bias=False)
        self.relpos = nn.Embedding(relpos_classes, hidden)
        self.edge_in = nn.Linear(1 + edge_scalars + anchors, hidden, bias=False)
        self.message = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.coord = nn.Linear(hidden, 1 + anchors)
        self.node = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, h, x, relpos, edge_scalars, anchors, anchor_masks):
        """Update (h, x). relpos: N×N class ids; edge_scalars: B×N×N×E; anchors: list of B×N×3 with B×N masks."""
        n = x.shape[1]
        diff = x[:, :, None] - x[:, None]  # B×N×N×3, x_i − x_j
        dist2 = diff.pow(2).sum(-1, keepdim=True)
        # Distances enter as log(1 + d²): x̂0 at high noise can be ~100 nm off, raw d² would saturate the MLPs.
        scalars, anchor_diffs = [dist2.log1p(), edge_scalars], []
        for anchor, amask in zip(anchors, anchor_masks):
            adiff = x[:, :, None] - anchor[:, None]  # x_i − a_j
            anchor_diffs.append(adiff)
            scalars.append(adiff.pow(2).sum(-1, keepdim=True).log1p() * amask[:, None, :, None])
        pre = self.source(h)[:, :, None] + self.target(h)[:, None] + self.relpos(relpos) + self.edge_in(torch.cat(
            scalars, -1))
        m = self.message(pre)  # B×N×N×H
        w = self.coord(m)
        # Normalised directions keep far pairs from dominating; the diagonal (i = j) has a zero difference, and the
        # small constant keeps the square root's gradient finite there. Sums are scaled by 1/sqrt(N − 1), not
        # 1/(N − 1): a mean would dilute the two bonded neighbours that fix a residue's position at low noise.
        step = (diff / ((dist2 + 1e-8).sqrt() + 1.0) * w[..., :1]).sum(2) / max(n - 1, 1) ** 0.5
        for k, (adiff, amask) in enumerate(zip(anchor_diffs, anchor_masks)):
            weight = w[..., 1 + k:2 + k] * amask[:, None, :, None]
            norm = (adiff.pow(2).sum(-1, keepdim=True) + 1e-8).sqrt() + 1.0
            step = step + (adiff / norm * weight).sum(2) / amask.sum(1).clamp(min=1)[:, None, None].sqrt()
        h = h + self.node(torch.cat([h, m.sum(2) / n], -1))
        return h, x + step


class CalphaEgnn(ModelMixin, ConfigMixin):
    """The shared trunk: x_t (B×N×3, model units) and t → ε̂ (B×N×3), optionally conditioned on a motif.

    `motif_inputs` adds the motif (flag per residue, motif pair distances, anchor y). `head_inputs` adds x̂0 as
    an anchor and the likelihood gradient g as a vector channel (DEFT's NN1). `zero_output` starts every coordinate
    update at zero, so the network outputs exactly 0 at initialisation (DEFT's NN1 ≡ 0).
    """

    @register_to_config
    def __init__(self, hidden: int = 48, layers: int = 4, relpos_max: int = 32, length_unit: float = 1.0,
                 motif_inputs: bool = False, head_inputs: bool = False, zero_output: bool = False,
                 predict_x0: bool = False, num_train_timesteps: int = 1000, cosine_s: float = 0.008,
                 max_beta: float = 0.999):
        """`length_unit`: model units per nm, so distances enter the network in nm whatever the coordinate scale.
        `predict_x0`: the moved coordinates are x̂0 and ε̂ = (x_t − sqrt(ᾱ_t)·x̂0)/sqrt(1 − ᾱ_t) on the cosine schedule
        given by the last three arguments; otherwise the displacement is ε̂ itself (DEFT's NN1)."""
        super().__init__()
        if predict_x0:
            # At low noise ε is the structure's tiny deviation divided by σ_t; predicting x̂0 leaves that division
            # to this formula instead of asking the network for outputs ~1/σ_t times its input scale.
            table = protein_schedule(ProteinDiffusion(num_train_timesteps, cosine_s, max_beta)).alphas_cumprod.float()
            self.register_buffer("alphas_cumprod", table, persistent=False)
        self.node_scalars = (1 if motif_inputs else 0) + (1 if head_inputs else 0)
        edge_scalars = RBF_CENTRES.numel() + (2 if motif_inputs else 0) + (1 if head_inputs else 0)
        anchors = (1 if motif_inputs else 0) + (1 if head_inputs else 0)
        self.time = nn.Sequential(nn.Linear(hidden + self.node_scalars, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.blocks = nn.ModuleList(EgnnLayer(hidden, 2 * relpos_max + 1, edge_scalars, anchors) for _ in range(layers))
        if head_inputs:
            self.gradient_gate = nn.Linear(hidden, 1)  # per-residue weight of g in the output
        if zero_output:
            for layer in self.blocks:
                nn.init.zeros_(layer.coord.weight)
                nn.init.zeros_(layer.coord.bias)
            if head_inputs:
                nn.init.zeros_(self.gradient_gate.weight)
                nn.init.zeros_(self.gradient_gate.bias)

    def _relpos(self, n: int, device) -> torch.Tensor:
        """N×N clipped sequence offsets shifted to class ids 0..2R."""
        idx = torch.arange(n, device=device)
        r = self.config.relpos_max
        return (idx[None] - idx[:, None]).clamp(-r, r) + r

    def forward(self, x: torch.Tensor, t: torch.Tensor, motif_mask: torch.Tensor | None = None,
                motif: torch.Tensor | None = None, x0hat: torch.Tensor | None = None,
                g: torch.Tensor | None = None) -> torch.Tensor:
        """ε̂ for centred x (B×N×3) at integer timesteps t (B,); motif_mask (B×N, 0/1) and motif (B×N×3, zero off
        the motif) when `motif_inputs`; x̂0 and g (B×N×3) when `head_inputs`."""
        cfg = self.config
        unit = cfg.length_unit
        x = x / unit  # nm inside the network
        b, n, _ = x.shape
        node_extra, edge_extra, anchors, anchor_masks = [], [], [], []
        if cfg.motif_inputs:
            mask = motif_mask.to(x.dtype)
            y = motif / unit
            pair = mask[:, :, None] * mask[:, None]
            edge_extra += [pair[..., None], (pair * (y[:, :, None] - y[:, None]).pow(2).sum(-1).log1p())[..., None]]
            node_extra.append(mask[..., None])
            anchors.append(y)
            anchor_masks.append(mask)
        if cfg.head_inputs:
            x0 = x0hat / unit
            node_extra.append((g.norm(dim=-1, keepdim=True) * unit).log1p())
            edge_extra.append((x0[:, :, None] - x0[:, None]).pow(2).sum(-1, keepdim=True).log1p())
            anchors.append(x0)
            anchor_masks.append(torch.ones(b, n, dtype=x.dtype, device=x.device))
        emb = get_timestep_embedding(t, cfg.hidden, flip_sin_to_cos=True, downscale_freq_shift=0).to(x.dtype)
        h = self.time(torch.cat([emb[:, None].expand(b, n, cfg.hidden), *node_extra], -1))
        edges = torch.cat([radial_basis(x), *edge_extra], -1)
        relpos = self._relpos(n, x.device)
        out = x
        for layer in self.blocks:
            h, out = layer(h, out, relpos, edges, anchors, anchor_masks)
        if cfg.predict_x0:
            abar = self.alphas_cumprod[t].view(-1, 1, 1)
            return centre((x - abar.sqrt() * centre(out)) / (1 - abar).sqrt() * unit)
        eps = out - x
        if cfg.head_inputs:
            eps = eps + self.gradient_gate(h) * g / unit
        return centre(eps * unit)


class ProteinHead(ModelMixin, ConfigMixin):
    """DEFT's h-transform for Cα motifs: ε_φ = NN1(x_t, t, x̂0, motif, g) − NN2(t)·g, centred.

    The sign matches the image head (`deft.head`): with NN2 > 0 the correction moves x̂0 towards the motif, and
    NN2(t) = σ_y²·sqrt(ᾱ_t)/sqrt(1 − ᾱ_t) puts x̂0's motif exactly on y (see `exact_scaling`). NN1 starts at 0 and
    NN2 at `init_scaling_bias`.
    """

    @register_to_config
    def __init__(self, hidden: int = 16, layers: int = 2, relpos_max: int = 32, length_unit: float = 1.0,
                 init_scaling_bias: float = 0.01):
        """Build NN1 (zero output at initialisation) and NN2 (a time MLP starting at the constant bias)."""
        super().__init__()
        self.nn1 = CalphaEgnn(hidden=hidden, layers=layers, relpos_max=relpos_max, length_unit=length_unit,
                              motif_inputs=True, head_inputs=True, zero_output=True)
        self.nn2 = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        nn.init.zeros_(self.nn2[-1].weight)
        nn.init.constant_(self.nn2[-1].bias, init_scaling_bias)

    def scaling(self, t: torch.Tensor) -> torch.Tensor:
        """NN2(t), shaped B×1×1."""
        emb = get_timestep_embedding(t, self.config.hidden, flip_sin_to_cos=True, downscale_freq_shift=0)
        return self.nn2(emb.to(self.nn2[0].weight.dtype)).view(-1, 1, 1)

    def forward(self, x, t, motif_mask, motif, x0hat, g):
        """ε_φ (B×N×3) added to the frozen prior's ε_θ."""
        return self.nn1(x, t, motif_mask, motif, x0hat, g) - centre(self.scaling(t) * g)


def exact_scaling(abar_t: torch.Tensor, sigma_y: float) -> torch.Tensor:
    """The NN2(t) that makes the corrected x̂0 equal y on the motif (up to a shift), for a noiseless mask operator:
    x̂0' = x̂0 + sqrt(1 − ᾱ)/sqrt(ᾱ)·NN2·g with g = (y − x̂0)/σ_y² on the motif gives x̂0'^M = y."""
    return sigma_y ** 2 * abar_t.sqrt() / (1 - abar_t).sqrt()


def likelihood_gradient(x0hat: torch.Tensor, motif_mask: torch.Tensor, motif: torch.Tensor,
                        sigma_y: float) -> torch.Tensor:
    """g = ∇_x̂0 log N(y; A x̂0, σ_y² I) = Aᵀ(y − A x̂0)/σ_y²: the motif residual, zero off the motif."""
    return motif_mask[..., None].to(x0hat.dtype) * (motif - x0hat) / sigma_y ** 2


def build_head_for_fraction(fraction: float, prior_parameters: int, layers: int, relpos_max: int,
                            length_unit: float, init_scaling_bias: float) -> ProteinHead:
    """The head whose width brings its parameter count closest to `fraction` of the prior's."""
    best = None
    for hidden in range(4, 257, 2):
        size = count_parameters(ProteinHead(hidden, layers, relpos_max, length_unit, init_scaling_bias))
        if best is None or abs(size - fraction * prior_parameters) < abs(best[1] - fraction * prior_parameters):
            best = (hidden, size)
        if size > fraction * prior_parameters:
            break
    torch.manual_seed(0)
    return ProteinHead(best[0], layers, relpos_max, length_unit, init_scaling_bias)
