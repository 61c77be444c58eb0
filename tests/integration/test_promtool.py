"""promtool on the generated rules: they load, the hand-written unit tests pass, every alert has a case
that fires and one that must not, and every dashboard query parses. Needs only the promtool binary."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deptpulse.settings import EXAMPLE_DIRECTORY, REPO_ROOT
from schemas.directory import load_directory
from schemas.observability import RULES_DIR
from schemas.observability.dashboards import dashboards, panel_queries
from schemas.observability.render import to_yaml
from schemas.observability.rules import RuleOptions, alerts, rule_files

pytestmark = pytest.mark.integration

RULES = REPO_ROOT / "deploy" / RULES_DIR
TESTS = REPO_ROOT / "deploy" / "prometheus" / "rules" / "tests"
# Values Grafana would substitute for our variables before sending a query.
SAMPLE_VARIABLES = {
    "provider_department": "it",
    "window": "7d",
    "service": ".+",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: apt-get install prometheus (or `make system-packages` as root)"
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_generated_rule_files_pass_promtool_check(promtool: str) -> None:
    files = sorted(RULES.glob("*.yml"))
    assert [f.name for f in files] == ["pipeline.yml", "policy.yml", "satisfaction.yml", "sla.yml"]
    result = run(promtool, "check", "rules", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lint" not in (result.stdout + result.stderr).lower()


def test_rules_generated_with_other_options_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    directory = load_directory(EXAMPLE_DIRECTORY)
    options = RuleOptions(
        runbook_base_url="https://wiki.example.com/runbooks/deptpulse",
        satisfaction_window="28d",
        falling_window="1h",
        baseline_window="24h",
        source_silence_overrides={"hr-survey": 691200, "legacy.csv": 3600},
    )
    paths = []
    for name, document in rule_files(directory, options).items():
        paths.append(tmp_path / name)
        paths[-1].write_text(to_yaml(document, directory.organisation), encoding="utf-8")
    result = run(promtool, "check", "rules", *map(str, paths))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool: str) -> None:
    files = sorted(TESTS.glob("*.yml"))
    assert len(files) >= 3
    result = run(promtool, "test", "rules", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr


def _alert_cases() -> dict[str, dict[str, int]]:
    """Per alert name: how many unit-test cases expect it to fire, and how many expect silence."""
    cases: dict[str, dict[str, int]] = {}
    for path in TESTS.glob("*.yml"):
        document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        for test in document["tests"]:
            for case in test.get("alert_rule_test") or []:
                kind = "fires" if case.get("exp_alerts") else "silent"
                counts = cases.setdefault(case["alertname"], {"fires": 0, "silent": 0})
                counts[kind] += 1
    return cases


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    cases = _alert_cases()
    generated = {alert["alert"] for alert in alerts(rule_files(load_directory(EXAMPLE_DIRECTORY)))}
    missing = {
        name: cases.get(name, {"fires": 0, "silent": 0})
        for name in generated
        if not cases.get(name, {}).get("fires") or not cases.get(name, {}).get("silent")
    }
    assert not missing, f"alerts without a firing and a must-not-fire promtool case: {missing}"
    assert set(cases) <= generated, f"tests name alerts that no longer exist: {set(cases) - generated}"


def _substitute(query: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return SAMPLE_VARIABLES[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", value, query)


def test_every_dashboard_query_parses(promtool: str, tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:{name.removesuffix('.json')}:panel_{panel_id}_{i}", "expr": _substitute(query)}
        for name, dashboard in dashboards(load_directory(EXAMPLE_DIRECTORY)).items()
        for i, (panel_id, datasource, query) in enumerate(panel_queries(dashboard))
        if datasource == "prometheus"
    ]
    assert len(rules) > 40
    throwaway = tmp_path / "dashboard_queries.yml"
    throwaway.write_text(
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8"
    )
    result = run(promtool, "check", "rules", str(throwaway))
    assert result.returncode == 0, result.stdout + result.stderr
