"""The department directory turned into Prometheus, Alertmanager and Grafana contracts.

Pure functions: :func:`generate_files` returns every generated file's path (relative to
``deploy/``) and text; ``deptpulse rules generate`` writes them and ``--check`` compares them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.directory import Directory
from schemas.observability.alertmanager import AlertmanagerOptions, alertmanager_config, directory_template
from schemas.observability.dashboards import DashboardOptions, dashboard_provider, dashboards, datasources
from schemas.observability.render import to_json, to_yaml
from schemas.observability.rules import RuleOptions, rule_files

RULES_DIR = "prometheus/rules/generated"
ALERTMANAGER_CONFIG = "alertmanager/generated/alertmanager.yml"
ALERTMANAGER_TEMPLATES_DIR = "alertmanager/templates"
DASHBOARDS_DIR = "grafana/dashboards"
PROVISIONING_DIR = "grafana/provisioning"

__all__ = [
    "ALERTMANAGER_CONFIG",
    "DASHBOARDS_DIR",
    "RULES_DIR",
    "AlertmanagerOptions",
    "DashboardOptions",
    "ObservabilityOptions",
    "RuleOptions",
    "generate_files",
]


@dataclass(frozen=True)
class ObservabilityOptions:
    rules: RuleOptions = field(default_factory=RuleOptions)
    alertmanager: AlertmanagerOptions = field(default_factory=AlertmanagerOptions)
    dashboards: DashboardOptions = field(default_factory=DashboardOptions)


def generate_files(directory: Directory, options: ObservabilityOptions | None = None) -> dict[str, str]:
    """Every generated file: path relative to ``deploy/`` -> content."""
    options = options or ObservabilityOptions()
    organisation = directory.organisation
    files = {
        f"{RULES_DIR}/{name}": to_yaml(document, organisation)
        for name, document in rule_files(directory, options.rules).items()
    }
    files[ALERTMANAGER_CONFIG] = to_yaml(alertmanager_config(directory, options.alertmanager), organisation)
    files[f"{ALERTMANAGER_TEMPLATES_DIR}/directory.tmpl"] = directory_template(directory)
    files |= {
        f"{DASHBOARDS_DIR}/{name}": to_json(document) for name, document in dashboards(directory).items()
    }
    files[f"{PROVISIONING_DIR}/datasources/deptpulse.yml"] = to_yaml(
        datasources(options.dashboards), organisation
    )
    files[f"{PROVISIONING_DIR}/dashboards/deptpulse.yml"] = to_yaml(
        dashboard_provider(options.dashboards), organisation
    )
    return files
