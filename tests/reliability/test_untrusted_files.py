"""Untrusted files: pickles that run code, unsafe YAML tags and damaged weights are refused with an error naming the
file, and nothing runs; no project source can unpickle or evaluate text.

Every payload, if it ran, would write a marker file; the `sanity` tests show that an unsafe loader does run it (a
fixture sanity check of torch, PyYAML and numpy), the others that the project's loader refuses it and no marker appears.
"""

import ast
import dataclasses
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from benchmarks.fidelity import FidError, inception_extractor, load_reference
from benchmarks.lpips_metric import load_lpips
from deft.operators.bkse import load_kernel_wizard
from tunebench import pretrain
from tunebench.checkpoint import CheckpointError, list_checkpoints
from tunebench.cli import run_cli
from tunebench.config import ConfigError, load_yaml, parse_set, resolve
from tunebench.datasets import load_dataset
from tunebench.io import FileFormatError, load_npz_images, torch_load
from tunebench.models import build_dit, null_class
from tunebench.pretraining import make_loss
from tunebench.training import ImageBatches, train

pytestmark = pytest.mark.usefixtures("one_thread")

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tunebench", "difftune", "deft", "benchmarks")


class Payload:
    """An object whose unpickling runs a shell command that writes `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"echo pwned > '{self.marker}'",)


@pytest.fixture
def marker(tmp_path):
    """Where a payload that ran would leave its mark; checked not to exist beforehand."""
    path = tmp_path / "PAYLOAD_RAN"
    assert not path.exists()
    return path


def assert_payload_is_live(save, load_unsafely, tmp_path):
    """`save(path, payload)` then an unsafe `load_unsafely(path)` runs the payload (so a refusal means something)."""
    control = tmp_path / "control_marker"
    path = tmp_path / "control.bin"
    save(path, Payload(control))
    load_unsafely(path)
    assert control.read_text().strip() == "pwned"


#################################################################################
#                                  Checkpoints                                  #
#################################################################################


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(run config, a real 2-step training checkpoint folder) from a smoke run on digits."""
    smoke = resolve("smoke", {"data": {"dataset": "digits"}})
    run = dataclasses.replace(smoke, train=dataclasses.replace(smoke.train, steps=2, batch_size=8, checkpoint_every=2))
    out = tmp_path_factory.mktemp("trained")
    fit(run, out)
    return run, list_checkpoints(out)[-1]


def fit(run, out):
    """Train (resuming from `out` if it holds a checkpoint)."""
    torch.manual_seed(0)
    model = build_dit(run.model)
    dataset = load_dataset("digits", "train", resolution=16, channels=3)
    images = ImageBatches(dataset, run.train.batch_size, run.train.seed, hflip=True)
    return train(run, model, make_loss(run, null_class(model)), images.batch, out, progress=False)


def save_payload_optimizer(path: Path, payload: Payload) -> None:
    """An optimizer.pt that looks like a state dict but carries the payload (plain torch.save pickles it)."""
    torch.save({"state": {}, "param_groups": [], "extra": payload}, path)


def payload(path: Path, marker: Path) -> None:
    """Replace the file by a payload pickle writing `marker`."""
    save_payload_optimizer(path, Payload(marker))


def truncate(path: Path, marker: Path) -> None:
    """Keep the first half of the file, as an interrupted copy does."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage(path: Path, marker: Path) -> None:
    """Replace the file by bytes that are no known format."""
    path.write_bytes(b"not a tensor file " * 50)


def remove(path: Path, marker: Path) -> None:
    """Delete the file from the checkpoint."""
    path.unlink()


DAMAGE = [("optimizer.pt", payload, "holds pickled objects other than tensors, refused because loading them could "
                                    "run code (Trying to load unsupported GLOBAL posix.system"),
          ("optimizer.pt", truncate, "is truncated or not a torch file"),
          ("model.safetensors", truncate, "incomplete metadata"),
          ("ema.safetensors", garbage, "Error while deserializing header"),
          ("rng.safetensors", remove, "No such file or directory")]


@pytest.mark.sanity
def test_the_optimizer_payload_is_live(tmp_path):
    """Fixture sanity check: torch.load(weights_only=False) runs the optimizer.pt payload (so a refusal means
    something)."""
    assert_payload_is_live(save_payload_optimizer, lambda path: torch.load(path, weights_only=False), tmp_path)


@pytest.mark.parametrize("name,damage,reason", DAMAGE, ids=[f"{n}-{d.__name__}" for n, d, _ in DAMAGE])
def test_resuming_from_a_damaged_or_unsafe_checkpoint_is_refused(name, damage, reason, checkpoint, tmp_path, marker):
    run, good = checkpoint
    folder = tmp_path / "checkpoints" / good.name
    shutil.copytree(good, folder)
    damage(folder / name, marker)
    more = dataclasses.replace(run, train=dataclasses.replace(run.train, steps=4))
    with pytest.raises(CheckpointError) as info:
        fit(more, tmp_path)
    message = str(info.value)
    assert message.startswith(f"checkpoint {folder} cannot be resumed: ")
    assert str(folder / name) in message and reason in message
    assert f"Resume from an older checkpoint (--resume {tmp_path / 'checkpoints'}/checkpoint-NNNNNNN)" in message
    assert not marker.exists()
    assert list_checkpoints(tmp_path) == [folder]  # refused, not deleted or overwritten


def test_cli_resume_with_a_payload_checkpoint_exits_2_and_runs_nothing(tmp_path, marker, capsys, restore_logging):
    argv = ["--scale", "smoke", "--out", str(tmp_path / "run"), "--set", "data.dataset=digits", "--set",
            "train.checkpoint_every=2", "--no-progress"]
    run_cli(pretrain.main, [*argv, "--set", "train.steps=2"])
    optimizer = tmp_path / "run" / "checkpoints" / "checkpoint-0000002" / "optimizer.pt"
    save_payload_optimizer(optimizer, Payload(marker))
    with pytest.raises(SystemExit) as info:
        run_cli(pretrain.main, [*argv, "--set", "train.steps=4"])
    assert info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(optimizer) in errors[0] and "could run code" in errors[0]
    assert not marker.exists()


#################################################################################
#                      Other weights files loaded with torch                    #
#################################################################################

LOADERS = [("inception", inception_extractor, FidError), ("bkse", load_kernel_wizard, ConfigError),
           ("lpips", load_lpips, FileFormatError), ("torch_load", torch_load, FileFormatError)]


@pytest.mark.parametrize("name,loader,error", LOADERS, ids=[n for n, _, _ in LOADERS])
def test_weights_files_with_a_payload_are_refused(name, loader, error, tmp_path, marker):
    path = tmp_path / f"{name}.pth"
    torch.save({"weight": torch.zeros(2), "extra": Payload(marker)}, path)
    with pytest.raises(error, match=re.escape(str(path))):
        loader(path)
    assert not marker.exists()


#################################################################################
#                                  Config text                                  #
#################################################################################

YAML_PAYLOADS = ["train:\n  lr: !!python/object/apply:os.system [\"echo pwned > '{marker}'\"]\n",
                 "train: !!python/object/new:os.system [\"echo pwned > '{marker}'\"]\n",
                 "!!python/object/apply:subprocess.call [[sh, -c, \"echo pwned > '{marker}'\"]]\n"]


@pytest.mark.sanity
def test_the_yaml_payloads_are_live(tmp_path):
    """Fixture sanity check: yaml.unsafe_load runs each YAML payload, so the config refusals mean something."""
    for i, text in enumerate(YAML_PAYLOADS):
        control = tmp_path / f"control{i}"
        yaml.unsafe_load(text.format(marker=control))
        assert control.read_text().strip() == "pwned"


@pytest.mark.parametrize("text", YAML_PAYLOADS, ids=["apply", "new", "subprocess"])
def test_config_with_python_tags_is_refused_by_the_cli(text, tmp_path, marker, capsys):
    config = tmp_path / "evil.yaml"
    config.write_text(text.format(marker=marker))
    with pytest.raises(SystemExit) as info:
        run_cli(pretrain.main, ["--scale", "smoke", "--config", str(config), "--out", str(tmp_path), "--dry-run"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: config file {config} is not plain YAML: line ")
    assert "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object" in err
    assert "never run" in err and "Traceback" not in err
    assert not marker.exists()


def test_malformed_yaml_names_the_file_and_line(tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("train:\n  steps: 10\n  lr: [0.1, 0.2\nsample:\n  steps: 5\n")
    with pytest.raises(ConfigError, match=re.escape(f"config file {config} is not plain YAML: line 4, column 7: "
                                                    "expected ',' or ']'")):
        load_yaml(config)


def test_set_values_with_python_tags_are_refused(marker):
    item = f"train.lr=!!python/object/apply:os.system [\"echo pwned > '{marker}'\"]"
    with pytest.raises(ConfigError, match=r"--set 'train\.lr=!!python.*': the value is not a plain YAML value"):
        parse_set([item])
    assert not marker.exists()


#################################################################################
#                                  .npz arrays                                  #
#################################################################################


def save_object_npz(path: Path, payload: Payload) -> None:
    """An .npz whose `images` is an object array: numpy pickles its items."""
    with open(path, "wb") as handle:  # a handle: np.savez would add .npz to other names
        np.savez(handle, images=np.array([payload, 1], dtype=object), format=np.array("tunebench-fid-ref/1"))


@pytest.mark.sanity
def test_the_npz_payload_is_live(tmp_path):
    """Fixture sanity check: np.load(allow_pickle=True) runs the object-array payload, so refusals mean something."""
    def load_unsafely(path):
        with np.load(path, allow_pickle=True) as data:
            data["images"]

    assert_payload_is_live(save_object_npz, load_unsafely, tmp_path)


@pytest.mark.parametrize("loader", [load_npz_images, load_reference], ids=["samples", "fid_reference"])
def test_npz_with_object_arrays_is_refused(loader, tmp_path, marker):
    path = tmp_path / "evil.npz"
    save_object_npz(path, Payload(marker))
    refusal = f"{path} holds pickled Python objects or is not an .npz file (Object arrays cannot be loaded"
    with pytest.raises(FileFormatError, match=re.escape(refusal)):
        loader(path)
    assert not marker.exists()


#################################################################################
#                          Source scan: no unsafe loading                       #
#################################################################################

CODE_BUILTINS = {"eval", "exec", "compile", "builtins.eval", "builtins.exec", "builtins.compile"}
UNPICKLERS = {f"{module}.{fn}" for module in ("pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve")
              for fn in ("load", "loads", "Unpickler", "open")} | {"pd.read_pickle", "pandas.read_pickle",
                                                                     "torch.hub.load"}
UNSAFE_YAML = {f"yaml.{fn}" for fn in ("unsafe_load", "unsafe_load_all", "full_load", "full_load_all")}
SAFE_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def dotted(node) -> str | None:
    """'torch.load' for the expression torch.load; None for anything but names and attributes of names."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def keyword(call: ast.Call, name: str):
    """The value node of keyword `name`, or None."""
    return next((k.value for k in call.keywords if k.arg == name), None)


def unsafe_calls(source: str, where: str) -> list[str]:
    """'where:line: why' for each call that could unpickle, evaluate or construct objects from file or config text."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:  # `from torch import load` would hide the call from the checks below
                if f"{node.module}.{alias.name}" in CODE_BUILTINS | UNPICKLERS | UNSAFE_YAML | {"torch.load",
                                                                                               "yaml.load"}:
                    found.append(f"{where}:{node.lineno}: imports {node.module}.{alias.name}")
        if not isinstance(node, ast.Call):
            continue
        name = dotted(node.func)
        line = f"{where}:{node.lineno}"
        if name in CODE_BUILTINS:  # the builtins only: model.eval() is an attribute of a module, never flagged
            found.append(f"{line}: calls {name}()")
        elif name in UNPICKLERS or name in UNSAFE_YAML:
            found.append(f"{line}: calls {name}()")
        elif name == "torch.load":
            value = keyword(node, "weights_only")
            if not (isinstance(value, ast.Constant) and value.value is True):
                found.append(f"{line}: torch.load without weights_only=True")
        elif name in ("yaml.load", "yaml.load_all"):
            loader = keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if (dotted(loader) or "").rsplit(".", 1)[-1] not in SAFE_LOADERS:
                found.append(f"{line}: {name} without a safe Loader")
        elif name in ("np.load", "numpy.load"):
            value = keyword(node, "allow_pickle")
            if value is not None and not (isinstance(value, ast.Constant) and value.value is False):
                found.append(f"{line}: np.load with allow_pickle={ast.unparse(value)}")
    return found


def test_the_scan_finds_each_unsafe_call_and_nothing_else():
    unsafe = """
import pickle, yaml, torch, numpy as np
from torch import load
eval(text)
exec(code)
builtins.eval("1")
pickle.loads(data)
pickle.load(handle)
yaml.load(handle)
yaml.load(handle, Loader=yaml.Loader)
yaml.unsafe_load(handle)
yaml.full_load(handle)
torch.load(path)
torch.load(path, weights_only=False)
np.load(path, allow_pickle=True)
torch.hub.load("repo", "model")
"""
    safe = """
model.eval()
net.eval().requires_grad_(False)
re.compile("x")
torch.compile(model)
# eval(text) and torch.load(path) in a comment
doc = "pickle.loads(data) and exec(code) in a string"
yaml.safe_load(handle)
yaml.load(handle, Loader=yaml.SafeLoader)
yaml.load(handle, yaml.CSafeLoader)
torch.load(path, map_location="cpu", weights_only=True)
np.load(path)
np.load(path, allow_pickle=False)
json.loads(text)
"""
    found = unsafe_calls(unsafe, "x.py")
    assert [f.split(":")[1] for f in found] == [str(n) for n in range(3, 17)]  # one per line, lines 3 to 16
    assert unsafe_calls(safe, "y.py") == []


def test_no_project_source_unpickles_or_evaluates_text():
    files = sorted(p for package in PACKAGES for p in (REPO_ROOT / package).rglob("*.py"))
    assert len(files) > 60  # the scan covers the packages, not an empty glob
    found = [f for path in files for f in unsafe_calls(path.read_text(), str(path.relative_to(REPO_ROOT)))]
    assert found == []
