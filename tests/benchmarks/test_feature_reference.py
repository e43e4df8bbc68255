"""The feature network's reference batch: a few fixed test images of every mini dataset with their features, pinned
beside the network (assets/mini/feature_net), so that any machine can check it computes the pinned features — the
premise of comparing `fid_local` rows made on different machines under one extractor id."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import features
from benchmarks.feature_net import (
    ALL_DATASETS,
    REFERENCE_ATOL,
    REFERENCE_BATCH_FILE,
    REFERENCE_RTOL,
    load_feature_net,
    reference_batch,
)

PINNED = Path(__file__).resolve().parents[2] / "assets" / "mini" / "feature_net"


def test_this_machine_computes_the_pinned_features():
    net, meta = load_feature_net(PINNED)  # also checks every pinned file against the manifest
    pinned = np.load(PINNED / REFERENCE_BATCH_FILE)  # no pickle: uint8, float32 and unicode arrays only
    again = reference_batch(net, resolution=meta["resolution"])
    assert list(pinned["datasets"]) == list(ALL_DATASETS)
    np.testing.assert_array_equal(again["images"], pinned["images"])  # the datasets are built identically
    np.testing.assert_allclose(again["features"], pinned["features"], atol=REFERENCE_ATOL, rtol=REFERENCE_RTOL)
    assert np.abs(pinned["features"]).max() > 100 * REFERENCE_ATOL  # the tolerance is small next to the values


def test_cli_writes_the_reference_batch_and_a_changed_network_fails_it(tmp_path):
    net_dir = tmp_path / "net"
    shutil.copytree(PINNED, net_dir)
    (net_dir / "manifest.json").unlink()  # a copy to write into, no longer the pin
    features.main(["--reference-batch", str(net_dir)])
    batch = np.load(net_dir / REFERENCE_BATCH_FILE)
    assert batch["images"].shape == (4 * len(ALL_DATASETS), 3, 32, 32) and batch["images"].dtype == np.uint8
    pinned = np.load(PINNED / REFERENCE_BATCH_FILE)
    np.testing.assert_array_equal(batch["features"], pinned["features"])  # same machine run twice: exact
    net, _ = load_feature_net(net_dir)
    with torch.no_grad():
        net.penultimate.weight.mul_(1.001)  # a 0.1 % different network is caught
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(reference_batch(net)["features"], pinned["features"], atol=REFERENCE_ATOL,
                                   rtol=REFERENCE_RTOL)
