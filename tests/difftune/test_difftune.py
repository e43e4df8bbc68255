"""Diff-Tuning: the timestep laws, the mixed batch, the loss combination, PEFT variants and the splice sampler."""

import dataclasses

import pytest
import torch
from scipy.stats import chisquare

from difftune.config import FineTuneConfig
from difftune.objective import batch_sizes, draw_timesteps, make_objective, timestep_law
from difftune.peft import apply_peft, label_table, merged_copy
from tunebench.config import ConfigError, resolve
from tunebench.sampling import Handoff, sample_batches


def finetune_run(scale="smoke", **difftune):
    return resolve(scale, {"difftune": difftune}, cls=FineTuneConfig)


#################################################################################
#                             Timestep laws                                     #
#################################################################################


def test_laws_are_normalised_mirrored_and_have_the_official_means():
    target, retention = timestep_law(1000, 1.0), timestep_law(1000, 1.0, retention=True)
    t = torch.arange(1000, dtype=torch.float64)
    assert torch.isclose(target.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert torch.equal(retention, target.flip(0))
    assert abs(float((t * target).sum()) - 666.0) < 1e-9  # Σ t(t+1) / Σ (t+1) over t < 1000
    assert abs(float((t * retention).sum()) - 333.0) < 1e-9
    assert torch.allclose(timestep_law(1000, 0.0), torch.full((1000,), 1e-3, dtype=torch.float64))
    assert float(target[999] / target[0]) == pytest.approx(1000.0)  # P ∝ (t+1)^1
    assert float(timestep_law(1000, 2.0)[9] / timestep_law(1000, 2.0)[0]) == pytest.approx(100.0)


@pytest.mark.parametrize("tau, retention", [(1.0, False), (1.0, True), (0.5, False), (1.5, True)])
def test_drawn_timesteps_follow_their_law(tau, retention):
    law = timestep_law(1000, tau, retention)
    draws = draw_timesteps(law, 200_000, torch.Generator().manual_seed(0))
    observed = torch.bincount(draws // 50, minlength=20).double()
    expected = law.view(20, 50).sum(1) * len(draws)
    assert chisquare(observed.numpy(), expected.numpy()).pvalue > 1e-3
    wrong = timestep_law(1000, tau, not retention).view(20, 50).sum(1) * len(draws)  # the chi-square has power
    assert chisquare(observed.numpy(), wrong.numpy()).pvalue < 1e-12


#################################################################################
#                              Mixed batch                                      #
#################################################################################


class Spy(torch.nn.Module):
    """Wraps a DiT and records the labels and timesteps of every forward pass."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, x, t, y):
        self.calls.append((t.clone(), y.clone(), x.shape[0]))
        return self.model(x, t, y)


def test_default_batch_is_26_target_plus_6_retention():
    assert batch_sizes(resolve("paper", cls=FineTuneConfig)) == (26, 6)
    assert batch_sizes(resolve("paper", {"difftune": {"method": "full_ft"}}, cls=FineTuneConfig)) == (32, 0)


def test_one_forward_pass_retention_rows_null_and_loss_combination(tiny_model):
    run = finetune_run(retention_weight=0.25)
    run.train.label_dropout = 0.5
    spy, null = Spy(tiny_model), 13
    loss_fn = make_objective(run, null)
    n_target, n_retention = 40, 12
    batch = {"images": torch.rand(n_target, 3, 16, 16) * 2 - 1, "labels": torch.randint(0, 10, (n_target,)),
             "retention": torch.rand(n_retention, 3, 16, 16) * 2 - 1}
    losses = loss_fn(spy, batch, torch.Generator().manual_seed(0))
    assert len(spy.calls) == 1 and spy.calls[0][2] == n_target + n_retention  # one forward pass
    t, y, _ = spy.calls[0]
    assert (y[n_target:] == null).all()  # retention rows only train the unconditional branch
    dropped = (y[:n_target] == null).float().mean()
    assert 0.2 < dropped < 0.8 and (y[:n_target][y[:n_target] != null] == batch["labels"][y[:n_target] != null]).all()
    assert t[:n_target].float().mean() > t[n_target:].float().mean()  # target noisy end, retention clean end
    expected = losses["target"].mean() + 0.25 * losses["retention"].mean()
    assert torch.isclose(losses["loss"].mean(), expected, rtol=1e-5)


def test_full_ft_draws_uniform_t_and_no_retention(tiny_model):
    run = finetune_run(method="full_ft")
    spy = Spy(tiny_model)
    batch = {"images": torch.zeros(2000, 3, 16, 16), "labels": torch.zeros(2000, dtype=torch.long)}
    with torch.no_grad():
        losses = make_objective(run, 13)(spy, batch, torch.Generator().manual_seed(1))
    t = spy.calls[0][0]
    assert "retention" not in losses and torch.isclose(losses["loss"].mean(), losses["target"].mean())
    assert abs(t.float().mean().item() - 499.5) < 20  # uniform, not the (t+1)^τ law's 666


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="difftune.method"):
        finetune_run(method="ours")
    with pytest.raises(ConfigError, match="difftune.peft"):
        finetune_run(peft="adapter")
    with pytest.raises(ConfigError, match="retention_ratio"):
        finetune_run(retention_ratio=0.01)  # int(10 · 0.01) = 0 retention images


#################################################################################
#                                 PEFT                                          #
#################################################################################


def _trainable(model):
    return {name for name, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("peft", ["bitfit", "difffit", "lora"])
def test_peft_trains_few_weights_and_merges_into_a_plain_dit(tiny_model, peft):
    model = apply_peft(tiny_model, dataclasses.replace(finetune_run().difftune, peft=peft))
    names = _trainable(model)
    assert label_table(model).requires_grad
    assert not any(name.endswith("to_q.weight") or name.endswith("proj_out_2.weight") for name in names)
    if peft == "bitfit":
        assert all(n.endswith(".bias") or "embedding_table" in n for n in names)
    if peft == "difffit":
        gammas = [n for n in names if n.endswith("difffit_gamma")]
        assert len(gammas) == 5  # q, k, v, attention output, MLP output of the first of 2 blocks
    if peft == "lora":
        assert any("lora_A" in n for n in names) and any("lora_B" in n for n in names)
    with torch.no_grad():  # move the new weights away from their identity start so merging is really tested
        for name, p in model.named_parameters():
            if "difffit_gamma" in name or "lora_B" in name:
                p.normal_(1.0 if "gamma" in name else 0.0, 0.3)
    x, t, y = torch.randn(4, 3, 16, 16), torch.tensor([10, 200, 500, 900]), torch.tensor([0, 1, 2, 13])
    plain = merged_copy(model)
    assert not any("gamma" in n or "lora" in n for n, _ in plain.named_parameters())
    with torch.no_grad():
        assert torch.allclose(model(x, t, y).sample, plain(x, t, y).sample, atol=1e-5)


#################################################################################
#                           Splicing two models                                 #
#################################################################################


def test_handoff_at_the_ends_equals_either_model_alone(tiny_model, smoke_run):
    torch.manual_seed(1)
    other = dataclasses.replace(smoke_run.model)
    from tunebench.models import build_dit
    second = build_dit(other)
    with torch.no_grad():
        for p in second.parameters():
            p.normal_(0, 0.05)
    cfg = dataclasses.replace(smoke_run.sample, steps=5)
    seeds, labels, nulls = [0, 1, 2], [1, 2, 3], [13, 13, 13]

    def run(model, labs, handoff=None):
        return torch.cat([x for _, x in sample_batches(model, smoke_run.diffusion, cfg, seeds, labs, progress=False,
                                                       handoff=handoff)])

    assert torch.equal(run(tiny_model, labels, Handoff(0, second, nulls)), run(tiny_model, labels))
    assert torch.equal(run(tiny_model, labels, Handoff(1000, second, nulls)), run(second, nulls))
    middle = run(tiny_model, labels, Handoff(500, second, nulls))
    assert not torch.equal(middle, run(tiny_model, labels)) and not torch.equal(middle, run(second, nulls))
