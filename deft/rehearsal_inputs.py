"""Write the stand-in inputs of a rehearsal of the paper DAG (workflows/config/rehearsal.yaml), in the on-disk formats
the paper scale reads, with random weights and made-up images, plus `paths.yaml`, the `paper:` config section that
names them:

    python -m deft.rehearsal_inputs --out IN
    TORCH_HOME=IN/torch-home snakemake all --profile workflows/profiles/local \\
        --configfile workflows/config/paper.yaml workflows/config/rehearsal.yaml IN/paths.yaml

IN/ holds `rehearsal-DiT-XL-2-256/` (facebook/DiT-XL-2-256's layout), `datasets/NAME/` (the eight paper datasets,
one image per class and split: JPEG, PNG, greyscale, CMYK, and a truncated JPEG the readers skip),
`imagenet-val/` (DEFT's ImageNet validation images, 1000 classes), `rehearsal-inception.pth` (torch-fidelity's
Inception-v3), `torch-home/hub/checkpoints/alexnet-owt-7be5be79.pth` (LPIPS's trunk, found through TORCH_HOME),
`rehearsal-256x256_diffusion_uncond.pt` (a small guided-diffusion ADM that rule convert_adm converts) and
`protein/` (PDB files in every suffix the reader takes). It lives in deft, the top layer, because it writes every
package's inputs (docs/architecture.md, "The direction of imports").
"""

from __future__ import annotations

import argparse
import gzip
import shutil
from pathlib import Path

from tunebench.cli import run_cli

# The small ADM of the stand-in checkpoint: 256x256_diffusion_uncond's levels and attention resolutions, narrower
# (32 base channels instead of 256, heads of 32) and one res-block per level instead of two; convert_adm's flags.
ADM_CONFIG = {"image_size": 256, "num_channels": 32, "num_res_blocks": 1, "channel_mult": "1,1,2,2,4,4",
              "attention_resolutions": "32,16,8", "num_head_channels": 32}
PROTEIN_FILES = 8  # structures from MDAnalysisTests' DSSP set: enough chains for a train and a test split


def write_adm_checkpoint(path: Path) -> Path:
    """A guided-diffusion UNetModel state dict of ADM_CONFIG with random weights, saved as torch.save does."""
    import torch

    from deft.adm_checkpoint import AdmConfig
    from deft.adm_layout import random_state

    adm = AdmConfig(**{key: tuple(map(int, value.split(","))) if isinstance(value, str) else value
                       for key, value in ADM_CONFIG.items()})
    torch.save(random_state(adm), path)
    return path


def write_protein_root(folder: Path) -> list[Path]:
    """PDB files of real chains (MDAnalysisTests' DSSP set) under each suffix the reader takes (.pdb, .pdb.gz, .ent,
    .ent.gz), in nested folders as SCOPe's are."""
    from deft.protein.config import StructureData
    from deft.protein.structures import source_root

    sources = sorted(source_root("mdanalysis_dssp", StructureData(sources="mdanalysis_dssp")).glob("*.pdb.gz"))
    files = []
    for index, source in enumerate(sources[:PROTEIN_FILES]):
        stem = source.name.removesuffix(".pdb.gz")
        suffix = (".pdb", ".pdb.gz", ".ent", ".ent.gz")[index % 4]
        target = folder / stem[1:3] / f"{stem}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if suffix.endswith(".gz"):
            shutil.copyfile(source, target)
        else:
            target.write_bytes(gzip.decompress(source.read_bytes()))
        files.append(target)
    return files


def write_inputs(out: Path) -> dict:
    """Write every stand-in under `out` and return the `paper:` config section naming them."""
    from benchmarks.lpips_args import ALEXNET_FILE
    from benchmarks.standins import write_alexnet, write_inception
    from tunebench.dataset_registry import DATASETS, PAPER_DATASETS
    from tunebench.standins import write_dit_pipeline, write_image_folder

    out.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(PAPER_DATASETS):
        write_image_folder(out / "datasets" / name, DATASETS[name].num_classes, seed)
    write_image_folder(out / "imagenet-val", DATASETS["imagenet_val"].num_classes, len(PAPER_DATASETS),
                       truncated=False)
    write_alexnet(out / "torch-home/hub/checkpoints" / ALEXNET_FILE)
    paper = {"pretrained": write_dit_pipeline(out / "rehearsal-DiT-XL-2-256"), "data_root": out / "datasets",
             "inception_weights": write_inception(out / "rehearsal-inception.pth"),
             "adm_checkpoint": write_adm_checkpoint(out / "rehearsal-256x256_diffusion_uncond.pt"),
             "deft_data_root": out / "imagenet-val", "protein_root": out / "protein"}
    write_protein_root(out / "protein")
    return {key: str(value.resolve()) for key, value in paper.items()} | {"adm_config": ADM_CONFIG}


def main(argv: list[str] | None = None) -> None:
    """Write the stand-ins and IN/paths.yaml."""
    parser = argparse.ArgumentParser(prog="python -m deft.rehearsal_inputs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the stand-ins")
    args = parser.parse_args(argv)
    import yaml

    paper = write_inputs(args.out)
    (args.out / "paths.yaml").write_text(yaml.safe_dump({"paper": paper}, sort_keys=False))
    print(f"wrote the rehearsal's stand-ins to {args.out}; run the DAG with TORCH_HOME={args.out / 'torch-home'} "
          f"and --configfile workflows/config/paper.yaml workflows/config/rehearsal.yaml {args.out / 'paths.yaml'}")


if __name__ == "__main__":
    run_cli(main)
