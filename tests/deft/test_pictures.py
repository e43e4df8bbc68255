"""DEFT's picture grid (deft.pictures via `deft.report figure recon`): the measurement rebuilt from the run's config
is the one the methods were given, every row shows the same test images, and the caption carries each method's
protocol."""

import json

import numpy as np
import pytest
import torch

from deft import report
from deft.config import DeftConfig
from deft.data import test_set as held_out_images
from deft.data import to_model_range
from deft.pictures import measurement_row
from deft.reconstruction import measurements
from tunebench.config import ConfigError, resolve, to_dict
from tunebench.io import save_npz, to_uint8, write_json


@pytest.fixture(scope="module")
def run():
    return resolve("smoke", cls=DeftConfig)


def reconstruct_folder(folder, run, truth, value, method, sampler, extra):
    """A deft.reconstruct folder: truth.npz, recon.npz (every pixel `value`) and summary.json."""
    folder.mkdir(parents=True)
    save_npz(folder / "truth.npz", images=truth)
    save_npz(folder / "recon.npz", images=np.full_like(truth, value))
    write_json(folder / "summary.json", {"run_config": to_dict(run), "method": method, "sampler": sampler,
                                         "steps": 20, "git_commit": "fedcba9876543210", "operator": "inpaint_box",
                                         "sigma_y": run.task.sigma_y, "backbone": "uncond/model",
                                         "trained_model": "deft/inpaint/train/head" if method == "deft" else None,
                                         **extra})
    return folder


def test_recon_grid_rows_and_caption(tmp_path, run):
    truth = to_uint8(to_model_range(held_out_images(run).images))
    deft = reconstruct_folder(tmp_path / "deft", run, truth, 50, "deft", "ddim", {"eta": 1.0})
    ddrm = reconstruct_folder(tmp_path / "ddrm", run, truth, 90, "ddrm", "ddrm", {"method_config": {"eta": 0.85}})
    out = tmp_path / "deft_inpaint.png"
    report.main(["figure", "recon", "--task", "inpaint", "--runs", f"deft={deft}", f"ddrm={ddrm}", "--count", "99",
                 "--out", str(out)])
    protocol = json.loads(out.with_suffix(".json").read_text())["protocol"]
    assert protocol["sampler"] == "deft: ddim 20 steps (eta=1.0); ddrm: ddrm 20 steps (eta=0.85)"
    assert protocol["seeds"] == f"0-{len(truth) - 1}"  # every test image: fewer than --count
    assert protocol["model"] == "backbone uncond/model; DEFT head deft/inpaint/train/head"
    other = truth.copy()
    other[0] = 255 - other[0]
    bad = reconstruct_folder(tmp_path / "bad", run, other, 0, "ddrm", "ddrm", {"method_config": {}})
    with pytest.raises(ConfigError, match="other test images"):
        report.main(["figure", "recon", "--task", "inpaint", "--runs", f"deft={deft}", f"ddrm={bad}", "--out",
                     str(out)])


def test_measurement_row_is_the_measurement_the_methods_were_given(run):
    label, images = measurement_row({"run_config": to_dict(run)}, 2)
    ids = torch.arange(2)
    _, y = measurements(run, to_model_range(held_out_images(run).images[ids]), ids)
    assert label == "measurement y" and np.array_equal(images, to_uint8(y))
