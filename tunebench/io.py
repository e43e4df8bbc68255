"""Atomic file writing, safe loading and provenance helpers shared by every CLI."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import pickle
import platform
import shutil
import subprocess
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from tunebench.config import ConfigError

if TYPE_CHECKING:  # torch_load, state_dict_sha256 and to_uint8 import torch themselves
    import torch


_UMASK = os.umask(0)
os.umask(_UMASK)


class FileFormatError(ValueError):
    """A file is truncated, corrupt, or holds pickled objects that loading would have to run; the message names it."""


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename, on error it is removed.

    Readers therefore see either the old file or the complete new one, never a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results are shared, so honour the umask instead
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Delete the hidden `.NAME.*.tmp` files that atomic_path left in `folder` when its writer was killed.

    Only for a folder one job owns (the caller runs before it writes): a live writer's temporary would go too.
    """
    folder = Path(folder)
    leftovers = sorted(p for p in folder.glob(".*.tmp") if p.is_file()) if folder.is_dir() else []
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


@contextlib.contextmanager
def atomic_dir(path: str | Path):
    """Yield a temporary folder beside `path` that is renamed to `path` once complete (an old one is replaced)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_main_process() -> bool:
    """False in the non-zero ranks of a data-parallel job (torchrun and `accelerate launch` set RANK), which compute
    but leave the writing of shared outputs to rank 0."""
    return int(os.environ.get("RANK", "0")) == 0


def significant(rows: list[dict], digits: int = 4) -> list[dict]:
    """The rows with every float written as text to `digits` significant digits (the other values as they are), for
    CSV tables of measurements."""
    return [{k: (f"{v:.{digits}g}" if isinstance(v, float) else v) for k, v in row.items()} for row in rows]


def write_csv(path: str | Path, columns, rows) -> str:
    """Write dict rows as CSV with a header (newline line ends), atomically; return the text written."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(text.getvalue())
    return text.getvalue()


def write_json(path: str | Path, data) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path):
    """Read a JSON file, naming it in the error if it is missing or malformed."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        # A ConfigError (a ValueError) so that every CLI reports it as one line, not a traceback.
        raise ConfigError(f"{path} is not valid JSON ({err}); delete it or restore it from a good run") from None


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Write one uint8 H×W×C image as PNG, atomically."""
    array = image[..., 0] if image.shape[-1] == 1 else image
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def save_npz(path: str | Path, **arrays) -> None:
    """Write arrays to an `.npz` file, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def load_npz_images(path: str | Path) -> np.ndarray:
    """The uint8 N×H×W×C `images` array of an .npz (as `tunebench.sample` and `save_npz` write it)."""
    path = Path(path)
    fix = "pass the samples.npz that tunebench.sample writes, or save the images with tunebench.io.save_npz"
    try:
        arrays = load_npz(path)
    except FileFormatError as err:
        raise FileFormatError(f"{err}; {fix}") from None
    if "images" not in arrays:
        raise ConfigError(f"{path} has no 'images' array (found {sorted(arrays)}); {fix}")
    images = arrays["images"]
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ConfigError(f"{path}: 'images' must be uint8 N×H×W×C, got {images.dtype} of shape {images.shape}; "
                          f"{fix}")
    return images


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an .npz, read without unpickling: an object array (pickled Python objects) is refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # an .npy file renamed to .npz
            raise FileFormatError(f"{path} holds a single {type(data).__name__}, not named arrays: save them with "
                                  "numpy.savez (or tunebench.io.save_npz)")
        with data:
            return {key: data[key] for key in data.files}
    except FileFormatError:
        raise
    except ValueError as err:  # numpy refuses object arrays, and takes any file it cannot parse for a pickle
        raise FileFormatError(f"{path} holds pickled Python objects or is not an .npz file ({err}); pickles are "
                              "never loaded, since unpickling can run code: save plain numeric or string "
                              "arrays") from err
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise FileFormatError(f"{path} is truncated or not an .npz file ({type(err).__name__}: {err}); "
                              "delete it and make it again") from err


def torch_load(path: str | Path):
    """Load a torch file without unpickling code (`weights_only=True`): untrusted files cannot execute anything.

    A file whose pickle names anything but tensors and plain containers, or that is not a torch file at all, raises
    FileFormatError naming it.
    """
    import torch  # here: the CLIs that import this module for its file helpers answer --help without torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # the weights-only unpickler met a global it does not allow
        # torch's message is a paragraph that also suggests weights_only=False; keep only the offending global
        named = [line.strip() for line in str(err).splitlines() if "GLOBAL" in line or line.startswith("Unsupported")]
        reason = named[0] if named else type(err).__name__
        raise FileFormatError(f"{path} holds pickled objects other than tensors, refused because loading them could "
                              f"run code ({reason}); use a file saved as plain tensors, e.g. "
                              "torch.save(model.state_dict())") from err
    except OSError:  # a missing or unreadable path keeps its own error, which names it
        raise
    except Exception as err:  # torch raises RuntimeError, EOFError or KeyError on truncated and foreign files
        raise FileFormatError(f"{path} is truncated or not a torch file ({type(err).__name__}: {err}); "
                              "replace it with a complete copy") from err


def state_dict_sha256(state: dict) -> str:
    """SHA-256 of named tensors (names, dtypes, shapes, bytes, in name order): the same for the same weights whatever
    file they were saved to (torch's zip format stores the file's own name inside it, so a file hash is not)."""
    import torch  # here: see torch_load

    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        digest.update(f"{name}\t{tensor.dtype}\t{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (what `sha256sum` prints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_fingerprint(path: str | Path) -> str:
    """SHA-256 identifying a training input: a file's bytes, or a folder's weights and arrays.

    For a folder, every `*.safetensors` and `*.npz` below it counts (relative name and bytes), so a model folder or
    a retention set is identified by its contents, not by sidecars and logs. A name that is not a local path (a
    cached hub id) is its own fingerprint.
    """
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    if not path.is_dir():
        return f"name:{path}"
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".npz")):
        digest.update(f"{file.relative_to(path)}\t{file_sha256(file)}\n".encode())
    return digest.hexdigest()


def cpu_name() -> str:
    """The CPU's model name and core count, e.g. 'Intel(R) Xeon(R) ... (2 cores)' (torch-free)."""
    cpuinfo = Path("/proc/cpuinfo")
    model = platform.processor() or "cpu"
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    return f"{model} ({os.cpu_count()} cores)"


# Outputs the DAG itself rewrites: a run from a clean commit changes these tracked files as it goes, and they do not
# change the code that made a number, so they do not make the checkout '+dirty'.
OUTPUT_FOLDERS = ("results",)


def git_commit(root: str | Path | None = None) -> str:
    """The current git commit of the suite (with '+dirty' if a tracked file outside OUTPUT_FOLDERS is modified), or
    'unknown' outside a checkout; `root` defaults to this package's repository."""
    root = Path(__file__).resolve().parent.parent if root is None else Path(root)
    excluded = [f":(exclude){folder}" for folder in OUTPUT_FOLDERS]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *excluded],
                               cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Map model-range images in [-1, 1] (N×C×H×W) to uint8 N×H×W×C."""
    import torch  # here: see torch_load

    scaled = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).cpu().numpy()
