"""Tests for the dataset registry, the mini dataset builds, the crop helper and the image-folder reader."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from tunebench import dataset_registry as R
from tunebench import datasets as D
from tunebench import show_datasets
from tunebench.datasets import DatasetError, ImageFolderDataset, load_dataset

RES = 16  # small images keep the whole file well under a minute on 2 cores
MINI = (R.SOURCE_DATASET,) + R.DOWNSTREAM_DATASETS
EXPECTED_SIZES = {  # (train, test), as documented in docs/datasets.md
    "source": (60000, 10000), "mnist5k": (4000, 1000), "digits": (1438, 359), "lfw_faces": (160, 40),
    "textures": (2400, 600), "fashion_footwear": (3000, 1500), "microscopy": (2000, 400),
    "gray_stills": (2500, 500), "colour_scenes": (1800, 450),
}


#################################################################################
#                                  Registry                                     #
#################################################################################

def test_registry_has_source_eight_downstream_and_eight_paper_sets():
    assert R.SOURCE_DATASET in R.DATASETS and R.DATASETS["source"].role == "source"
    assert len(set(R.DOWNSTREAM_DATASETS)) == len(R.DOWNSTREAM_DATASETS) >= 8
    assert all(R.DATASETS[name].role == "downstream" for name in R.DOWNSTREAM_DATASETS)
    assert len(R.PAPER_DATASETS) == 8 and all(R.DATASETS[name].role == "paper" for name in R.PAPER_DATASETS)
    assert R.DATASETS["sun397"].num_classes == 397 and R.DATASETS["stanford_cars"].num_classes == 196
    for spec in R.DATASETS.values():
        assert spec.description and spec.split_rule
        assert (spec.train_images is None) == (spec.role == "paper")  # a provided folder's size is unknown
        assert not spec.class_names or len(spec.class_names) == spec.num_classes


#################################################################################
#                                Mini Datasets                                  #
#################################################################################

@pytest.mark.parametrize("name", MINI)
def test_mini_dataset_loads_both_splits_with_documented_sizes(name):
    spec = R.DATASETS[name]
    assert spec.train_images == EXPECTED_SIZES[name][0]  # the registry's count, which planning reads, is the build's
    for split, expected in zip(R.SPLITS, EXPECTED_SIZES[name]):
        dataset = load_dataset(name, split, resolution=RES)
        assert dataset.images.shape == (expected, 3, RES, RES) and dataset.images.dtype == torch.uint8
        assert dataset.labels.dtype == torch.int64 and len(dataset) == expected
        assert set(dataset.labels.tolist()) == set(range(spec.num_classes))
        assert dataset.images.float().std() > 0  # not a blank build
        image, label = dataset[len(dataset) - 1]
        assert image.shape == (3, RES, RES) and isinstance(label, int)


def test_loads_are_memoised_and_builds_deterministic():
    assert load_dataset("digits", "train", RES).images is load_dataset("digits", "train", RES).images
    for name in ("source", "digits", "fashion_footwear", "microscopy"):
        first, second = D.build_arrays(name, "test", RES, 1), D.build_arrays(name, "test", RES, 1)
        assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_stratified_splits_partition_the_data():
    labels = np.repeat(np.arange(4), [10, 11, 12, 13])
    train, test = (D._stratified_indices(labels, split, seed=7) for split in R.SPLITS)
    assert not set(train) & set(test) and len(train) + len(test) == len(labels)
    assert np.bincount(labels[test]).tolist() == [2, 2, 2, 3]


def test_channels_one_and_three():
    grey1, grey3 = (load_dataset("textures", "test", RES, channels) for channels in (1, 3))
    assert grey1.images.shape[1] == 1 and torch.equal(grey3.images, grey1.images.expand(-1, 3, -1, -1))
    colour1, colour3 = (load_dataset("colour_scenes", "test", RES, channels) for channels in (1, 3))
    luma = torch.einsum("nchw,c->nhw", colour3.images.float(), torch.tensor(D.LUMA_WEIGHTS))
    assert (luma - colour1.images[:, 0].float()).abs().max() <= 1.0
    assert not torch.equal(colour3.images[:, 0], colour3.images[:, 2])  # really colour


def test_source_excludes_footwear_and_footwear_holds_only_it():
    footwear = {"Sandal", "Sneaker", "Ankle boot"}
    assert not footwear & set(R.DATASETS["source"].class_names)
    assert set(R.DATASETS["fashion_footwear"].class_names) == footwear
    source = load_dataset("source", "train", RES, 1).images.numpy()
    source_images = {image.tobytes() for image in source}
    footwear_images = load_dataset("fashion_footwear", "train", RES, 1).images.numpy()
    assert sum(image.tobytes() in source_images for image in footwear_images) == 0


def test_missing_fashion_mnist_names_the_file_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEBENCH_FASHION_MNIST", str(tmp_path))
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz.*apt-get install dataset-fashion-mnist"):
        D.build_arrays("fashion_footwear", "train", RES, 1)


def test_bad_arguments_raise_dataset_errors():
    with pytest.raises(DatasetError, match="'no_such_set'.*mnist5k"):
        load_dataset("no_such_set", "train")
    with pytest.raises(DatasetError, match="'valid'.*train, test"):
        load_dataset("digits", "valid")
    with pytest.raises(DatasetError, match="resolution"):
        load_dataset("digits", "train", resolution=4)
    with pytest.raises(DatasetError, match="channels"):
        load_dataset("digits", "train", channels=2)
    with pytest.raises(DatasetError, match="takes no root"):
        load_dataset("digits", "train", root="/tmp")


#################################################################################
#                                  Crop Helper                                  #
#################################################################################

@pytest.mark.parametrize("height, width", [(64, 240), (240, 64), (100, 100)])
def test_train_and_test_crops_never_share_pixels(height, width):
    long_axis = 0 if height >= width else 1
    boundary = int(max(height, width) * 0.75)
    position = np.arange(max(height, width), dtype=np.uint8)  # pixel value = index along the longer axis
    image = np.broadcast_to(position[:, None] if long_axis == 0 else position[None, :], (height, width)).copy()
    for split in R.SPLITS:
        rng = np.random.default_rng(0)
        boxes = D.crop_boxes(height, width, 500, split, rng)
        start = boxes[:, long_axis]
        end = start + boxes[:, 2]
        assert (boxes[:, 2] >= 8).all() and (boxes[:, :2] >= 0).all()
        assert (boxes[:, 1 - long_axis] + boxes[:, 2] <= min(height, width)).all()
        if split == "train":
            assert (end <= boundary).all()
        else:
            assert (start >= boundary).all() and (end <= max(height, width)).all()
        crops = D.crop_class(image, 500, split, 12, 1, np.random.default_rng(0))
        assert (crops < boundary).all() if split == "train" else (crops >= boundary).all()


def test_crop_sides_have_the_same_range_in_both_splits():
    sides = {split: D.crop_boxes(512, 512, 2000, split, np.random.default_rng(1))[:, 2] for split in R.SPLITS}
    assert sides["train"].min() == sides["test"].min() == 16 and sides["train"].max() == sides["test"].max() == 43


#################################################################################
#                                Image Folders                                  #
#################################################################################

def _make_folder(root):
    """Write a two-class folder with good PNG/JPEG images, a truncated JPEG, a fake PNG and a text file."""
    rng = np.random.default_rng(0)
    good, bad = [], []
    for cls, sizes in (("cat", [(40, 30), (64, 64)]), ("dog", [(20, 50)])):
        (root / cls).mkdir(parents=True)
        for i, size in enumerate(sizes):
            path = root / cls / f"img{i}.{'png' if i % 2 else 'jpg'}"
            Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(path)
            good.append(path)
    jpeg = (root / "cat" / "img0.jpg").read_bytes()
    (root / "dog" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "dog" / "fake.png").write_text("not an image")
    (root / "dog" / "notes.txt").write_text("ignored: not an image extension")
    bad += [root / "dog" / "fake.png", root / "dog" / "truncated.jpg"]
    return good, bad


def test_image_folder_skips_bad_files_and_loads_good_ones(tmp_path, caplog):
    good, bad = _make_folder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tunebench.datasets"):
        dataset = ImageFolderDataset(tmp_path, RES)
    assert dataset.class_names == ["cat", "dog"]
    assert sorted(path for path, _ in dataset.skipped) == sorted(map(str, bad))
    assert sorted(path for path, _ in dataset.samples) == sorted(map(str, good))
    assert all(str(path) in caplog.text for path in bad)
    for index in range(len(dataset)):
        image, label = dataset[index]
        assert image.shape == (3, RES, RES) and image.dtype == torch.uint8
        assert label == (0 if "/cat/" in dataset.samples[index][0] else 1)
    assert ImageFolderDataset(tmp_path, 8, channels=1)[0][0].shape == (1, 8, 8)


def test_image_folder_reports_a_file_that_breaks_after_the_scan(tmp_path):
    _make_folder(tmp_path)
    dataset = ImageFolderDataset(tmp_path, RES)
    path = dataset.samples[0][0]
    with open(path, "wb") as handle:
        handle.write(b"garbage")
    with pytest.raises(DatasetError, match=path):
        dataset[0]


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match=str(tmp_path / "missing")):
        ImageFolderDataset(tmp_path / "missing", RES)
    _make_folder(tmp_path / "data")
    (tmp_path / "data" / "empty_class").mkdir()
    with pytest.raises(DatasetError, match="empty_class"):
        ImageFolderDataset(tmp_path / "data", RES)


def test_paper_dataset_roots(tmp_path):
    with pytest.raises(DatasetError, match="'food101'.*pass root"):
        load_dataset("food101", "train")
    with pytest.raises(DatasetError, match=str(tmp_path / "nowhere")):
        load_dataset("food101", "train", root=str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match=str(tmp_path / "test")):
        load_dataset("food101", "test", root=str(tmp_path))
    _make_folder(tmp_path / "train")
    with pytest.raises(DatasetError, match="2 class folders.*10 classes"):
        load_dataset("artbench10", "train", RES, root=str(tmp_path))


def test_adm_center_crop_gives_a_square():
    for size in [(300, 200), (17, 90), (16, 16)]:
        assert D.adm_center_crop(Image.new("RGB", size), 16).size == (16, 16)


#################################################################################
#                                     CLI                                       #
#################################################################################

def test_cli_list_and_preview(tmp_path, capsys):
    show_datasets.main(["--list"])
    listing = capsys.readouterr().out
    assert all(name in listing for name in R.DATASETS) and "60000" in listing
    out = tmp_path / "grid.png"
    show_datasets.main(["--preview", "textures", "--split", "test", "--resolution", str(RES), "--out", str(out)])
    assert Image.open(out).size == (8 * (RES + 2) + 2, 3 * (RES + 2) + 2)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # no temporary file left behind
    with pytest.raises(SystemExit) as exit_info:
        show_datasets.main(["--preview", "food101"])
    assert exit_info.value.code == 2 and "pass root" in capsys.readouterr().err


def test_class_names_of_a_folder_dataset_come_from_its_folders_when_its_spec_names_none(tmp_path):
    # A paper-scale dataset's spec has its class count but no names: a model fine-tuned on it must still record its
    # classes, or its samples would draw labels over all of the pre-trained model's classes.
    _make_folder(tmp_path)
    paper_spec = R.DATASETS["artbench10"]
    assert paper_spec.role == "paper" and not paper_spec.class_names
    folder = ImageFolderDataset(tmp_path, RES)
    folder.spec = paper_spec
    assert D.class_names_of(folder) == ["cat", "dog"]
    mini = load_dataset("textures", "train", 16, 3)
    assert D.class_names_of(mini) == list(R.DATASETS["textures"].class_names)
