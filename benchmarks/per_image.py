"""The per-image scores of one reconstruction run as a CSV beside its results CSV, so that two runs on the same test
images can be compared image by image (`benchmarks.paired`).

One row per test image: `dataset` and `method` (as the run's result rows), `index` (the image's position in the
test set, 0..N−1), `truth_sha256` (of that truth image's shape and bytes: two runs pair only on identical truths),
then `psnr` (+inf for an identical pair), `ssim` and `lpips` (empty where LPIPS was skipped).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.results import ResultsError
from tunebench.io import write_csv

SCORES = ("psnr", "ssim", "lpips")
PER_IMAGE_COLUMNS = ("dataset", "method", "index", "truth_sha256", *SCORES)


def image_hashes(images: np.ndarray) -> list[str]:
    """SHA-256 of each image's shape and bytes (images along the first axis)."""
    return [hashlib.sha256(str(image.shape).encode() + np.ascontiguousarray(image).tobytes()).hexdigest()
            for image in images]


def write_per_image(path: str | Path, dataset: str, method: str, truth: np.ndarray,
                    scores: dict[str, np.ndarray | None]) -> None:
    """Write one row per truth image with its scores (`SCORES` → per-image values, None for a skipped metric)."""
    hashes = image_hashes(truth)
    wrong = {name: len(values) for name, values in scores.items() if values is not None and len(values) != len(hashes)}
    if wrong or set(scores) != set(SCORES):
        raise ResultsError(f"per-image scores for {path} must be {list(SCORES)} with {len(hashes)} values each (one "
                           f"per truth image), got {sorted(scores)} with lengths {wrong}")
    write_csv(path, PER_IMAGE_COLUMNS, [
        {"dataset": dataset, "method": method, "index": index, "truth_sha256": digest,
         **{name: "" if values is None else repr(float(values[index])) for name, values in scores.items()}}
        for index, digest in enumerate(hashes)])


def read_per_image(path: str | Path) -> pd.DataFrame:
    """One per-image CSV, checked: its header, one dataset and method, indexes 0..N−1 in order, numeric scores. The
    frame has a `file` column naming the file, for the errors of those that pair it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"per-image scores {path} do not exist; run deft.evaluate with --per-image to write "
                                "them")
    frame = pd.read_csv(path, dtype={"dataset": str, "method": str, "truth_sha256": str}, keep_default_na=False)
    if tuple(frame.columns) != PER_IMAGE_COLUMNS:
        raise ResultsError(f"{path} has the columns {list(frame.columns)}, expected {list(PER_IMAGE_COLUMNS)}")
    if frame.empty or frame[["dataset", "method"]].nunique().max() > 1:
        raise ResultsError(f"{path} must hold the images of one dataset and method, got "
                           f"{sorted(set(zip(frame['dataset'], frame['method'])))}")
    if frame["index"].tolist() != list(range(len(frame))):
        raise ResultsError(f"{path}: the column 'index' must run 0..{len(frame) - 1} in order (one row per test "
                           "image)")
    for name in SCORES:
        try:
            frame[name] = pd.to_numeric(frame[name].replace("", np.nan)).astype(float)
        except ValueError as err:
            raise ResultsError(f"{path}: column {name!r} must hold numbers or be empty ({err})") from None
    return frame.assign(file=str(path))


def read_runs(paths) -> dict[tuple[str, str], pd.DataFrame]:
    """The per-image CSVs of several runs by (dataset, method); two files of one run are an error naming both."""
    runs = {}
    for path in paths:
        frame = read_per_image(path)
        key = (frame["dataset"].iloc[0], frame["method"].iloc[0])
        if key in runs:
            raise ResultsError(f"{runs[key]['file'].iloc[0]} and {path} both hold the per-image scores of {key[1]} on "
                               f"{key[0]}; pass one of them")
        runs[key] = frame
    return runs
