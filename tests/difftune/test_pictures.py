"""Diff-Tuning's picture grids (difftune.pictures via `difftune.report figure samples|splice`): rows on the same
seeds, real images of the samples' classes, the protocol caption from the sample folders and the curve's rows, and
refusals when the rows do not line up."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from difftune import report
from difftune.pictures import examples_of, seed_range
from tunebench.config import ConfigError
from tunebench.datasets import load_dataset
from tunebench.io import save_npz, write_json


def sample_folder(folder, seeds, labels, model, sampler="ddpm", value=0):
    """A tunebench.sample folder: samples.npz and protocol.json, every image filled with `value`."""
    folder.mkdir(parents=True)
    save_npz(folder / "samples.npz", images=np.full((len(seeds), 16, 16, 3), value, np.uint8),
             labels=np.array(labels), seeds=np.array(seeds))
    write_json(folder / "protocol.json", {"git_commit": "abcdef0123456789", "protocol": {
        "model": model, "sample": {"sampler": sampler, "steps": 5, "guidance_scale": 1.5}}})
    return folder


def test_samples_grid_shows_real_images_of_each_columns_class_and_its_protocol(tmp_path):
    labels = [2, 0, 2, 1]
    full = sample_folder(tmp_path / "full_ft", range(6), labels + [1, 1], "ft/full", value=10)
    diff = sample_folder(tmp_path / "diff_tuning", range(6), labels + [1, 1], "ft/diff", value=20)
    pre = sample_folder(tmp_path / "pretrained", range(4), [13] * 4, "source", value=30)
    out = tmp_path / "samples_textures.png"
    report.main(["figure", "samples", "--dataset", "textures", "--samples", f"full_ft={full}", f"diff_tuning={diff}",
                 "--pretrained", str(pre), "--count", "4", "--out", str(out)])
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["protocol"] == {"model": "full_ft=ft/full, diff_tuning=ft/diff, pre-trained=source",
                                   "seeds": "0-3", "labels": "uniform per seed (fine-tuned), null (pre-trained)",
                                   "sampler": "ddpm", "steps": "5", "guidance": "1.5", "commit": "abcdef0123"}
    grey = np.asarray(Image.open(out).convert("L"))
    assert {10, 20, 30} <= set(np.unique(grey))  # the three sampled rows are drawn
    real = examples_of(load_dataset("textures", "train", 16, 3), np.array(labels))
    train = load_dataset("textures", "train", 16, 3)
    first_of_2 = [i for i, y in enumerate(train.labels.tolist()) if y == 2][:2]
    assert np.array_equal(real[0], train.images[first_of_2[0]].permute(1, 2, 0).numpy())
    assert np.array_equal(real[2], train.images[first_of_2[1]].permute(1, 2, 0).numpy())  # class 2 again: the next


def test_samples_grid_refuses_rows_on_other_seeds_or_labels(tmp_path):
    full = sample_folder(tmp_path / "full_ft", range(4), [0, 1, 2, 3], "a")
    other_seeds = sample_folder(tmp_path / "diff_tuning", range(10, 14), [0, 1, 2, 3], "b")
    other_labels = sample_folder(tmp_path / "diff_other", range(4), [1, 1, 2, 3], "b")
    pre = sample_folder(tmp_path / "pretrained", range(4), [13] * 4, "source")
    args = ["figure", "samples", "--dataset", "textures", "--pretrained", str(pre), "--count", "4", "--out",
            str(tmp_path / "x.png")]
    with pytest.raises(ConfigError, match="different seeds"):
        report.main([*args, "--samples", f"full_ft={full}", f"diff_tuning={other_seeds}"])
    with pytest.raises(ConfigError, match="different labels"):
        report.main([*args, "--samples", f"full_ft={full}", f"diff_tuning={other_labels}"])
    with pytest.raises(ConfigError, match="fewer than the 8 shown"):
        report.main([*args[:-4], "--count", "8", "--out", str(tmp_path / "x.png"), "--samples", f"full_ft={full}"])


def test_splice_grid_has_a_row_per_point_and_the_curves_protocol(tmp_path):
    npz, csv, out = tmp_path / "images.npz", tmp_path / "forgetting.csv", tmp_path / "splice.png"
    t0 = [0, 500, 1000, 0, 500, 1000]
    direction = ["finetuned_then_pretrained"] * 3 + ["pretrained_then_finetuned"] * 3
    images = np.stack([np.full((3, 8, 8, 3), 40 * i, np.uint8) for i in range(6)])
    save_npz(npz, images=images, direction=np.array(direction), t0=np.array(t0), seeds=np.array([0, 1, 2]))
    pd.DataFrame({"t0": t0, "direction": direction, "dataset": "textures", "metric": "fid_local", "value": 1.0,
                  "finetuned": "ft/model", "pretrained": "source", "sampler": "ddpm", "steps": 5, "guidance": 1.5,
                  "git_commit": "0123456789abcdef"}).to_csv(csv, index=False)
    report.main(["figure", "splice", "--npz", str(npz), "--csv", str(csv), "--out", str(out)])
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["protocol"]["model"] == "FT=ft/model, PT=source" and sidecar["protocol"]["seeds"] == "0-2"
    assert sidecar["protocol"]["commit"] == "0123456789"
    assert {0, 40, 80, 120, 160, 200} <= set(np.unique(np.asarray(Image.open(out).convert("L"))))  # every row


def test_seed_range_names_consecutive_seeds_as_a_range():
    assert seed_range([0, 1, 2, 3]) == "0-3" and seed_range([0, 2, 5]) == "0,2,5"


class _TwoClasses:
    """A training split of three images: two of class 0 (values 0, 1), one of class 1 (value 2)."""

    labels = np.array([0, 1, 0])

    def __getitem__(self, index):
        """(C×H×W image filled with its value, label), as the suite's datasets return."""
        import torch

        return torch.full((3, 2, 2), float([0, 2, 1][index])), int(self.labels[index])


def test_examples_of_cycles_a_small_class_and_refuses_a_missing_one():
    real = examples_of(_TwoClasses(), np.array([1, 0, 1, 0, 0]))
    assert real[:, 0, 0, 0].tolist() == [2, 0, 2, 1, 0]  # class 1 has one image, class 0 two: each from its first again
    with pytest.raises(ConfigError, match="no image of class 7"):
        examples_of(_TwoClasses(), np.array([0, 7]))
