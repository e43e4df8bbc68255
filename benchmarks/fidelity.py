"""FID and KID through torch-fidelity against `.npz` reference statistics, with the local feature net or Inception.

`python -m benchmarks.fid` computes references and scores with these functions. Local features give `fid_local`/
`kid_local`, NOT comparable to the papers' Inception FID; `fid_inception`/`kid_inception` need a local Inception
weights file and are skipped (never downloaded) without one. See docs/fid.md.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch_fidelity
from PIL import Image
from torch.utils.data import DataLoader
from torch_fidelity.defaults import DEFAULTS
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric
from torch_fidelity.metric_kid import kernel_mmd
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
from torch_fidelity.utils import create_feature_extractor
from tqdm import tqdm

from benchmarks import feature_net as local_features
from benchmarks.fid_defaults import BATCH_SIZE, FID_JACKKNIFE_GROUPS, INCEPTION_FILE
from benchmarks.fid_interval import fid_jackknife_interval
from benchmarks.intervals import interval_note
from tunebench.config import ConfigError
from tunebench.datasets import ImageFolderDataset, load_dataset
from tunebench.io import (
    git_commit,
    load_npz,
    load_npz_images,
    read_json,
    save_npz,
    state_dict_sha256,
    torch_load,
)

INCEPTION_NAME = "inception-v3-compat"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
# torch-fidelity's defaults; the subset size is at most half the smaller set (kid_subset_size below)
KID_SUBSETS, KID_MAX_SUBSET = 100, 1000
KID_SEED = DEFAULTS["rng_seed"]
REF_FORMAT = "tunebench-fid-ref/1"


class FidError(ConfigError):
    """A bad FID input, option or reference file; the message names it and the fix."""


#################################################################################
#                          torch-fidelity Entry Point                           #
#################################################################################


def fidelity_metrics(**kwargs) -> dict:
    """`torch_fidelity.calculate_metrics` with the option names checked (it ignores unknown ones silently).

    Unless given: `cuda` (whether a GPU exists) is always passed, `save_cpu_ram=True` (no DataLoader workers on 2
    cores), `verbose=False`, `cache=False` (our references are content-checked `.npz` files instead) and
    `datasets_download=False` (these machines are offline; a registered dataset must already be on disk).
    """
    for key in kwargs:
        if key not in DEFAULTS:
            close = difflib.get_close_matches(key, DEFAULTS, n=1)
            tip = f"; did you mean {close[0]!r}?" if close else "; see torch_fidelity.defaults.DEFAULTS"
            raise FidError(f"unknown torch-fidelity option {key!r} (torch-fidelity would silently ignore it){tip}")
    options = {"cuda": torch.cuda.is_available(), "save_cpu_ram": True, "verbose": False, "cache": False,
               "datasets_download": False, **kwargs}
    return torch_fidelity.calculate_metrics(**options)


#################################################################################
#                                  Extractors                                   #
#################################################################################


@dataclass(frozen=True)
class Extractor:
    """A torch-fidelity feature extractor with local weights, and the id result rows and references record."""

    kind: str  # "local" or "inception": metric names are fid_{kind}, kid_{kind}
    fidelity_name: str
    weights_path: str
    extractor_id: str

    def options(self) -> dict:
        """The calculate_metrics options that select this extractor."""
        return {"feature_extractor": self.fidelity_name, "feature_extractor_weights_path": self.weights_path}


def find_inception_weights(path: str | Path | None = None) -> tuple[Path | None, str | None]:
    """(weights file, None), or (None, why) when none is given or cached; a given path that is missing is an error."""
    if path is not None:
        if not Path(path).is_file():
            raise FidError(f"--inception-weights {path} does not exist; pass torch-fidelity's {INCEPTION_FILE}")
        return Path(path), None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if cached.is_file():
        return cached, None
    # Named as the cache's variable, not this machine's path: the note goes into committed results.
    return None, (f"no Inception weights at $TORCH_HOME/hub/checkpoints/{INCEPTION_FILE} (torch's cache); copy it "
                  f"(from {INCEPTION_URL}, fetched on a machine with network) there or pass --inception-weights PATH")


def inception_extractor(path: Path) -> Extractor:
    """torch-fidelity's Inception with a local weights file, once it loads as a plain state dict.

    torch-fidelity itself opens the file with weights_only=False; loading it first with weights_only=True rejects a
    file that would run code when unpickled.
    """
    try:
        state = torch_load(path)
    except Exception as err:  # torch raises several unpickling error types
        raise FidError(f"{path} is not a plain tensor state dict ({type(err).__name__}); use torch-fidelity's "
                       f"{INCEPTION_FILE}") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise FidError(f"{path} is not a state dict of tensors; use torch-fidelity's {INCEPTION_FILE}")
    # The id names the weights, not the file: the same tensors saved under another name keep their id.
    return Extractor("inception", INCEPTION_NAME, str(path), f"inception-{state_dict_sha256(state)[:8]}")


def make_extractor(kind: str, features: str | Path | None = None,
                   inception_weights: str | Path | None = None) -> tuple[Extractor | None, str | None]:
    """Return (extractor, None), or (None, reason) for Inception without weights."""
    if kind == "local":
        if features is None:
            raise FidError("the local extractor needs --features DIR (a folder from `python -m benchmarks.features`)")
        meta = local_features.read_meta(features)  # checks the weights against their recorded hash
        folder = str(local_features.feature_dir(features))
        return Extractor("local", local_features.FIDELITY_NAME, folder, local_features.extractor_id(meta)), None
    path, reason = find_inception_weights(inception_weights)
    return (inception_extractor(path), None) if path else (None, reason)


@torch.no_grad()
def extract_features(images, extractor: Extractor, batch_size: int = BATCH_SIZE,
                     cuda: bool | None = None) -> torch.Tensor:
    """Features (float32 N×D) from the torch-fidelity extractor calculate_metrics builds.

    `images` is a uint8 N×3×H×W tensor, or an iterable of such batches (streamed, e.g. a paper-scale folder).
    """
    cuda = torch.cuda.is_available() if cuda is None else cuda
    layer = FEATURE_EXTRACTORS_REGISTRY[extractor.fidelity_name].get_default_feature_layer_for_metric("fid")
    model = create_feature_extractor(extractor.fidelity_name, [layer], cuda=cuda, verbose=False,
                                     feature_extractor_weights_path=extractor.weights_path)
    device = "cuda" if cuda else "cpu"
    batches = images
    if torch.is_tensor(images):
        batches = (images[i:i + batch_size] for i in range(0, len(images), batch_size))
    return torch.cat([model(batch.to(device))[0].cpu() for batch in batches])


#################################################################################
#                                 Image Inputs                                  #
#################################################################################


def as_rgb_uint8(images, name: str = "images") -> torch.Tensor:
    """Check uint8 N×C×H×W (C 1 or 3) and return N×3×H×W (grey repeated, as torch-fidelity does for files)."""
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise FidError(f"{name} must be uint8 N×C×H×W with C 1 or 3, got {images.dtype} {tuple(images.shape)}")
    return images.expand(-1, 3, -1, -1).contiguous() if images.shape[1] == 1 else images


def _read_png(file: Path) -> np.ndarray:
    """One sample PNG as uint8 H×W×3; a file that does not decode is an error naming it and the fix."""
    try:
        with Image.open(file) as image:
            return np.asarray(image.convert("RGB"))
    except Exception as err:  # PIL raises many types (OSError, SyntaxError, ValueError, ...) for bad files
        raise FidError(f"cannot read sample image {file} ({type(err).__name__}: {err}); delete it and run "
                       "tunebench.sample again: it redraws only the missing seeds") from None


def read_images(path: Path) -> tuple[torch.Tensor, dict]:
    """Images (uint8 N×3×H×W) of a PNG folder or an .npz, and the sampling protocol from protocol.json beside them.

    PNGs are read in name order ({seed:06d}.png from `tunebench.sample`); an .npz must hold uint8 N×H×W×C `images`.
    The protocol is {} when there is no protocol.json.
    """
    folder = path if path.is_dir() else path.parent
    protocol = read_json(folder / "protocol.json").get("protocol", {}) if (folder / "protocol.json").is_file() else {}
    if path.is_dir():
        files = sorted(path.glob("*.png"))
        if not files:
            raise FidError(f"{path} has no .png images")
        pixels = [_read_png(file) for file in files]
        odd = next((file for file, image in zip(files, pixels) if image.shape != pixels[0].shape), None)
        if odd is not None:
            raise FidError(f"sample image {odd} is {pixels[files.index(odd)].shape[:2]} pixels but {files[0]} is "
                           f"{pixels[0].shape[:2]}; one folder must hold the samples of one run")
        arrays = np.stack(pixels)
    elif path.suffix == ".npz":
        arrays = load_npz_images(path)
    else:
        raise FileNotFoundError(f"--images {path} is neither a folder of PNGs nor an .npz file")
    return as_rgb_uint8(torch.from_numpy(np.ascontiguousarray(arrays)).permute(0, 3, 1, 2), str(path)), protocol


def take_images(images: torch.Tensor, where: str, num: int | None, min_images: int | None) -> torch.Tensor:
    """The first `num` images (default: all); fewer than `min_images` (default `num`) is an error, as in EDM."""
    minimum = min_images if min_images is not None else num
    if minimum is not None and len(images) < minimum:
        raise FidError(f"found {len(images)} images in {where}, but expected at least {minimum}: an FID of fewer "
                       "images is biased upwards and not comparable; sample the missing ones")
    return images[:num] if num is not None else images


#################################################################################
#                             Reference Statistics                              #
#################################################################################


@dataclass
class Reference:
    """FID statistics (float64 `mu`, `sigma`), the features for KID, and what they were computed from."""

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray
    meta: dict


def images_sha256(images: torch.Tensor) -> str:
    """SHA-256 of the shape and bytes of a uint8 image tensor."""
    digest = hashlib.sha256(str(tuple(images.shape)).encode())
    digest.update(images.contiguous().numpy().data)
    return digest.hexdigest()


def statistics(features: torch.Tensor, meta: dict) -> Reference:
    """Mean and covariance of features in float64, as torch-fidelity's fid_features_to_statistics (np.cov, N-1)."""
    array = features.double().numpy()
    return Reference(array.mean(axis=0), np.cov(array, rowvar=False), features.float().numpy(), meta)


def reference_path(out_dir: str | Path, dataset: str, split: str, extractor_id: str, resolution: int) -> Path:
    """Where the reference of (dataset, split, extractor id, resolution) lives: the name encodes the whole key."""
    return Path(out_dir) / f"{dataset}-{split}-{extractor_id}-{resolution}px.npz"


def save_reference(path: str | Path, ref: Reference) -> None:
    """Write the arrays and each metadata entry (as a 0-d array) to an .npz, atomically."""
    save_npz(path, mu=ref.mu, sigma=ref.sigma, features=ref.features, **{k: np.array(v) for k, v in ref.meta.items()})


def load_reference(path: str | Path, expected: dict | None = None) -> Reference:
    """Read a reference .npz; any metadata differing from `expected` is an error naming it (never a silent reuse)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference statistics {path} do not exist; make them with "
                                "`python -m benchmarks.fid ref`")
    arrays = load_npz(path)
    if arrays.get("format", np.array("")).item() != REF_FORMAT:
        raise FidError(f"{path} is not a {REF_FORMAT} reference file; delete it and run `python -m benchmarks.fid ref`")
    meta = {key: value.item() for key, value in arrays.items() if value.ndim == 0}
    wrong = [f"{key}: file has {meta.get(key)!r}, requested {value!r}" for key, value in (expected or {}).items()
             if meta.get(key) != value]
    if wrong:
        raise FidError(f"reference {path} does not match the request ({'; '.join(wrong)}); delete the file to "
                       "recompute it, or pass the right one")
    return Reference(arrays["mu"], arrays["sigma"], arrays["features"], meta)


def folder_fingerprint(data: ImageFolderDataset) -> str:
    """SHA-256 of a paper-scale folder's readable files (relative path, label, size, mtime): any change is stale."""
    digest = hashlib.sha256()
    for path, label in data.samples:
        stat = Path(path).stat()
        digest.update(f"{Path(path).relative_to(data.root)}\t{label}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def folder_batches(data: ImageFolderDataset, batch_size: int):
    """uint8 N×3×H×W batches of a folder dataset, decoded by worker processes, in file order."""
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=min(8, os.cpu_count() or 1))
    for images, _ in tqdm(loader, desc=f"features of {data.root}", unit="batch"):
        yield as_rgb_uint8(images)


def dataset_reference(dataset: str, split: str, extractor: Extractor, resolution: int, out_dir: str | Path | None,
                      batch_size: int = BATCH_SIZE, root: str | Path | None = None) -> tuple[Reference, Path | None]:
    """Load the cached reference of a dataset split, or compute and save it once; a stale file is an error.

    Mini sets are keyed by the SHA-256 of their pixels; a paper-scale folder (`root`) by its file listing
    (`folder_fingerprint`), so checking the cache does not decode every image. Folder images are streamed.
    With `out_dir` None the reference is computed in memory and not saved (the path returned is None).
    """
    data = load_dataset(dataset, split, resolution, channels=3, root=root)
    expected = {"format": REF_FORMAT, "dataset": dataset, "split": split, "extractor": extractor.extractor_id,
                "resolution": resolution, "n_images": len(data)}
    if isinstance(data, ImageFolderDataset):
        expected["files_sha256"] = folder_fingerprint(data)
        images = folder_batches(data, batch_size)
    else:
        images = as_rgb_uint8(data.images)
        expected["images_sha256"] = images_sha256(images)
    path = None if out_dir is None else reference_path(out_dir, dataset, split, extractor.extractor_id, resolution)
    if path is not None and path.exists():
        return load_reference(path, expected), path
    meta = {**expected, "extractor_kind": extractor.kind, "weights_path": extractor.weights_path,
            "torch_fidelity": torch_fidelity.__version__, "git_commit": git_commit()}
    ref = statistics(extract_features(images, extractor, batch_size), meta)
    if path is not None:
        save_reference(path, ref)
    return ref, path


#################################################################################
#                                FID and KID                                    #
#################################################################################


def fid_from_statistics(ref_1: Reference, ref_2: Reference) -> float:
    """FID between two sets of statistics (torch-fidelity 0.4.0's formula)."""
    return fid_statistics_to_metric({"mu": ref_1.mu, "sigma": ref_1.sigma}, {"mu": ref_2.mu, "sigma": ref_2.sigma},
                                    False)[KEY_METRIC_FID]


def kid_subset_size(n_1: int, n_2: int) -> int:
    """Images per side in each KID subset: half the smaller set, at most 1000.

    torch-fidelity (and Bińkowski et al.'s code it adapts) use min(1000, n1, n2); with n ≤ 1000 on one side every
    subset is then that whole set, the subsets all give one number and their spread is 0. Half-size subsets drawn
    without replacement vary as much as the full-set estimate does (half-sampling: for a mean, the finite-population
    factor 1 − m/n = 1/2 exactly offsets the halved size), so their spread is an interval for it (docs/fid.md).
    """
    size = min(KID_MAX_SUBSET, min(n_1, n_2) // 2)
    if size < 2:
        raise FidError(f"KID needs at least 4 images on each side (subsets of half the smaller set, at least 2 each), "
                       f"got {n_1} and {n_2}")
    return size


def kid_from_features(features_1, features_2, subsets: int = KID_SUBSETS, seed: int = KID_SEED) -> dict:
    """Unbiased KID (cubic polynomial kernel) over `subsets` random subsets of `kid_subset_size` images per side:
    their mean, population std and 2.5–97.5th percentiles (the 95% interval).

    The draws are torch-fidelity's (`kid_features_to_metric`: a RandomState(seed), each subset drawn without
    replacement from side 1 then side 2), so mean and std equal its values at this subset size. Two sets from one
    distribution give a mean near 0 that can be negative; that is the estimator, not a bug.
    """
    features_1, features_2 = (torch.as_tensor(f).cpu().numpy() for f in (features_1, features_2))
    size = kid_subset_size(len(features_1), len(features_2))
    rng = np.random.RandomState(seed)
    kids = np.array([kernel_mmd(features_1[rng.choice(len(features_1), size, replace=False)],
                                features_2[rng.choice(len(features_2), size, replace=False)])
                     for _ in range(subsets)], dtype=np.float64)
    low, high = np.quantile(kids, [0.025, 0.975])
    return {"kid_mean": float(kids.mean()), "kid_std": float(kids.std()), "kid_low": float(low),
            "kid_high": float(high), "kid_subset_size": size, "kid_subsets": subsets}


def kid_notes(subsets: int, size: int) -> tuple[str, str]:
    """How the KID subsets were drawn, and how the interval of a KID row was made (parts of the rows' `note`)."""
    return (f"KID: {subsets} subsets of {size} images per side (half the smaller set, at most {KID_MAX_SUBSET}), "
            "cubic polynomial kernel", interval_note(f"2.5–97.5th percentiles of the {subsets} subset KIDs"))


def compare(images: torch.Tensor, ref: Reference, extractor: Extractor, batch_size: int = BATCH_SIZE,
            jackknife_groups: int = 0) -> dict:
    """FID and KID of uint8 N×3×H×W images against a reference computed with the same extractor and resolution;
    with `jackknife_groups` > 0 also FID's jackknife 95% interval over the images (`fid_low`, `fid_high`)."""
    if len(images) < 4:
        raise FidError(f"FID and KID need at least 4 images (FID a covariance, KID subsets of half the set), got "
                       f"{len(images)}")
    if ref.meta["extractor"] != extractor.extractor_id:
        raise FidError(f"the reference was computed with {ref.meta['extractor']}, but the images would use "
                       f"{extractor.extractor_id}; pass the matching weights or recompute the reference")
    if images.shape[-1] != ref.meta["resolution"] or images.shape[-2] != ref.meta["resolution"]:
        raise FidError(f"the images are {images.shape[-2]}×{images.shape[-1]}, but the reference was computed at "
                       f"{ref.meta['resolution']} px; use a reference of the images' resolution")
    generated = statistics(extract_features(images, extractor, batch_size), {})
    scores = {"fid": fid_from_statistics(generated, ref), **kid_from_features(generated.features, ref.features),
              "n_images": len(images)}
    if jackknife_groups > 0:
        scores["fid_low"], scores["fid_high"], scores["jackknife_groups"] = fid_jackknife_interval(
            generated.features, ref.mu, ref.sigma, jackknife_groups)
    return scores


#################################################################################
#                              Result Rows                                      #
#################################################################################


@dataclass
class Scores:
    """One extractor's FID/KID of an image set, or why they were skipped (fid is None)."""

    kind: str
    extractor: str
    reference: str  # file name of the reference statistics
    dataset: str  # what the reference was computed from ("" when there is no reference)
    fid: float | None = None
    kid_mean: float | None = None
    kid_std: float | None = None
    kid_low: float | None = None
    kid_high: float | None = None
    kid_subset_size: int | None = None
    kid_subsets: int | None = None
    n_images: int | None = None
    fid_low: float | None = None  # FID's 95% jackknife interval over the images (none without groups)
    fid_high: float | None = None
    jackknife_groups: int = 0
    skipped: str = ""


def score_rows(scores: Scores, base: dict) -> list[dict]:
    """Rows fid_{kind}, kid_{kind} (each with its interval when there is one) and kid_{kind}_std, the std over KID
    subsets, on top of `base`; each note says how its row's interval was made."""
    values = {f"fid_{scores.kind}": (scores.fid, scores.fid_low, scores.fid_high),
              f"kid_{scores.kind}": (scores.kid_mean, scores.kid_low, scores.kid_high),
              f"kid_{scores.kind}_std": (scores.kid_std, None, None)}
    rows = [{**base, "metric": metric, "value": value, "ci_low": low, "ci_high": high, "extractor": scores.extractor,
             "reference": scores.reference, "note": scores.skipped} for metric, (value, low, high) in values.items()]
    if not scores.skipped:
        subsets, kid_interval = kid_notes(scores.kid_subsets, scores.kid_subset_size)
        note = f"{scores.extractor} features, reference {scores.reference}; {subsets}"
        if scores.kind == "local":
            note += "; local-feature metric, not comparable to Inception FID/KID"
        fid_interval = interval_note(f"FID ± 1.96 SE, SE from the grouped jackknife over the {scores.n_images} "
                                     f"generated images ({scores.jackknife_groups} groups, reference fixed)")
        intervals = {f"fid_{scores.kind}": fid_interval, f"kid_{scores.kind}": kid_interval}
        for row in rows:
            row["note"] = f"{note}; {intervals[row['metric']]}" if row["ci_low"] is not None else note
    return rows


def score_images(images: torch.Tensor, ref_paths: list[Path], features: str | Path | None = None,
                 inception_weights: str | Path | None = None, require_inception: bool = False,
                 batch_size: int = BATCH_SIZE, jackknife_groups: int | None = None) -> list[Scores]:
    """Scores of the images against each reference (one per extractor kind); Inception without weights is skipped.

    A local reference uses `features` or else the feature-net folder recorded in it; with `require_inception`,
    skipped Inception scores are added when no Inception reference is given and no weights exist.
    `jackknife_groups`: groups of FID's interval for every kind (0 = none); None = each kind's default
    (fid_defaults.FID_JACKKNIFE_GROUPS).
    """
    refs = {}
    for path in map(Path, ref_paths):
        ref = load_reference(path)
        if ref.meta["extractor_kind"] in refs:
            raise FidError(f"two --ref files use the {ref.meta['extractor_kind']} extractor; pass one per extractor")
        refs[ref.meta["extractor_kind"]] = (path, ref)
    scores = []
    if require_inception and "inception" not in refs:
        weights, reason = find_inception_weights(inception_weights)
        if weights is not None:
            raise FidError(f"Inception weights exist ({weights}) but no Inception reference was given; make one with "
                           f"`python -m benchmarks.fid ref --extractor inception --inception-weights {weights} ...`")
        scores.append(Scores("inception", INCEPTION_NAME, "", "", skipped=f"Inception metrics skipped: {reason}"))
    for kind, (path, ref) in refs.items():
        extractor, reason = make_extractor(kind, features or ref.meta["weights_path"], inception_weights)
        if extractor is None:
            scores.append(Scores(kind, INCEPTION_NAME, path.name, ref.meta["dataset"],
                                 skipped=f"Inception metrics skipped: {reason}"))
        else:
            groups = FID_JACKKNIFE_GROUPS[kind] if jackknife_groups is None else jackknife_groups
            scores.append(Scores(kind, extractor.extractor_id, path.name, ref.meta["dataset"],
                                 **compare(images, ref, extractor, batch_size, groups)))
    return scores
