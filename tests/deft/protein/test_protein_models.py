"""DEFT for proteins: equivariance, the head's initialisation and exact-enforcement direction, the frozen prior, masks,
crops, the cosine schedule and per-sample seeds of the samplers."""

import math

import numpy as np
import pytest
import torch

from deft.config import DeftConfig
from deft.protein.batches import CropBatches, random_motif_masks, random_rotations
from deft.protein.config import HeadRun, MotifMasks, PriorRun, ProteinConfig, StructureData
from deft.protein.diffusion import CentredNoise, centre, protein_schedule
from deft.protein.egnn import CalphaEgnn, ProteinHead, build_head_for_fraction, exact_scaling, likelihood_gradient
from deft.protein.geometry import motif_rmsd
from deft.protein.objectives import deft_eps, make_loss
from deft.protein.samplers import sample_motif
from tunebench.config import resolve
from tunebench.diffusion import GaussianDiffusion
from tunebench.models import count_parameters
from tunebench.schedule import Schedule


class FakeChain:
    """A chain-like object: an ideal α-helix of n residues (Å)."""

    def __init__(self, n: int, phase: float = 0.0):
        i = np.arange(n)
        self.ca = np.stack([2.3 * np.cos(np.radians(100 * i) + phase), 2.3 * np.sin(np.radians(100 * i) + phase),
                            1.5 * i], 1).astype(np.float32)

    def __len__(self):
        return len(self.ca)


def _rigid(seed=0):
    """A random proper rotation and translation."""
    generator = torch.Generator().manual_seed(seed)
    return random_rotations(1, generator)[0], torch.randn(3, generator=generator)


def _perturbed(model: torch.nn.Module, scale: float = 0.1) -> torch.nn.Module:
    """The model with every weight nudged, so zero-initialised layers no longer hide errors."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model


def _motif(batch=2, n=12):
    """A mask over residues 2..6 and the motif coordinates of a random centred chain."""
    x = centre(torch.randn(batch, n, 3, generator=torch.Generator().manual_seed(3)))
    mask = torch.zeros(batch, n)
    mask[:, 2:7] = 1
    return x, mask, mask[..., None] * x


def test_prior_is_rotation_equivariant_and_translation_invariant():
    torch.manual_seed(0)
    model = _perturbed(CalphaEgnn(hidden=16, layers=2))
    x, _, _ = _motif()
    t = torch.tensor([10, 700])
    rotation, shift = _rigid()
    eps = model(x, t)
    moved = model(x @ rotation.T + shift, t)
    assert torch.allclose(moved, eps @ rotation.T, atol=1e-5)
    assert eps.abs().mean() > 1e-3
    assert torch.allclose(eps.mean(1), torch.zeros(2, 3), atol=1e-6)  # ε̂ lives in the centred subspace


def test_conditional_models_are_equivariant_under_a_joint_motion_of_sample_and_motif():
    torch.manual_seed(0)
    amortised = _perturbed(CalphaEgnn(hidden=16, layers=2, motif_inputs=True))
    head = _perturbed(ProteinHead(hidden=8, layers=1))
    x, mask, motif = _motif()
    t = torch.tensor([10, 700])
    rotation, shift = _rigid(1)
    moved_motif = mask[..., None] * (motif @ rotation.T + shift)
    out = amortised(x, t, mask, motif)
    assert torch.allclose(amortised(x @ rotation.T + shift, t, mask, moved_motif), out @ rotation.T, atol=1e-5)
    x0 = x * 0.9
    g = likelihood_gradient(x0, mask, motif, 1.0)
    g_moved = likelihood_gradient(x0 @ rotation.T + shift, mask, moved_motif, 1.0)
    assert torch.allclose(g_moved, g @ rotation.T, atol=1e-5)
    head_out = head(x, t, mask, motif, x0, g)
    head_moved = head(x @ rotation.T + shift, t, mask, moved_motif, x0 @ rotation.T + shift, g_moved)
    assert torch.allclose(head_moved, head_out @ rotation.T, atol=1e-5)


def test_head_starts_as_a_small_step_towards_the_motif():
    """NN1 ≡ 0 at initialisation, so ε_φ = −b0·centre(g); its x̂0 correction reduces the motif residual."""
    head = ProteinHead(hidden=8, layers=2, init_scaling_bias=0.01)
    x, mask, motif = _motif()
    x0 = torch.zeros_like(x)
    g = likelihood_gradient(x0, mask, motif, 1.0)
    out = head(x, torch.tensor([100, 500]), mask, motif, x0, g)
    assert torch.allclose(out, -0.01 * centre(g), atol=1e-7)
    abar = torch.tensor(0.5)
    corrected = x0 - ((1 - abar) / abar).sqrt() * out
    before = (mask[..., None] * (motif - x0)).norm()
    after = (mask[..., None] * (motif - corrected - (corrected - x0).mean(1, keepdim=True))).norm()
    assert after < before


@pytest.mark.parametrize("sign, expected", [(+1, 0.0), (-1, 2.0)])
def test_exact_scaling_puts_the_corrected_tweedie_estimate_on_the_motif(sign, expected):
    """The guidance term's exact-enforcement direction (docs/protein.md "Sign of the guidance term"): with NN1 = 0 and
    NN2(t) = σ²·sqrt(ᾱ)/sqrt(1 − ᾱ), the motif of x̂0(ε_θ + ε_φ) equals y (up to the centring shift); the opposite
    sign doubles the motif error instead."""
    head = ProteinHead(hidden=8, layers=1)
    x, mask, motif = _motif()
    schedule = protein_schedule(resolve("smoke", cls=ProteinConfig).diffusion)
    t = torch.tensor([50, 400])
    abar = schedule.abar(t).float()
    eps_theta = centre(torch.randn(x.shape, generator=torch.Generator().manual_seed(5)))
    x0 = schedule.predict_x0(x, t, eps_theta).float()
    sigma_y = 0.7
    g = likelihood_gradient(x0, mask, motif, sigma_y)
    with torch.no_grad():
        head.nn2[-1].bias.zero_()
    head.scaling = lambda tt: sign * exact_scaling(schedule.abar(tt).float(), sigma_y).view(-1, 1, 1)
    eps = eps_theta + head(x, t, mask, motif, x0, g)
    corrected = schedule.predict_x0(x, t, eps).float()
    idx = torch.arange(2, 7)
    for row in range(2):
        residual = corrected[row, idx] - motif[row, idx]
        residual = residual - residual.mean(0)  # the centring projection shifts the whole chain
        original = x0[row, idx] - motif[row, idx]
        original = original - original.mean(0)
        assert torch.allclose(residual.norm(), expected * original.norm(), rtol=1e-3, atol=1e-4)
    assert abar.min() > 0


def test_head_size_is_solved_to_the_requested_fraction():
    prior = CalphaEgnn(hidden=48, layers=4)
    total = count_parameters(prior)
    for fraction in (0.04, 0.09):
        head = build_head_for_fraction(fraction, total, 2, 32, 1.0, 0.01)
        assert abs(count_parameters(head) / total - fraction) < 0.01


def test_head_training_never_changes_the_frozen_prior(tmp_path):
    from tunebench.training import train

    run = resolve("smoke", {"train": {"steps": 3, "checkpoint_every": 3}}, cls=HeadRun)
    schedule = protein_schedule(run.diffusion)
    torch.manual_seed(0)
    prior = _perturbed(CalphaEgnn(hidden=8, layers=1)).requires_grad_(False)
    before = {k: v.clone() for k, v in prior.state_dict().items()}
    head = ProteinHead(hidden=8, layers=1)
    batches = CropBatches([FakeChain(40, k) for k in range(3)], run.data, run.train.batch_size, 0)
    trained, _ = train(run, head, make_loss("head", run, schedule, prior), lambda s: {"step": s, "batches": batches},
                       tmp_path, progress=False)
    assert all(torch.equal(before[k], v) for k, v in prior.state_dict().items())
    assert all(p.grad is None for p in prior.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(trained.parameters(), ProteinHead(8, 1).parameters()))


def test_motif_masks_respect_segments_fraction_and_empty_share():
    masks = MotifMasks(max_segments=2, min_fraction=0.1, max_fraction=0.4)
    out = random_motif_masks(500, 50, masks, torch.Generator().manual_seed(0), empty_fraction=0.2)
    sizes = out.sum(1)
    assert 0.12 < (sizes == 0).float().mean() < 0.28
    present = out[sizes > 0]
    assert present.sum(1).min() >= 5 and present.sum(1).max() <= 20
    starts = (present[:, 1:] - present[:, :-1] == 1).sum(1) + present[:, 0]
    assert set(starts.long().tolist()) == {1, 2}


def test_crops_are_centred_scaled_deterministic_and_keep_bond_lengths():
    data = StructureData(crop_min=10, crop_max=14, coord_scale=0.1)
    batches = CropBatches([FakeChain(30), FakeChain(12, 1.0)], data, 8, seed=3)
    first, again = batches.get(5), batches.get(5)
    assert torch.equal(first, again)
    assert 10 <= first.shape[1] <= 14
    assert torch.allclose(first.mean(1), torch.zeros(8, 3), atol=1e-6)
    bonds = (first[:, 1:] - first[:, :-1]).norm(dim=-1) / 0.1
    ideal = np.linalg.norm(FakeChain(2).ca[1] - FakeChain(2).ca[0])
    assert torch.allclose(bonds, torch.full_like(bonds, float(ideal)), atol=1e-3)


def test_cosine_schedule_matches_the_formula():
    cfg = resolve("paper", {"data": {"root": "/tmp"}}, cls=ProteinConfig).diffusion
    abar = protein_schedule(cfg).alphas_cumprod
    assert len(abar) == 1000 and bool(torch.all(abar[1:] < abar[:-1]))
    f = lambda i: math.cos((i / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert abar[499].item() == pytest.approx(f(500) / f(0), rel=1e-6)
    betas = 1 - abar[1:] / abar[:-1]
    assert betas.max() <= 0.999 + 1e-9


def test_protein_deft_and_dit_schedules_are_one_class():
    """The protein prior's cosine schedule, DEFT's backbone schedule and DiT's training schedule are the core's one
    `Schedule` class."""
    protein = protein_schedule(resolve("smoke", cls=ProteinConfig).diffusion)
    deft = Schedule.linear(resolve("smoke", cls=DeftConfig).diffusion)
    dit = GaussianDiffusion(resolve("smoke").diffusion).schedule
    assert all(type(schedule) is Schedule for schedule in (protein, deft, dit))
    assert torch.equal(deft.alphas_cumprod, dit.alphas_cumprod)


@pytest.mark.parametrize("method", ["unconditional", "replacement", "dps", "deft", "amortised"])
def test_samples_depend_only_on_their_seed(method):
    run = resolve("smoke", {"sample": {"compute_chunk": 2}}, cls=ProteinConfig)
    schedule = protein_schedule(run.diffusion)
    torch.manual_seed(0)
    prior = _perturbed(CalphaEgnn(hidden=8, layers=1)).requires_grad_(False)
    model = {"deft": _perturbed(ProteinHead(hidden=8, layers=1), 0.01),
             "amortised": _perturbed(CalphaEgnn(hidden=8, layers=1, motif_inputs=True))}.get(method)
    _, mask, motif = _motif(3, 12)
    kwargs = dict(model=model, dps_scale=0.5)
    together, stats = sample_motif(method, prior, schedule, run, mask, motif, CentredNoise([7, 8, 9]), **kwargs)
    alone, _ = sample_motif(method, prior, schedule, run, mask[1:2], motif[1:2], CentredNoise([8]), **kwargs)
    assert torch.allclose(together[1], alone[0], atol=1e-5)
    assert torch.isfinite(together).all()
    assert stats["prior_vjps_per_sample"] == (run.sample.steps if method == "dps" else 0)
    if method == "replacement":  # the motif is imposed exactly at the last step (up to the centring shift)
        for row in range(3):
            assert motif_rmsd(together[row].numpy(), motif[row, 2:7].numpy(), np.arange(2, 7)) < 1e-4


def test_deft_with_a_zero_head_reproduces_unconditional_samples():
    run = resolve("smoke", cls=ProteinConfig)
    schedule = protein_schedule(run.diffusion)
    torch.manual_seed(0)
    prior = _perturbed(CalphaEgnn(hidden=8, layers=1)).requires_grad_(False)
    head = ProteinHead(hidden=8, layers=1, init_scaling_bias=0.0)
    _, mask, motif = _motif(2, 12)
    plain, _ = sample_motif("unconditional", prior, schedule, run, mask, motif, CentredNoise([1, 2]))
    guided, _ = sample_motif("deft", prior, schedule, run, mask, motif, CentredNoise([1, 2]), model=head)
    assert torch.allclose(plain, guided, atol=1e-6)
    assert not torch.allclose(deft_eps(ProteinHead(8, 1), prior, schedule, run, plain, torch.tensor([5, 5]), mask,
                                       motif), prior(plain, torch.tensor([5, 5])))


def test_sampler_rejects_missing_inputs():
    run = resolve("smoke", cls=ProteinConfig)
    schedule = protein_schedule(run.diffusion)
    prior = CalphaEgnn(hidden=8, layers=1)
    _, mask, motif = _motif(1, 12)
    with pytest.raises(ValueError, match="guidance scale"):
        sample_motif("dps", prior, schedule, run, mask, motif, CentredNoise([0]))
    with pytest.raises(ValueError, match="trained model"):
        sample_motif("deft", prior, schedule, run, mask, motif, CentredNoise([0]))
    with pytest.raises(ValueError, match="unknown method"):
        sample_motif("smc", prior, schedule, run, mask, motif, CentredNoise([0]))


def test_stage_configs_differ_only_in_training():
    prior, head = resolve("mini", cls=PriorRun), resolve("mini", cls=HeadRun)
    assert prior.data == head.data and prior.sample == head.sample
    assert prior.train.steps != head.train.steps
