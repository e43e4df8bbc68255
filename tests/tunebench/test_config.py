"""Config: paper defaults, each scale's settings file, YAML/--set overrides and their validation errors."""

import math
import re
import shutil

import pytest
import yaml

import tunebench.config
from deft.config import AmortisedConfig, DeftConfig
from deft.protein.config import AmortisedRun, HeadRun, PriorRun, ProteinConfig
from difftune.config import FineTuneConfig, RetentionRunConfig
from difftune.controlnet.config import ControlTrainConfig
from tunebench.config import (
    SCALE_NAMES,
    ConfigError,
    RunConfig,
    flat_keys,
    from_dict,
    load_yaml,
    parse_set,
    resolve,
    scale_settings,
    settings_file,
    to_dict,
)

# Every config class a stage resolves, and what its paper-scale config needs besides the paper defaults (the
# local files and choices the paper scale leaves to the user).
STAGE_CLASSES = {RunConfig: {}, FineTuneConfig: {}, RetentionRunConfig: {},
                 ControlTrainConfig: {}, DeftConfig: {},
                 AmortisedConfig: {}, ProteinConfig: {"data": {"root": "pdb"}}, PriorRun: {"data": {"root": "pdb"}},
                 HeadRun: {"data": {"root": "pdb"}}, AmortisedRun: {"data": {"root": "pdb"}}}


def test_paper_defaults_are_dit_xl2_and_difftuning_recipe():
    cfg = resolve("paper")
    assert (cfg.model.num_layers, cfg.model.num_heads * cfg.model.head_dim, cfg.model.patch_size) == (28, 1152, 2)
    assert (cfg.model.num_classes, cfg.model.learn_sigma, cfg.model.vae_scaling) == (1000, True, 0.18215)
    assert (cfg.train.lr, cfg.train.batch_size, cfg.train.steps, cfg.train.ema_decay) == (1e-4, 32, 24000, 0.9999)
    assert (cfg.sample.sampler, cfg.sample.steps, cfg.sample.guidance_scale, cfg.sample.guided_channels) == (
        "ddpm", 250, 1.5, 3)


def test_scale_overrides_and_later_overrides_win():
    cfg = resolve("mini", {"train": {"steps": 7}}, parse_set(["train.steps=9", "sample.guidance_scale=4"]))
    assert cfg.model.sample_size == 32 and cfg.model.patch_size == 4 and cfg.data.resolution == 32
    assert cfg.train.steps == 9
    assert cfg.sample.guidance_scale == 4.0 and isinstance(cfg.sample.guidance_scale, float)


def test_unknown_key_is_named_with_suggestion():
    with pytest.raises(ConfigError, match=r"unknown config key 'train.lrr' \(did you mean 'train.lr'\?\)"):
        resolve("mini", {"train": {"lrr": 1e-3}})
    with pytest.raises(ConfigError, match="unknown config key 'optim'"):
        resolve("mini", {"optim": {}})


@pytest.mark.parametrize("override, message", [
    ({"train": {"steps": "many"}}, "'train.steps' must be int"),
    ({"train": {"steps": 2.5}}, "'train.steps' must be int"),
    ({"train": {"lr": math.nan}}, "'train.lr' is nan"),
    ({"train": {"lr": math.inf}}, "'train.lr' is inf"),
    ({"model": {"learn_sigma": "yes"}}, "'model.learn_sigma' must be bool"),
    ({"model": {"patch_size": 5}}, "'model.sample_size' = 32 must be divisible"),
    ({"sample": {"sampler": "euler"}}, "'sample.sampler'"),
    ({"train": {"log_with": "mlflow"}}, "'train.log_with' = 'mlflow' must be one of tensorboard, wandb, none"),
    ({"train": {"batch_size": 0}}, "'train.batch_size' = 0 must be positive"),
    ({"train": 3}, "section 'train' must be a mapping"),
])
def test_bad_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve("mini", override)


def test_yaml_file_and_roundtrip(tmp_path):
    path = tmp_path / "o.yaml"
    path.write_text("train:\n  steps: 11\nmodel:\n  pretrained: null\n")
    cfg = resolve("smoke", load_yaml(path))
    assert cfg.train.steps == 11
    assert to_dict(from_dict(to_dict(cfg))) == to_dict(cfg)
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_yaml(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")


def test_set_requires_key_value():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set(["train.steps"])


def test_exponent_floats_without_a_dot_are_numbers():
    # YAML 1.1 (PyYAML) reads 1e-4 as the string '1e-4'; a float key takes it as the number it means.
    cfg = resolve("smoke", parse_set(["train.lr=1e-4", "diffusion.beta_end=2E-2"]), {"train": {"weight_decay": "5e-2"}})
    assert (cfg.train.lr, cfg.diffusion.beta_end, cfg.train.weight_decay) == (1e-4, 2e-2, 5e-2)
    with pytest.raises(ConfigError, match="'train.lr' must be float, got 'fast'"):
        resolve("smoke", {"train": {"lr": "fast"}})
    with pytest.raises(ConfigError, match="'train.lr' is inf"):
        resolve("smoke", parse_set(["train.lr=1e400"]))
    with pytest.raises(ConfigError, match="'train.steps' must be int"):
        resolve("smoke", parse_set(["train.steps=1e3"]))


@pytest.mark.parametrize("scale", SCALE_NAMES)
@pytest.mark.parametrize("cls", list(STAGE_CLASSES), ids=lambda cls: cls.__name__)
def test_every_stage_takes_its_scale_settings_from_the_file(cls, scale):
    # The last of the class's sections to set a key wins (e.g. difftune's train.steps over core's).
    expected = {}
    for section in cls.SCALE_SECTIONS:
        expected.update(flat_keys(scale_settings(scale)[section]))
    resolved = flat_keys(to_dict(resolve(scale, STAGE_CLASSES[cls] if scale == "paper" else {}, cls=cls)))
    assert expected or scale == "paper"  # the paper scale keeps most papers' values
    assert {key: resolved[key] for key in expected} == expected


@pytest.mark.parametrize("scale", SCALE_NAMES)
def test_every_settings_section_is_applied_by_a_stage(scale):
    used = {section for cls in STAGE_CLASSES for section in cls.SCALE_SECTIONS}
    assert set(scale_settings(scale)) == used


def copy_settings(tmp_path, monkeypatch, edit) -> None:
    """Point the loader at a copy of the workflow configs whose mini settings `edit` changed in place."""
    for scale in SCALE_NAMES:
        shutil.copy(settings_file(scale), tmp_path)
    config = yaml.safe_load((tmp_path / "mini.yaml").read_text())
    edit(config["settings"])
    (tmp_path / "mini.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setattr(tunebench.config, "SETTINGS_DIR", tmp_path)


def test_editing_the_scale_file_changes_resolution(tmp_path, monkeypatch):
    assert resolve("mini").train.steps == scale_settings("mini")["core"]["train"]["steps"]
    copy_settings(tmp_path, monkeypatch, lambda settings: settings["core"]["train"].update(steps=123))
    assert resolve("mini").train.steps == 123
    assert resolve("mini", cls=FineTuneConfig).train.steps == 1000  # its own section still wins
    assert resolve("smoke").train.steps == 20


def test_a_typo_in_the_settings_names_the_file_and_key(tmp_path, monkeypatch):
    copy_settings(tmp_path, monkeypatch, lambda settings: settings["difftune"]["train"].update(stepz=5))
    mini = re.escape(str(tmp_path / "mini.yaml"))
    with pytest.raises(ConfigError, match=rf"{mini}, settings.difftune: unknown config key 'train.stepz' "
                                          r"\(did you mean 'train.steps'\?\)"):
        resolve("mini", cls=FineTuneConfig)


def test_a_missing_section_or_file_names_the_file(tmp_path, monkeypatch):
    copy_settings(tmp_path, monkeypatch, lambda settings: settings.pop("protein_head"))
    mini = re.escape(str(tmp_path / "mini.yaml"))
    with pytest.raises(ConfigError, match=rf"{mini}: 'settings' has no section 'protein_head' \(applied by HeadRun\)"):
        resolve("mini", cls=HeadRun)
    assert resolve("mini", cls=PriorRun).train.steps == scale_settings("mini")["protein_prior"]["train"]["steps"]
    (tmp_path / "smoke.yaml").unlink()
    with pytest.raises(ConfigError, match=rf"config file {re.escape(str(tmp_path / 'smoke.yaml'))} does not exist"):
        resolve("smoke")


def test_no_scale_dicts_remain_in_python():
    assert not hasattr(tunebench.config, "SCALES")
    assert not [cls for cls in STAGE_CLASSES if hasattr(cls, "SCALE_OVERRIDES")]


def test_a_rehearsal_applies_its_settings_over_the_scale_key_by_key(monkeypatch):
    rehearsal = tunebench.config.SETTINGS_DIR / "rehearsal.yaml"
    monkeypatch.setenv(tunebench.config.REHEARSAL_ENV, str(rehearsal))
    run = resolve("paper", cls=FineTuneConfig)
    # rehearsal.yaml's difftune section replaces the steps; paper.yaml's core keys it leaves alone stay
    assert (run.train.steps, run.train.batch_size, run.model.num_layers) == (2, 5, 1)
    assert run.model.pretrained is None and run.model.sample_size == 32
    assert resolve("paper", cls=ControlTrainConfig).data.hflip is False  # paper.yaml's own, kept under the overlay
    monkeypatch.setattr(tunebench.config, "_load_settings", lambda path: {} if path == rehearsal else {"core": []})
    with pytest.raises(ConfigError, match=f"under rehearsal {rehearsal}, settings.core"):
        resolve("paper")
    monkeypatch.undo()
    assert resolve("paper", cls=FineTuneConfig).train.steps == 24000  # no rehearsal: the papers' recipe
