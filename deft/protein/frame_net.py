"""A frame-based Cα denoiser (Genie-style, shrunk): invariant features in per-residue frames of the noisy trace, a
transformer with pair-biased attention, and an x̂0 update expressed in the same frames.

Why frames: an EGNN sees only distances, so it is E(3)-equivariant, reflections included, and cannot tell a right-
from a left-handed helix; proteins are chiral. Genie (Lin & AlQuraishi 2023, §3) builds Frenet–Serret frames from the
noisy Cα trace and works in them, which is SE(3)-equivariant only. Here each residue's frame comes from its two
sequence neighbours (the direction along the chain and the curvature direction), every geometric input is expressed
in it, and the output is a vector in the frame, rotated back. The whole network is therefore invariant to
translation and equivariant to proper rotations, not to reflections.

x̂0 uses EDM's preconditioning (Karras et al. 2022, eq. 7 and App. B.6) in the variance-preserving form:
x̂0 = c_skip·x_t + c_out·F with c_skip = sqrt(ᾱ)·σ_d²/(ᾱ·σ_d² + 1 − ᾱ) and c_out = σ_d·sqrt(1 − ᾱ)/sqrt(ᾱ·σ_d² + 1 − ᾱ),
the optimal linear denoiser of data with per-coordinate std σ_d plus a learned correction F whose scale is the noise's
at low t. The network output F starts at zero, so an untrained model is that linear denoiser.
"""

from __future__ import annotations

import torch
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import get_timestep_embedding
from torch import nn

from deft.protein.config import ProteinDiffusion
from deft.protein.diffusion import centre, protein_schedule
from deft.protein.egnn import RBF_CENTRES, radial_basis

NEIGHBOURS = (-3, -2, -1, 1, 2, 3)  # sequence offsets whose Cα each residue sees in its own frame
IDEAL_BOND = 0.38  # nm: the trans Cα–Cα distance; bond-length deviations enter scaled by the noise level


def _unit(v: torch.Tensor) -> torch.Tensor:
    """v / ‖v‖ along the last axis, safe at zero."""
    return v / (v.norm(dim=-1, keepdim=True) + 1e-6)


def residue_frames(x: torch.Tensor) -> torch.Tensor:
    """B×N×3×3 rotations (columns e1, e2, e3) of each residue's frame: e1 along x_{i+1} − x_{i−1}, e2 the part of
    the curvature x_{i+1} + x_{i−1} − 2x_i orthogonal to e1, e3 = e1 × e2. The end residues take their neighbour's
    frame. Needs N ≥ 3."""
    prev, here, nxt = x[:, :-2], x[:, 1:-1], x[:, 2:]
    e1 = _unit(nxt - prev)
    bend = nxt + prev - 2 * here
    e2 = _unit(bend - (bend * e1).sum(-1, keepdim=True) * e1)
    frames = torch.stack([e1, e2, torch.cross(e1, e2, dim=-1)], -1)
    return torch.cat([frames[:, :1], frames, frames[:, -1:]], 1)


def to_local(frames: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Vectors v (B×N×...×3, one frame per residue on axis 1) in their residue's frame: Rᵀv."""
    shape = frames.shape[:2] + (1,) * (v.ndim - 3) + (3, 3)
    return (frames.reshape(shape).transpose(-1, -2) @ v.unsqueeze(-1)).squeeze(-1)


def pair_geometry(frames: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B×N×N×1 distances, B×N×N×3 directions) between points (B×N×3): [i, j] = ‖p_j − p_i‖ and p_j − p_i in residue
    i's frame divided by that distance + 0.1 (a unit vector that fades to zero on the diagonal)."""
    diff = points[:, None] - points[:, :, None]  # [i, j] = p_j − p_i
    dist = diff.norm(dim=-1, keepdim=True)
    return dist, to_local(frames, diff) / (dist + 0.1)


def plus_outer_sum(pair: torch.Tensor, layer: nn.Linear, h: torch.Tensor) -> torch.Tensor:
    """B×N×N×P pair features plus node features B×N×H: `layer` maps each node to 2P, split into a part for i and a
    part for j, so [i, j] = pair_ij + left_i + right_j."""
    left, right = layer(h).chunk(2, -1)
    return pair + left[:, :, None] + right[:, None]


class TriangleMultiplication(nn.Module):
    """A triangular multiplicative update of the pair features (Jumper et al. 2021, AlphaFold 2 suppl. Algorithms 11
    and 12; Genie's pair-transform net uses both, aqlaboratory/genie `genie/model/pair_transform_net.py`): pair ij
    gathers gated products over every third residue k of the edges ik and jk ('outgoing') or ki and kj ('incoming'),
    so a pair's features can see whether its distance agrees with the distances around it. The output projection
    starts at zero, so the update starts as the identity."""

    def __init__(self, pair: int, width: int, outgoing: bool):
        """`pair`: the pair features' width; `width`: the channels of the products."""
        super().__init__()
        self.outgoing = outgoing
        self.norm_in, self.norm_out = nn.LayerNorm(pair), nn.LayerNorm(width)
        self.project, self.gates = nn.Linear(pair, 2 * width), nn.Linear(pair, 2 * width)
        self.gate_out, self.out = nn.Linear(pair, pair), nn.Linear(width, pair)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        """B×N×N×P pair features after the update (residual)."""
        z = self.norm_in(pair)
        a, b = (self.project(z) * torch.sigmoid(self.gates(z))).chunk(2, -1)
        equation = "bikc,bjkc->bijc" if self.outgoing else "bkic,bkjc->bijc"
        products = torch.einsum(equation, a, b) / pair.shape[1]
        return pair + torch.sigmoid(self.gate_out(z)) * self.out(self.norm_out(products))


class PairBiasedBlock(nn.Module):
    """Pre-norm transformer block whose attention logits get a per-head bias from the pair features and whose
    output also averages per-head projections of the pair features (what a residue learns about its partners'
    relative positions)."""

    def __init__(self, hidden: int, heads: int, pair: int, pair_values: int = 8, update_pair: bool = False,
                 triangle: int = 0):
        """`pair`: width of the pair features; `pair_values`: per-head width of the pair projections averaged;
        `update_pair`: add the updated node features of i and j to the pair features (an outer sum) after the
        block, so later blocks' attention biases see what earlier blocks learned about each residue; `triangle`:
        the channels of an outgoing and an incoming triangular update of the pair features after that (0: none)."""
        super().__init__()
        self.pair_from_nodes = nn.Linear(hidden, 2 * pair) if update_pair else None
        self.triangle = nn.ModuleList(TriangleMultiplication(pair, triangle, outgoing)
                                      for outgoing in (True, False)) if triangle else None
        self.heads, self.pair_values = heads, pair_values
        self.norm_attention, self.norm_mlp = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.bias = nn.Linear(pair, heads, bias=False)
        self.pair_value = nn.Linear(pair, heads * pair_values, bias=False)
        self.out = nn.Linear(hidden + heads * pair_values, hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.SiLU(), nn.Linear(4 * hidden, hidden))

    def forward(self, h: torch.Tensor, pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(h, pair) after the block; h: B×N×H node features; pair: B×N×N×P."""
        b, n, width = h.shape
        q, k, v = self.qkv(self.norm_attention(h)).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5 + self.bias(pair).permute(0, 3, 1, 2)
        weights = logits.softmax(-1)  # B×heads×N×N
        values = (weights @ v).transpose(1, 2).reshape(b, n, width)
        pair_values = torch.einsum("bhij,bijhc->bihc", weights,
                                   self.pair_value(pair).view(b, n, n, self.heads, self.pair_values))
        h = h + self.out(torch.cat([values, pair_values.reshape(b, n, -1)], -1))
        h = h + self.mlp(self.norm_mlp(h))
        if self.pair_from_nodes is not None:
            pair = plus_outer_sum(pair, self.pair_from_nodes, h)
        for update in self.triangle or ():
            pair = update(pair)
        return h, pair


class CalphaFrameNet(ModelMixin, ConfigMixin):
    """x_t (B×N×3, model units) and t → ε̂ (B×N×3), optionally conditioned on a motif (the amortised model).

    `motif_inputs` adds, per residue, a motif flag and the motif coordinate y_i − x_i in the residue's frame, and per
    pair the motif's own distances (the conditional pair features of amortised Genie, zero off the motif).
    """

    @register_to_config
    def __init__(self, hidden: int = 64, layers: int = 4, heads: int = 4, pair: int = 32, relpos_max: int = 32,
                 length_unit: float = 1.0, sigma_data: float = 0.75, motif_inputs: bool = False,
                 num_train_timesteps: int = 1000, cosine_s: float = 0.008, max_beta: float = 0.999,
                 update_pair: bool = False, pair_displacement: bool = False, self_condition: bool = False,
                 triangle: int = 0):
        """`length_unit`: model units per nm; `sigma_data`: the data's per-coordinate std in nm (c_skip, c_out); the
        cosine schedule's three arguments give the ᾱ_t that turns x̂0 into ε̂. `update_pair`: every block adds its
        node features to the pair features (`PairBiasedBlock`); `pair_displacement`: the output also moves residue i
        along the unit vectors towards every j, by weights read from the pair features (see `_displacement`);
        `self_condition`: a second pass sees the first pass's x̂0 (see `forward`); `triangle`: the channels of
        every block's triangular updates of the pair features (`TriangleMultiplication`; 0: none)."""
        super().__init__()
        table = protein_schedule(ProteinDiffusion(num_train_timesteps, cosine_s, max_beta)).alphas_cumprod.float()
        self.register_buffer("alphas_cumprod", table, persistent=False)
        motif_node = 4 if motif_inputs else 0
        # Per residue: the neighbours' local coordinates and presence flags, the centre's local coordinates and
        # distance, and the two bond-length deviations in units of the noise level.
        node_in = 4 * len(NEIGHBOURS) + 4 + 2 + motif_node
        self.time = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.node_in = nn.Sequential(nn.Linear(node_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.relpos = nn.Embedding(2 * relpos_max + 1, pair)
        pair_in = RBF_CENTRES.numel() + 1 + 3 + (2 if motif_inputs else 0)
        self.pair_in = nn.Linear(pair_in, pair)
        self.blocks = nn.ModuleList(PairBiasedBlock(hidden, heads, pair, update_pair=update_pair, triangle=triangle)
                                    for _ in range(layers))
        self.norm_out = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, 3)
        self.displacement_nodes = nn.Linear(hidden, 2 * pair) if pair_displacement else None
        self.displacement = nn.Linear(pair, 1) if pair_displacement else None
        # Self-conditioning inputs: x̂0_i − x_i in i's frame; per pair x̂0's distance basis and direction.
        self.recycle_node = nn.Linear(3, hidden) if self_condition else None
        self.recycle_pair = nn.Linear(RBF_CENTRES.numel() + 3, pair) if self_condition else None
        for layer in (self.out, self.displacement, self.recycle_node, self.recycle_pair):
            if layer is not None:  # zero: the untrained network is the linear denoiser and ignores x̂0's inputs
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def _node_features(self, x, frames, abar, noise, motif_mask, motif):
        """B×N×F invariant per-residue inputs (x in nm; abar and the noise std in nm: B×1×1)."""
        b, n, _ = x.shape
        parts, residues = [], torch.arange(n, device=x.device)
        for offset in NEIGHBOURS:
            index = residues + offset
            present = ((index >= 0) & (index < n)).to(x.dtype)
            local = to_local(frames, x[:, index.clamp(0, n - 1)] - x) * present[None, :, None]
            parts += [local, present[None, :, None].expand(b, n, 1)]
        centre_local = to_local(frames, -x)  # x is centred: the centre of mass seen from residue i
        parts += [centre_local, centre_local.norm(dim=-1, keepdim=True).log1p()]
        # x_t's bonds shrink with sqrt(ᾱ) and carry noise of std ~noise/sqrt(ᾱ) after rescaling.
        bond = (x[:, 1:] - x[:, :-1]).norm(dim=-1) / abar[:, :, 0].sqrt()
        deviation = ((bond - IDEAL_BOND) / (noise / abar.sqrt() + 0.01)[:, :, 0]).clamp(-10, 10)
        zero = torch.zeros(b, 1, dtype=x.dtype, device=x.device)
        parts += [torch.cat([zero, deviation], 1)[..., None], torch.cat([deviation, zero], 1)[..., None]]
        if motif_mask is not None:
            flag = motif_mask[..., None].to(x.dtype)
            parts += [flag, to_local(frames, motif - x) * flag]
        return torch.cat(parts, -1)

    def _pair_features(self, x, frames, motif_mask, motif):
        """B×N×N×P invariant pair inputs: relative sequence position, distance, direction in i's frame, motif."""
        n = x.shape[1]
        idx = torch.arange(n, device=x.device)
        r = self.config.relpos_max
        dist, direction = pair_geometry(frames, x)
        scalars = [radial_basis(x), (dist ** 2).log1p(), direction]
        if motif_mask is not None:
            both = (motif_mask[:, :, None] * motif_mask[:, None]).to(x.dtype)
            motif_dist = (motif[:, :, None] - motif[:, None]).pow(2).sum(-1).log1p()
            scalars += [both[..., None], (both * motif_dist)[..., None]]
        return self.pair_in(torch.cat(scalars, -1)) + self.relpos((idx[None] - idx[:, None]).clamp(-r, r) + r)

    def _displacement(self, x: torch.Tensor, h: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
        """B×N×3: the mean over j of w_ij·(x_j − x_i)/(d_ij + 0.1 nm), w_ij read from the pair features and both
        residues' node features. Why: a vector in i's own frame, built from a noisy trace, is a blunt tool for
        setting a distance to one particular residue (a bond, or a steric contact far along the chain); a weight on
        the direction to that residue sets it directly, as an EGNN's coordinate update does. The weights see the
        chiral pair features, so the network stays chiral."""
        weights = self.displacement(nn.functional.silu(plus_outer_sum(pair, self.displacement_nodes, h)))  # B×N×N×1
        diff = x[:, None] - x[:, :, None]  # [i, j] = x_j − x_i; zero on the diagonal
        direction = diff / (diff.norm(dim=-1, keepdim=True) + 0.1)
        return (weights * direction).sum(2) / max(x.shape[1] - 1, 1)

    def _recycled_inputs(self, x: torch.Tensor, frames: torch.Tensor, x0: torch.Tensor,
                         rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B×N×H node, B×N×N×P pair) additions that show a first pass's x̂0 (nm, centred) to the second pass; exactly
        zero in the rows where `rows` (B, bool) is false, so those rows compute the first pass's function."""
        flag = rows.to(x.dtype).view(-1, 1, 1)
        pair = torch.cat([radial_basis(x0), pair_geometry(frames, x0)[1]], -1)
        return (self.recycle_node(to_local(frames, x0 - x)) * flag,
                self.recycle_pair(pair) * flag[..., None])

    def _x0(self, x, frames, abar, noise, h, pair):
        """x̂0 (B×N×3, nm, not re-centred) from the embedded node and pair features: the blocks, the output in each
        residue's frame and EDM's preconditioning."""
        cfg = self.config
        for block in self.blocks:
            h, pair = block(h, pair)
        h = self.norm_out(h)
        correction = (frames @ self.out(h).unsqueeze(-1)).squeeze(-1)  # back to the global frame
        if self.displacement is not None:
            correction = correction + self._displacement(x, h, pair)
        sd2 = cfg.sigma_data ** 2
        variance = abar * sd2 + noise ** 2
        return abar.sqrt() * sd2 / variance * x + cfg.sigma_data * noise / variance.sqrt() * correction

    def forward(self, x: torch.Tensor, t: torch.Tensor, motif_mask: torch.Tensor | None = None,
                motif: torch.Tensor | None = None, recycle: torch.Tensor | None = None) -> torch.Tensor:
        """ε̂ for centred x (B×N×3) at integer timesteps t (B,); motif_mask (B×N) and motif (B×N×3, zero off the
        motif) when `motif_inputs`.

        With `self_condition` the network runs twice: a first pass without gradients, then a second that also sees
        the first pass's x̂0 (self-conditioning, Chen, Zhang & Hinton 2023, "Analog Bits"; in protein diffusion e.g.
        RFdiffusion and FrameDiff). Unlike those samplers, which feed the previous step's x̂0, both passes here see
        the same x_t, exactly as in training, so `forward(x, t)` stays a function of x_t alone and every method uses
        the prior unchanged. `recycle` (B, bool) picks the rows whose second pass sees x̂0 (training: a random half,
        the others learn the plain denoiser); None recycles every row."""
        cfg = self.config
        if cfg.motif_inputs != (motif_mask is not None):
            raise ValueError("pass motif_mask and motif exactly when the model was built with motif_inputs")
        unit = cfg.length_unit
        x = centre(x) / unit
        motif = None if motif is None else motif / unit
        abar = self.alphas_cumprod[t].to(x.dtype).view(-1, 1, 1)
        noise = (1 - abar).sqrt() / unit  # the noise's per-coordinate std in nm
        frames = residue_frames(x)
        emb = get_timestep_embedding(t, cfg.hidden, flip_sin_to_cos=True, downscale_freq_shift=0).to(x.dtype)
        features = self._node_features(x, frames, abar, noise, motif_mask, motif)
        h = self.node_in(features) + self.time(emb)[:, None]
        pair = self._pair_features(x, frames, motif_mask, motif)
        if cfg.self_condition:
            rows = torch.ones(x.shape[0], dtype=torch.bool, device=x.device) if recycle is None else recycle
            if rows.any():
                with torch.no_grad():
                    first = centre(self._x0(x, frames, abar, noise, h, pair))
                node, pair_added = self._recycled_inputs(x, frames, first, rows)
                h, pair = h + node, pair + pair_added
        elif recycle is not None:
            raise ValueError("recycle is for a model built with self_condition")
        x0 = self._x0(x, frames, abar, noise, h, pair)
        return centre((x - abar.sqrt() * centre(x0)) / noise)
