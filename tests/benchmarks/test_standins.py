"""The metrics' weight-file stand-ins load where the paper scale loads the real files: the Inception-v3 state dict
through torch-fidelity (FID) and the AlexNet trunk through LPIPS."""

import numpy as np
import pytest
import torch

from benchmarks.fidelity import extract_features, inception_extractor
from benchmarks.lpips_metric import load_lpips, lpips_per_image
from benchmarks.standins import write_alexnet, write_inception
from tunebench.io import file_sha256

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_inception_stand_in_is_a_state_dict_torch_fidelity_loads(tmp_path):
    path = write_inception(tmp_path / "inception.pth")
    extractor = inception_extractor(path)
    assert extractor.extractor_id.startswith("inception-") and extractor.extractor_id != "inception-6726825d"
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    features = extract_features(images, extractor, cuda=False)
    assert tuple(features.shape) == (2, 2048) and torch.isfinite(features).all()
    # not collapsed to ~0 by the depth (torch's default initialisation gives ~1e-8), and not one for every image
    assert features.abs().mean() > 0.01 and (features[0] - features[1]).abs().mean() > 1e-4
    again = torch.load(write_inception(tmp_path / "again.pth"))  # seeded: the same weights
    assert all(torch.equal(again[name], tensor) for name, tensor in torch.load(path).items())
    # torch's zip format stores the file's name inside it: the two files differ, the id (of the tensors) does not
    assert file_sha256(path) != file_sha256(tmp_path / "again.pth")
    assert inception_extractor(tmp_path / "again.pth").extractor_id == extractor.extractor_id


def test_the_alexnet_stand_in_is_the_trunk_lpips_loads(tmp_path):
    model, reason = load_lpips(write_alexnet(tmp_path / "alexnet.pth"))
    assert reason is None
    rng = np.random.default_rng(0)
    first, second = rng.random((2, 3, 64, 64)), rng.random((2, 3, 64, 64))
    distances = lpips_per_image(model, first, second)
    assert distances.shape == (2,) and (distances > 0).all()
    assert lpips_per_image(model, first, first) == pytest.approx([0, 0], abs=1e-6)
