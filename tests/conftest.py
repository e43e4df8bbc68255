"""Shared fixtures: offline hub, tiny configs and models built in code (nothing is downloaded)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import contextlib  # noqa: E402
import logging  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from tunebench.config import resolve  # noqa: E402
from tunebench.model_card import CardFacts  # noqa: E402
from tunebench.models import build_dit, export_dit, fill_zero_parameters  # noqa: E402

# scripts/test.sh runs two pytest workers (pytest-xdist) on a 2-core machine: each gets one intra-op thread, and so do
# the CLIs its tests start (OMP_NUM_THREADS), or their threads would wait on each other at every parallel region
# (a 20 s test took 175 s that way). A plain `pytest` run keeps two.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if WORKER:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1 if WORKER else 2)


def pytest_collection_modifyitems(items):
    """Tests marked `long` (minutes) go first, so that under xdist one worker starts them while the other works
    through the rest of the suite, instead of them running alone at its end."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: the order is kept otherwise

# The model card facts of the DiTs tests export (a CLI states its own: what it trained, from what, on what).
TEST_FACTS = CardFacts(method="a DiT built in a test", base_model=None, data="none",
                       loader="tunebench.models.load_dit(folder)")


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of tiny problems (opt in with `pytestmark = pytest.mark.usefixtures(
    "one_thread")`): on a busy 2-core machine the second thread's waits at every parallel region made tiny ops
    several times (a 1000-step DPS loop 100×) slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@contextlib.contextmanager
def kept_log_handlers():
    """Undo the log handlers a CLI `main` installs inside the block (its log.txt handler would otherwise stay open);
    for module-scoped fixtures, which cannot use `restore_logging`."""
    root = logging.getLogger()
    handlers = root.handlers[:]
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers


@pytest.fixture
def restore_logging():
    """Undo the log handlers a CLI `main` installs during the test."""
    with kept_log_handlers():
        yield


@pytest.fixture
def smoke_run():
    """The smoke-scale run config (16×16 RGB, 2 blocks)."""
    return resolve("smoke")


def nonzero_smoke_dit(run):
    """A randomly initialised smoke DiT (seed 0) with non-zero output layers (DiT's zero init would make outputs
    trivial)."""
    torch.manual_seed(0)
    return fill_zero_parameters(build_dit(run.model), std=0.05)


@pytest.fixture
def tiny_model(smoke_run):
    """The smoke DiT of `nonzero_smoke_dit`."""
    return nonzero_smoke_dit(smoke_run)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """That DiT exported (13 source class names), standing in for a pre-trained or frozen base model."""
    run = resolve("smoke")
    folder = tmp_path_factory.mktemp("pretrained") / "model"
    export_dit(nonzero_smoke_dit(run), folder, run, extra={"class_names": [str(i) for i in range(13)]},
               facts=TEST_FACTS)
    return folder


def save_tiny_vae(folder, seed: int = 0):
    """A tiny randomly initialised AutoencoderKL (4 latent channels, one halving: 16 px → 8×8 latents) saved in
    `folder`; another seed gives another VAE."""
    from benchmarks.throughput_bench import tiny_vae_architecture  # the one definition; imported when used

    tiny_vae_architecture(seed).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory):
    """The seed-0 tiny VAE's folder, standing in for the SD VAE."""
    return save_tiny_vae(tmp_path_factory.mktemp("vae"))


@pytest.fixture(scope="module")
def other_tiny_vae(tmp_path_factory):
    """A tiny VAE with other weights (seed 1)."""
    return save_tiny_vae(tmp_path_factory.mktemp("other-vae"), seed=1)
