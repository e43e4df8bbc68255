"""The prior's optional auxiliary losses (`loss.*`: FrameDiff's pairwise-distance loss and a steric violation loss
on x̂0), the training timesteps' law and input perturbation: their values on known geometry, their time window, that
they are off by default, and the config checks."""

import pytest
import torch

from deft.protein.batches import CropBatches
from deft.protein.config import PriorLoss, PriorRun
from deft.protein.diffusion import centred_randn, protein_schedule
from deft.protein.egnn import CalphaEgnn
from deft.protein.objectives import (
    _noised,
    make_loss,
    squared_error,
    training_timesteps,
    x0_clash_error,
    x0_distance_error,
)
from tunebench.config import ConfigError, resolve


def _line(n=4, spacing=3.8, scale=0.1):
    """n residues on a straight line `spacing` Å apart, in model units (1×n×3)."""
    x = torch.zeros(1, n, 3)
    x[0, :, 0] = torch.arange(n) * spacing * scale
    return x


def test_distance_error_is_the_mean_squared_error_of_close_pairs_in_angstrom():
    x0 = _line().repeat(3, 1, 1)
    stretched = x0 * 1.1  # every distance 10% longer: the bonded pairs (3.8 Å) are off by 0.38 Å
    t = torch.tensor([0, 249, 250])
    error = x0_distance_error(x0, stretched, t, PriorLoss(distance_weight=1.0), 0.1, 1000)
    # Only the 3 bonded pairs (both orders) are closer than 6 Å; 7.6 Å and 11.4 Å pairs are ignored.
    assert error.tolist() == pytest.approx([0.38 ** 2, 0.38 ** 2, 0.0], rel=1e-4)
    wide = x0_distance_error(x0, stretched, t, PriorLoss(distance_cutoff=8.0, distance_max_t=1.0), 0.1, 1000)
    # With 8 Å the 7.6 Å pairs (error 0.76 Å) join: (3·0.38² + 2·0.76²)/5 per chain, at every t.
    assert wide.tolist() == pytest.approx([(3 * 0.38 ** 2 + 2 * 0.76 ** 2) / 5] * 3, rel=1e-4)
    assert x0_distance_error(x0, x0, t, PriorLoss(), 0.1, 1000).abs().max() < 1e-3


def test_clash_error_penalises_only_pairs_three_apart_closer_than_the_clash_distance():
    # A chain folded back on itself: residues 0 and 3 sit 2 Å apart (a clash), 0–2 and 1–3 are 2.5 Å apart but only
    # two apart in sequence (not counted), every other pair is far.
    x = torch.tensor([[[0.0, 0, 0], [3.8, 0, 0], [1.9, 1.5, 0], [0, 2.0, 0]]]) * 0.1
    x = x.repeat(2, 1, 1)
    t = torch.tensor([10, 900])
    error = x0_clash_error(x, x, t, PriorLoss(clash_weight=1.0), 0.1, 1000)
    assert error.tolist() == pytest.approx([(3.0 - 2.0) ** 2 / 4, 0.0], rel=1e-4)  # one pair, per residue; high t: 0
    assert x0_clash_error(_line(6), _line(6), torch.tensor([0]), PriorLoss(), 0.1, 1000).item() == 0.0


def test_prior_loss_is_the_plain_eps_loss_by_default_and_adds_the_weighted_distance_term():
    run = resolve("smoke", {"train": {"batch_size": 4}}, cls=PriorRun)
    assert run.loss.distance_weight == 0.0
    schedule = protein_schedule(run.diffusion)
    torch.manual_seed(0)
    model = CalphaEgnn(hidden=8, layers=1, predict_x0=True)
    chains = [type("C", (), {"ca": (_line(40)[0] * 10).numpy()})()]
    batches = CropBatches(chains, run.data, run.train.batch_size, 0)
    batch = {"step": 0, "batches": batches}
    plain = make_loss("prior", run, schedule)(model, batch, torch.Generator().manual_seed(5))
    assert set(plain) == {"loss"} and plain["loss"].shape == (4,)
    run.loss.distance_weight = 2.0
    run.loss.distance_max_t = 1.0  # every chain carries the term, whatever t was drawn
    both = make_loss("prior", run, schedule)(model, batch, torch.Generator().manual_seed(5))
    assert torch.allclose(both["eps_loss"], plain["loss"])
    assert (both["distance_loss"] > 0).all()
    assert torch.allclose(both["loss"], both["eps_loss"] + 2.0 * both["distance_loss"])
    run.loss.distance_weight, run.loss.clash_weight, run.loss.clash_distance = 0.0, 3.0, 50.0  # every pair "clashes"
    clash = make_loss("prior", run, schedule)(model, batch, torch.Generator().manual_seed(5))
    assert set(clash) == {"loss", "eps_loss", "clash_loss"} and (clash["clash_loss"] > 0).all()
    assert torch.allclose(clash["loss"], clash["eps_loss"] + 3.0 * clash["clash_loss"])
    assert torch.allclose(squared_error(torch.zeros(1, 2, 3), torch.ones(1, 2, 3)), torch.tensor([3.0]))


@pytest.mark.parametrize("override", [{"distance_weight": -1.0}, {"distance_cutoff": 0.0},
                                      {"distance_max_t": 0.0}, {"distance_max_t": 1.5}])
def test_prior_loss_settings_are_checked(override):
    with pytest.raises(ConfigError, match="loss.distance"):
        resolve("smoke", {"loss": override}, cls=PriorRun)


@pytest.mark.parametrize("override", [{"clash_weight": -1.0}, {"clash_distance": 0.0}])
def test_clash_loss_settings_are_checked(override):
    with pytest.raises(ConfigError, match="loss.clash"):
        resolve("smoke", {"loss": override}, cls=PriorRun)


def test_training_timesteps_are_uniform_by_default_and_favour_low_noise_with_a_power():
    uniform = training_timesteps(64, 1000, 1.0, torch.Generator().manual_seed(5))
    assert torch.equal(uniform, torch.randint(1000, (64,), generator=torch.Generator().manual_seed(5)))
    low = training_timesteps(20000, 1000, 2.0, torch.Generator().manual_seed(0))
    assert low.min() >= 0 and low.max() <= 999
    # P(t < 100) = P(u² < 0.1) = sqrt(0.1) ≈ 0.316, against 0.1 for uniform timesteps.
    assert (low < 100).float().mean().item() == pytest.approx(0.1 ** 0.5, abs=0.01)
    with pytest.raises(ConfigError, match="loss.t_power"):
        resolve("smoke", {"loss": {"t_power": 0.0}}, cls=PriorRun)


def test_input_perturbation_noises_the_input_more_but_keeps_the_target_and_the_stream():
    run = resolve("smoke", {"train": {"batch_size": 4}}, cls=PriorRun)
    assert run.loss.input_perturbation == 0.0
    schedule = protein_schedule(run.diffusion)
    chains = [type("C", (), {"ca": (_line(40)[0] * 10).numpy()})()]
    batches = CropBatches(chains, run.data, run.train.batch_size, 0)
    x0, t, noise, plain = _noised(batches, schedule, 0, torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)
    x0_p, t_p, noise_p, perturbed = _noised(batches, schedule, 0, generator, input_perturbation=0.1)
    assert torch.equal(t, t_p) and torch.equal(noise, noise_p) and torch.equal(x0, x0_p)  # same target, same stream
    replay = torch.Generator().manual_seed(5)
    training_timesteps(4, schedule.num_train_timesteps, 1.0, replay)
    centred_randn(tuple(x0.shape), replay)  # ε, then ξ
    xi = centred_randn(tuple(x0.shape), replay)
    sigma = (1 - schedule.alphas_cumprod[t]).sqrt().view(-1, 1, 1)
    assert torch.allclose(perturbed - plain, (sigma * 0.1 * xi).float(), atol=1e-6)
    with pytest.raises(ConfigError, match="loss.input_perturbation"):
        resolve("smoke", {"loss": {"input_perturbation": -0.1}}, cls=PriorRun)
