"""Shared protein fixtures: the smoke-scale prepared chains and unconditional prior, trained once per test session."""

import pytest

from deft.protein import prepare, train


@pytest.fixture(scope="session")
def smoke_prior(tmp_path_factory):
    """A folder with data/ (prepared smoke chains) and prior/ (the smoke prior's training run: checkpoints at steps
    3 and 6, exported model/)."""
    root = tmp_path_factory.mktemp("protein")
    prepare.main(["--scale", "smoke", "--out", str(root / "data")])
    train.main(["prior", "--scale", "smoke", "--data", str(root / "data"), "--no-progress", "--out",
                str(root / "prior")])
    return root
