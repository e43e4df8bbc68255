"""Per-sample seeds, batch-size invariance and classifier-free guidance."""

import dataclasses

import pytest
import torch

from tunebench.sampling import guided_output, labels_for_seeds, sample_batches


def _sample(model, run, seeds, labels, **changes):
    cfg = dataclasses.replace(run.sample, **changes)
    return torch.cat([x for _, x in sample_batches(model, run.diffusion, cfg, seeds, labels, progress=False)])


@pytest.mark.parametrize("sampler, eta", [("ddpm", 0.0), ("ddim", 1.0)])
def test_image_depends_only_on_its_seed(tiny_model, smoke_run, sampler, eta):
    seeds, labels = list(range(7)), [3, 1, 4, 1, 5, 9, 2]
    one = _sample(tiny_model, smoke_run, seeds, labels, sampler=sampler, eta=eta, steps=6, batch_size=1)
    seven = _sample(tiny_model, smoke_run, seeds, labels, sampler=sampler, eta=eta, steps=6, batch_size=7)
    assert torch.equal(one, seven)
    alone = _sample(tiny_model, smoke_run, [4], [5], sampler=sampler, eta=eta, steps=6, batch_size=3)
    assert torch.equal(alone[0], seven[4])
    other = _sample(tiny_model, smoke_run, [100], [5], sampler=sampler, eta=eta, steps=6)
    assert not torch.equal(other[0], seven[4])


def test_guidance_on_first_channels_only(tiny_model, smoke_run):
    x = torch.randn(3, 3, 16, 16)
    t, y, null = torch.tensor([500]), torch.tensor([0, 1, 2]), 13
    cfg = dataclasses.replace(smoke_run.sample, guidance_scale=4.0, guided_channels=2)
    with torch.no_grad():
        cond = tiny_model(x, t.expand(3), y).sample
        uncond = tiny_model(x, t.expand(3), torch.full_like(y, null)).sample
        guided = guided_output(tiny_model, x, t, y, cfg, null)
        no_guidance = guided_output(tiny_model, x, t, y, dataclasses.replace(cfg, guidance_scale=1.0), null)
    assert torch.allclose(guided[:, :2], uncond[:, :2] + 4.0 * (cond[:, :2] - uncond[:, :2]), atol=1e-5)
    assert torch.allclose(guided[:, 2:], cond[:, 2:], atol=1e-6)  # 3rd ε channel and the variance: conditional
    assert torch.allclose(no_guidance, cond, atol=1e-6)


def test_label_modes():
    assert labels_for_seeds([0, 1, 2, 3], "cycle", 3, 13) == [0, 1, 2, 0]
    assert labels_for_seeds([5, 6], "null", 3, 13) == [13, 13]
    assert labels_for_seeds([0, 1, 2], "2,7", 10, 13) == [2, 7, 2]
    uniform = labels_for_seeds(list(range(300)), "uniform", 4, 13)
    assert set(uniform) == {0, 1, 2, 3} and labels_for_seeds([17], "uniform", 4, 13)[0] == uniform[17]
    with pytest.raises(ValueError, match="outside"):
        labels_for_seeds([0], "12", 10, 13)
    with pytest.raises(ValueError, match="uniform"):
        labels_for_seeds([0], "cats", 10, 13)
