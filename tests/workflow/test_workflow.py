"""The Snakemake DAG: lint, a smoke run of target `all` end to end in a scratch folder (nothing to do on a second
run of either tier, a deleted intermediate reruns only its dependents, the report page checked in a browser,
Snakemake's HTML report), the config schema, and the paper config under the SLURM profile as a dry run."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.results import read_results
from difftune.forgetting import DIRECTIONS
from tests.browser import CHROMIUM, page_check

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# One intra-op thread per job: the smoke jobs are tiny, and a second thread's waits at every parallel region make
# them slower on a busy 2-core machine (tests/conftest.py, `one_thread`).
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def snakemake(*args, cwd):
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=ENV)


def test_lint_is_clean(workdir):
    result = snakemake("--lint", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "good condition" in result.stdout + result.stderr


def planned_jobs(output: str) -> dict[str, int]:
    """{rule: count} from the "Job stats" table of a Snakemake dry run."""
    table = output.split("Job stats:")[1].split("total")[0]
    rows = [line.split() for line in table.splitlines()[3:] if line.strip()]
    return {name: int(count) for name, count in rows}


@pytest.mark.long
def test_smoke_dag_runs_then_has_nothing_to_do(workdir):
    # --max-threads 1: two one-thread jobs at a time on the profile's 2 cores (a smoke job is mostly its imports)
    config = ["all", "--configfile", "workflows/config/smoke.yaml", "--profile", "workflows/profiles/local",
              "--max-threads", "1"]
    first = snakemake(*config, cwd=workdir)
    assert first.returncode == 0, first.stderr[-3000:]
    results = workdir / "results/smoke"
    assert (results / "pretrain/source_grid.png").is_file()
    assert (workdir / "runs/smoke/benchmarks/pretrain_source.tsv").is_file()
    timing = pd.read_csv(results / "timing.csv")  # written by the Snakefile's onsuccess, one row per job
    assert {"pretrain_source", "finetune", "deft_train", "protein_sample"} <= set(timing["rule"])
    assert len(timing) == len(list((workdir / "runs/smoke/benchmarks").rglob("*.tsv")))
    assert timing["wall_s"].gt(0).all()
    run = pd.read_csv(results / "run_times.csv")  # the run's own wall time (onstart → onsuccess)
    assert list(run["targets"]) == ["all"] and run["jobs_run"][0] == len(timing)
    assert 0 < run["wall_s"][0] < timing["wall_s"].sum()  # two jobs at a time
    assert "wrote 13 images" in (workdir / "runs/smoke/logs/sample_source_grid.log").read_text()
    table = (results / "tables/difftune_main.md").read_text()
    assert "| full_ft |" in table and "| diff_tuning |" in table and "Rel. change vs full_ft" in table
    rows = read_results(results / "difftune_main.csv")
    assert set(rows["dataset"]) == {"textures"} and set(rows["method"]) == {"full_ft", "diff_tuning"}
    fids = rows[rows["metric"] == "fid_local"]
    assert fids["value"].gt(0).all()
    # Each FID row's jackknife interval over the 16 samples, centred on the value.
    assert ((fids["ci_low"] < fids["value"]) & (fids["value"] < fids["ci_high"])).all()
    assert fids["note"].str.contains("grouped jackknife").all()
    # The seed replicates: seed 0 is the main run, seed 1 a second run of each method; the summary over the two.
    study = read_results(results / "difftune_seeds.csv")
    assert set(study["experiment"]) == {"difftune_seeds"} and set(study["dataset"]) == {"textures", "average"}
    replicate_fids = study[study["method"].str.contains("@seed=")].set_index("method")["value"]
    assert set(replicate_fids.index) == {"full_ft@seed=0", "full_ft@seed=1", "diff_tuning@seed=0",
                                         "diff_tuning@seed=1"}
    main_fids = fids.set_index("method")["value"]
    assert replicate_fids["full_ft@seed=0"] == main_fids["full_ft"]  # the headline's own number
    assert replicate_fids["full_ft@seed=1"] != main_fids["full_ft"]  # another training seed, another model
    summary = study[~study["method"].str.contains("@")].set_index(["dataset", "method", "metric"])
    change = summary.loc[("textures", "diff_tuning", "fid_local_rel_change_pct")]
    expected = [100 * (replicate_fids[f"diff_tuning@seed={s}"] - replicate_fids[f"full_ft@seed={s}"])
                / replicate_fids[f"full_ft@seed={s}"] for s in (0, 1)]
    assert change["value"] == pytest.approx(sum(expected) / 2) and change["ci_low"] <= change["value"]
    assert summary.loc[("average", "diff_tuning", "fid_local_rel_change_pct"), "value"] == change["value"]
    assert summary.loc[("textures", "full_ft", "fid_local"), "value"] == pytest.approx(
        (replicate_fids["full_ft@seed=0"] + replicate_fids["full_ft@seed=1"]) / 2)
    seeds_table = (results / "tables/difftune_seeds.md").read_text()
    assert "| textures |" in seeds_table and "| Average |" in seeds_table and "2 training seeds (0, 1)" in seeds_table
    curve = pd.read_csv(results / "forgetting.csv")
    assert set(curve["t0"]) == {0, 500, 1000} and set(curve["direction"]) == set(DIRECTIONS)
    assert (results / "figures/forgetting.png").stat().st_size > 10_000
    deft_rows = read_results(results / "deft_main.csv")
    assert set(zip(deft_rows["dataset"], deft_rows["method"])) == {("inpaint", "deft"), ("inpaint", "ddrm")}
    assert deft_rows[deft_rows["metric"] == "kid_local"]["value"].notna().all()
    deft_table = (results / "tables/deft_main.md").read_text()
    assert "| inpaint | ddrm |" in deft_table and "|  | deft |" in deft_table
    scored = deft_rows[deft_rows["metric"].isin(["psnr", "ssim", "kid_local"])]
    assert (scored["ci_low"] <= scored["value"]).all() and (scored["value"] <= scored["ci_high"]).all()
    per_image = pd.read_csv(workdir / "runs/smoke/metrics/deft_main/inpaint/deft.per_image.csv")
    assert per_image["index"].tolist() == [0, 1, 2, 3] and per_image["psnr"].gt(0).all()  # smoke: 4 test images
    paired = read_results(results / "deft_paired.csv").set_index("metric")
    assert set(paired.index) == {"psnr_diff", "ssim_diff", "lpips_diff"} and set(paired["method"]) == {"ddrm"}
    assert set(paired["experiment"]) == {"deft_paired"} and (paired["n_samples"] == 4).all()
    means = deft_rows[deft_rows["metric"] == "psnr"].set_index("method")["value"]
    assert paired.loc["psnr_diff", "value"] == pytest.approx(means["deft"] - means["ddrm"])
    assert paired.loc["psnr_diff", "ci_low"] <= paired.loc["psnr_diff", "value"] <= paired.loc["psnr_diff", "ci_high"]
    assert "| inpaint | ddrm |" in (results / "tables/deft_paired.md").read_text()
    amortised_rows = read_results(results / "deft_amortised.csv")  # DEFT's rows beside the amortised model's
    assert set(zip(amortised_rows["method"], amortised_rows["experiment"])) == {
        ("amortised", "deft_amortised"), ("deft", "deft_amortised")}
    amortised_table = (results / "tables/deft_amortised.md").read_text()
    assert "| inpaint | amortised |" in amortised_table and "|  | deft |" in amortised_table
    for tier in ("headline", "all"):  # both ledgers, every claim judged or marked not measured
        claims = pd.read_csv(results / f"claims/{tier}.csv").set_index("claim_id")
        assert {"DT-1", "DT-2", "DEFT-1-inpaint", "DEFT-4"} <= set(claims.index)
        assert claims["verdict"].isin(["reproduced", "not reproduced", "inconclusive", "not measured"]).all()
        assert (claims.loc["DT-4-lora", "verdict"] == "not measured") == (tier == "headline")
        assert not math.isnan(claims.loc["DT-1", "value"]) and "| DT-1 |" in (results / f"claims/{tier}.md").read_text()
    protein_rows = read_results(results / "protein_motif.csv")
    assert set(protein_rows["method"]) == {"replacement", "deft-9"}
    success = protein_rows[protein_rows["metric"] == "success_rate"]
    assert (success["ci_low"] <= success["value"]).all() and (success["value"] <= success["ci_high"]).all()
    protein_amortised = read_results(results / "protein_amortised.csv")  # the heads' rows beside the amortised model's
    assert set(zip(protein_amortised["method"], protein_amortised["experiment"])) == {
        ("amortised", "protein_amortised"), ("deft-9", "protein_amortised")}
    assert "| Solved |" in (results / "tables/protein_amortised.md").read_text()
    assert len(set(protein_rows["dataset"])) == 2  # the smoke scale's two motif problems
    assert "| Solved |" in (results / "tables/protein_motif.md").read_text()
    assert (results / "tables/protein_motif_quality.tex").is_file()
    assert (results / "figures/protein_scaffolds.png").stat().st_size > 10_000
    manifest = pd.read_csv(results / "protein_chains.csv")
    assert set(manifest["split"]) == {"train", "test"} and manifest["name"].is_unique
    peft = read_results(results / "difftune_peft.csv")
    assert set(peft["method"]) == {"full_ft+lora", "diff_tuning+lora", "full_ft", "diff_tuning"}
    share = peft[peft["metric"] == "trainable_percent"].set_index("method")["value"]
    assert share["full_ft"] == 100.0 and 0 < share["full_ft+lora"] < 100.0
    assert "| LoRA | diff_tuning |" in (results / "tables/difftune_peft.md").read_text()
    control = read_results(results / "controlnet.csv")
    steps = control[control["metric"] == "convergence_step:canny"]
    assert set(zip(steps["method"], steps["seed"])) == {(o, s) for o in ("standard", "diff_tuning") for s in (0, 1)}
    assert set(control["model"]) == {"runs/smoke/source/model"}  # both arms on the one frozen pre-trained model
    summaries = [json.loads(path.read_text()) for path in (workdir / "runs/smoke/controlnet").rglob("summary.json")]
    assert len(summaries) == 4 and {summary["base"] for summary in summaries} == {"runs/smoke/source/model"}
    assert {s["objective"]: s["retention_per_batch"] for s in summaries} == {"standard": 0, "diff_tuning": 1}
    speedup = control[control["metric"] == "acceleration:canny"]
    assert list(speedup["method"]) == ["diff_tuning"] and list(speedup["seed"]) == [0]
    if speedup["value"].notna().all():  # both arms converged within the smoke run's 4 steps: a ratio over 2 seeds
        assert (speedup["ci_low"] <= speedup["ci_high"]).all() and "Welch" in speedup["note"].iloc[0]
    else:
        assert "never converge" in speedup["note"].iloc[0]
    curves = pd.read_csv(results / "controlnet_fidelity.csv")
    assert set(curves["objective"]) == {"standard", "diff_tuning"} and set(curves["step"]) == {0, 2, 4}
    assert set(curves["seed"]) == {0, 1}
    assert "| canny |" in (results / "tables/controlnet.md").read_text()
    assert (results / "figures/controlnet.png").stat().st_size > 10_000
    # The report page of each tier over the pictures on the same seeds, each picture with its protocol caption, as
    # a reader sees it in a browser.
    for tier in ("headline", "all"):
        page = (results / f"report/{tier}.html").read_text()
        assert 'href="#figure-samples_textures"' in page and 'id="figure-deft_inpaint"' in page
        assert 'id="figure-forgetting_splice"' in page and ('id="table-difftune_peft"' in page) == (tier == "all")
    pictures = {name: json.loads((results / f"figures/{name}.json").read_text())["protocol"]
                for name in ("samples_textures", "forgetting_splice", "deft_inpaint", "controlnet_canny")}
    assert pictures["controlnet_canny"]["seeds"] == "0-3" and 'id="figure-controlnet_canny"' in page
    assert pictures["samples_textures"]["seeds"] == "0-15" and pictures["samples_textures"]["steps"] == "5"
    assert pictures["forgetting_splice"]["seeds"] == "0-7" and pictures["deft_inpaint"]["seeds"] == "0-3"
    if CHROMIUM:
        assert page_check(results / "report/all.html") == {"errors": [], "missing_images": [], "empty_sections": []}
    for target in ("all", "headline"):  # a headline product is the same whichever tier made it
        second = snakemake(*config[1:], target, "--dry-run", cwd=workdir)
        assert second.returncode == 0 and "Nothing to be done" in second.stdout + second.stderr, target

    # A deleted intermediate (one FID result) reruns that job and its dependents, nothing else.
    (workdir / "runs/smoke/metrics/difftune_main/textures/diff_tuning.csv").unlink()
    plan = snakemake(*config, "--dry-run", cwd=workdir)
    assert planned_jobs(plan.stdout) == {"fid_finetuned": 1, "difftune_results": 1, "difftune_table": 1,
                                         "difftune_seeds_results": 1, "difftune_seeds_table": 1, "claims": 2,
                                         "report_page": 2, "all": 1}
    before = read_results(results / "difftune_main.csv")
    rerun = snakemake(*config, cwd=workdir)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = read_results(results / "difftune_main.csv")
    key = ["dataset", "method", "metric"]
    pd.testing.assert_frame_equal(after.sort_values(key)[key + ["value"]].reset_index(drop=True),
                                  before.sort_values(key)[key + ["value"]].reset_index(drop=True))

    report = snakemake(*config, "--report", "report.html", cwd=workdir)
    assert report.returncode == 0, report.stderr[-3000:]
    html = (workdir / "report.html").read_text(errors="replace")
    assert "forgetting.png" in html and "source_grid.png" in html and "difftune_main.md" in html
    assert "deft_main.md" in html and "protein_motif.md" in html and "protein_scaffolds.png" in html
    assert "difftune_peft.md" in html and "controlnet.png" in html and "deft_amortised.md" in html
    assert "protein_amortised.md" in html and "difftune_seeds.md" in html and "deft_paired.md" in html


ABLATIONS = """  ablations:
    method: diff_tuning
    tau: [0, 1]
    retention_weight: [0.1, 1.0]
    retention_ratio: [0.2]
    retention_set: [12, source]
    components: [tweight_only]
"""


def test_ablations_plan_one_run_per_point_that_is_not_a_default(workdir):
    config = workdir / "ablations.yaml"
    config.write_text((workdir / "workflows/config/smoke.yaml").read_text().replace("  ablations: null", ABLATIONS))
    # --forceall: the whole plan, whether or not the smoke run in this shared scratch folder already made the main runs
    result = snakemake("all", "--configfile", str(config), "--dry-run", "--forceall", "--printshellcmds",
                       cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    # 2 main, 2 seed-1 replicates, 2 PEFT runs, the points τ=0, λ=1, 12 images, source images (τ=1, λ=0.1,
    # ratio 0.2: the main run) and the one component
    assert jobs["finetune"] == 2 + 2 + 2 + 4 + 1 and jobs["retention_source"] == 1
    assert jobs["ablation_components_table"] == 1 and "--method tweight_only " in result.stdout
    assert "cache_latents" not in jobs and "data.latents" not in result.stdout  # pixel space: nothing to cache
    assert jobs["ablation_results"] == 4 and jobs["ablation_figure"] == 4
    out = result.stdout
    assert "--method diff_tuning --set difftune.tau=0.0" in out and "--set difftune.retention_size=12" in out
    assert "--retention runs/smoke/retention-source" in out
    assert "finetune/textures/diff_tuning@tau=1" not in out  # the default point scores the main run
    retention_n = config.read_text().replace("retention_set: [12, source]", "retention_set: [99]")
    config.write_text(retention_n)
    too_large = snakemake("--configfile", str(config), "--dry-run", cwd=workdir)
    assert too_large.returncode != 0 and "exceed difftune.retention_n = 16" in too_large.stdout + too_large.stderr


@pytest.mark.parametrize("old, new, message", [
    ("  study_dataset: largest  # of the one dataset: textures\n", "  study_dataset: best_fid\n",
     "'best_fid' is not one of ['largest', 'first']"),
    ("  objectives: [standard, diff_tuning]", "  objectives: [standard, finetuned]", "'finetuned' is not one of"),
    ("  objectives: [standard, diff_tuning]", "  bases: [pretrained, diff_tuning]", "'bases' was unexpected"),
    ("  seeds: [0, 1]  #", "  seeds: []  #", "[] should be non-empty"),
])
def test_study_dataset_and_controlnet_settings_are_checked_before_planning(workdir, old, new, message):
    bad = workdir / "bad-study.yaml"
    smoke = (workdir / "workflows/config/smoke.yaml").read_text()
    assert old in smoke
    bad.write_text(smoke.replace(old, new))
    result = snakemake("--configfile", str(bad), "--dry-run", cwd=workdir)
    assert result.returncode != 0 and message in result.stdout + result.stderr, result.stderr[-2000:]


def test_unknown_config_key_stops_the_run(workdir):
    bad = workdir / "bad.yaml"
    bad.write_text("scale: smoke\ngrid_seed: '0-3'\n")
    result = snakemake("--configfile", str(bad), "--dry-run", cwd=workdir)
    assert result.returncode != 0 and "grid_seed" in result.stdout + result.stderr


def test_wrong_type_names_the_key(workdir):
    bad = workdir / "bad-type.yaml"
    smoke = (workdir / "workflows/config/smoke.yaml").read_text()
    bad.write_text(smoke.replace("retention_n: 16", "retention_n: many"))
    result = snakemake("--configfile", str(bad), "--dry-run", cwd=workdir)
    assert result.returncode != 0 and "retention_n" in result.stdout + result.stderr


def test_latent_cache_needs_the_paper_scale(workdir):
    bad = workdir / "cache-latents.yaml"
    bad.write_text((workdir / "workflows/config/smoke.yaml").read_text().replace(
        "  guidance: 1.5\n", "  guidance: 1.5\n  cache_latents: true\n"))
    result = snakemake("--configfile", str(bad), "--dry-run", cwd=workdir)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and "difftune.cache_latents" in message and "set it to false" in message


def paper_config(workdir, tmp_path, **paths):
    """workflows/config/paper.yaml with its local paths replaced (files made in tmp_path unless given)."""
    for folder in ("DiT-XL-2-256/transformer", "datasets", "adm-uncond", "imagenet-val", "pdb"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / "inception.pth").touch()
    values = {"pretrained": tmp_path / "DiT-XL-2-256", "data_root": tmp_path / "datasets",
              "inception_weights": tmp_path / "inception.pth", "deft_backbone": tmp_path / "adm-uncond",
              "deft_data_root": tmp_path / "imagenet-val", "protein_root": tmp_path / "pdb", **paths}
    text = (workdir / "workflows/config/paper.yaml").read_text()
    lines = [f"  {line.split(':')[0].strip()}: {values[line.split(':')[0].strip()]}"
             if line.split(":")[0].strip() in values and line.startswith("  ") else line for line in text.splitlines()]
    path = tmp_path / "paper.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_paper_config_dry_runs_under_the_slurm_profile(workdir, tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    config = paper_config(workdir, tmp_path)
    result = snakemake("all", "--profile", "workflows/profiles/slurm", "--configfile", str(config), "--dry-run",
                       "--printshellcmds", cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    # 16 main runs, 8 datasets × 3 PEFT methods × 2 objectives, 11 ablation points that are not the defaults, the
    # objective's 2 halves (components)
    assert jobs["finetune"] == 16 + 48 + 11 + 2 and jobs["fid_reference"] == 8 and "pretrain_source" not in jobs
    assert jobs["control_train"] == 5 * 2 * 3 and "retention_source" not in jobs  # conditions × objectives × seeds
    base = tmp_path / "DiT-XL-2-256"
    assert f"--base {base} --objective diff_tuning --retention runs/paper/retention" in result.stdout
    assert "--condition canny --dataset food101 --set train.seed=2" in result.stdout  # `study_dataset: first`
    assert "feature_net" not in jobs  # paper scale scores with Inception, not the local feature network
    assert f"--pretrained {tmp_path / 'DiT-XL-2-256'}" in result.stdout
    assert f"--set data.root={tmp_path / 'datasets'}/food101" in result.stdout
    # difftune.cache_latents: each dataset is encoded once, and every fine-tuning run on it reads that cache
    assert jobs["cache_latents"] == 8
    assert (f"tunebench.latents --scale paper --dataset food101 --root {tmp_path / 'datasets'}/food101 "
            f"--set model.vae={tmp_path / 'DiT-XL-2-256'}") in result.stdout
    # food101 is trained by 2 main, 6 PEFT, the 11 ablation and the 2 components runs
    assert result.stdout.count("--set data.latents=runs/paper/latents/food101.safetensors") == 2 + 6 + 11 + 2
    assert "--extractor inception" in result.stdout and "--metric fid_inception" in result.stdout
    assert jobs["deft_train"] == 5 and jobs["deft_reconstruct"] == 21 and "pretrain_uncond" not in jobs
    assert f"--backbone {tmp_path / 'adm-uncond'}" in result.stdout
    assert f"--set data.root={tmp_path / 'imagenet-val'}" in result.stdout
    assert jobs["protein_train_head"] == 2 and jobs["protein_sample"] == 6 and jobs["protein_train_prior"] == 1
    assert f"deft.protein.prepare --scale paper --set data.root={tmp_path / 'pdb'}" in result.stdout


def test_paper_config_cannot_pick_the_largest_of_folders_it_has_not_read(workdir, tmp_path):
    config = paper_config(workdir, tmp_path)
    config.write_text(config.read_text().replace("  study_dataset: first\n", "  study_dataset: largest\n"))
    result = snakemake("--configfile", str(config), "--dry-run", cwd=workdir)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and "'difftune.study_dataset': rule 'largest' needs" in message
    assert "use the rule 'first'" in message


def test_paper_config_converts_the_adm_checkpoint_when_given(workdir, tmp_path):
    checkpoint = tmp_path / "256x256_diffusion_uncond.pt"
    checkpoint.touch()
    # paper.adm_checkpoint takes precedence: paper.deft_backbone is not read (here it does not even exist)
    config = paper_config(workdir, tmp_path, adm_checkpoint=checkpoint, deft_backbone=tmp_path / "nowhere")
    result = snakemake("--configfile", str(config), "--dry-run", "--printshellcmds", cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    assert jobs["convert_adm"] == 1 and jobs["deft_train"] == 5
    assert f"-m deft.convert_adm --checkpoint {checkpoint} --out runs/paper/adm_backbone/model" in result.stdout
    assert "--backbone runs/paper/adm_backbone/model" in result.stdout and "nowhere" not in result.stdout
    checkpoint.unlink()
    result = snakemake("--configfile", str(config), "--dry-run", cwd=workdir)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and "paper.adm_checkpoint" in message and "256x256_diffusion_uncond.pt" in message
    # neither key: the backbone has no source
    config.write_text("\n".join(line for line in config.read_text().splitlines()
                                if not line.startswith(("  deft_backbone:", "  adm_checkpoint:"))) + "\n")
    result = snakemake("--configfile", str(config), "--dry-run", cwd=workdir)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and "'paper.deft_backbone' or 'paper.adm_checkpoint': set one" in message


def test_paper_config_names_a_missing_local_file(workdir, tmp_path):
    config = paper_config(workdir, tmp_path, pretrained=tmp_path / "nowhere")
    result = snakemake("--configfile", str(config), "--dry-run", cwd=workdir)
    message = result.stdout + result.stderr
    assert result.returncode != 0
    assert "paper.pretrained" in message and "huggingface-cli download facebook/DiT-XL-2-256" in message
