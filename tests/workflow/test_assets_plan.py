"""The DAG with pinned assets: it reads the pinned folders instead of training them, checks them against their
manifests while planning (a changed file stops it, named), and the `assets` target rebuilds all four."""

import subprocess
import sys

import pytest

from tunebench.pinned_assets import ASSETS, pin_asset, pinned_dir

SUMMARY = {"git_commit": "0123456789abcdef", "seed": 0, "torch_threads": 2, "torch_version": "2.14.1",
           "cpu_capability": "AVX2", "device_name": "Test CPU (2 cores)", "wall_seconds": 1.0}
QUALITY = {"fid_local": 1.0, "eps_mse": 0.1, "test_accuracy": 0.9, "valid_bonds": 0.9, "clash_free": 0.9}
BUILD_JOBS = {"pretrain_source", "feature_net", "pretrain_uncond", "protein_train_prior"}


def plan(workdir, target, *args, overlays=()):
    """The completed dry run of `target` at smoke scale (its job table: --quiet rules), with config files
    `overlays` merged over the smoke config."""
    return subprocess.run([sys.executable, "-m", "snakemake", target, "--dry-run", "--forceall", "--quiet", "rules",
                           *args, "--configfile", "workflows/config/smoke.yaml", *overlays], cwd=workdir,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def pinned_workdir(workdir, tmp_path_factory):
    """The scratch workflow with stand-in smoke pins of all four assets (planning reads only their manifests)."""
    build = tmp_path_factory.mktemp("build")
    (build / "config.json").write_text("{}")
    for name in ASSETS:
        pin_asset(name, "smoke", build, [], "stand-in", SUMMARY, QUALITY, root=workdir / "assets", replace=True)
    return workdir


def job_counts(result) -> dict[str, int]:
    """{rule: jobs} from the `--quiet rules` table of a dry run."""
    counts = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("job", "total"):
            counts[parts[0]] = int(parts[1])
    return counts


def test_pinned_assets_replace_the_build_rules(pinned_workdir):
    result = plan(pinned_workdir, "all", "--config", "assets=pinned")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = job_counts(result)
    assert jobs and not BUILD_JOBS & set(jobs), jobs
    built = plan(pinned_workdir, "all")
    assert BUILD_JOBS <= set(job_counts(built)), built.stdout[-2000:]


def test_assets_can_be_pinned_one_by_one(pinned_workdir):
    overlay = pinned_workdir / "partial_pins.yaml"
    overlay.write_text("assets: {feature_net: pinned, source_dit: pinned, protein_prior: build}\n")
    result = plan(pinned_workdir, "all", overlays=[str(overlay)])
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = job_counts(result)
    # the backbone is trained from the pinned source, so nothing trains the source
    assert {"pretrain_uncond", "protein_train_prior"} <= set(jobs), jobs
    assert not {"pretrain_source", "feature_net"} & set(jobs), jobs


def test_an_unknown_asset_name_stops_planning(pinned_workdir):
    overlay = pinned_workdir / "typo_pins.yaml"
    overlay.write_text("assets: {source_dits: pinned}\n")
    result = plan(pinned_workdir, "all", overlays=[str(overlay)])
    assert result.returncode != 0
    assert "config key 'assets' names ['source_dits']" in result.stdout + result.stderr


def test_a_changed_pinned_file_stops_planning_naming_it(pinned_workdir):
    config = pinned_dir("smoke", "deft_backbone", pinned_workdir / "assets") / "config.json"
    config.write_text('{"changed": true}')
    try:
        result = plan(pinned_workdir, "all", "--config", "assets=pinned")
    finally:
        config.write_text("{}")
    assert result.returncode != 0
    output = result.stdout + result.stderr  # snakemake prints workflow errors on stdout
    assert "pinned asset deft_backbone" in output and "assets/smoke/deft_backbone/config.json has SHA-256" in output


def test_assets_target_rebuilds_and_compares_all_four(pinned_workdir):
    result = plan(pinned_workdir, "assets", "--config", "assets=pinned")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = job_counts(result)
    assert BUILD_JOBS <= set(jobs) and jobs["asset_quality_dit"] == 2 and jobs["assets_compare"] == 1, jobs
