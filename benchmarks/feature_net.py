"""A small CNN trained on all mini classes, registered as torch-fidelity's "tunebench-local" feature extractor.

`python -m benchmarks.features` trains and writes it. The network sees the union of the source classes and each
downstream dataset's classes, every dataset with its own label range, so its penultimate features separate all the
mini domains. Metrics computed from these features are `fid_local` / `kid_local`, recorded with the extractor id
`local-<first 8 hex of the weights' SHA-256>`: they are not Inception FID/KID and are not comparable to the papers'
numbers (docs/fid.md).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn
from torch_fidelity import FeatureExtractorBase, register_feature_extractor
from torch_fidelity.helpers import vassert
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from tunebench.config import ConfigError
from tunebench.dataset_registry import DATASETS, DOWNSTREAM_DATASETS, SOURCE_DATASET
from tunebench.datasets import load_dataset
from tunebench.io import atomic_dir, file_sha256, git_commit, read_json, write_csv, write_json
from tunebench.pinned_assets import verify_if_pinned
from tunebench.speed import compute_record
from tunebench.training import step_generator

log = logging.getLogger("benchmarks.features")  # the CLI's name, so that log lines read as before

FIDELITY_NAME = "tunebench-local"  # the torch-fidelity registry name (feature_extractor=...)
FEATURE_LAYER = "penultimate"  # the one feature layer it provides, used for FID and KID
WEIGHTS_FILE, META_FILE, CURVE_FILE = "weights.safetensors", "meta.json", "curve.csv"
CURVE_COLUMNS = ("epoch", "mean_loss", "test_accuracy")
META_FORMAT = "tunebench-local-features/1"
ALL_DATASETS = (SOURCE_DATASET, *DOWNSTREAM_DATASETS)


class FeatureNetError(ConfigError):
    """A feature-net folder is missing, incomplete or does not match its meta.json; the message says what to do."""


#################################################################################
#                                  Network                                      #
#################################################################################


@dataclass(frozen=True)
class NetConfig:
    """Architecture: conv blocks of `widths`, global average pool, a `feature_dim` penultimate layer, a linear head."""

    widths: tuple[int, ...] = (32, 64, 128)
    feature_dim: int = 128
    num_classes: int = 53  # 13 source + 40 downstream classes
    resolution: int = 32  # inputs of any size are resized to this side first


class FeatureNet(nn.Module):
    """Classifier whose penultimate layer gives the features; it takes uint8 B×3×H×W images directly."""

    def __init__(self, cfg: NetConfig):
        """Build conv3×3-BN-ReLU-maxpool blocks, the penultimate linear layer and the classification head."""
        super().__init__()
        self.cfg = cfg
        layers, channels = [], 3
        for width in cfg.widths:
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                       nn.MaxPool2d(2)]
            channels = width
        self.blocks = nn.Sequential(*layers)
        self.penultimate = nn.Linear(channels, cfg.feature_dim)
        # Features standardised per dimension (running statistics of the training data): KID's cubic kernel
        # (x·y/d + 1)³ then works in the same moderate range as on Inception features instead of exploding.
        self.standardise = nn.BatchNorm1d(cfg.feature_dim, affine=False)
        self.head = nn.Linear(cfg.feature_dim, cfg.num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Standardised penultimate features (before the ReLU: dense values, full-rank covariance) of uint8 images."""
        # Always channels-last: oneDNN's convolutions run ~1.8× faster on CPU, and the features then do not depend on
        # the memory layout of the input (NCHW tensors vs PNGs read as NHWC).
        x = images.float().contiguous(memory_format=torch.channels_last)
        if x.shape[-2:] != (self.cfg.resolution, self.cfg.resolution):
            x = F.interpolate(x, size=(self.cfg.resolution,) * 2, mode="bilinear", antialias=True, align_corners=False)
        x = self.blocks(x / 127.5 - 1.0)
        return self.standardise(self.penultimate(x.mean(dim=(2, 3))))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits of uint8 images."""
        return self.head(F.relu(self.features(images)))


#################################################################################
#                         Training Data: the Union of Classes                   #
#################################################################################


def label_ranges(names: tuple[str, ...]) -> list[dict]:
    """Give each dataset a consecutive label range, in the order of `names`."""
    ranges, first = [], 0
    for name in names:
        spec = DATASETS[name]
        ranges.append({"dataset": name, "first_label": first, "num_classes": spec.num_classes,
                       "class_names": list(spec.class_names)})
        first += spec.num_classes
    return ranges


def union_split(ranges: list[dict], split: str, resolution: int, max_per_class: int | None,
                seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All datasets' images of one split (RGB) with labels shifted into their ranges; at most `max_per_class` each.

    Each class's subsample comes from its own generator, seeded by (seed, global label).
    """
    images, labels = [], []
    for entry in ranges:
        data = load_dataset(entry["dataset"], split, resolution, channels=3)
        for label in range(entry["num_classes"]):
            members = np.flatnonzero(data.labels.numpy() == label)
            if max_per_class is not None and len(members) > max_per_class:
                rng = np.random.default_rng([seed, entry["first_label"] + label])
                members = np.sort(rng.choice(members, max_per_class, replace=False))
            images.append(data.images[torch.from_numpy(members)])
            labels.append(torch.full((len(members),), entry["first_label"] + label, dtype=torch.int64))
    return torch.cat(images), torch.cat(labels)


#################################################################################
#                              Training and Accuracy                            #
#################################################################################


@torch.no_grad()
def predict(net: FeatureNet, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Predicted class of each image (the network is put in eval mode)."""
    net.eval()
    return torch.cat([net(images[i:i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)])


def accuracy(correct: torch.Tensor) -> float:
    """The share of True in a boolean tensor, rounded to 4 decimals as meta.json records accuracies."""
    return round(float(correct.float().mean()), 4)


def train_feature_net(names: tuple[str, ...] = ALL_DATASETS, resolution: int = 32, epochs: int = 3,
                      max_per_class: int | None = 1000, seed: int = 0, widths: tuple[int, ...] = (32, 64, 128),
                      feature_dim: int = 128, batch_size: int = 128, lr: float = 2e-3) -> tuple[FeatureNet, dict]:
    """Train the classifier on the train splits of `names` and measure it on their full test splits after every
    epoch (meta's `curve`; the last epoch's accuracy is `test_accuracy`).

    Deterministic for a given seed and thread count: initialisation from `torch.manual_seed(seed)`, the order of
    epoch e from `step_generator(seed, e)`. AdamW with a cosine decay to zero over all steps, no augmentation. The
    test evaluations draw no random numbers and leave BatchNorm's running statistics alone (eval mode), so the
    weights are those of training without them.
    Returns the network (eval mode) and its meta.json content, without the weights hash (added on saving).
    """
    started = time.perf_counter()  # train_seconds covers building the training data and the epochs, not the tests
    ranges = label_ranges(names)
    images, labels = union_split(ranges, "train", resolution, max_per_class, seed)
    cfg = NetConfig(tuple(widths), feature_dim, sum(r["num_classes"] for r in ranges), resolution)
    torch.manual_seed(seed)
    net = FeatureNet(cfg)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = -(-len(labels) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    test_started = time.perf_counter()
    test_images, test_labels = union_split(ranges, "test", resolution, None, seed)
    test_seconds = time.perf_counter() - test_started
    curve = []
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(labels), generator=step_generator(seed, epoch))
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            if len(batch) < 2:  # BatchNorm cannot normalise a single image
                continue
            loss = F.cross_entropy(net(images[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
        test_started = time.perf_counter()
        correct = predict(net, test_images) == test_labels
        test_seconds += time.perf_counter() - test_started
        curve.append({"epoch": epoch + 1, "mean_loss": round(total / len(labels), 6),
                      "test_accuracy": accuracy(correct)})
        log.info("epoch %d/%d: mean loss %.4f, test accuracy %.4f", epoch + 1, epochs, total / len(labels),
                 curve[-1]["test_accuracy"])
    train_seconds = time.perf_counter() - started - test_seconds
    per_dataset = {}
    for entry in ranges:
        inside = (test_labels >= entry["first_label"]) & (test_labels < entry["first_label"] + entry["num_classes"])
        per_dataset[entry["dataset"]] = accuracy(correct[inside])
    meta = {"format": META_FORMAT, "architecture": asdict(cfg), "datasets": ranges, "resolution": resolution,
            "channels": 3, "epochs": epochs, "seed": seed, "max_per_class": max_per_class, "batch_size": batch_size,
            "lr": lr, "train_images": len(labels), "train_seconds": round(train_seconds, 1),
            "test_seconds": round(test_seconds, 1), "test_images": len(test_labels),
            "test_accuracy": curve[-1]["test_accuracy"], "test_accuracy_per_dataset": per_dataset, "curve": curve,
            **compute_record(), "git_commit": git_commit()}
    return net, meta


REFERENCE_BATCH_FILE = "reference_batch.npz"
# What a machine's features of the reference batch may differ by from the pinned ones: float32 convolutions with
# another CPU kernel set (AVX2 vs AVX-512) or thread count round differently, by ~1e-6 of these unit-scale features.
REFERENCE_ATOL, REFERENCE_RTOL = 1e-4, 1e-4


def reference_batch(net: FeatureNet, names: tuple[str, ...] = ALL_DATASETS, per_dataset: int = 4,
                    resolution: int = 32) -> dict[str, np.ndarray]:
    """A small fixed batch for checking that a machine computes the pinned network's features: `per_dataset` test
    images of each dataset, evenly spaced over its test split (which is stored class by class), as uint8, with
    their features."""
    images = []
    for name in names:
        data = load_dataset(name, "test", resolution, channels=3)
        images.append(data.images[torch.arange(per_dataset) * len(data) // per_dataset])
    batch = torch.cat(images)
    with torch.no_grad():
        features = net.eval().features(batch)
    return {"images": batch.numpy(), "features": features.numpy(), "datasets": np.array(names)}


#################################################################################
#                           Saving and Loading Weights                          #
#################################################################################


def extractor_id(meta: dict) -> str:
    """The id written to result rows: `local-` and the first 8 hex digits of the weights' SHA-256."""
    return f"local-{meta['weights_sha256'][:8]}"


def save_feature_net(net: FeatureNet, meta: dict, out_dir: str | Path) -> dict:
    """Write weights.safetensors, meta.json (with the weights hash) and curve.csv (meta's per-epoch curve, for
    plotting and tables) as one folder, atomically; return the meta."""
    with atomic_dir(out_dir) as tmp:
        # Bytes written by Python, not safetensors' save_file, which creates the file readable by its owner only.
        (tmp / WEIGHTS_FILE).write_bytes(safetensors_bytes({k: v.contiguous() for k, v in net.state_dict().items()}))
        meta = {**meta, "weights_sha256": file_sha256(tmp / WEIGHTS_FILE)}
        meta["extractor_id"] = extractor_id(meta)
        write_json(tmp / META_FILE, meta)
        write_csv(tmp / CURVE_FILE, CURVE_COLUMNS, meta["curve"])
    return meta


def feature_dir(path: str | Path) -> Path:
    """The feature-net folder from the folder itself or its weights.safetensors."""
    path = Path(path)
    return path.parent if path.name == WEIGHTS_FILE else path


def read_meta(path: str | Path) -> dict:
    """Read meta.json and check that weights.safetensors has the recorded hash (a swapped file is an error), and a
    pinned folder's files against its manifest."""
    folder = feature_dir(path)
    verify_if_pinned(folder)
    weights, meta_path = folder / WEIGHTS_FILE, folder / META_FILE
    if not weights.is_file() or not meta_path.is_file():
        raise FeatureNetError(f"{folder} must hold {WEIGHTS_FILE} and {META_FILE}; train it with "
                              f"`python -m benchmarks.features --out {folder}`")
    meta = read_json(meta_path)
    if meta.get("format") != META_FORMAT:
        raise FeatureNetError(f"{meta_path} has format {meta.get('format')!r}, expected {META_FORMAT!r}")
    actual = file_sha256(weights)
    if actual != meta["weights_sha256"]:
        raise FeatureNetError(f"{weights} has SHA-256 {actual[:8]}…, but {meta_path} records "
                              f"{meta['weights_sha256'][:8]}…; retrain the folder or restore the matching pair")
    return meta


def load_feature_net(path: str | Path) -> tuple[FeatureNet, dict]:
    """Load a saved feature net (eval mode) and its meta from its folder or weights file."""
    meta = read_meta(path)
    arch = meta["architecture"]
    net = FeatureNet(NetConfig(tuple(arch["widths"]), arch["feature_dim"], arch["num_classes"], arch["resolution"]))
    net.load_state_dict(load_file(feature_dir(path) / WEIGHTS_FILE))
    return net.eval(), meta


#################################################################################
#                       torch-fidelity Feature Extractor                        #
#################################################################################


class LocalFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity extractor over a saved FeatureNet; pass its folder as `feature_extractor_weights_path`."""

    def __init__(self, name: str, features_list, feature_extractor_weights_path=None, **kwargs):
        """Load the network; torch-fidelity passes every calculate_metrics option in `kwargs`, unused here."""
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise FeatureNetError(f"the {FIDELITY_NAME!r} extractor needs feature_extractor_weights_path= "
                                  "(a folder written by `python -m benchmarks.features`)")
        self.net, self.meta = load_feature_net(feature_extractor_weights_path)
        self.extractor_id = extractor_id(self.meta)

    @staticmethod
    def get_provided_features_list():
        """The only feature layer: the penultimate activations."""
        return (FEATURE_LAYER,)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        """Every metric uses the penultimate features."""
        return FEATURE_LAYER

    @staticmethod
    def can_be_compiled():
        """Not compiled: the network is small and compile time would dominate on CPU."""
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        """A uint8 batch of one 32×32 image (unused, as compilation is off)."""
        return torch.zeros(1, 3, 32, 32, dtype=torch.uint8)

    def forward(self, images):
        """Return a 1-tuple with the float32 B×feature_dim features of uint8 B×3×H×W images."""
        vassert(torch.is_tensor(images) and images.dtype == torch.uint8, "Expecting a uint8 torch.Tensor")
        vassert(images.dim() == 4 and images.shape[1] == 3, f"Input is not Bx3xHxW: {tuple(images.shape)}")
        return (self.net.features(images).float(),)


if FIDELITY_NAME not in FEATURE_EXTRACTORS_REGISTRY:  # `python -m` runs this file as __main__ besides any import
    register_feature_extractor(FIDELITY_NAME, LocalFeatureExtractor)
