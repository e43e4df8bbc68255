"""Bad input, tried systematically: every malformed image, folder, config value, model, checkpoint, results CSV and
sidecar either gives one clear error (its type, the file or key it names, what to do) or is skipped with a report,
and nothing already written is lost.

Each bad input is one test id, so `pytest --collect-only -q tests/reliability/test_bad_input.py` counts them. "Nothing
lost" is checked byte for byte: every file that was in the output folder before is identical afterwards (a log may
only grow) and no other file, half-written or not, appears.
"""

import csv
import io
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import AutoencoderKL
from PIL import Image

from benchmarks import fidelity, merge_results
from benchmarks.results import RESULT_COLUMNS, ResultsError, append_rows, read_results
from difftune import finetune, report
from tests.conftest import TEST_FACTS
from tunebench import pretrain, sample, show_datasets
from tunebench.checkpoint import CheckpointError
from tunebench.cli import run_cli
from tunebench.config import ConfigError, resolve
from tunebench.datasets import DatasetError, ImageFolderDataset
from tunebench.io import FileFormatError, load_npz_images
from tunebench.models import ModelLoadError, build_dit, export_dit

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT / "tests" / "data"
RES = 8  # the smallest resolution the readers accept: tiny images keep the file fast
SMOKE = ["--scale", "smoke", "--no-progress"]


#################################################################################
#                                   Helpers                                     #
#################################################################################

def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, hidden ones included, by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_nothing_lost(folder: Path, before: dict[str, bytes], may_appear: tuple[str, ...] = ("log.txt",)) -> None:
    """Every file of `before` is byte-identical (a log.txt may only have grown); only `may_appear` may be new."""
    after = snapshot(folder)
    for name, data in before.items():
        assert name in after, f"{name} was deleted"
        if Path(name).name == "log.txt":
            assert after[name].startswith(data), f"{name} was rewritten, not appended to"
        else:
            assert after[name] == data, f"{name} was changed"
    assert set(after) - set(before) <= set(may_appear), f"new files: {sorted(set(after) - set(before))}"


def expect_error(kind: type[Exception], main, argv: list[str], capsys) -> str:
    """Run a CLI's `main(argv)`: it must raise exactly `kind`, and `run_cli` (what `python -m` runs) must turn that
    error into one `error: ...` line and exit status 2, without a traceback. Returns the message."""
    with pytest.raises(Exception) as caught:
        main(argv)
    error = caught.value
    assert type(error) is kind, f"{type(error).__name__}: {error}"
    message = str(error)
    assert "\n" not in message, message

    def reraise(_argv):
        """Stand in for the CLI: raise the error it raised."""
        raise error

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_cli(reraise, [])
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 2 and stderr == f"error: {message}\n"
    return message


def assert_names(message: str, *parts: str) -> None:
    """The message contains every part (the file or key it names, the words of its fix)."""
    missing = [part for part in parts if part not in message]
    assert not missing, f"{missing} not in: {message}"


def png_bytes(pixels: np.ndarray, **save) -> bytes:
    """An array encoded as PNG (or another format given by `format=`)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, **{"format": "PNG", **save})
    return buffer.getvalue()


def noise(seed: int, side: int = RES) -> np.ndarray:
    """A random uint8 side×side×3 image."""
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


def two_class_folder(root: Path) -> list[Path]:
    """ROOT/{a,b}/ with two good images each (PNG and JPEG); return their paths."""
    good = []
    for index, name in enumerate(["a/0.png", "a/1.jpg", "b/0.png", "b/1.jpg"]):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(noise(index), format="JPEG" if name.endswith("jpg") else "PNG"))
        good.append(path)
    return good


def paper_root(root: Path, classes: int = 10) -> Path:
    """ROOT/train/ of a paper-scale dataset: `classes` class folders (artbench10 has 10) of two good images each."""
    for label in range(classes):
        for index in range(2):
            path = root / "train" / f"class{label:02d}" / f"{index}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png_bytes(noise(10 * label + index, 16)))
    return root


def existing_outputs(folder: Path) -> Path:
    """An output folder holding what a finished run leaves (config, summary, model weights, log) to be kept."""
    (folder / "model").mkdir(parents=True)
    (folder / "config.json").write_text('{"scale": "smoke"}\n')
    (folder / "summary.json").write_text('{"steps": 8}\n')
    (folder / "model" / "diffusion_pytorch_model.safetensors").write_bytes(os.urandom(256))
    (folder / "log.txt").write_text("an earlier run's log\n")
    return folder


#################################################################################
#                   1. Unreadable image files: skipped with a report            #
#################################################################################

def _cut(data: bytes) -> bytes:
    """The first half of a file, as a copy interrupted mid-way leaves it."""
    return data[: len(data) // 2]


def _bad_crc_png() -> bytes:
    """A PNG with one flipped bit in its pixel data (bit rot): the chunk's CRC no longer matches."""
    data = bytearray(png_bytes(noise(7)))
    data[data.index(b"IDAT") + 10] ^= 0x01
    return bytes(data)


def _tiff(pixels: np.ndarray) -> bytes:
    """A single-channel array of any dtype as TIFF (32-bit int and float pixels have no defined 0-255 range)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="TIFF")
    return buffer.getvalue()


UNREADABLE = {  # id: (file name, bytes)
    "random-bytes-as-png": ("noise.png", np.random.default_rng(0).bytes(300)),
    "truncated-png": ("cut.png", _cut(png_bytes(noise(1)))),
    "truncated-jpeg": ("cut.jpg", _cut(png_bytes(noise(2, 32), format="JPEG"))),
    "truncated-bmp": ("cut.bmp", _cut(png_bytes(noise(3), format="BMP"))),
    "truncated-gif": ("cut.gif", _cut(png_bytes(noise(4), format="GIF"))),
    "truncated-tiff": ("cut.tif", _cut(png_bytes(noise(5), format="TIFF"))),
    "zero-bytes": ("empty.jpg", b""),
    "text-as-png": ("notes.png", b"not an image, a text file with an image extension\n"),
    "html-error-page-as-jpeg": ("download.jpeg", b"<html><body>404 Not Found</body></html>"),
    "png-with-bad-crc": ("rot.png", _bad_crc_png()),
    "float32-pixels-F": ("float.tif", _tiff(np.linspace(0, 1, RES * RES, dtype=np.float32).reshape(RES, RES))),
    "int32-pixels-I": ("int.tif", _tiff(np.arange(RES * RES, dtype=np.int32).reshape(RES, RES) * 1000)),
}


@pytest.mark.parametrize("bad", UNREADABLE, ids=list(UNREADABLE))
def test_unreadable_image_is_skipped_with_a_report(tmp_path, caplog, bad):
    good = two_class_folder(tmp_path)
    name, data = UNREADABLE[bad]
    path = tmp_path / "b" / name
    path.write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="tunebench.datasets"):
        dataset = ImageFolderDataset(tmp_path, RES)
    assert [p for p, _ in dataset.skipped] == [str(path)] and dataset.skipped[0][1]  # which file, and why
    assert sorted(p for p, _ in dataset.samples) == sorted(map(str, good))
    assert f"skipping unreadable image {path} (" in caplog.text
    assert f"skipped 1 of 5 image files under {tmp_path}" in caplog.text
    if bad.endswith(("-F", "-I")):
        assert "save it as an 8-bit or 16-bit PNG or JPEG" in dataset.skipped[0][1]
    for index in range(len(dataset)):  # what passed the scan decodes: training never meets the bad file
        image, _ = dataset[index]
        assert image.shape == (3, RES, RES) and image.dtype == torch.uint8
    assert path.read_bytes() == data  # reported, never deleted or rewritten


def test_skipped_images_are_reported_in_the_training_log(tmp_path):
    """End to end: a pre-training run on a paper-scale folder with bad files trains on the rest and its log.txt lists
    each skipped file and the count."""
    root = paper_root(tmp_path / "artbench")
    bad = [root / "train" / "class03" / name for name in ("cut.jpg", "zero.png", "notes.bmp")]
    bad[0].write_bytes(_cut(png_bytes(noise(0, 32), format="JPEG")))
    bad[1].write_bytes(b"")
    bad[2].write_bytes(b"text")
    out = tmp_path / "run"
    pretrain.main([*SMOKE, "--out", str(out), "--set", "data.dataset=artbench10", "--set", f"data.root={root}",
                   "--set", "model.num_classes=10", "--set", "train.steps=2", "--set", "train.batch_size=4"])
    log = (out / "log.txt").read_text()
    assert all(f"skipping unreadable image {path}" in log for path in bad)
    assert f"skipped 3 of 23 image files under {root / 'train'}" in log
    assert (out / "model" / "diffusion_pytorch_model.safetensors").is_file()


#################################################################################
#                        2. Class folders without images                        #
#################################################################################

EMPTY_CLASSES = {  # id: files written into the class folder, and what the message adds about them
    "no-files": ({}, ""),
    "only-unreadable-images": ({"cut.jpg": _cut(png_bytes(noise(0, 32), format="JPEG")), "fake.png": b"text"},
                               "(2 unreadable, see the warnings above)"),
    "only-non-image-files": ({"labels.csv": b"a,b\n", ".DS_Store": b"\0\0", "README": b"class c"}, ""),
}


@pytest.mark.parametrize("case", EMPTY_CLASSES, ids=list(EMPTY_CLASSES))
def test_a_class_folder_without_a_readable_image_is_an_error_naming_it(tmp_path, case):
    two_class_folder(tmp_path)
    files, detail = EMPTY_CLASSES[case]
    (tmp_path / "c").mkdir()
    for name, data in files.items():
        (tmp_path / "c" / name).write_bytes(data)
    before = snapshot(tmp_path)
    with pytest.raises(DatasetError) as caught:
        ImageFolderDataset(tmp_path, RES)
    assert_names(str(caught.value), f"class folders without a readable image: {tmp_path / 'c'}", detail,
                 "add images or remove the folders")
    assert_nothing_lost(tmp_path, before, may_appear=())


def test_dataset_preview_cli_refuses_an_empty_class_and_keeps_the_old_preview(tmp_path, capsys):
    root = paper_root(tmp_path / "artbench")
    shutil.rmtree(root / "train" / "class09")
    (root / "train" / "class09").mkdir()
    out = tmp_path / "preview.png"
    out.write_bytes(png_bytes(noise(0)))
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        show_datasets.main(["--preview", "artbench10", "--root", str(root), "--resolution", str(RES),
                            "--out", str(out)])
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 2 and stderr.count("\n") == 1 and stderr.startswith("error: class folders")
    assert_names(stderr, str(root / "train" / "class09"), "add images or remove the folders")
    assert_nothing_lost(tmp_path, before, may_appear=())


#################################################################################
#                   3. Image modes: converted, checked value by value            #
#################################################################################

_Y, _X = np.mgrid[0:RES, 0:RES]
GREY = (_X * 30 + _Y * 2).astype(np.uint8)
COLOUR = np.dstack([_X * 30, _Y * 30, 255 - _X * 15]).astype(np.uint8)  # smooth, so JPEG at quality 100 keeps it
PALETTE = np.array([[255, 0, 0], [0, 200, 0], [0, 0, 150], [10, 20, 30]], dtype=np.uint8)
INDICES = ((_X + _Y) % 4).astype(np.uint8)


def _palette_image() -> Image.Image:
    """A P image whose 4 palette colours are known."""
    image = Image.fromarray(INDICES)
    image.putpalette(PALETTE.flatten().tolist())
    return image


MODES = {  # id: (file name, the image to save, its mode when read back, the RGB it must read as, largest error)
    "grey-L": ("grey.png", lambda: Image.fromarray(GREY), "L", np.dstack([GREY] * 3), 0),
    "grey-alpha-LA": ("la.png", lambda: Image.merge("LA", [Image.fromarray(GREY), Image.fromarray(255 - GREY)]),
                      "LA", np.dstack([GREY] * 3), 0),
    "RGBA": ("rgba.png", lambda: Image.fromarray(np.dstack([COLOUR, 255 - GREY])), "RGBA", COLOUR, 0),
    "palette-P": ("palette.png", _palette_image, "P", PALETTE[INDICES], 0),
    "16-bit-grey-I;16": ("deep.png", lambda: Image.fromarray(GREY.astype(np.uint16) * 257), "I;16",
                         np.dstack([GREY] * 3), 0),
    "bilevel-1": ("bits.png", lambda: Image.fromarray(GREY > 100), "1", np.dstack([(GREY > 100) * 255] * 3), 0),
    "CMYK-TIFF": ("cmyk.tif", lambda: Image.fromarray(COLOUR).convert("CMYK"), "CMYK", COLOUR, 0),
    "CMYK-JPEG": ("cmyk.jpg", lambda: Image.fromarray(COLOUR).convert("CMYK"), "CMYK", COLOUR, 3),
    "grey-JPEG": ("grey.jpg", lambda: Image.fromarray(GREY), "L", np.dstack([GREY] * 3), 3),
}


@pytest.mark.parametrize("channels", [3, 1], ids=["to-RGB", "to-grey"])
@pytest.mark.parametrize("mode", MODES, ids=list(MODES))
def test_image_modes_are_converted_exactly(tmp_path, mode, channels):
    name, make, stored_mode, rgb, tolerance = MODES[mode]
    (tmp_path / "a").mkdir()
    make().save(tmp_path / "a" / name, **({"quality": 100} if name.endswith(".jpg") else {}))
    assert Image.open(tmp_path / "a" / name).mode == stored_mode  # the file really is in that mode
    dataset = ImageFolderDataset(tmp_path, RES, channels)
    assert dataset.skipped == []
    image, label = dataset[0]
    assert image.shape == (channels, RES, RES) and image.dtype == torch.uint8 and label == 0
    if channels == 3:  # alpha dropped, palette looked up, 16 bits scaled (not clipped), grey repeated
        expected = rgb.astype(int)
    else:  # the ITU-R BT.601 luma of the colours it reads as, 0.299 R + 0.587 G + 0.114 B, rounded
        expected = np.rint(rgb.astype(float) @ np.array([0.299, 0.587, 0.114])).astype(int)[..., None]
        tolerance = max(tolerance, 1)  # luma straight from CMYK/P rounds once instead of twice
    error = np.abs(image.permute(1, 2, 0).numpy().astype(int) - expected).max()
    assert error <= tolerance, f"{mode} read {error} levels off"


#################################################################################
#                   4, 5. Config values and keys: NaN, Inf, unknown              #
#################################################################################

CONFIG_CASES = {  # id: (--set items, YAML text or None, parts the message must contain)
    "set-lr-nan": (["train.lr=.nan"], None, ["config key 'train.lr' is nan", "must be a finite number"]),
    "set-lr-inf": (["train.lr=.inf"], None, ["config key 'train.lr' is inf", "must be a finite number"]),
    "set-lr-minus-inf": (["train.lr=-.inf"], None, ["'train.lr' is -inf", "must be a finite number"]),
    "set-lr-overflow": (["train.lr=1.0e+400"], None, ["'train.lr' is inf", "must be a finite number"]),
    "set-lr-word-nan": (["train.lr=nan"], None, ["config key 'train.lr' must be float, got 'nan'"]),
    "set-guidance-nan": (["sample.guidance_scale=.nan"], None, ["'sample.guidance_scale' is nan", "finite"]),
    "yaml-lr-nan": ([], "train:\n  lr: .nan\n", ["'train.lr' is nan", "must be a finite number"]),
    "yaml-beta-inf": ([], "diffusion:\n  beta_end: .inf\n", ["'diffusion.beta_end' is inf", "finite number"]),
    "set-unknown-section": (["optim.lr=1"], None, ["unknown config key 'optim'", "known keys: scale, model"]),
    "set-unknown-nested-key": (["train.gpus=8"], None, ["unknown config key 'train.gpus'", "known keys: steps"]),
    "set-typo-key": (["train.lrr=1"], None, ["unknown config key 'train.lrr'", "did you mean 'train.lr'?"]),
    "set-typo-section": (["trian.lr=1"], None, ["unknown config key 'trian'", "did you mean 'train'?"]),
    "set-key-too-deep": (["train.lr.value=1"], None, ["config key 'train.lr' must be float, got {'value': 1}"]),
    "set-without-value": (["train.lr"], None, ["--set expects KEY=VALUE (e.g. train.steps=100), got 'train.lr'"]),
    "set-unparsable-value": (["train.lr=[1"], None, ["--set 'train.lr=[1': the value is not a plain YAML value",
                                                      "quote or fix it"]),
    "yaml-unknown-section": ([], "optim:\n  lr: 1\n", ["unknown config key 'optim'", "known keys"]),
    "yaml-typo-key": ([], "train:\n  lrr: 1\n", ["unknown config key 'train.lrr'", "did you mean 'train.lr'?"]),
    "yaml-section-not-mapping": ([], "train: 3\n", ["config section 'train' must be a mapping, got 3"]),
    "yaml-syntax-tab": ([], "train:\n\tlr: 1\n", ["is not plain YAML", "line 2, column 1", "fix it there"]),
    "yaml-list-not-mapping": ([], "- train\n", ["must hold a mapping of sections, got list"]),
    "yaml-not-utf8": ([], b"\xff\xfe\x00train", ["is not plain YAML", "fix it there"]),
}


@pytest.mark.parametrize("case", CONFIG_CASES, ids=list(CONFIG_CASES))
def test_bad_config_value_or_key_is_one_error_naming_the_key_and_the_file(tmp_path, capsys, case):
    items, text, parts = CONFIG_CASES[case]
    out = existing_outputs(tmp_path / "out")
    argv = [*SMOKE, "--out", str(out)] + [arg for item in items for arg in ("--set", item)]
    if text is not None:
        config = tmp_path / "override.yaml"
        config.write_bytes(text if isinstance(text, bytes) else text.encode())
        argv += ["--config", str(config)]
        parts = [f"config file {config}", *parts]  # a YAML file's error names the file
    before = snapshot(out)
    message = expect_error(ConfigError, pretrain.main, argv, capsys)
    assert_names(message, *parts)
    assert_nothing_lost(out, before, may_appear=())  # refused before the output folder is touched


def test_a_method_config_key_typo_in_yaml_names_the_file_and_the_method_key(tmp_path, capsys, pretrained):
    config = tmp_path / "finetune.yaml"
    config.write_text("difftune:\n  methd: diff_tuning\n")
    message = expect_error(ConfigError, finetune.main, [*SMOKE, "--pretrained", str(pretrained), "--config",
                                                        str(config), "--out", str(tmp_path / "out")], capsys)
    assert_names(message, f"config file {config}", "unknown config key 'difftune.methd'",
                 "did you mean 'difftune.method'?")
    assert not (tmp_path / "out").exists()


def test_a_missing_config_file_is_named(tmp_path, capsys):
    message = expect_error(ConfigError, pretrain.main, [*SMOKE, "--out", str(tmp_path / "out"), "--config",
                                                        str(tmp_path / "typo.yaml")], capsys)
    assert_names(message, f"config file {tmp_path / 'typo.yaml'} does not exist")


#################################################################################
#                              6. Dataset roots                                 #
#################################################################################

def _root_missing(tmp_path):
    return tmp_path / "nowhere", ["dataset root {root} does not exist", "pass the folder laid out as ROOT/"]


def _root_is_file(tmp_path):
    (tmp_path / "data.tar").write_bytes(b"an archive, not yet extracted")
    return tmp_path / "data.tar", ["dataset root {root} is a file, not a folder", "pass the folder laid out as"]


def _root_without_split(tmp_path):
    (tmp_path / "art" / "images").mkdir(parents=True)
    return tmp_path / "art", ["image folder {root}/train does not exist", "expected the layout ROOT/{train,test}"]


def _split_without_classes(tmp_path):
    (tmp_path / "art" / "train").mkdir(parents=True)
    (tmp_path / "art" / "train" / "0.png").write_bytes(png_bytes(noise(0)))
    return tmp_path / "art", ["image folder {root}/train has no class subfolders", "expected the layout"]


def _wrong_class_count(tmp_path):
    return paper_root(tmp_path / "art", classes=3), ["{root}/train has 3 class folders but dataset 'artbench10' has "
                                                     "10 classes", "check that the root is artbench10's folder"]


DATASET_ROOTS = {"root-missing": _root_missing, "root-is-a-file": _root_is_file,
                 "root-without-train-split": _root_without_split, "split-without-class-folders": _split_without_classes,
                 "wrong-number-of-classes": _wrong_class_count}


@pytest.mark.parametrize("case", DATASET_ROOTS, ids=list(DATASET_ROOTS))
def test_a_bad_dataset_root_is_one_error_naming_it(tmp_path, capsys, case):
    root, parts = DATASET_ROOTS[case](tmp_path)
    out = existing_outputs(tmp_path / "out")
    before = snapshot(out)
    message = expect_error(DatasetError, pretrain.main, [*SMOKE, "--out", str(out), "--set", "data.dataset=artbench10",
                                                         "--set", f"data.root={root}", "--set",
                                                         "model.num_classes=10"], capsys)
    assert_names(message, *[part.replace("{root}", str(root)) for part in parts])
    assert_nothing_lost(out, before)


@pytest.mark.parametrize("dataset, root, parts", [
    ("artbench10", None, ["'artbench10' is a real paper-scale dataset", "--set data.root=ROOT"]),
    ("source", "/tmp", ["'source' is built from installed packages and takes no root"]),
    ("imagenet", None, ["unknown dataset 'imagenet'", "registered datasets: source"]),
], ids=["paper-dataset-without-root", "mini-dataset-with-root", "unknown-dataset-name"])
def test_a_dataset_that_cannot_have_or_lacks_a_root_is_named(tmp_path, capsys, dataset, root, parts):
    argv = [*SMOKE, "--out", str(tmp_path / "out"), "--set", f"data.dataset={dataset}", "--set",
            "model.num_classes=10"] + (["--set", f"data.root={root}"] if root else [])
    assert_names(expect_error(DatasetError, pretrain.main, argv, capsys), *parts)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["log.txt"]


#################################################################################
#               7. Checkpoints and models of another configuration              #
#################################################################################

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A real smoke pre-training run on digits (quick to build): 4 steps, checkpoints after steps 2 and 4, the exported
    EMA model."""
    out = tmp_path_factory.mktemp("finished") / "run"
    pretrain.main([*SMOKE, "--out", str(out), *RUN_FLAGS])
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["checkpoint-0000002", "checkpoint-0000004"]
    return out


RUN_FLAGS = ["--set", "data.dataset=digits", "--set", "train.steps=4", "--set", "train.checkpoint_every=2"]
RESUME_CASES = {  # id: (extra flags, the differing key as the message shows it)
    "more-layers": (["--set", "model.num_layers=3"], "model.num_layers: 2 -> 3"),
    "wider-heads": (["--set", "model.head_dim=8"], "model.head_dim: 16 -> 8"),
    "other-patch-size": (["--set", "model.patch_size=2"], "model.patch_size: 4 -> 2"),
    "other-learning-rate": (["--set", "train.lr=0.5"], "train.lr: 0.001 -> 0.5"),
    "other-dataset": (["--set", "data.dataset=lfw_faces"], "data.dataset: 'digits' -> 'lfw_faces'"),
    "explicit-older-checkpoint": (["--resume", "{out}/checkpoints/checkpoint-0000002", "--set",
                                   "model.num_layers=3"], "model.num_layers: 2 -> 3"),
}


@pytest.mark.parametrize("case", RESUME_CASES, ids=list(RESUME_CASES))
def test_resuming_from_a_checkpoint_of_another_config_is_refused_and_keeps_the_run(finished_run, capsys, case):
    extra, difference = RESUME_CASES[case]
    before = snapshot(finished_run)
    argv = [*SMOKE, "--out", str(finished_run), *RUN_FLAGS, *[a.format(out=finished_run) for a in extra]]
    message = expect_error(CheckpointError, pretrain.main, argv, capsys)
    checkpoint = "checkpoint-0000002" if "older" in case else "checkpoint-0000004"
    assert_names(message, f"checkpoint {finished_run / 'checkpoints' / checkpoint} was made with a different config",
                 difference, "Resume with the same config, start a new run in another output folder",
                 f"or delete {finished_run / 'checkpoints'} to start this run over")
    assert_nothing_lost(finished_run, before)  # config.json too: it still describes the checkpoints and model


def test_resume_from_a_folder_that_is_not_a_checkpoint_is_refused(finished_run, capsys):
    before = snapshot(finished_run)
    message = expect_error(CheckpointError, pretrain.main, [*SMOKE, "--out", str(finished_run), *RUN_FLAGS,
                                                            "--resume", str(finished_run / "model")], capsys)
    assert_names(message, f"--resume {finished_run / 'model'}: no checkpoint there", "use --resume auto")
    assert_nothing_lost(finished_run, before)


def _edit_config(folder: Path, **changes) -> None:
    """Change keys of a model folder's config.json, as a hand edit or a copy from another run would."""
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory, pretrained):
    """Model folders that are not the DiT their name promises, by id."""
    root = tmp_path_factory.mktemp("bad_models")
    folders = {}
    for name, changes in (("config-says-more-layers", {"num_layers": 3}), ("config-says-fewer-layers",
                                                                            {"num_layers": 1}),
                          ("config-says-wider", {"attention_head_dim": 8})):
        folders[name] = shutil.copytree(pretrained, root / name)
        _edit_config(folders[name], **changes)
    folders["truncated-weights"] = shutil.copytree(pretrained, root / "truncated")
    weights = folders["truncated-weights"] / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(_cut(weights.read_bytes()))
    folders["config-without-weights"] = shutil.copytree(pretrained, root / "no_weights")
    (folders["config-without-weights"] / "diffusion_pytorch_model.safetensors").unlink()
    folders["empty-folder"] = root / "empty"
    folders["empty-folder"].mkdir()
    folders["missing-folder"] = root / "missing"
    vae = AutoencoderKL(block_out_channels=(8,), layers_per_block=1, norm_num_groups=4, latent_channels=4,
                        sample_size=16)
    folders["vae-folder-as-dit"] = root / "vae"
    vae.save_pretrained(folders["vae-folder-as-dit"])
    run = resolve("smoke", {"model": {"num_classes": 2}})
    folders["two-class-model"] = root / "two_classes"
    export_dit(build_dit(run.model), folders["two-class-model"], run, facts=TEST_FACTS)
    return folders


FINETUNE_CASES = {  # id: (model folder id or None for the good model, extra flags, error type, message parts)
    "data-resolution-differs": (None, ["--set", "data.resolution=32"], ConfigError,
                                ["the pre-trained model {model} takes 3×16² inputs but data.resolution=32",
                                 "set data.resolution/channels to match it, or pass a model trained at this size"]),
    "data-channels-differ": (None, ["--set", "data.channels=1"], ConfigError,
                             ["takes 3×16² inputs but data.resolution=16, data.channels=1 gives 1×16²",
                              "set data.resolution/channels to match it"]),
    "too-few-classes": ("two-class-model", [], ConfigError,
                        ["dataset 'digits' has 10 classes but the label table of the pre-trained model {model} has 2",
                         "pass a model with at least 10 classes"]),
    "config-says-more-layers": ("config-says-more-layers", [], ModelLoadError,
                                ["the weights in {model} do not match its config.json", "19 tensors missing",
                                 "export it again with save_pretrained, or restore its config.json"]),
    "config-says-fewer-layers": ("config-says-fewer-layers", [], ModelLoadError,
                                 ["the weights in {model} do not match its config.json", "19 tensors unexpected",
                                  "export it again with save_pretrained"]),
    "config-says-wider": ("config-says-wider", [], ModelLoadError,
                          ["{model} is not a DiT save_pretrained folder", "expected shape"]),
    "vae-folder-as-dit": ("vae-folder-as-dit", [], ModelLoadError,
                          ["the weights in {model} do not match its config.json", "tensors missing",
                           "tensors unexpected"]),
    "truncated-weights": ("truncated-weights", [], ModelLoadError, ["{model} is not a DiT save_pretrained folder"]),
    "config-without-weights": ("config-without-weights", [], ModelLoadError,
                               ["{model} is not a DiT save_pretrained folder", "diffusion_pytorch_model"]),
    "empty-folder": ("empty-folder", [], ModelLoadError, ["{model} is not a DiT save_pretrained folder",
                                                          "no file named config.json"]),
    "missing-folder": ("missing-folder", [], ModelLoadError,
                       ["DiT folder {model} does not exist (expected a save_pretrained folder)"]),
}


@pytest.mark.parametrize("case", FINETUNE_CASES, ids=list(FINETUNE_CASES))
def test_finetuning_a_model_that_does_not_fit_is_one_clear_error(tmp_path, capsys, pretrained, bad_models, case):
    model_id, extra, kind, parts = FINETUNE_CASES[case]
    model = bad_models[model_id] if model_id else pretrained
    out = existing_outputs(tmp_path / "out")
    before, model_before = snapshot(out), snapshot(model) if model.is_dir() else {}
    message = expect_error(kind, finetune.main, [*SMOKE, "--pretrained", str(model), "--dataset", "digits",
                                                 "--method", "full_ft", "--out", str(out), "--set", "train.steps=1",
                                                 *extra], capsys)
    assert_names(message, *[part.format(model=model) for part in parts])
    assert_nothing_lost(out, before)
    if model.is_dir():
        assert_nothing_lost(model, model_before, may_appear=())


#################################################################################
#                    8. Results CSVs with a different schema                    #
#################################################################################

GOOD_CSV = (DATA / "difftune_results.csv").read_text()
_ROWS = list(csv.reader(io.StringIO(GOOD_CSV)))
_COLUMNS = _ROWS[0]


def _csv_text(rows: list[list[str]]) -> str:
    """Rows as CSV text."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _without(column: str) -> str:
    """The good results without one column."""
    index = _COLUMNS.index(column)
    return _csv_text([row[:index] + row[index + 1:] for row in _ROWS])


def _with_cell(column: str, value: str, line: int = 2) -> str:
    """The good results with one cell (of data line `line`, 2 = the first) replaced."""
    rows = [list(row) for row in _ROWS]
    rows[line - 1][_COLUMNS.index(column)] = value
    return _csv_text(rows)


SCHEMA_CASES = {  # id: (file bytes, parts the message must contain)
    "missing-column": (_without("note"), ["has a different header: missing columns ['note'], unknown columns []",
                                          "convert it to the schema or write new results to another file"]),
    "extra-column": (_csv_text([row + ["h100" if i else "gpu"] for i, row in enumerate(_ROWS)]),
                     ["missing columns [], unknown columns ['gpu']",
                      "the schema is benchmarks.results.RESULT_COLUMNS"]),
    "renamed-column": (GOOD_CSV.replace(",value,", ",score,", 1),
                       ["missing columns ['value'], unknown columns ['score']", "write new results to another file"]),
    "reordered-columns": (_csv_text([[row[1], row[0], *row[2:]] for row in _ROWS]),
                          ["has the schema's columns in a different order: ['method', 'experiment'",
                           "convert it to the schema"]),
    "semicolon-separated": (GOOD_CSV.replace(",", ";"), ["has a different header: missing columns ['experiment'",
                                                         "unknown columns ['experiment;method;"]),
    "text-in-value": (_with_cell("value", "twelve"),
                      ["line 2: column 'value' must be a number or empty, got 'twelve'"]),
    "text-in-seed": (_with_cell("seed", "first"), ["line 2: column 'seed' must be an integer or empty, got 'first'"]),
    "fraction-in-steps": (_with_cell("steps", "50.5"), ["line 2: column 'steps' must be an integer"]),
    "empty-key-cell": (_with_cell("method", ""), ["line 2: key column 'method' must not be empty"]),
    "value-missing-without-note": (_with_cell("value", "", line=3), ["line 3: 'value' is empty (a skipped metric), so "
                                                                     "'note' must say why"]),
    "short-row": (GOOD_CSV + "difftune_main,bitfit,digits\n",
                  [f"line {len(_ROWS) + 1}: 3 cells, expected {len(_COLUMNS)}"]),
    "repeated-key": (GOOD_CSV + GOOD_CSV.splitlines()[1] + "\n",
                     [f"lines 2 and {len(_ROWS) + 1} have the same key", "delete one of them"]),
    "empty-file": ("", ["is empty (no header row)", "delete it, or restore it from a good run"]),
    "not-utf8": (b"\x89PNG\r\n\x1a\n\xff\xfe binary", ["is not a UTF-8 text CSV", "restore it from a good run"]),
}
TABLE_ONLY_CASES = {
    "header-only": (",".join(RESULT_COLUMNS) + "\n", ["hold no result rows (only a header)",
                                                      "run the metric jobs that append to them first"]),
}


def _write_bad_csv(folder: Path, data) -> Path:
    """The bad results file."""
    path = folder / "bad.csv"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


@pytest.fixture
def rendered_tables(tmp_path):
    """A tables folder rendered from the good results: the output a failed re-render must leave alone."""
    out = tmp_path / "tables"
    report.main(["table", "--results", str(DATA / "difftune_results.csv"), "--layout", "difftune", "--out-dir",
                 str(out)])
    assert sorted(p.name for p in out.iterdir()) == ["difftune_main.md", "difftune_main.tex"]
    return out


@pytest.mark.parametrize("case", {**SCHEMA_CASES, **TABLE_ONLY_CASES}, ids=[*SCHEMA_CASES, *TABLE_ONLY_CASES])
def test_table_cli_refuses_a_results_csv_of_another_schema_and_keeps_the_tables(tmp_path, capsys, rendered_tables,
                                                                                case):
    data, parts = {**SCHEMA_CASES, **TABLE_ONLY_CASES}[case]
    bad = _write_bad_csv(tmp_path, data)
    before, csv_before = snapshot(rendered_tables), bad.read_bytes()
    message = expect_error(ResultsError, report.main, ["table", "--results", str(bad), "--layout", "difftune",
                                                       "--out-dir", str(rendered_tables)], capsys)
    assert_names(message, str(bad), *parts)
    assert_nothing_lost(rendered_tables, before, may_appear=())
    assert bad.read_bytes() == csv_before


@pytest.mark.parametrize("case", SCHEMA_CASES, ids=list(SCHEMA_CASES))
def test_appending_to_a_results_csv_of_another_schema_is_refused_and_leaves_it_unchanged(tmp_path, case):
    data, parts = SCHEMA_CASES[case]
    bad = _write_bad_csv(tmp_path, data)
    before = snapshot(tmp_path)
    row = dict(zip(_COLUMNS, _ROWS[1]), seed=99)
    with pytest.raises(ResultsError) as caught:
        append_rows(bad, [row])
    assert_names(str(caught.value), str(bad), *parts)
    assert_nothing_lost(tmp_path, before, may_appear=(".bad.csv.lock",))  # the (empty) lock file of append_rows


@pytest.mark.parametrize("case", SCHEMA_CASES, ids=list(SCHEMA_CASES))
def test_merging_a_results_csv_of_another_schema_is_refused_and_keeps_the_merged_file(tmp_path, capsys, case):
    data, parts = SCHEMA_CASES[case]
    bad = _write_bad_csv(tmp_path, data)
    merged = tmp_path / "all.csv"
    merged.write_text(GOOD_CSV)
    before = snapshot(tmp_path)
    message = expect_error(ResultsError, merge_results.main, ["--out", str(merged), str(DATA / "difftune_results.csv"),
                                                              str(bad)], capsys)
    assert_names(message, str(bad), *parts)
    assert_nothing_lost(tmp_path, before, may_appear=())


def test_a_missing_results_file_is_named(tmp_path, capsys, rendered_tables):
    message = expect_error(FileNotFoundError, report.main, ["table", "--results", str(tmp_path / "typo.csv"),
                                                            "--layout", "difftune", "--out-dir", str(rendered_tables)],
                           capsys)
    assert_names(message, f"results file {tmp_path / 'typo.csv'} does not exist", "check the path")


def test_a_results_csv_with_a_byte_order_mark_reads_as_without(tmp_path):
    """A spreadsheet's UTF-8 byte-order mark is not part of the first column's name."""
    path = tmp_path / "from_a_spreadsheet.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_CSV.encode())
    pd.testing.assert_frame_equal(read_results(path), read_results(DATA / "difftune_results.csv"))


def test_an_experiment_that_does_not_fit_the_layout_leaves_every_table_as_it_was(tmp_path, capsys, rendered_tables):
    """The second experiment fails to render after the first rendered: the first's old table must not be replaced
    (the new results change its numbers, so a partial write would show)."""
    rows = [list(row) for row in _ROWS]
    for row in rows[1:]:
        row[_COLUMNS.index("value")] = str(float(row[_COLUMNS.index("value")]) + 1)
    extra = dict(zip(_COLUMNS, _ROWS[1]), experiment="zz_deft", metric="psnr")
    path = tmp_path / "mixed.csv"
    path.write_text(_csv_text(rows + [[extra[c] for c in _COLUMNS]]))
    before = snapshot(rendered_tables)
    message = expect_error(ResultsError, report.main, ["table", "--results", str(path), "--layout", "difftune",
                                                       "--out-dir", str(rendered_tables)], capsys)
    assert_names(message, "no rows with metric 'fid_local' for zz_deft", "pass --metric")
    assert_nothing_lost(rendered_tables, before, may_appear=())


#################################################################################
#                     9. Seeds, sample arrays and sidecars                      #
#################################################################################

@pytest.fixture(scope="module")
def sampled(tmp_path_factory, pretrained):
    """A finished sampling run: two images, their protocol and arrays."""
    out = tmp_path_factory.mktemp("sampled") / "samples"
    sample.main(["--model", str(pretrained), "--out", str(out), "--seeds", "0-1", "--set", "sample.steps=2",
                 "--no-progress"])
    assert sorted(p.name for p in out.iterdir()) == ["000000.png", "000001.png", "protocol.json", "samples.npz"]
    return out


@pytest.fixture
def sample_folder(tmp_path, sampled):
    """This test's own copy of the finished sampling run."""
    return shutil.copytree(sampled, tmp_path / "samples")


@pytest.mark.parametrize("seeds, parts", [
    ("0-x", ["--seeds expects ranges like 0-99 or lists like 1,5,7, got '0-x'"]),
    ("", ["--seeds expects ranges like 0-99"]),
    ("0-3,,5", ["--seeds expects ranges like 0-99"]),
    ("5-2", ["--seeds '5-2' must name distinct non-negative seeds"]),
    ("1,1", ["--seeds '1,1' must name distinct non-negative seeds"]),
], ids=["letter-in-range", "empty", "empty-item", "reversed-range", "repeated-seed"])
def test_malformed_seeds_are_refused_before_sampling(sample_folder, pretrained, capsys, seeds, parts):
    before = snapshot(sample_folder)
    message = expect_error(ConfigError, sample.main, ["--model", str(pretrained), "--out", str(sample_folder),
                                                      "--seeds", seeds, "--no-progress"], capsys)
    assert_names(message, *parts)
    assert_nothing_lost(sample_folder, before, may_appear=())


@pytest.mark.parametrize("case", ["protocol-not-json", "protocol-not-utf8", "model-sidecar-not-json"])
def test_a_malformed_json_sidecar_is_named(tmp_path, sample_folder, pretrained, capsys, case):
    model = shutil.copytree(pretrained, tmp_path / "model")
    broken = {"protocol-not-json": sample_folder / "protocol.json", "protocol-not-utf8": sample_folder /
              "protocol.json", "model-sidecar-not-json": model / "tunebench.json"}[case]
    broken.write_bytes(b'{"protocol": {"model": ' if case != "protocol-not-utf8" else b"\xff\xfe{}")
    before, model_before = snapshot(sample_folder), snapshot(model)
    message = expect_error(ConfigError, sample.main, ["--model", str(model), "--out", str(sample_folder), "--seeds",
                                                      "0-1", "--set", "sample.steps=2", "--no-progress"], capsys)
    assert_names(message, f"{broken} is not valid JSON", "delete it or restore it from a good run")
    assert_nothing_lost(sample_folder, before, may_appear=())
    assert_nothing_lost(model, model_before, may_appear=())


def _npz(**arrays) -> bytes:
    """Arrays saved as .npz bytes."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _npy() -> bytes:
    """A single array saved as .npy bytes."""
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, RES, RES, 3), np.uint8))
    return buffer.getvalue()


NPZ_CASES = {  # id: (file bytes, message parts)
    "no-images-array": (_npz(pixels=np.zeros((2, RES, RES, 3), np.uint8)),
                        ["has no 'images' array (found ['pixels'])"]),
    "float-images": (_npz(images=np.zeros((2, RES, RES, 3), np.float32)),
                     ["'images' must be uint8 N×H×W×C, got float32 of shape (2, 8, 8, 3)"]),
    "images-without-channel-axis": (_npz(images=np.zeros((2, RES, RES), np.uint8)),
                                    ["'images' must be uint8 N×H×W×C, got uint8 of shape (2, 8, 8)"]),
    "object-array": (_npz(images=np.array([{"code": 1}], dtype=object)), ["holds pickled Python objects",
                                                                          "Object arrays cannot be loaded"]),
    "truncated-npz": (_cut(_npz(images=np.zeros((2, RES, RES, 3), np.uint8))), ["not an .npz file"]),
    "npy-renamed-npz": (_npy(), ["holds a single ndarray, not named arrays"]),
    "text-as-npz": (b"images = [[1, 2], [3, 4]]\n", ["not an .npz file"]),
}


@pytest.mark.parametrize("case", NPZ_CASES, ids=list(NPZ_CASES))
def test_a_bad_images_npz_is_named_with_the_fix(tmp_path, case):
    data, parts = NPZ_CASES[case]
    path = tmp_path / "samples.npz"
    path.write_bytes(data)
    with pytest.raises((ConfigError, FileFormatError)) as caught:
        load_npz_images(path)
    assert_names(str(caught.value), str(path), *parts, "pass the samples.npz that tunebench.sample writes")
    assert path.read_bytes() == data


@pytest.mark.parametrize("case", ["corrupt-png", "zero-byte-png", "image-of-another-size"])
def test_a_bad_sample_png_is_named_when_scoring(tmp_path, case):
    folder = tmp_path / "samples"
    folder.mkdir()
    for seed in range(3):
        (folder / f"{seed:06d}.png").write_bytes(png_bytes(noise(seed)))
    bad = folder / "000001.png"
    bad.write_bytes({"corrupt-png": _bad_crc_png()[:40], "zero-byte-png": b"",
                     "image-of-another-size": png_bytes(noise(1, 2 * RES))}[case])
    before = snapshot(folder)
    with pytest.raises(fidelity.FidError) as caught:
        fidelity.read_images(folder)
    if case == "image-of-another-size":
        assert_names(str(caught.value), f"sample image {bad} is (16, 16) pixels but {folder / '000000.png'} is (8, 8)",
                     "one folder must hold the samples of one run")
    else:
        assert_names(str(caught.value), f"cannot read sample image {bad}", "delete it and run tunebench.sample again")
    assert_nothing_lost(folder, before, may_appear=())


#################################################################################
#                  End to end: `python -m` exits 2 with one line                 #
#################################################################################

@pytest.mark.parametrize("command", ["pretrain-nan-lr", "tables-renamed-column"])
def test_python_m_prints_one_error_line_and_exits_2(tmp_path, command):
    bad = _write_bad_csv(tmp_path, SCHEMA_CASES["renamed-column"][0])
    args = {"pretrain-nan-lr": ["tunebench.pretrain", *SMOKE, "--out", str(tmp_path / "out"), "--set",
                                "train.lr=.nan"],
            "tables-renamed-column": ["difftune.report", "table", "--results", str(bad), "--layout", "difftune",
                                      "--out-dir", str(tmp_path / "tables")]}[command]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert ("'train.lr' is nan" if command.startswith("pretrain") else "unknown columns ['score']") in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]  # no output folder, no stray files
