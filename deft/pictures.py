"""DEFT's picture grid for the report: on one task, the ground truth, what the methods were given (the measurement y
where it is an image, else the official start A†y) and DEFT's and every baseline's reconstruction of the same test
images (`deft.reconstruct`'s recon.npz and truth.npz), with the protocol in a caption sidecar
(`benchmarks.figures.write_caption`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.figures import plot_image_rows, write_caption
from tunebench.config import ConfigError
from tunebench.io import load_npz_images, read_json


def measurement_row(summary: dict, count: int) -> tuple[str, np.ndarray] | None:
    """(label, uint8 images) of what the methods see for the first `count` test images, rebuilt exactly as
    `deft.reconstruct` made it from the run's config: y when it is image-shaped, else the rough inverse A†y; None
    for an operator with neither (e.g. phase retrieval's magnitudes without a pseudo-inverse)."""
    import torch

    from deft.config import DeftConfig
    from deft.data import test_set, to_model_range
    from deft.reconstruction import measurements
    from tunebench.config import from_dict
    from tunebench.io import to_uint8

    run = from_dict(summary["run_config"], DeftConfig)
    ids = torch.arange(count)
    x0 = to_model_range(test_set(run).images[ids])
    op, y = measurements(run, x0, ids)
    if y.ndim == 4 and y.shape[1] == x0.shape[1]:
        return "measurement y", to_uint8(y)
    try:
        return "start A†y", to_uint8(op.rough_inverse(y))
    except NotImplementedError:
        return None


def method_protocol(summary: dict) -> str:
    """One method's sampler, steps and its own settings, for the caption."""
    settings = summary.get("method_config") or {"eta": summary.get("eta")}
    return f"{summary['sampler']} {summary['steps']} steps ({', '.join(f'{k}={v}' for k, v in settings.items())})"


def recon_grid(task: str, folders: dict[str, Path], count: int, out: Path) -> None:
    """Ground truth, the measurement and each method's reconstruction of the first `count` test images of `task`
    (all of them when there are fewer), one row each, written to `out` with its caption sidecar."""
    truths = {name: load_npz_images(Path(folder) / "truth.npz")[:count] for name, folder in folders.items()}
    first = next(iter(truths.values()))
    count = len(first)  # the first `count`, or every test image when there are fewer
    differing = [name for name, truth in truths.items() if not np.array_equal(truth, first)]
    if differing:
        raise ConfigError(f"{task}: {differing} reconstructed other test images than {next(iter(folders))}")
    summaries = {name: read_json(Path(folder) / "summary.json") for name, folder in folders.items()}
    measured = measurement_row(next(iter(summaries.values())), count)
    rows = [("ground truth", first), *([measured] if measured else []),
            *((name, load_npz_images(Path(folder) / "recon.npz")[:count]) for name, folder in folders.items())]
    plot_image_rows(rows, out, title=f"{task}: the same test images in every row",
                    column_labels=[f"image {k}" for k in range(count)])
    commits = sorted({str(s["git_commit"])[:10] for s in summaries.values()})
    summary = next(iter(summaries.values()))
    head = summaries.get("deft", {}).get("trained_model")
    write_caption(out, f"{task} ({summary['operator']}, σ_y = {summary['sigma_y']}): the first {count} test images, "
                       f"{'what the methods are given' if measured else 'no image-shaped measurement or A†y'}, then "
                       "each method's reconstruction of the same images (sampler noise of image k from seed k).",
                  {"model": f"backbone {summary['backbone']}; DEFT head {head}",
                   "seeds": f"0-{count - 1}",
                   "sampler": "; ".join(f"{name}: {method_protocol(s)}" for name, s in summaries.items()),
                   "steps": "per method, above", "guidance": "likelihood only (no classifier-free guidance)",
                   "commit": ", ".join(commits)})
