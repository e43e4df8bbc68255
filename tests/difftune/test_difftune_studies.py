"""The PEFT table and ablations around the main comparison: run names, the PEFT table layout, the ablation figure, and
the rule that picks the single-dataset studies' dataset."""

import pandas as pd
import pytest

from difftune.report import peft_table, plot_ablation
from difftune.study_dataset import study_dataset, study_datasets
from difftune.variants import Variant, parse_variant
from tunebench.config import ConfigError


@pytest.mark.parametrize("name, expected", [
    ("diff_tuning", Variant("diff_tuning")),
    ("full_ft+lora", Variant("full_ft", "lora")),
    ("diff_tuning@tau=0.5", Variant("diff_tuning", key="tau", value=0.5)),
    ("diff_tuning@retention_size=100", Variant("diff_tuning", key="retention_size", value=100)),
    ("diff_tuning+bitfit@retention=source", Variant("diff_tuning", "bitfit", "retention", "source")),
    ("full_ft@seed=2", Variant("full_ft", key="seed", value=2)),
    ("full_ft@steps=4000", Variant("full_ft", steps=4000)),
    ("diff_tuning@seed=1@steps=8000", Variant("diff_tuning", key="seed", value=1, steps=8000)),
])
def test_run_names_round_trip(name, expected):
    assert parse_variant(name) == expected and expected.name == name


def test_run_names_give_flags_and_fold_defaults_into_the_plain_run():
    assert parse_variant("diff_tuning@retention_weight=0.01").set_flags() == [
        "--set", "difftune.retention_weight=0.01"]
    assert parse_variant("diff_tuning@retention=source").set_flags() == []
    assert parse_variant("diff_tuning@retention=source").retention_kind == "source"
    assert parse_variant("diff_tuning@tau=1").plain(2000).name == "diff_tuning"  # the paper default τ
    assert parse_variant("diff_tuning@retention_ratio=0.2").plain(2000).name == "diff_tuning"
    assert parse_variant("diff_tuning@retention_size=2000").plain(2000).name == "diff_tuning"
    assert parse_variant("diff_tuning@retention_size=500").plain(2000).name == "diff_tuning@retention_size=500"
    assert Variant("diff_tuning", key="tau", value=0.0).name == "diff_tuning@tau=0"


def test_seed_names_set_the_training_seed_and_seed_0_is_the_main_run():
    assert parse_variant("full_ft@seed=2").set_flags() == ["--set", "train.seed=2"]
    assert parse_variant("full_ft@seed=2").seed == 2 and parse_variant("full_ft").seed == 0  # TrainConfig's default
    assert parse_variant("diff_tuning@seed=0").plain(2000).name == "diff_tuning"
    assert parse_variant("diff_tuning@seed=1").plain(2000).name == "diff_tuning@seed=1"


def test_training_lengths_set_the_steps_and_the_scales_length_is_the_plain_run():
    assert parse_variant("diff_tuning@seed=1@steps=4000").set_flags() == [
        "--set", "train.seed=1", "--set", "train.steps=4000"]
    assert parse_variant("full_ft@steps=4000").set_flags() == ["--set", "train.steps=4000"]
    assert parse_variant("diff_tuning@seed=0@steps=1000").plain(2000, 1000).name == "diff_tuning"
    assert parse_variant("diff_tuning@seed=1@steps=1000").plain(2000, 1000).name == "diff_tuning@seed=1"
    assert parse_variant("diff_tuning@seed=0@steps=4000").plain(2000, 1000).name == "diff_tuning@steps=4000"
    assert parse_variant("diff_tuning@seed=1@steps=4000").plain(2000).name == "diff_tuning@seed=1@steps=4000"
    assert parse_variant("full_ft@seed=1@steps=4000").with_steps(None).name == "full_ft@seed=1"


@pytest.mark.parametrize("name, message", [
    ("adam", "method 'adam'"), ("full_ft+qlora", "PEFT method 'qlora'"), ("full_ft+none", "PEFT method"),
    ("diff_tuning@lr=1", "KEY=VALUE"), ("diff_tuning@tau=high", "tau needs a float"),
    ("diff_tuning@retention=imagenet", "retention must be one of"), ("diff_tuning@retention_size=0", "positive"),
    ("full_ft@seed=-1", "non-negative"), ("full_ft@seed=one", "seed needs a int"),
    ("full_ft@steps=0", "steps must be a positive integer"), ("full_ft@seed=1@steps=many", "positive integer"),
    ("full_ft@steps=10@seed=1", "KEY=VALUE"),
])
def test_bad_run_names_say_which_part_is_wrong(name, message):
    with pytest.raises(ConfigError, match=message):
        parse_variant(name)


def test_the_study_dataset_rule_reads_the_registry_not_the_results():
    mini = ["digits", "lfw_faces", "textures", "mnist5k", "fashion_footwear"]
    assert study_dataset("largest", mini) == "mnist5k"  # 4,000 training images, the most of these
    assert study_dataset("largest", ["textures"]) == "textures"
    assert study_dataset("first", mini) == "digits"
    assert study_dataset("first", ["food101", "sun397"]) == "food101"
    assert study_datasets("largest", mini, 2) == ["mnist5k", "fashion_footwear"]  # 4,000 and 3,000 images
    assert study_datasets("first", mini, 2) == ["digits", "lfw_faces"]
    with pytest.raises(ConfigError, match="'difftune.regime.datasets.rule': cannot pick 6 of the 5 datasets"):
        study_datasets("largest", mini, 6, "difftune.regime.datasets.rule")


@pytest.mark.parametrize("rule, datasets, message", [
    ("best_fid", ["mnist5k"], "'best_fid', not a rule; choose one of largest: .*; first: "),
    ("largest", ["mnist5k", "food101"], r"\['food101'\] lack .* use the rule 'first'"),
    ("largest", ["nowhere"], r"\['nowhere'\] lack"),
    ("first", [], "no dataset to study"),
])
def test_a_study_dataset_rule_that_cannot_apply_names_the_key(rule, datasets, message):
    with pytest.raises(ConfigError, match=message) as error:
        study_dataset(rule, datasets)
    assert "difftune." in str(error.value)


def _row(method, dataset, metric, value):
    return {"experiment": "difftune_peft", "method": method, "dataset": dataset, "metric": metric, "value": value,
            "seed": 0, "scale": "mini", "model": "m", "steps": 50, "sampler": "ddpm", "guidance": 1.5,
            "n_samples": 500, "extractor": "local-x", "reference": f"{dataset}.npz", "git_commit": "",
            "config_hash": "", "note": ""}


def test_peft_table_pairs_each_peft_method_with_and_without_diff_tuning():
    fids = {("full_ft+lora", "mnist5k"): 100.0, ("full_ft+lora", "digits"): 60.0,
            ("diff_tuning+lora", "mnist5k"): 80.0, ("diff_tuning+lora", "digits"): 56.0,
            ("full_ft", "mnist5k"): 90.0, ("full_ft", "digits"): 50.0,
            ("diff_tuning", "mnist5k"): 95.0, ("diff_tuning", "digits"): 55.0}
    half_widths = {"mnist5k": 15.0, "digits": 1.0}  # mnist5k's intervals overlap within each pair, digits' do not
    rows = [{**_row(method, dataset, "fid_local", value), "ci_low": value - half_widths[dataset],
             "ci_high": value + half_widths[dataset], "note": "95% interval: jackknife"}
            for (method, dataset), value in fids.items()]
    rows += [_row(method, "mnist5k", "trainable_percent", share)
             for method, share in (("full_ft+lora", 12.5), ("diff_tuning+lora", 12.5), ("full_ft", 100.0),
                                   ("diff_tuning", 100.0))]
    table = peft_table(pd.DataFrame(rows), "difftune_peft")
    lines = {(row[0].text, row[1].text): [cell.text for cell in row[2:]] for row in table.rows}
    assert list(lines) == [("all weights", "full_ft"), ("all weights", "diff_tuning"), ("LoRA", "full_ft"),
                           ("LoRA", "diff_tuning")]
    assert lines["LoRA", "diff_tuning"] == ["12.50", "80.00 [65.00, 95.00]", "56.00 [55.00, 57.00]", "68.00",
                                            "-15.0%"]  # (68 - 80) / 80
    assert lines["all weights", "diff_tuning"][-1] == "+7.1%"  # (75 - 70) / 70
    assert lines["LoRA", "full_ft"][-1] == "—"
    assert table.group_starts == [0, 2]
    # Bold marks the lower FID of a PEFT method's pair where the intervals separate (digits: all weights' full_ft,
    # LoRA's diff_tuning), not the lowest of the column, and no lead whose intervals overlap (mnist5k).
    bold = {(row[0].text, row[1].text, table.header[index]) for row in table.rows
            for index, cell in enumerate(row) if cell.bold}
    assert bold == {("all weights", "full_ft", "digits"), ("LoRA", "diff_tuning", "digits")}
    assert "bold: the lower of a PEFT method's two objectives" in table.caption and "jackknife" in table.caption


def test_one_run_per_point_shows_its_interval_and_seeds_show_their_band():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarks.figures import plot_lines

    points = pd.DataFrame({"x": [0.0, 1.0], "value": [50.0, 48.0], "ci_low": [48.0, 47.0], "ci_high": [52.0, 49.5]})
    fig, ax = plt.subplots()
    plot_lines(ax, points, "x", "one seed")
    (bars,) = ax.containers  # one error bar per point, spanning its interval
    assert [segment[:, 1].tolist() for segment in bars.lines[2][0].get_segments()] == [[48.0, 52.0], [47.0, 49.5]]
    seeds = pd.concat([points, points.assign(value=[51.0, 49.0])])  # two rows per x: the min–max band, no bars
    fig2, ax2 = plt.subplots()
    plot_lines(ax2, seeds, "x", "two seeds")
    assert not ax2.containers and len(ax2.collections) == 1
    plt.close(fig)
    plt.close(fig2)


def test_ablation_figure_plots_one_key_and_rejects_mixed_sweeps(tmp_path):
    rows = pd.DataFrame([_row(f"diff_tuning@tau={tau}", "mnist5k", "fid_local", 100 - 10 * tau)
                         for tau in (0, 0.5, 1, 1.5)] + [_row("full_ft", "mnist5k", "fid_local", 99.0)])
    plot_ablation(rows, tmp_path / "tau.png")
    assert (tmp_path / "tau.png").stat().st_size > 10_000
    mixed = pd.concat([rows, pd.DataFrame([_row("diff_tuning@retention_weight=1", "mnist5k", "fid_local", 1.0)])])
    with pytest.raises(ConfigError, match="sweeps one key"):
        plot_ablation(mixed, tmp_path / "mixed.png")
