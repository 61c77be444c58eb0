"""docs/configuration.md is generated from the Settings model, and says all a reader needs."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from deptpulse.cli import main
from deptpulse.settings import CONFIGURATION_REFERENCE, Settings, reference_markdown

pytestmark = pytest.mark.unit


def test_committed_reference_matches_the_settings_model() -> None:
    committed = CONFIGURATION_REFERENCE.read_text(encoding="utf-8") if CONFIGURATION_REFERENCE.is_file() else ""
    assert committed == reference_markdown(), "run `deptpulse config reference` and commit docs/configuration.md"


def test_every_setting_is_described() -> None:
    undescribed = [name for name, field in Settings.model_fields.items() if not field.description]
    assert not undescribed, f"give these settings a Field(description=...): {undescribed}"


def test_every_variable_appears_once_with_secrets_marked() -> None:
    text = reference_markdown()
    for name in Settings.model_fields:
        assert text.count(f"| `DEPTPULSE_{name.upper()}`") == 1, name
    for secret in ("DEPTPULSE_KAFKA_SASL_PASSWORD", "DEPTPULSE_CLICKHOUSE_URL"):
        row = next(line for line in text.splitlines() if line.startswith(f"| `{secret}`"))
        assert "**secret**" in row
    assert "`KAFKA_HOME`" in text  # the alias without the prefix is named too


def test_defaults_do_not_depend_on_the_machine() -> None:
    text = reference_markdown()
    assert "/root/" not in text and "/home/" not in text
    assert "`~/.cache/deptpulse/kafka`" in text
    assert "`deploy/directory/example-org.yaml` (in the repository)" in text


def test_check_command_agrees_with_the_file() -> None:
    result = CliRunner().invoke(main, ["config", "reference", "--check"])
    assert result.exit_code == 0, result.output
    assert "matches the settings" in result.output
