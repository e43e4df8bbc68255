"""Config: paper defaults, scale overrides, YAML/--set overrides and their validation errors."""

import math

import pytest

from tunebench.config import ConfigError, from_dict, load_yaml, parse_set, resolve, to_dict


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
