"""The config schema on its own (jsonschema, as Snakemake's `validate` applies it): the committed scale files pass,
and an ablation knob with no values is refused by name before any job is planned."""

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "workflows/schemas/config.schema.yaml").read_text())


def _config(scale: str) -> dict:
    """A committed scale file as Snakemake reads it."""
    return yaml.safe_load((ROOT / f"workflows/config/{scale}.yaml").read_text())


@pytest.mark.parametrize("scale", ["smoke", "mini", "paper"])
def test_committed_scale_files_pass_the_schema(scale):
    jsonschema.validate(_config(scale), SCHEMA)


@pytest.mark.parametrize("knob", ["tau", "retention_weight", "retention_ratio", "retention_set"])
def test_an_empty_ablation_knob_is_refused_by_name(knob):
    config = copy.deepcopy(_config("mini"))
    config["difftune"]["ablations"][knob] = []
    with pytest.raises(jsonschema.ValidationError) as error:
        jsonschema.validate(config, SCHEMA)
    assert knob in error.value.json_path and "non-empty" in error.value.message
