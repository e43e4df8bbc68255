"""The frame-based Cα prior: SE(3) equivariance without reflections, the linear denoiser at initialisation, frames
that are proper rotations, motif conditioning, its selection and round trip through the config and loaders; and the
protein sampler's timestep spacing."""

import pytest
import torch

from deft.protein.batches import random_rotations
from deft.protein.config import PriorRun, ProteinConfig
from deft.protein.diffusion import CentredNoise, centre, protein_schedule
from deft.protein.frame_net import CalphaFrameNet, TriangleMultiplication, residue_frames
from deft.protein.models import build_prior, load_conditional, load_prior
from deft.protein.objectives import _recycled_rows, make_loss
from deft.protein.samplers import sample_motif
from tunebench.config import ConfigError, resolve
from tunebench.schedule import SPACINGS


def _perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """The model with every weight nudged, so the zero-initialised output no longer hides errors."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def _chain(batch=2, n=14, seed=3):
    """Random centred coordinates."""
    return centre(torch.randn(batch, n, 3, generator=torch.Generator().manual_seed(seed)))


def test_frames_are_proper_rotations_that_turn_with_the_chain():
    x = _chain()
    frames = residue_frames(x)
    eye = torch.eye(3).expand_as(frames)
    assert torch.allclose(frames.transpose(-1, -2) @ frames, eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(frames), torch.ones(2, 14), atol=1e-5)
    rotation = random_rotations(1, torch.Generator().manual_seed(0))[0]
    assert torch.allclose(residue_frames(x @ rotation.T), rotation @ frames, atol=1e-5)


# The options that add pair updates and the pair-direction output must keep every symmetry of the plain network.
OPTIONS = [{}, {"update_pair": True}, {"pair_displacement": True}, {"update_pair": True, "pair_displacement": True},
           {"self_condition": True}, {"update_pair": True, "triangle": 4}]


@pytest.mark.parametrize("options", OPTIONS)
def test_prior_is_rotation_equivariant_translation_invariant_and_chiral(options):
    model = _perturbed(CalphaFrameNet(hidden=16, layers=2, heads=2, pair=8, **options))
    x, t = _chain(), torch.tensor([10, 700])
    rotation = random_rotations(1, torch.Generator().manual_seed(1))[0]
    eps = model(x, t)
    assert eps.abs().mean() > 1e-2
    assert torch.allclose(model(x @ rotation.T + torch.tensor([0.3, -1.0, 2.0]), t), eps @ rotation.T, atol=1e-4)
    assert torch.allclose(eps.mean(1), torch.zeros(2, 3), atol=1e-5)
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0]))
    # A mirror image is a different molecule: unlike the EGNN, the frame net must not simply mirror its output.
    assert (model(x @ mirror, t) - eps @ mirror).abs().max() > 1e-2


def test_triangular_updates_start_as_the_identity_and_join_each_pair_to_its_triangles():
    pair = torch.randn(1, 6, 6, 8, generator=torch.Generator().manual_seed(0))
    for outgoing in (True, False):
        assert torch.equal(TriangleMultiplication(8, 4, outgoing)(pair), pair)
    outgoing, incoming = (_perturbed(TriangleMultiplication(8, 4, direction)) for direction in (True, False))

    def reach(update, source, target):
        """|∂ update(pair)[target] / ∂ pair[source]|, summed over channels."""
        z = pair.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(update(z)[0, target[0], target[1]].sum(), z)
        return grad[0, source[0], source[1]].abs().sum().item()

    # Outgoing: ij gathers the edges ik and jk over k, so edge 0–5 reaches pair 0–3 (k = 5) but not pair 1–3.
    assert reach(outgoing, (0, 5), (0, 3)) > 0 and reach(outgoing, (0, 5), (1, 3)) == 0
    # Incoming: ij gathers ki and kj, so edge 0–5 reaches pair 5–3 (k = 0) but not pair 1–3.
    assert reach(incoming, (0, 5), (5, 3)) > 0 and reach(incoming, (0, 5), (1, 3)) == 0
    with pytest.raises(ConfigError, match="prior.triangle"):
        resolve("smoke", {"prior": {"arch": "frames", "hidden": 16, "heads": 2, "triangle": -1}}, cls=PriorRun)
    with pytest.raises(ConfigError, match="prior.triangle"):
        resolve("smoke", {"prior": {"arch": "egnn", "triangle": 4}}, cls=PriorRun)


def test_pair_displacement_moves_residues_along_pair_directions():
    model = _perturbed(CalphaFrameNet(hidden=16, layers=1, heads=2, pair=8, pair_displacement=True))
    x, t = _chain(), torch.tensor([10, 700])
    with_term = model(x, t)
    with torch.no_grad():
        model.displacement.weight.zero_()
        model.displacement.bias.fill_(1.0)  # every weight 1: each residue moves towards the others' mean direction
    h = torch.zeros(2, 14, 16)
    pair = torch.zeros(2, 14, 14, 8)
    diff = x[:, None] - x[:, :, None]
    expected = (diff / (diff.norm(dim=-1, keepdim=True) + 0.1)).sum(2) / 13
    assert torch.allclose(model._displacement(x, h, pair), expected, atol=1e-6)
    assert (model(x, t) - with_term).abs().max() > 1e-3


def test_self_conditioning_feeds_the_first_pass_x0_to_the_second_pass_row_by_row():
    model = _perturbed(CalphaFrameNet(hidden=16, layers=2, heads=2, pair=8, self_condition=True))
    x, t = _chain(batch=3), torch.tensor([10, 300, 700])
    plain = model(x, t, recycle=torch.zeros(3, dtype=torch.bool))
    recycled = model(x, t)  # sampling: every row sees its first pass's x̂0
    assert (recycled - plain).abs().amax((1, 2)).min() > 1e-3
    mixed = model(x, t, recycle=torch.tensor([True, False, True]))
    assert torch.allclose(mixed[[0, 2]], recycled[[0, 2]], atol=1e-6)
    assert torch.allclose(mixed[1], plain[1], atol=1e-6)
    # The recycling layers zeroed (their initial state): every second pass equals the first pass, which is what the
    # rows not recycled computed above, so training's plain rows and sampling's first pass are one function.
    with torch.no_grad():
        for layer in (model.recycle_node, model.recycle_pair):
            layer.weight.zero_()
            layer.bias.zero_()
    assert torch.allclose(model(x, t), plain, atol=1e-6)
    with pytest.raises(ValueError, match="self_condition"):
        CalphaFrameNet(hidden=16, layers=1, heads=2, pair=8)(x, t, recycle=torch.ones(3, dtype=torch.bool))


def test_self_conditioned_training_recycles_about_half_the_rows_and_trains_the_recycling_inputs():
    run = resolve("smoke", {"prior": {"arch": "frames", "hidden": 16, "heads": 2, "self_condition": True}},
                  cls=PriorRun)
    model = _perturbed(build_prior(run))
    draws = torch.stack([_recycled_rows(model, 16, torch.Generator().manual_seed(k))["recycle"] for k in range(50)])
    assert 0.4 < draws.float().mean() < 0.6
    assert _recycled_rows(build_prior(resolve("smoke", {}, cls=PriorRun)), 16, torch.Generator()) == {}
    x0 = _chain(batch=8, n=12)

    class Batches:
        """Fixed crops."""

        def get(self, step):
            """The same batch at every step."""
            return x0

    loss = make_loss("prior", run, protein_schedule(run.diffusion))(
        model, {"step": 0, "batches": Batches()}, torch.Generator().manual_seed(0))["loss"].mean()
    loss.backward()
    assert model.recycle_node.weight.grad.abs().sum() > 0 and model.recycle_pair.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="prior.self_condition"):
        resolve("smoke", {"prior": {"arch": "egnn", "self_condition": True}}, cls=PriorRun)


@pytest.mark.parametrize("options", OPTIONS)
def test_untrained_prior_is_the_optimal_linear_denoiser(options):
    sigma_data, unit = 0.7, 1.0
    model = CalphaFrameNet(hidden=16, layers=1, heads=2, pair=8, sigma_data=sigma_data, length_unit=unit, **options)
    x, t = _chain(), torch.tensor([5, 600])
    abar = protein_schedule(PriorRun().diffusion).alphas_cumprod[t].float().view(-1, 1, 1)
    x0 = abar.sqrt() * sigma_data ** 2 / (abar * sigma_data ** 2 + 1 - abar) * x
    expected = (x - abar.sqrt() * x0) / (1 - abar).sqrt()
    assert torch.allclose(model(x, t), expected, rtol=1e-3, atol=1e-5)  # float32 ε at t = 5: x/σ_t


@pytest.mark.parametrize("options", OPTIONS)
def test_amortised_frame_net_is_equivariant_under_a_joint_motion_and_needs_its_motif(options):
    model = _perturbed(CalphaFrameNet(hidden=16, layers=2, heads=2, pair=8, motif_inputs=True, **options))
    x, t = _chain(), torch.tensor([10, 700])
    mask = torch.zeros(2, 14)
    mask[:, 3:8] = 1
    motif = mask[..., None] * _chain(seed=4)
    rotation = random_rotations(1, torch.Generator().manual_seed(2))[0]
    out = model(x, t, mask, motif)
    moved = model(x @ rotation.T, t, mask, mask[..., None] * (motif @ rotation.T))
    assert torch.allclose(moved, out @ rotation.T, atol=1e-4)
    assert (model(x, t, torch.zeros_like(mask), torch.zeros_like(motif)) - out).abs().max() > 1e-3
    with pytest.raises(ValueError, match="motif_inputs"):
        model(x, t)


def test_arch_selects_the_network_and_saved_models_load_back(tmp_path):
    run = resolve("smoke", {"prior": {"arch": "frames", "hidden": 16, "heads": 2, "update_pair": True,
                                      "pair_displacement": True}}, cls=PriorRun)
    prior = build_prior(run)
    assert isinstance(prior, CalphaFrameNet) and prior.config.hidden == 16
    assert prior.config.update_pair and prior.config.pair_displacement
    prior.save_pretrained(tmp_path / "prior")
    loaded = load_prior(tmp_path / "prior")
    assert isinstance(loaded, CalphaFrameNet) and loaded.config.update_pair and loaded.config.pair_displacement
    assert not build_prior(resolve("smoke", {"prior": {"arch": "frames", "hidden": 16, "heads": 2}},
                                   cls=PriorRun)).config.pair_displacement
    build_prior(run, motif_inputs=True).save_pretrained(tmp_path / "amortised")
    assert load_conditional(tmp_path / "amortised", "amortised").config.motif_inputs
    with pytest.raises(ConfigError, match="prior.arch"):
        resolve("smoke", {"prior": {"arch": "ipa"}}, cls=PriorRun)
    with pytest.raises(ConfigError, match="'sample.spacing' = 'cubic': choose leading, respaced, quadratic"):
        resolve("smoke", {"sample": {"spacing": "cubic"}}, cls=PriorRun)
    with pytest.raises(ConfigError, match="prior.heads"):
        resolve("smoke", {"prior": {"arch": "frames", "hidden": 16, "heads": 3}}, cls=PriorRun)


@pytest.mark.parametrize("spacing", ["leading", "quadratic"])
def test_samplers_visit_the_timesteps_of_the_configured_spacing(spacing):
    run = resolve("smoke", {"sample": {"spacing": spacing, "steps": 6}}, cls=ProteinConfig)
    schedule = protein_schedule(run.diffusion)
    seen = []

    def prior(x, t):
        """A zero-ε prior that records the timesteps it is asked about."""
        seen.append(int(t[0]))
        return torch.zeros_like(x)

    sample_motif("unconditional", prior, schedule, run, torch.zeros(1, 10), torch.zeros(1, 10, 3), CentredNoise([0]))
    assert seen == [step.t for step in schedule.steps(6, spacing)]
    assert seen == SPACINGS[spacing](run.diffusion.num_train_timesteps, 6)


def test_quadratic_spacing_keeps_the_first_steps_error_amplification_small():
    # DDIM's x_s = sqrt(ᾱ_s)·x̂0 + ... multiplies an error in ε by about sqrt(ᾱ_s/ᾱ_t); starting at t = T − 1, where
    # the clipped cosine schedule leaves ᾱ ≈ 2e-9, that factor was over 1000 and blew the DEFT heads' scaffolds apart.
    run = resolve("mini", cls=ProteinConfig)
    schedule = protein_schedule(run.diffusion)
    abar = schedule.alphas_cumprod
    first, second = schedule.steps(run.sample.steps, run.sample.spacing)[:2]
    assert run.sample.spacing == "quadratic" and first.t < run.diffusion.num_train_timesteps - 1
    assert (abar[second.t] / abar[first.t]).sqrt() < 4 < (abar[second.t] / abar[-1]).sqrt()
