"""Pinned pre-trained assets: the mini counterparts of downloading DiT-XL/2, the ADM backbone, Genie and Inception.

Each asset is a folder committed under `assets/SCALE/NAME/` (a save_pretrained or safetensors folder, its quality
curve) with a `manifest.json` that records how it was built (command, clean commit, seed, threads, torch version,
CPU capability, wall time), its quality figures and the SHA-256 of every other file in the folder. The DAG and the
loaders check those hashes before using an asset, so every machine computes with the same weights; replacing one is
the explicit `python -m tunebench.assets pin` command (docs/assets.md). Torch-free: Snakemake checks the hashes
while planning.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tunebench.config import ConfigError
from tunebench.io import atomic_dir, file_sha256, read_json, write_json
from tunebench.model_card import DIT_PITFALLS, SIDECAR, training_section
from tunebench.run_summary import training_wall_seconds

ASSETS_ROOT = Path(__file__).resolve().parent.parent / "assets"
MANIFEST_FILE = "manifest.json"
CARD_FILE = "README.md"  # the model card, written by `pin` from the manifest
# Files a build folder may hold that are not part of the asset: Snakemake marks directory outputs with this one.
BUILD_MARKERS = (".snakemake_timestamp",)
MANIFEST_FORMAT = 1
# The four together stay small enough to commit (issue budget: 25 MB).
SIZE_LIMIT_BYTES = 25 * 1024 * 1024


class AssetError(ConfigError):
    """A pinned asset that is missing, incomplete or not the one its manifest describes."""


@dataclass(frozen=True)
class AssetSpec:
    """What a pinned asset is, what it stands in for, and how its quality is judged (figure -> 'lower'/'higher'
    is better)."""

    name: str
    role: str
    stands_in_for: str
    quality: dict[str, str]
    loader: str  # the call that loads the folder with the suite's fixes (named in the model card)
    loader_note: str = ""  # what that call does beyond checking the files (the model card's words)


ASSETS = {spec.name: spec for spec in (
    AssetSpec("source_dit", "the class-conditional source DiT every fine-tune starts from",
              "DiT-XL/2 (facebook/DiT-XL-2-256)", {"fid_local": "lower", "eps_mse": "lower"},
              "tunebench.models.load_dit(folder)", DIT_PITFALLS),
    AssetSpec("deft_backbone", "the unconditional DiT that DEFT keeps frozen",
              "guided-diffusion 256x256_diffusion_uncond.pt (ADM)", {"fid_local": "lower", "eps_mse": "lower"},
              "deft.backbone.load_backbone(folder)", DIT_PITFALLS),
    AssetSpec("feature_net", "the feature network behind fid_local and kid_local",
              "Inception-v3 (torch-fidelity's FID weights)", {"test_accuracy": "higher"},
              "benchmarks.feature_net.load_feature_net(folder)"),
    AssetSpec("protein_prior", "the unconditional Cα-backbone prior of motif scaffolding",
              "Genie trained on SCOPe", {"valid_bonds": "higher", "clash_free": "higher"},
              "deft.protein.models.load_prior(folder)"),
)}
# Provenance every manifest carries, read from the build's summary (or meta.json) by `pin`.
PROVENANCE_KEYS = ("git_commit", "seed", "torch_threads", "torch_version", "cpu_capability", "device_name",
                   "wall_seconds")


def asset_spec(name: str) -> AssetSpec:
    """The spec of a known asset, or an AssetError listing the names."""
    if name not in ASSETS:
        raise AssetError(f"unknown asset '{name}'; the pinned assets are {', '.join(ASSETS)}")
    return ASSETS[name]


def pinned_dir(scale: str, name: str, root: str | Path | None = None) -> Path:
    """Where asset `name` of `scale` is pinned (assets/SCALE/NAME under the repository, or under `root`)."""
    asset_spec(name)
    return Path(root or ASSETS_ROOT) / scale / name


def file_hashes(folder: str | Path) -> dict[str, str]:
    """SHA-256 of every file under `folder` but the manifest, keyed by its path relative to the folder."""
    folder = Path(folder)
    return {path.relative_to(folder).as_posix(): file_sha256(path)
            for path in sorted(folder.rglob("*")) if path.is_file() and path.name != MANIFEST_FILE}


def read_manifest(folder: str | Path) -> dict:
    """The manifest of a pinned folder, or an AssetError saying how to get one."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise AssetError(f"{path} is missing: {folder} is not a pinned asset. Restore it with "
                         f"`git checkout -- {folder}`, or pin a build with `python -m tunebench.assets pin`")
    manifest = read_json(path)
    if manifest.get("format") != MANIFEST_FORMAT or not isinstance(manifest.get("files"), dict):
        raise AssetError(f"{path} is not a format-{MANIFEST_FORMAT} asset manifest (no 'files' table)")
    return manifest


def verify_asset(folder: str | Path) -> dict:
    """Check every file of a pinned folder against its manifest and return the manifest.

    Raises AssetError naming the first file that is missing, changed or not in the manifest.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    actual = file_hashes(folder)
    fix = (f"restore the pinned files with `git checkout -- {folder}`, or replace the asset on purpose with "
           "`python -m tunebench.assets pin` (docs/assets.md)")
    for relative, expected in manifest["files"].items():
        if relative not in actual:
            raise AssetError(f"{folder / relative} is missing (listed in {folder / MANIFEST_FILE}); {fix}")
        if actual[relative] != expected:
            raise AssetError(f"{folder / relative} has SHA-256 {actual[relative][:12]}…, its manifest says "
                             f"{expected[:12]}…: the file was changed; {fix}")
    extra = sorted(set(actual) - set(manifest["files"]))
    if extra:
        raise AssetError(f"{folder / extra[0]} is not listed in {folder / MANIFEST_FILE}; remove it, or {fix}")
    return manifest


def verify_if_pinned(folder: str | Path) -> dict | None:
    """Verify `folder` when it holds a manifest (a pinned asset); None for any other folder."""
    return verify_asset(folder) if (Path(folder) / MANIFEST_FILE).is_file() else None


def provenance_from(summary: dict, sidecar_seed: int | None = None) -> dict:
    """The manifest's build record from a build summary; refuses builds from uncommitted code."""
    record = dict(summary)
    record["wall_seconds"] = training_wall_seconds(record)
    if record.get("seed") is None:
        record["seed"] = sidecar_seed
    missing = [key for key in PROVENANCE_KEYS if record.get(key) is None]
    if missing:
        raise AssetError(f"the build summary lacks {', '.join(missing)}; pin the summary.json (or meta.json) that "
                         "the training CLI wrote")
    commit = str(record["git_commit"])
    if commit.endswith("+dirty") or commit == "unknown":
        raise AssetError(f"the build ran from git commit '{commit}': a pinned asset is built from a clean commit "
                         "(commit the code, then build)")
    return {key: record[key] for key in PROVENANCE_KEYS}


def check_quality(name: str, quality: dict) -> dict:
    """The asset's quality figures (the spec's keys must all be present and numeric) plus whatever else was
    measured."""
    missing = [key for key in asset_spec(name).quality if not isinstance(quality.get(key), (int, float))]
    if missing:
        raise AssetError(f"the quality record of {name} lacks {', '.join(missing)} (numbers expected)")
    return quality


def pin_asset(name: str, scale: str, build: str | Path, extras: list[Path], command: str, provenance: dict,
              quality: dict, root: str | Path | None = None, replace: bool = False) -> Path:
    """Copy a built folder (and `extras`, e.g. its quality curve) to the pinned location with a manifest, atomically.

    Refuses to overwrite an existing pin unless `replace`: replacing an asset is always on purpose.
    """
    target = pinned_dir(scale, name, root)
    if target.exists() and not replace:
        raise AssetError(f"{target} is already pinned; pass --replace to replace it on purpose")
    build = Path(build)
    if not build.is_dir():
        raise AssetError(f"{build} is not a folder: pin the folder the training CLI exported")
    with atomic_dir(target) as tmp:
        shutil.copytree(build, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*BUILD_MARKERS))
        for extra in extras:
            shutil.copy2(extra, tmp / Path(extra).name)
        (tmp / MANIFEST_FILE).unlink(missing_ok=True)
        spec = asset_spec(name)
        record = {"format": MANIFEST_FORMAT, "name": name, "scale": scale, "role": spec.role,
                  "stands_in_for": spec.stands_in_for, "command": command, **provenance,
                  "quality": check_quality(name, quality), "quality_better": spec.quality,
                  "pinned_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        sidecar = read_json(tmp / SIDECAR) if (tmp / SIDECAR).is_file() else {}
        (tmp / CARD_FILE).write_text(model_card(spec, record, sidecar))
        files = file_hashes(tmp)
        size = sum((tmp / relative).stat().st_size for relative in files)
        write_json(tmp / MANIFEST_FILE, {**record, "bytes": size, "files": files})
    return target


def model_card(spec: AssetSpec, record: dict, sidecar: dict) -> str:
    """The pinned folder's README.md: what the asset is, how to load it, how it was built and trained (from the
    exported folder's sidecar, when it has one) and how good it is."""
    quality = "\n".join(f"- `{key}`: {value:.4g} ({spec.quality[key]} is better)"
                         for key, value in record["quality"].items() if key in spec.quality)
    build = "\n".join(f"- {key}: `{record[key]}`" for key in PROVENANCE_KEYS)
    loading = " ".join(filter(None, (f"Load it with `{spec.loader}`, which first checks every file against "
                                     "`manifest.json`.", spec.loader_note)))
    return f"""# {spec.name} ({record['scale']} scale, pinned)

{spec.role[0].upper() + spec.role[1:]}: tunebench's {record['scale']}-scale stand-in for {spec.stands_in_for}.

{loading}

## Quality

{quality}

The other figures measured, and the protocol they were measured with, are under `quality` in `manifest.json`;
`curve.csv` (where present) holds them at every checkpoint of the build.

## Build

```
{record['command']}
```

{build}

Rebuild and compare with `snakemake assets` (docs/assets.md in the tunebench repository); replace this pin only
with `python -m tunebench.assets pin ... --replace`.
""" + (f"\n{training_section(sidecar)}" if "run_config" in sidecar else "")


def pinned_size(scale: str, root: str | Path | None = None) -> int:
    """Bytes of every pinned asset of `scale` together."""
    folder = Path(root or ASSETS_ROOT) / scale
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else 0


def compare_build(name: str, pinned: dict, built: str | Path, quality: dict) -> list[dict]:
    """Rows comparing a rebuilt folder with a pinned manifest: one per file the build shares with the pin (hash
    equal or not) and one per quality figure (pinned value, rebuilt value, delta, whether the rebuild is worse)."""
    rows = []
    built_hashes = file_hashes(built)
    for relative, pinned_hash in pinned["files"].items():
        if relative in built_hashes:
            rows.append({"asset": name, "item": relative, "kind": "sha256", "pinned": pinned_hash[:16],
                         "rebuilt": built_hashes[relative][:16], "delta": "",
                         "equal": built_hashes[relative] == pinned_hash})
    for key, better in asset_spec(name).quality.items():
        old, new = pinned["quality"].get(key), quality.get(key)
        delta = None if old is None or new is None else new - old
        rows.append({"asset": name, "item": key, "kind": f"quality ({better} is better)", "pinned": old,
                     "rebuilt": new, "delta": "" if delta is None else round(delta, 6),
                     "equal": delta == 0})
    return rows
