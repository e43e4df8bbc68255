"""Diff-Tuning's picture grids for the report: on one dataset, real training images beside full fine-tuning's,
Diff-Tuning's and the pre-trained model's samples on the same seeds (labels: the fine-tuned models' per-seed labels,
real images of those classes, the pre-trained model unconditional, as the forgetting splice samples it); and the
chain-of-forgetting splice at each t0 on the same seeds. Each grid is written with its protocol caption
(`benchmarks.figures.write_caption`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.figures import plot_image_rows, write_caption
from tunebench.config import ConfigError
from tunebench.io import load_npz, read_json

# Row labels of the two splice directions (difftune.forgetting.DIRECTIONS): which model denoises above and below t0.
SPLICE_LABELS = {"finetuned_then_pretrained": "FT≥t0, PT<t0", "pretrained_then_finetuned": "PT≥t0, FT<t0"}


def sample_folder(folder: Path, count: int) -> tuple[dict, dict]:
    """The first `count` images, labels and seeds of a `tunebench.sample` folder, and its protocol file."""
    arrays = load_npz(Path(folder) / "samples.npz")
    if len(arrays["images"]) < count:
        raise ConfigError(f"{folder} holds {len(arrays['images'])} samples, fewer than the {count} shown")
    return {key: arrays[key][:count] for key in ("images", "labels", "seeds")}, read_json(Path(folder) /
                                                                                         "protocol.json")


def examples_of(dataset, labels: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×C training images, image j of class labels[j]: the class's next image each time it repeats,
    from its first again once all are shown (a small class); a class with no training image is an error."""
    all_labels = np.asarray(dataset.labels if hasattr(dataset, "labels") else [y for _, y in dataset.samples])
    used: dict[int, int] = {}
    picked = []
    for label in labels:
        of_class = np.flatnonzero(all_labels == label)
        if len(of_class) == 0:
            raise ConfigError(f"the training split has no image of class {label}; was the model fine-tuned on "
                              f"another dataset, or sampled with labels beyond this dataset's classes?")
        nth = used.get(int(label), 0)
        used[int(label)] = nth + 1
        picked.append(dataset[int(of_class[nth % len(of_class)])][0].permute(1, 2, 0).numpy())
    return np.stack(picked).astype(np.uint8)


def same_seeds(rows: dict[str, dict]) -> np.ndarray:
    """The seeds every row shows, raising when two rows were sampled on different seeds."""
    seeds = {name: tuple(row["seeds"]) for name, row in rows.items()}
    if len(set(seeds.values())) != 1:
        raise ConfigError(f"the rows were sampled on different seeds: {seeds}")
    return next(iter(rows.values()))["seeds"]


def seed_range(seeds) -> str:
    """'0-15' for consecutive seeds, else a comma list."""
    seeds = [int(s) for s in seeds]
    consecutive = seeds == list(range(seeds[0], seeds[0] + len(seeds)))
    return f"{seeds[0]}-{seeds[-1]}" if consecutive else ",".join(map(str, seeds))


def one_or_all(values) -> str:
    """One value, or every distinct one, for a caption."""
    distinct = sorted({str(v) for v in values})
    return distinct[0] if len(distinct) == 1 else " / ".join(distinct)


def samples_grid(dataset_name: str, finetuned: dict[str, Path], pretrained: Path, count: int, out: Path,
                 root: str | None = None) -> None:
    """Real training images, each fine-tuned model's samples and the pre-trained model's on the first `count`
    seeds, one row each, written to `out` with its caption sidecar."""
    from tunebench.datasets import load_dataset

    rows, protocols = {}, {}
    for name, folder in {**finetuned, "pre-trained": pretrained}.items():
        rows[name], protocols[name] = sample_folder(folder, count)
    seeds = same_seeds(rows)
    labels = {tuple(rows[name]["labels"]) for name in finetuned}
    if len(labels) != 1:
        raise ConfigError(f"the fine-tuned models' samples have different labels on the same seeds: {finetuned}")
    labels = np.array(labels.pop())
    side = rows["pre-trained"]["images"].shape[1]
    real = examples_of(load_dataset(dataset_name, "train", side, 3, root), labels)
    plot_image_rows([("real (train)", real), *((name, row["images"]) for name, row in rows.items())], out,
                    title=f"{dataset_name}: the same seeds in every row",
                    column_labels=[f"s{s} c{c}" for s, c in zip(seeds, labels)])
    sample = [p["protocol"]["sample"] for p in protocols.values()]
    write_caption(out, f"{dataset_name}: real training images of each column's class (c), then each model's sample "
                       f"on seed s; the fine-tuned models are conditioned on class c, the pre-trained model (trained "
                       f"on the source classes) samples with its null label.",
                  {"model": ", ".join(f"{name}={p['protocol']['model']}" for name, p in protocols.items()),
                   "seeds": seed_range(seeds), "labels": "uniform per seed (fine-tuned), null (pre-trained)",
                   "sampler": one_or_all(s["sampler"] for s in sample),
                   "steps": one_or_all(s["steps"] for s in sample),
                   "guidance": one_or_all(s["guidance_scale"] for s in sample),
                   "commit": one_or_all(str(p["git_commit"])[:10] for p in protocols.values())})


def splice_grid(npz: Path, curve_csv: Path, out: Path) -> None:
    """The chain-of-forgetting splice images (`difftune.forgetting --images-out`): one row per (direction, t0), the
    same seeds in every column, with the curve's protocol columns as the caption."""
    import pandas as pd

    arrays = load_npz(npz)
    rows = [(f"{SPLICE_LABELS[str(direction)]}, t0={t0}", images)
            for direction, t0, images in zip(arrays["direction"], arrays["t0"], arrays["images"])]
    curve = pd.read_csv(curve_csv)
    plot_image_rows(rows, out, title=f"Chain of forgetting on {one_or_all(curve['dataset'])}: the same seeds "
                                     "spliced at each t0", column_labels=[f"s{s}" for s in arrays["seeds"]])
    write_caption(out, "Each row samples the same seeds with the fine-tuned model (FT) and the pre-trained model (PT) "
                       "spliced inside one reverse chain at step t0 (0 = data end); t0 = 0 in the first direction is "
                       "the fine-tuned model alone, t0 = 1000 the pre-trained model alone (null label).",
                  {"model": f"FT={one_or_all(curve['finetuned'])}, PT={one_or_all(curve['pretrained'])}",
                   "seeds": seed_range(arrays["seeds"]), "labels": "uniform per seed (FT), null (PT)",
                   "sampler": one_or_all(curve["sampler"]), "steps": one_or_all(curve["steps"]),
                   "guidance": one_or_all(curve["guidance"]), "commit": one_or_all(curve["git_commit"].str[:10])})
