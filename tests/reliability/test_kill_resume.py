"""Kill and resume: training, sampling and metrics jobs killed with SIGKILL lose, duplicate and change nothing.

Every killed job is a real CLI process, killed at a step drawn by a seeded `random.Random` and started again with
the same command; the uninterrupted run it is compared with calls the same CLI `main` in this process (one thread,
as the jobs run), which saves a process start.
"""

import contextlib
import csv
import io
import json
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from PIL import Image

from benchmarks.merge_results import main as results_main
from benchmarks.results import RESULT_COLUMNS, _read_text_rows, merge
from tests.conftest import kept_log_handlers
from tunebench import pretrain, sample
from tunebench.checkpoint import list_checkpoints
from tunebench.io import read_json, torch_load

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
WAIT_S = 180  # generous: the CPUs are shared, and a slow start must not fail a test
WRITER_KILLS = 8  # half of them aimed mid-write; one CI run on a busy machine saw none of 2 land there


def start(args: list[str], log: Path) -> subprocess.Popen:
    """Start `python ARGS` from the repository root with stdout and stderr going to `log`."""
    with open(log, "w") as handle:
        return subprocess.Popen([sys.executable, *args], cwd=REPO_ROOT, env=ENV, stdout=handle,
                                stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, log: Path) -> None:
    """Wait for a process that must succeed."""
    assert proc.wait(timeout=WAIT_S) == 0, log.read_text()[-3000:]


def kill_when(proc: subprocess.Popen, ready, log: Path, poll_s: float = 0.002, then_s: float = 0.0) -> None:
    """SIGKILL `proc` `then_s` seconds after `ready()` first holds; fail if it ends first (the kill must land)."""
    deadline = time.monotonic() + WAIT_S
    while not ready():
        assert proc.poll() is None, f"the job ended before the kill point:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "the kill point was never reached"
        time.sleep(poll_s)
    time.sleep(then_s)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=WAIT_S) == -signal.SIGKILL, f"the job was not killed:\n{log.read_text()[-3000:]}"


@contextlib.contextmanager
def like_a_job():
    """Run a CLI `main` here as its process would: one torch thread; its log handlers removed afterwards."""
    root, threads = logging.getLogger(), torch.get_num_threads()
    level = root.level
    torch.set_num_threads(1)
    try:
        with kept_log_handlers():
            yield
    finally:
        root.setLevel(level)
        torch.set_num_threads(threads)


def hidden_entries(folder: Path) -> list[str]:
    """Dot-prefixed names in `folder` (what atomic writes use while writing)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.is_dir() else []


#################################################################################
#                                   Training                                    #
#################################################################################

STEPS, EVERY = 120, 10


def pretrain_args(out: Path) -> list[str]:
    """The smoke pre-training command (digits, the smallest registered dataset, for a quick start)."""
    return ["-m", "tunebench.pretrain", "--scale", "smoke", "--out", str(out), "--set", "data.dataset=digits",
            "--set", f"train.steps={STEPS}", "--set", f"train.checkpoint_every={EVERY}", "--set", "train.log_every=1",
            "--no-progress"]


def latest_step(out: Path) -> int:
    """Step of the newest complete checkpoint (0 if none)."""
    found = list_checkpoints(out)
    return int(found[-1].name.split("-")[1]) if found else 0


def assert_same_tensors(a: dict, b: dict, what: str) -> None:
    """Equal keys and bit-identical tensors."""
    assert a.keys() == b.keys(), what
    for key in a:
        assert torch.equal(a[key], b[key]), f"{what}: {key} differs"


def assert_same_state(a, b, what: str) -> None:
    """Nested optimiser states (dicts, lists, tensors, numbers) are identical."""
    assert type(a) is type(b), what
    if isinstance(a, dict):
        assert a.keys() == b.keys(), what
        for key in a:
            assert_same_state(a[key], b[key], f"{what}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), what
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{what}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), what
    else:
        assert a == b, what


def stats_rows(out: Path) -> list[tuple]:
    """(step, loss, mse, vb) of every stats.jsonl row (steps/s is wall time, so left out)."""
    rows = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines() if line.strip()]
    return [(r["step"], r["loss"], r["mse"], r["vb"]) for r in rows]


def test_killed_training_resumes_to_identical_weights(tmp_path):
    rng = random.Random(10)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    kill_points = []

    # Kill 1: between steps, at a random moment after a random checkpoint in the first half.
    first = rng.randrange(EVERY, STEPS // 2, EVERY)
    log = tmp_path / "run1.log"
    proc = start(pretrain_args(killed), log)
    kill_when(proc, lambda: latest_step(killed) >= first, log, then_s=rng.uniform(0.0, 0.1))
    kill_points.append(latest_step(killed))

    # Kill 2: while a checkpoint folder is being written or deleted (a hidden folder exists), after a later one.
    second = rng.randrange(kill_points[0] + EVERY, STEPS - EVERY, EVERY)
    log = tmp_path / "run2.log"
    proc = start(pretrain_args(killed), log)
    kill_when(proc, lambda: latest_step(killed) >= second and hidden_entries(killed / "checkpoints"), log,
              poll_s=0.0)
    kill_points.append(latest_step(killed))
    for step in kill_points:
        assert 0 < step < STEPS  # mid-run: at least one checkpoint, before the end
    assert not (killed / "model").exists()  # nothing exported by a killed run
    assert all((p / "state.json").is_file() for p in (killed / "checkpoints").glob("checkpoint-*"))
    # A folder half-written by an earlier kill, as SIGKILL inside save_checkpoint leaves it.
    stale = killed / "checkpoints" / f".checkpoint-{STEPS:07d}.x1y2z3.tmp"
    stale.mkdir(exist_ok=True)
    (stale / "model.safetensors").write_bytes(b"\0" * 100)

    log = tmp_path / "run3.log"
    finish(start(pretrain_args(killed), log), log)
    with like_a_job():
        pretrain.main(pretrain_args(straight)[2:])
    resumed = [line for line in (killed / "log.txt").read_text().splitlines() if "resumed from" in line]
    assert [int(line.rsplit(" ", 1)[1]) for line in resumed] == kill_points  # resumed, not restarted from 0

    exported = "model/diffusion_pytorch_model.safetensors"
    assert_same_tensors(safetensors.torch.load_file(straight / exported),
                        safetensors.torch.load_file(killed / exported), exported)
    a, b = list_checkpoints(straight)[-1], list_checkpoints(killed)[-1]
    assert a.name == b.name == f"checkpoint-{STEPS:07d}"
    for name in ("model", "ema", "rng"):
        assert_same_tensors(safetensors.torch.load_file(a / f"{name}.safetensors"),
                            safetensors.torch.load_file(b / f"{name}.safetensors"), f"{name}.safetensors")
    assert_same_state(torch_load(a / "optimizer.pt"), torch_load(b / "optimizer.pt"), "optimizer.pt")
    # Everything but the wall time of training, which the two runs spent differently (the killed one's sums its parts).
    straight_state, killed_state = read_json(a / "state.json"), read_json(b / "state.json")
    assert straight_state.pop("train_seconds") > 0 and killed_state.pop("train_seconds") > 0
    assert straight_state == killed_state
    # No step lost or logged twice, and every loss equal to the uninterrupted run's.
    assert stats_rows(killed) == stats_rows(straight)
    assert [r[0] for r in stats_rows(killed)] == list(range(1, STEPS + 1))
    assert hidden_entries(killed / "checkpoints") == []  # the killed runs' leftovers were removed
    assert [p.name for p in list_checkpoints(killed)] == [p.name for p in list_checkpoints(straight)]


#################################################################################
#                                   Sampling                                    #
#################################################################################

SEEDS, PNG = 48, "[0-9][0-9][0-9][0-9][0-9][0-9].png"


def sample_args(model: Path, out: Path) -> list[str]:
    """The sampling command: 48 seeds, 100 DDPM steps so that the run lasts long enough to be killed mid-way."""
    return ["-m", "tunebench.sample", "--model", str(model), "--out", str(out), "--seeds", f"0-{SEEDS - 1}",
            "--labels", "cycle", "--set", "sample.steps=100", "--no-progress"]


def count_pngs(out: Path) -> int:
    """How many NNNNNN.png files `out` holds."""
    return len(list(out.glob(PNG))) if out.is_dir() else 0


def finished_pngs(out: Path) -> dict[str, tuple]:
    """{name: (inode, mtime_ns, bytes)} of the NNNNNN.png files in `out`."""
    if not out.is_dir():
        return {}
    found = {}
    for path in out.glob(PNG):
        stat = path.stat()
        found[path.name] = (stat.st_ino, stat.st_mtime_ns, path.read_bytes())
    return found


def test_killed_sampling_resumes_without_redoing_or_losing_images(pretrained, tmp_path):
    rng = random.Random(20)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    target = rng.randint(1, SEEDS - 16)
    log = tmp_path / "run1.log"
    proc = start(sample_args(pretrained, killed), log)
    kill_when(proc, lambda: count_pngs(killed) >= target, log)
    done = finished_pngs(killed)
    assert target <= len(done) < SEEDS, "the kill must land mid-run"
    for name in done:  # every image that has its final name is a complete PNG
        with Image.open(killed / name) as image:
            image.load()
    assert not (killed / "samples.npz").exists()
    # A half-written PNG, as a kill inside save_png leaves it: a hidden temporary name, so not a finished image.
    (killed / f".{SEEDS - 1:06d}.png.k9j8h7.tmp").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    log = tmp_path / "run2.log"
    finish(start(sample_args(pretrained, killed), log), log)
    with like_a_job():
        sample.main(sample_args(pretrained, straight)[2:])

    assert f"{SEEDS - len(done)} of {SEEDS} images to make" in log.read_text()  # only the missing ones
    final = finished_pngs(killed)
    assert {name: final[name] for name in done} == done  # finished images never rewritten: same inode, time, bytes
    assert sorted(final) == [f"{s:06d}.png" for s in range(SEEDS)]  # none missing, none extra
    assert hidden_entries(killed) == []  # the half-written PNGs of the killed run were removed
    assert "left half-written by an interrupted job" in log.read_text()
    with np.load(killed / "samples.npz") as got, np.load(straight / "samples.npz") as want:
        assert got["seeds"].tolist() == list(range(SEEDS))  # each seed once, in order
        assert np.array_equal(got["labels"], want["labels"])
        assert np.array_equal(got["images"], want["images"])  # per-seed images identical to an uninterrupted run
        for seed in range(SEEDS):
            assert np.array_equal(np.asarray(Image.open(killed / f"{seed:06d}.png")), got["images"][seed].squeeze())


#################################################################################
#                                    Metrics                                    #
#################################################################################

WRITER = textwrap.dedent("""
    import itertools, sys
    import numpy as np
    from tunebench.io import save_npz, write_csv

    def content(version):
        rows = [{"metric": f"fid_{version}_{i}", "value": i * 0.5 + version, "note": "x" * (i % 7)}
                for i in range(20000 + 15000 * version)]
        return rows, np.arange(300000 + 200000 * version, dtype=np.float64) + version

    contents = [content(0), content(1)]
    out = sys.argv[1]
    for i in itertools.count():
        rows, array = contents[i % 2]
        write_csv(f"{out}/scores.csv", ["metric", "value", "note"], rows)
        save_npz(f"{out}/features.npz", features=array, version=np.array(i % 2))
        if i == 1:
            print("ready", flush=True)
""")


def expected_content(version: int) -> tuple[str, np.ndarray]:
    """The CSV text and array the writer script writes as `version`."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["metric", "value", "note"], lineterminator="\n")
    writer.writeheader()
    writer.writerows({"metric": f"fid_{version}_{i}", "value": i * 0.5 + version, "note": "x" * (i % 7)}
                     for i in range(20000 + 15000 * version))
    return text.getvalue(), np.arange(300000 + 200000 * version, dtype=np.float64) + version


def test_killed_metric_writes_leave_old_or_new_files_never_partial(tmp_path):
    rng = random.Random(30)
    contents = [expected_content(0), expected_content(1)]
    outs = [tmp_path / f"kill{kill}" for kill in range(WRITER_KILLS)]
    jobs = []
    for out in outs:  # started together: their start-up (importing torch) dominates and overlaps
        out.mkdir()
        jobs.append((start(["-c", WRITER, str(out)], out.with_suffix(".log")), out.with_suffix(".log")))
    torn = 0
    # The lambdas are polled by kill_when before the next iteration, so they read this iteration's log and out.
    for kill, (out, (proc, log)) in enumerate(zip(outs, jobs)):
        if kill % 2:  # while a temporary file exists, i.e. mid-write
            kill_when(proc, lambda: "ready" in log.read_text() and bool(hidden_entries(out)), log,  # noqa: B023
                      poll_s=0.0)
        else:  # at a random moment
            kill_when(proc, lambda: "ready" in log.read_text(), log, then_s=rng.uniform(0.0, 0.5))  # noqa: B023
        torn += bool(hidden_entries(out))
        text = (out / "scores.csv").read_text()
        assert text in (contents[0][0], contents[1][0]), "scores.csv is neither the old nor the new complete file"
        with np.load(out / "features.npz", allow_pickle=False) as data:
            version = int(data["version"])
            assert np.array_equal(data["features"], contents[version][1])
    assert torn >= 1  # some kills did land inside a write (a temporary file was left behind)


def result_rows(count: int, value: float) -> list[dict]:
    """Valid results-table rows with distinct keys."""
    return [{"experiment": "reliability", "method": f"m{i:05d}", "dataset": "digits", "metric": "fid_local",
             "value": value + i, "seed": 0, "scale": "smoke", "model": "m", "steps": 10, "sampler": "ddpm",
             "guidance": 1.5, "n_samples": 48, "extractor": "local", "reference": "r.npz", "git_commit": "abc",
             "config_hash": "h", "note": "killed mid-merge"} for i in range(count)]


def write_results(path: Path, rows: list[dict]) -> None:
    """A results CSV with the schema's header."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_killed_results_merge_leaves_the_old_or_new_table(tmp_path):
    rng = random.Random(40)
    old_in, new_in, merged = tmp_path / "old.csv", tmp_path / "new.csv", tmp_path / "merged.csv"
    write_results(old_in, result_rows(3000, 0.0))
    write_results(new_in, result_rows(15000, 1000.0))
    merge(merged, [old_in])
    old, new = _read_text_rows(merged), _read_text_rows(new_in)
    args = ["--out", str(merged), str(new_in)]
    log = tmp_path / "merge.log"
    proc = start(["-m", "benchmarks.merge_results", *args], log)
    kill_when(proc, lambda: bool(hidden_entries(tmp_path)), log, poll_s=0.0, then_s=rng.uniform(0.0, 0.02))
    assert _read_text_rows(merged) in (old, new)  # complete, whether or not the rename had happened
    results_main(args)  # the job run again
    assert _read_text_rows(merged) == new
