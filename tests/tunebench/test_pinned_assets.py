"""Pinned assets: the manifest records every file's hash and the build; a changed, missing or extra file is an error
naming it; pinning refuses uncommitted builds and silent replacement; the comparison reports hashes and deltas."""

from __future__ import annotations

import json

import pytest

from tunebench.assets import main as assets_cli
from tunebench.config import resolve, to_dict
from tunebench.io import file_sha256, read_json, write_json
from tunebench.model_card import CARD_KEY, SIDECAR, CardFacts
from tunebench.pinned_assets import (
    MANIFEST_FILE,
    AssetError,
    compare_build,
    pin_asset,
    provenance_from,
    verify_asset,
    verify_if_pinned,
)

SUMMARY = {"git_commit": "0123456789abcdef", "torch_threads": 2, "torch_version": "2.14.1", "cpu_capability": "AVX2",
           "device_name": "Test CPU (2 cores)", "wall_seconds_this_invocation": 12.5}


def make_build(folder, weights=b"weights-v1"):
    """A stand-in exported folder: a weights file and a config in a subfolder."""
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.safetensors").write_bytes(weights)
    (folder / "sub" / "config.json").write_text('{"width": 8}')
    return folder


def pin(tmp_path, build, **kwargs):
    """Pin `build` as the mini source DiT under tmp_path/assets with a one-point curve beside it."""
    curve = tmp_path / "curve.csv"
    curve.write_text("step,fid_local\n100,12.5\n")
    return pin_asset("source_dit", "mini", build, [curve], "python -m tunebench.pretrain --scale mini",
                     provenance_from(SUMMARY, sidecar_seed=0), {"fid_local": 12.5, "eps_mse": 0.02},
                     root=tmp_path / "assets", **kwargs)


def test_provenance_takes_the_training_time_over_every_resume():
    resumed = {**SUMMARY, "wall_seconds_this_invocation": 12.5, "wall_seconds": 40.0}
    assert provenance_from(resumed, sidecar_seed=0)["wall_seconds"] == 40.0
    unknown = {**SUMMARY, "wall_seconds": None}  # resumed from a checkpoint that predates the record
    assert provenance_from(unknown, sidecar_seed=0)["wall_seconds"] == 12.5


def test_pin_writes_manifest_with_hashes_provenance_and_quality(tmp_path):
    build = make_build(tmp_path / "build")
    (build / ".snakemake_timestamp").write_text("")  # the DAG's marker of a directory output is not pinned
    target = pin(tmp_path, build)
    assert target == tmp_path / "assets" / "mini" / "source_dit"
    manifest = read_json(target / MANIFEST_FILE)
    assert manifest["files"] == {"README.md": file_sha256(target / "README.md"),
                                 "curve.csv": file_sha256(target / "curve.csv"),
                                 "sub/config.json": file_sha256(target / "sub" / "config.json"),
                                 "weights.safetensors": file_sha256(target / "weights.safetensors")}
    assert manifest["files"]["weights.safetensors"] == file_sha256(tmp_path / "build" / "weights.safetensors")
    assert manifest["git_commit"] == "0123456789abcdef" and manifest["seed"] == 0
    assert manifest["wall_seconds"] == 12.5 and manifest["cpu_capability"] == "AVX2"
    assert manifest["quality"] == {"fid_local": 12.5, "eps_mse": 0.02}
    assert manifest["command"] == "python -m tunebench.pretrain --scale mini"
    pinned_files = [p for p in target.rglob("*") if p.is_file() and p.name != MANIFEST_FILE]
    assert manifest["bytes"] == sum(p.stat().st_size for p in pinned_files)
    assert verify_asset(target) == manifest
    assert verify_if_pinned(tmp_path / "build") is None  # no manifest: not a pin, nothing to check
    card = (target / "README.md").read_text()
    assert "stand-in for DiT-XL/2" in card and "tunebench.models.load_dit(folder)" in card
    assert "- `fid_local`: 12.5 (lower is better)" in card and "python -m tunebench.pretrain --scale mini" in card
    assert "- git_commit: `0123456789abcdef`" in card and "eps 1e-5" in card and "divided by 127" in card
    assert "## How it was trained" not in card  # the build had no tunebench.json


def test_pinned_card_keeps_how_the_exported_model_was_trained(tmp_path):
    build = make_build(tmp_path / "build")
    run = to_dict(resolve("mini"))
    facts = CardFacts(method="DiT pre-training", base_model=None, data="`source` train split",
                      loader="tunebench.models.load_dit(folder)")
    write_json(build / SIDECAR, {"run_config": run, "weights": "ema", CARD_KEY: vars(facts),
                                 "final_training": {"step": 24000, "loss": 0.125}})
    card = (pin(tmp_path, build) / "README.md").read_text()
    assert "- `fid_local`: 12.5 (lower is better)" in card  # the manifest's quality figures ...
    assert "| base model | none: random weights |" in card and "| data | `source` train split |" in card  # ... and
    assert f"| steps | {run['train']['steps']} |" in card and f"| seed | {run['train']['seed']} |" in card  # the run
    assert "training loss at step 24000 (the last logged, `stats.jsonl`): loss 0.125" in card


def test_changed_missing_or_extra_file_is_an_error_naming_it(tmp_path):
    target = pin(tmp_path, make_build(tmp_path / "build"))
    (target / "weights.safetensors").write_bytes(b"weights-v2")
    with pytest.raises(AssetError, match=r"weights\.safetensors has SHA-256 .* manifest says .*git checkout"):
        verify_asset(target)
    (target / "weights.safetensors").write_bytes(b"weights-v1")
    (target / "sub" / "config.json").unlink()
    with pytest.raises(AssetError, match=r"sub/config\.json is missing"):
        verify_if_pinned(target)
    (target / "sub" / "config.json").write_text('{"width": 8}')
    verify_asset(target)
    (target / "notes.txt").write_text("x")
    with pytest.raises(AssetError, match=r"notes\.txt is not listed"):
        verify_asset(target)


def test_pin_refuses_dirty_builds_missing_provenance_and_silent_replacement(tmp_path):
    with pytest.raises(AssetError, match="clean commit"):
        provenance_from({**SUMMARY, "git_commit": "0123+dirty"}, 0)
    with pytest.raises(AssetError, match="lacks seed"):
        provenance_from(SUMMARY)
    build = make_build(tmp_path / "build")
    pin(tmp_path, build)
    with pytest.raises(AssetError, match="already pinned; pass --replace"):
        pin(tmp_path, build)
    (build / "weights.safetensors").write_bytes(b"weights-v2")
    target = pin(tmp_path, build, replace=True)
    assert verify_asset(target)["files"]["weights.safetensors"] == file_sha256(build / "weights.safetensors")
    with pytest.raises(AssetError, match="lacks eps_mse"):
        pin_asset("source_dit", "mini", build, [], "cmd", provenance_from(SUMMARY, 0), {"fid_local": 1.0},
                  root=tmp_path / "other")


def test_compare_reports_equal_hashes_and_quality_deltas(tmp_path):
    target = pin(tmp_path, make_build(tmp_path / "build"))
    same = compare_build("source_dit", verify_asset(target), tmp_path / "build", {"fid_local": 13.0, "eps_mse": 0.02})
    hashes = {row["item"]: row["equal"] for row in same if row["kind"] == "sha256"}
    assert hashes == {"sub/config.json": True, "weights.safetensors": True}  # the curve is not part of the build
    fid = next(row for row in same if row["item"] == "fid_local")
    assert fid["delta"] == 0.5 and fid["pinned"] == 12.5 and fid["kind"] == "quality (lower is better)"
    other = make_build(tmp_path / "rebuilt", weights=b"weights-other")
    rows = compare_build("source_dit", verify_asset(target), other, {})
    assert {r["item"]: r["equal"] for r in rows if r["kind"] == "sha256"}["weights.safetensors"] is False


def test_cli_verify_and_compare(tmp_path, capsys):
    pin(tmp_path, make_build(tmp_path / "build"))
    with pytest.raises(AssetError, match="not a pinned asset"):  # the other three are not pinned in this root
        assets_cli(["verify", "--root", str(tmp_path / "assets")])
    assets_cli(["verify", "source_dit", "--root", str(tmp_path / "assets")])
    assert "source_dit: ok (4 files, commit 0123456789" in capsys.readouterr().out
    quality = tmp_path / "quality.json"
    quality.write_text(json.dumps({"fid_local": 11.5, "eps_mse": 0.03}))
    out = tmp_path / "comparison.csv"
    root, build = str(tmp_path / "assets"), tmp_path / "build"
    assets_cli(["compare", "--root", root, "--build", f"source_dit={build}", "--quality", f"source_dit={quality}",
                "--build", f"feature_net={build}", "--out", str(out)])
    lines = out.read_text().splitlines()
    assert lines[0] == "asset,item,kind,pinned,rebuilt,delta,equal"
    assert "source_dit,fid_local,quality (lower is better),12.5,11.5,-1.0,False" in lines
    assert any(line.startswith("feature_net,") and ",not pinned," in line for line in lines)
    with pytest.raises(AssetError, match="expected NAME=PATH"):
        assets_cli(["compare", "--build", "nonsense=/x", "--out", str(out)])
