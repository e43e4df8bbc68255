"""The protein command lines end to end at smoke scale: prepare → problems → prior, head and amortised training →
every sampler → evaluation → tables and figure; plus resumption and the errors a user meets."""

import json

import numpy as np
import pytest

from benchmarks.intervals import wilson_interval
from benchmarks.results import read_results
from deft.protein import chain_set, denoising, evaluate, figure, problems, report, sample, sample_agreement, train
from deft.protein.config import PRIOR_ARCHITECTURES
from deft.protein.geometry import motif_rmsd
from deft.protein.motif_problems import load_problems
from deft.protein.motif_sampling import sample_problems
from tunebench.config import ConfigError


def _atoms(path):
    """(model, chain, x, y, z) of every ATOM record, read by the PDB format's fixed columns (not our writer's code)."""
    model, atoms = 1, []
    for line in path.read_text().splitlines():
        if line.startswith("MODEL"):
            model = int(line[10:14])
        if line.startswith("ATOM"):
            assert line[12:16] == " CA " and len(line) == 80
            atoms.append((model, line[21], float(line[30:38]), float(line[38:46]), float(line[46:54])))
    return atoms


def read_pdb_models(path):
    """Coordinates of each MODEL of a PDB file."""
    atoms = _atoms(path)
    return [np.array([a[2:] for a in atoms if a[0] == m]) for m in sorted({a[0] for a in atoms})]


def read_pdb_chains(path):
    """Coordinates of each chain of a one-model PDB file."""
    atoms = _atoms(path)
    return {c: np.array([a[2:] for a in atoms if a[1] == c]) for c in sorted({a[1] for a in atoms})}


@pytest.fixture(scope="module")
def pipeline(smoke_prior):
    """Prepared chains, problems and the three trained models of the smoke scale (chains and prior shared)."""
    root = smoke_prior
    problems.main(["--scale", "smoke", "--data", str(root / "data"), "--out", str(root / "problems")])
    common = ["--scale", "smoke", "--data", str(root / "data"), "--no-progress"]
    train.main(["head", *common, "--prior", str(root / "prior/model"), "--fraction", "0.09", "--out",
                str(root / "head")])
    train.main(["amortised", *common, "--out", str(root / "amortised")])
    return root


def test_training_exports_models_and_exact_head_size(pipeline):
    head = json.loads((pipeline / "head/summary.json").read_text())
    prior = json.loads((pipeline / "prior/summary.json").read_text())
    assert head["prior_parameters"] == prior["parameters"] and head["method"] == "deft-9"
    assert head["head_fraction"] == pytest.approx(head["parameters"] / prior["parameters"])
    assert abs(head["head_fraction"] - 0.09) < 0.02
    sidecar = json.loads((pipeline / "head/model/tunebench.json").read_text())
    assert sidecar["run_config"]["train"]["steps"] == 6 and sidecar["weights"] == "trained"
    for stage in ("prior", "head", "amortised"):
        assert (pipeline / stage / "model/diffusion_pytorch_model.safetensors").is_file()
        assert len((pipeline / stage / "stats.jsonl").read_text().splitlines()) == 3  # log_every 2 over 6 steps
    card = (pipeline / "head/model_ema/README.md").read_text()  # the card of a suite class says what it is
    assert card.startswith("# ProteinHead exported by tunebench") and "`deft.protein.egnn.ProteinHead`" in card
    assert "`deft.protein.models.load_conditional(folder, 'head')`" in card
    assert f"| base model | `{pipeline / 'prior/model'}` |" in card and "| steps | 6 |" in card
    assert f"| data | crops of {len(chain_set.load_prepared(pipeline / 'data')['train'])} training chains" in card
    assert "EMA of" in card and "- head_fraction: " in card
    arch = PRIOR_ARCHITECTURES[sidecar["run_config"]["prior"]["arch"]]  # the cards name the architecture trained
    assert f"| method | unconditional Cα-backbone prior ({arch}" in (pipeline / "prior/model/README.md").read_text()
    assert f"({arch} with motif inputs)" in (pipeline / "amortised/model/README.md").read_text()


def test_resuming_a_finished_run_changes_nothing(pipeline):
    before = (pipeline / "prior/model/diffusion_pytorch_model.safetensors").read_bytes()
    train.main(["prior", "--scale", "smoke", "--data", str(pipeline / "data"), "--no-progress", "--out",
                str(pipeline / "prior")])
    assert (pipeline / "prior/model/diffusion_pytorch_model.safetensors").read_bytes() == before


def test_every_method_samples_scores_and_renders(pipeline, tmp_path):
    results = tmp_path / "protein_motif.csv"
    problem_list = load_problems(pipeline / "problems")
    methods = {"unconditional": [], "replacement": [], "dps": [],
               "deft-9": ["--model", str(pipeline / "head/model")],
               "amortised": ["--model", str(pipeline / "amortised/model")]}
    for name, extra in methods.items():
        sampler = "deft" if name.startswith("deft") else name
        out = tmp_path / name
        sample.main([sampler, "--scale", "smoke", "--problems", str(pipeline / "problems"), "--prior",
                     str(pipeline / "prior/model"), *extra, "--out", str(out), "--no-progress"])
        with np.load(out / "samples.npz") as data:
            assert data["coords"].shape == (len(problem_list), 3, 20, 3) and np.isfinite(data["coords"]).all()
            assert data["seeds"][1, 0] == 1_000_000
            coords = data["coords"]
        models = read_pdb_models(out / f"pdb/{problem_list[1].name}.pdb")
        assert len(models) == 3 and np.allclose(models[2], coords[1, 2], atol=1e-3)  # every seed, Å to 3 decimals
        summary = [] if name in ("unconditional", "replacement", "dps") else [
            "--train-summary", str(pipeline / ("head" if name == "deft-9" else "amortised") / "summary.json")]
        evaluate.main(["--problems", str(pipeline / "problems"), "--samples", str(out), "--method", name,
                       *summary, "--results", str(results), "--per-sample", str(tmp_path / f"{name}.csv")])
    stats = json.loads((tmp_path / "dps/stats.json").read_text())
    assert [row["scale"] for row in stats["dps_sweep"]] == [0.3, 3.0] and stats["dps_scale"] in (0.3, 3.0)
    rows = read_results(results)
    assert set(rows["method"]) == set(methods)
    rates = rows[rows["metric"] == "success_rate"]["value"]
    assert len(rates) == 5 * len(problem_list) and rates.between(0, 1).all()
    for _, row in rows[rows["metric"].isin(["success_rate", "motif_placed_rate", "clash_free"])].iterrows():
        assert (row["ci_low"], row["ci_high"]) == wilson_interval(round(row["value"] * 3), 3)  # 3 samples a problem
        assert row["note"] == "95% interval: Wilson score interval over the 3 samples of the problem"
    assert rows[rows["metric"].isin(["motif_rmsd_median", "solved"])]["ci_low"].isna().all()
    replacement = rows[(rows["method"] == "replacement") & (rows["metric"] == "motif_rmsd_median")]["value"]
    assert (replacement < 1e-3).all()  # replacement imposes the motif exactly
    assert (rows[(rows["method"] == "dps") & (rows["metric"] == "prior_vjps")]["value"] == 4).all()
    assert set(rows[rows["method"] == "deft-9"]["metric"]) >= {"parameters", "head_fraction", "train_seconds"}
    for layout in ("protein", "protein_quality"):
        report.main(["table", "--results", str(results), "--layout", layout, "--out-dir", str(tmp_path / "tables"),
                     "--methods", ",".join(methods)])
    text = (tmp_path / "tables/protein_motif.md").read_text()
    assert "| Solved |" in text and "deft-9" in text and "n_samples=3" in text
    assert "% [0, 56]" in text and "Wilson score interval over the 3 samples of the problem" in text  # 0 of 3
    assert (tmp_path / "tables/protein_motif_quality.tex").read_text().count(r"\\") >= 6
    figure.main(["--problems", str(pipeline / "problems"), "--samples", f"deft-9={tmp_path / 'deft-9'}",
                 f"dps={tmp_path / 'dps'}", "--out", str(tmp_path / "scaffolds.png"),
                 "--pdb-dir", str(tmp_path / "best")])
    assert (tmp_path / "scaffolds.png").read_bytes()[:4] == b"\x89PNG"
    first = problem_list[0]
    best = tmp_path / f"best/dps/{first.name}_best.pdb"
    chains = read_pdb_chains(best)
    assert set(chains) == {"A", "B"} and np.allclose(chains["B"], first.window, atol=1e-3)
    idx = first.motif_indices()
    # The best scaffold is superposed on the native by its motif: its motif RMSD is the file's, and the lowest.
    with np.load(tmp_path / "dps/samples.npz") as data:
        lowest = min(motif_rmsd(s, first.window[idx], idx) for s in data["coords"][0])
    assert np.sqrt(((chains["A"][idx] - first.window[idx]) ** 2).sum(1).mean()) == pytest.approx(lowest, abs=2e-3)
    assert f"motif RMSD {lowest:.2f} A" in best.read_text().splitlines()[0]


def test_user_errors_name_the_fix(pipeline, tmp_path, capsys):
    from tunebench.cli import run_cli

    with pytest.raises(SystemExit):
        run_cli(train.main, ["head", "--scale", "smoke", "--data", str(pipeline / "data"), "--out", str(tmp_path)])
    assert "--prior FOLDER" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli(sample.main, ["deft", "--scale", "smoke", "--problems", str(pipeline / "problems"), "--prior",
                              str(pipeline / "prior/model"), "--model", str(pipeline / "amortised/model"),
                              "--out", str(tmp_path / "x")])
    assert "not a protein head" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli(sample.main, ["unconditional", "--scale", "smoke", "--problems", str(pipeline / "problems"),
                              "--prior", str(pipeline / "amortised/model"), "--out", str(tmp_path / "y")])
    assert "prior must be unconditional" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli(problems.main, ["--scale", "smoke", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    assert "deft.protein.prepare" in capsys.readouterr().err


def test_sample_compile_compiles_every_network_the_sampler_runs(pipeline, tmp_path, monkeypatch):
    import torch

    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *args, **kwargs: compiled.append(type(self).__name__))
    monkeypatch.setattr("tunebench.speed.require_compiler", lambda key: None)  # whatever compiler this host has
    common = ["--scale", "smoke", "--problems", str(pipeline / "problems"), "--prior", str(pipeline / "prior/model"),
              "--model", str(pipeline / "head/model"), "--no-progress"]
    sample.main(["deft", *common, "--out", str(tmp_path / "off")])
    assert compiled == []  # off by default (the papers' settings; mini switches it on)
    sample.main(["deft", *common, "--out", str(tmp_path / "on"), "--set", "sample.compile=true"])
    prior_class = json.loads((pipeline / "prior/model/config.json").read_text())["_class_name"]
    assert compiled == [prior_class, "ProteinHead"]
    assert json.loads((tmp_path / "on/config.json").read_text())["sample"]["compile"] is True
    assert "warm_up_seconds" in json.loads((tmp_path / "on/stats.json").read_text())  # compiled before the clock
    assert "warm_up_seconds" not in json.loads((tmp_path / "off/stats.json").read_text())
    # The warm-up step draws from its own stream: with the stand-in compile, the samples are the same.
    sample_agreement.main(["--arm", f"eager={tmp_path / 'off'}", "--arm", f"compiled={tmp_path / 'on'}",
                           "--out", str(tmp_path / "agreement.csv"), "--table", str(tmp_path / "agreement.md")])
    import pandas as pd
    table = pd.read_csv(tmp_path / "agreement.csv")
    assert list(table["arm"]) == ["eager", "compiled"] and (table["samples"] == 3 * len(load_problems(
        pipeline / "problems"))).all()
    assert (table["max_abs_dev_A"] == 0).all() and table["clash_free"].nunique() == 1
    assert set(table["method"]) == {"deft"} and table["git_commit"].notna().all()
    assert list(table["compile"]) == [False, True] and set(table["scale"]) == {"smoke"}
    assert (table["samples_per_problem"] == 3).all() and table["sampler"].str.startswith("ddim-").all()
    assert "from arm `eager`" in (tmp_path / "agreement.md").read_text()
    sample.main(["deft", *common, "--out", str(tmp_path / "fewer"), "--set", "problems.samples=2"])
    with pytest.raises(ConfigError, match="seeds differ from the first arm's"):
        sample_agreement.main(["--arm", f"eager={tmp_path / 'off'}", "--arm", f"fewer={tmp_path / 'fewer'}",
                               "--out", str(tmp_path / "x.csv")])


def test_denoising_check_writes_one_row_per_noise_level(pipeline, tmp_path):
    out = tmp_path / "denoising.csv"
    denoising.main(["--prior", str(pipeline / "prior/model"), "--problems", str(pipeline / "problems"),
                    "--out", str(out)])
    import pandas as pd
    table = pd.read_csv(out)
    assert list(table["t"]) == list(denoising.TIMESTEPS)
    assert (table["abar"].diff().dropna() < 0).all() and table["input_rmsd_A"].is_monotonic_increasing
    assert table["x0hat_valid_bonds"].between(0, 1).all() and (table["eps_mse"] > 0).all()


def test_designability_is_skipped_with_a_note_or_scored_by_a_plugin(pipeline, tmp_path, monkeypatch):
    out = tmp_path / "replacement"
    sample.main(["replacement", "--scale", "smoke", "--problems", str(pipeline / "problems"), "--prior",
                 str(pipeline / "prior/model"), "--out", str(out), "--no-progress"])
    skipped = tmp_path / "skipped.csv"
    evaluate.main(["--problems", str(pipeline / "problems"), "--samples", str(out), "--method", "replacement",
                   "--results", str(skipped)])
    rows = read_results(skipped).set_index("metric")
    assert rows.loc["sc_rmsd_median", "value"].isna().all()
    assert rows.loc["sc_rmsd_median", "note"].str.contains("not available offline").all()
    # A plug-in module (here a stand-in whose "refolding" returns each backbone unchanged: scRMSD 0).
    plugin = tmp_path / "fake_refold.py"
    plugin.write_text("def factory(weights):\n    return lambda backbones: [0.0 for _ in backbones]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    scored = tmp_path / "scored.csv"
    evaluate.main(["--problems", str(pipeline / "problems"), "--samples", str(out), "--method", "replacement",
                   "--results", str(scored), "--designability", "fake_refold:factory", "--designability-weights",
                   str(tmp_path)])
    rows = read_results(scored).set_index("metric")
    assert (rows.loc["sc_rmsd_median", "value"] == 0).all()
    designable = rows.loc["designable_success_rate", "value"].to_numpy()
    assert (designable == rows.loc["success_rate", "value"].to_numpy()).all()
    from tunebench.cli import run_cli
    with pytest.raises(SystemExit):
        run_cli(evaluate.main, ["--problems", str(pipeline / "problems"), "--samples", str(out), "--method", "r",
                                "--results", str(scored), "--designability", "fake_refold:factory",
                                "--designability-weights", str(tmp_path / "missing")])


def test_samples_do_not_depend_on_batching_across_problems(pipeline):
    from deft.protein.config import ProteinConfig
    from deft.protein.models import load_prior
    from tunebench.config import resolve

    prior = load_prior(pipeline / "prior/model")
    problem_list = load_problems(pipeline / "problems")
    outputs = []
    for batch_size, chunk in ((2, 2), (6, 4)):
        run = resolve("smoke", {"sample": {"batch_size": batch_size, "compute_chunk": chunk}}, cls=ProteinConfig)
        coords, seeds, cost = sample_problems("dps", prior, run, problem_list, 3, dps_scale=0.5)
        outputs.append(coords)
        assert cost["prior_vjps_per_sample"] == run.sample.steps
    assert np.allclose(outputs[0], outputs[1], atol=1e-5)
    assert seeds.tolist() == [[0, 1, 2], [1_000_000, 1_000_001, 1_000_002]]


@pytest.mark.parametrize("argv", [["--help"], ["table", "--help"]])
def test_report_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.main(argv)
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out
