"""ControlNet's picture grid for the report: on one condition, the held-out test images and their conditions, then
each objective's samples from those conditions at a few training steps, the same images and seeds in every column.
It reads what `difftune.controlnet.fidelity_probe` keeps in each run's fidelity/ folder (the evaluation set and each
evaluated step's samples), so nothing is sampled again; the grid is written with its protocol caption
(`benchmarks.figures.write_caption`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.figures import plot_image_rows, write_caption
from difftune.controlnet.fidelity_probe import EVAL_SET
from difftune.pictures import one_or_all, seed_range
from tunebench.config import ConfigError
from tunebench.io import load_npz, read_json

SHOWN_STEPS = 3  # training steps shown per objective: evenly spaced over the evaluated ones, the last always


def condition_images(controls: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×C pictures of float N×C×H×W conditions in [-1, 1]: 1 channel grey, 3 RGB, and for the inpainting
    condition (masked image + mask) the masked image."""
    pictures = np.clip((controls[:, :3] + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return pictures.transpose(0, 2, 3, 1)


def shown_steps(steps: list[int], count: int = SHOWN_STEPS) -> list[int]:
    """Up to `count` steps of an evaluated list, evenly spaced after step 0 and ending at the last one."""
    trained = [step for step in steps if step > 0]
    if not trained:
        raise ConfigError("the runs evaluated no trained step (only step 0)")
    picks = np.linspace(0, len(trained) - 1, min(count, len(trained)) + 1)[1:].round().astype(int)
    return [trained[i] for i in sorted(set(picks))]


def run_facts(run_dir: Path) -> dict:
    """A ControlNet run's summary and the steps whose samples it kept."""
    summary = read_json(run_dir / "summary.json")
    kept = sorted(int(path.stem.removeprefix("step-")) for path in (run_dir / "fidelity").glob("step-*.npz"))
    if not (run_dir / "fidelity" / EVAL_SET).is_file() or not kept:
        raise ConfigError(f"{run_dir}/fidelity holds no kept samples ({EVAL_SET} and step-NNNNNNN.npz); train it "
                          f"again with this version of difftune.controlnet.train")
    return {"summary": summary, "steps": kept}


def controlnet_grid(runs: dict[str, Path], count: int, out: Path) -> None:
    """The test images, their condition and each objective's samples (`runs`: objective → run folder, one condition
    and training seed) at the shown steps, on the first `count` evaluation images (all, if fewer); written with its
    caption."""
    facts = {objective: run_facts(Path(folder)) for objective, folder in runs.items()}
    conditions = {fact["summary"]["condition"] for fact in facts.values()}
    if len(conditions) != 1:
        raise ConfigError(f"the runs train on different conditions: {sorted(conditions)}")
    condition = conditions.pop()
    first = Path(next(iter(runs.values())))
    eval_set = load_npz(first / "fidelity" / EVAL_SET)
    for folder in runs.values():  # every arm must have sampled the same images from the same seeds
        other = load_npz(Path(folder) / "fidelity" / EVAL_SET)
        if not all(np.array_equal(eval_set[key], other[key]) for key in ("images", "labels", "seeds")):
            raise ConfigError(f"{folder} evaluated other test images or seeds than {first}")
    count = min(count, len(eval_set["images"]))  # control.eval_images may be fewer (smoke scale)
    common = sorted(set.intersection(*(set(fact["steps"]) for fact in facts.values())))
    steps = shown_steps(common)
    rows = [("test image", eval_set["images"][:count]),
            (f"{condition} condition", condition_images(eval_set["controls"][:count]))]
    for step in steps:
        for objective, folder in runs.items():
            samples = load_npz(Path(folder) / "fidelity" / f"step-{step:07d}.npz")["samples"]
            rows.append((f"{objective}, step {step}", samples[:count]))
    seeds, labels = eval_set["seeds"][:count], eval_set["labels"][:count]
    summaries = [fact["summary"] for fact in facts.values()]
    plot_image_rows(rows, out, title=f"ControlNet on {condition}: the same test images and seeds in every row",
                    column_labels=[f"s{s} c{c}" for s, c in zip(seeds, labels)])
    config = read_json(first / "config.json")
    write_caption(out, f"ControlNet branches on the frozen pre-trained model, one per objective (training seed "
                       f"{one_or_all(s['seed'] for s in summaries)}): held-out test images of "
                       f"{one_or_all(s['dataset'] for s in summaries)}, the {condition} condition computed from each, "
                       f"and each objective's sample from that condition (seed s, class c) at training steps "
                       f"{', '.join(map(str, steps))}, with the weights the fidelity curve scores.",
                  {"model": f"base={one_or_all(s['base'] for s in summaries)}, "
                            + ", ".join(f"{objective}={folder}" for objective, folder in runs.items()),
                   "seeds": seed_range(seeds), "labels": "each test image's class",
                   "sampler": config["sample"]["sampler"], "steps": str(config["control"]["eval_sample_steps"]),
                   "guidance": "1.0", "commit": one_or_all(str(s["git_commit"])[:10] for s in summaries)})
