"""The prior's denoising table: one-step x̂0 and restarts from noised natives, checked with an oracle prior that
knows the native (so every figure has a known answer) and the sampler restart it relies on."""

import numpy as np
import torch

from deft.protein.config import ProteinConfig
from deft.protein.denoising import COLUMNS, TIMESTEPS, denoising_rows, markdown
from deft.protein.diffusion import CentredNoise, centre, protein_schedule
from deft.protein.samplers import sample_motif
from tunebench.config import resolve


def _helix(residues: int = 24) -> np.ndarray:
    """An ideal α-helix Cα trace in Å (radius 2.3 Å, rise 1.5 Å, 100° per residue: Cα–Cα ≈ 3.8 Å, no clash)."""
    angle = np.deg2rad(100.0) * np.arange(residues)
    trace = np.stack([2.3 * np.cos(angle), 2.3 * np.sin(angle), 1.5 * np.arange(residues)], -1)
    return trace - trace.mean(0)


def _oracle(native_model_units: torch.Tensor, run: ProteinConfig):
    """A prior whose ε is exact for one native: its x̂0 is the native from any x_t."""
    abar_table = protein_schedule(run.diffusion).alphas_cumprod

    def prior(x, t):
        """ε = (x_t − sqrt(ᾱ_t)·x0)/sqrt(1 − ᾱ_t)."""
        abar = abar_table[t].to(x.dtype).view(-1, 1, 1)
        return (x - abar.sqrt() * native_model_units) / (1 - abar).sqrt()

    return prior


def test_an_oracle_prior_denoises_and_restarts_to_the_native_from_every_noise_level():
    run = resolve("smoke", {"sample": {"spacing": "quadratic", "steps": 10}}, cls=ProteinConfig)
    native = _helix()
    prior = _oracle(centre(torch.from_numpy(native[None]).float() * run.data.coord_scale), run)
    rows = denoising_rows(prior, run, native[None], repeats=5)
    sampler_steps = [step.t for step in protein_schedule(run.diffusion).steps(10, "quadratic")]
    assert [row["t"] for row in rows] == list(TIMESTEPS) and set(rows[0]) == set(COLUMNS)
    for row in rows:
        assert row["chains"] == 5 and row["restart_t"] in sampler_steps and row["restart_t"] <= row["t"]
        assert row["x0hat_rmsd_A"] < 1e-3 < row["input_rmsd_A"]
        assert row["x0hat_valid_bonds"] == row["restart_valid_bonds"] == 1.0
        assert row["x0hat_clash_free"] == row["restart_clash_free"] == 1.0
        assert row["restart_clash_free_low"] < 1.0 == row["restart_clash_free_high"]  # Wilson interval of 5 of 5
    assert rows[0]["restart_t"] < rows[-1]["restart_t"]
    table = markdown(rows, run, 1).splitlines()
    assert len(table) == 2 + len(TIMESTEPS) + 2 and table[-1].startswith("*The prior on the 1 held-out")
    cells = [cell.strip() for cell in table[2].strip("|").split("|")]
    assert cells[0] == str(TIMESTEPS[0]) and cells[4:6] == ["1.000", "1.00"]
    assert cells[-1] == f"1.00 [{rows[0]['restart_clash_free_low']:.2f}, 1.00]"


def test_a_restart_runs_only_the_steps_at_or_below_its_timestep():
    run = resolve("smoke", {"sample": {"spacing": "quadratic", "steps": 10}}, cls=ProteinConfig)
    schedule = protein_schedule(run.diffusion)
    seen = []

    def prior(x, t):
        """A zero-ε prior that records the timesteps it is asked about."""
        seen.append(int(t[0]))
        return torch.zeros_like(x)

    start_t = schedule.steps(10, "quadratic")[4].t
    sample_motif("unconditional", prior, schedule, run, torch.zeros(1, 12), torch.zeros(1, 12, 3), CentredNoise([0]),
                 start=(start_t, centre(torch.randn(1, 12, 3))))
    assert seen == [step.t for step in schedule.steps(10, "quadratic")][4:]
