"""Shared fixtures: offline hub, tiny configs and models built in code (nothing is downloaded)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from tunebench.config import resolve  # noqa: E402
from tunebench.models import build_dit, export_dit  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture
def smoke_run():
    """The smoke-scale run config (16×16 RGB, 2 blocks)."""
    return resolve("smoke")


def nonzero_smoke_dit(run):
    """A randomly initialised smoke DiT (seed 0) with non-zero output layers (DiT's zero init would make outputs
    trivial)."""
    torch.manual_seed(0)
    model = build_dit(run.model)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.05)
    return model


@pytest.fixture
def tiny_model(smoke_run):
    """The smoke DiT of `nonzero_smoke_dit`."""
    return nonzero_smoke_dit(smoke_run)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """That DiT exported (13 source class names), standing in for a pre-trained or frozen base model."""
    run = resolve("smoke")
    folder = tmp_path_factory.mktemp("pretrained") / "model"
    export_dit(nonzero_smoke_dit(run), folder, run, extra={"class_names": [str(i) for i in range(13)]})
    return folder
