"""What the head sees: the likelihood gradient g of each protocol switch, and where it is evaluated."""

import dataclasses

import pytest
import torch

from deft.conditioning import conditioning
from deft.config import HeadConfig
from deft.operators.task_settings import TaskConfig, task_config
from deft.operators.tasks import build_operator


def rand(*shape, seed):
    """Uniform [-1, 1] float64 values."""
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1


@pytest.fixture
def phase():
    """A fast phase-retrieval task (one HIO iteration), its operator, x_t, x̂0 and y for two 8-px images."""
    task = task_config("phase_retrieval", hio_rounds=1, hio_iterations=1)
    op = build_operator(task, torch.arange(2), 8, 3)
    return task, op, rand(2, 3, 8, 8, seed=0), 0.8 * rand(2, 3, 8, 8, seed=1), op(rand(2, 3, 8, 8, seed=2))


def test_phase_gradient_is_taken_at_xt_by_default_and_at_x0hat_on_request(phase):
    task, op, xt, x0hat, y = phase
    stack, g = conditioning(task, op, xt, x0hat, y, HeadConfig())
    assert stack.shape[1] == 15 and torch.equal(stack[:, -3:], g)
    # official: the gradient at x_t with respect to (x + 1)/2, twice the exact one with respect to x
    assert torch.allclose(g, 2 * op.likelihood_grad(xt, y))
    _, at_x0hat = conditioning(dataclasses.replace(task, phase_grad_at="x0hat"), op, xt, x0hat, y, HeadConfig())
    assert torch.allclose(at_x0hat, 2 * op.likelihood_grad(x0hat, y))
    _, exact = conditioning(dataclasses.replace(task, phase_grad_at="x0hat", gradient="exact_vjp"), op, xt, x0hat, y,
                            HeadConfig())
    assert torch.allclose(exact, op.likelihood_grad(x0hat, y))
    assert not torch.allclose(g, at_x0hat, atol=1e-3)


def test_inpainting_stack_carries_the_hole_noise_and_the_official_sign():
    task = task_config("inpaint")  # σ_y 0.05: noise std 0.1 in [-1, 1], 1/σ² = 100
    ids = torch.arange(2)
    op = build_operator(task, ids, 16, 3)
    truth, x0hat, xt = rand(2, 3, 16, 16, seed=3), rand(2, 3, 16, 16, seed=4), rand(2, 3, 16, 16, seed=5)
    y = op.measure(truth, [torch.Generator().manual_seed(k) for k in range(2)])
    stack, g = conditioning(task, op, xt, x0hat, y, HeadConfig())
    hole = (op.mask == 0).expand_as(truth)
    assert torch.equal(stack[:, 6:9], y) and float(y[hole].abs().min()) > 0  # y: noise in the hole
    assert torch.allclose(g, (x0hat * op.mask - y) * 100)
    assert torch.allclose(g[hole], -y[hole] * 100)
    exact_task = dataclasses.replace(task, gradient="exact_vjp")
    _, exact = conditioning(exact_task, op, xt, x0hat, y, HeadConfig())
    assert torch.allclose(exact, -g * op.mask)  # the exact gradient: the other sign, nothing in the hole


def test_super_resolution_gradient_is_the_same_under_both_switches():
    task = TaskConfig(operator="sr_avgpool", sigma_y=0.0)
    op = build_operator(task, torch.arange(2), 16, 3)
    x0hat, y = rand(2, 3, 16, 16, seed=6), op(rand(2, 3, 16, 16, seed=7))
    _, official = conditioning(task, op, x0hat, x0hat, y, HeadConfig())
    _, exact = conditioning(dataclasses.replace(task, gradient="exact_vjp"), op, x0hat, x0hat, y, HeadConfig())
    assert torch.equal(official, exact) and torch.allclose(official, -op.adjoint(op(x0hat) - y))
