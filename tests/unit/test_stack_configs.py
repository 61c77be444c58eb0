"""The configuration files of the local stack and of docker compose: valid, and consistent with settings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deptpulse.settings import EXAMPLE_DIRECTORY, REPO_ROOT, Settings
from deptpulse.stack import ALERTMANAGER_CONFIG, PROMETHEUS_CONFIG, render_prometheus_config
from schemas.directory import load_directory

pytestmark = pytest.mark.unit

COMPOSE_FILE = REPO_ROOT / "deploy" / "compose" / "docker-compose.yml"


def run_checker(*argv: str) -> None:
    """Run promtool/amtool (Debian packages the Makefile installs); a rejected file fails the test."""
    if shutil.which(argv[0]) is None:
        pytest.fail(f"{argv[0]} not found on PATH; run `make setup` (as root) or apt-get install it")
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def scrape_targets(config: dict[str, Any]) -> dict[str, list[str]]:
    return {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}


def test_rendered_prometheus_config_uses_the_configured_ports() -> None:
    settings = Settings(prometheus_port=1001, alertmanager_port=1002, worker_port=1003, gateway_port=1004)

    config = yaml.safe_load(render_prometheus_config(settings))

    assert scrape_targets(config) == {
        "prometheus": ["127.0.0.1:1001"],
        "alertmanager": ["127.0.0.1:1002"],
        "deptpulse-worker": ["127.0.0.1:1003"],
        "deptpulse-gateway": ["127.0.0.1:1004"],
    }
    assert config["alerting"]["alertmanagers"][0]["static_configs"] == [{"targets": ["127.0.0.1:1002"]}]
    assert config["rule_files"] == [
        str(PROMETHEUS_CONFIG.parent / "rules" / "*.yml"),
        str(PROMETHEUS_CONFIG.parent / "rules" / "generated" / "*.yml"),
    ]


def test_the_deploy_prometheus_config_already_uses_the_default_ports() -> None:
    deployed = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    rendered = yaml.safe_load(render_prometheus_config(Settings()))

    assert scrape_targets(deployed) == scrape_targets(rendered)
    assert deployed["alerting"] == rendered["alerting"]


def test_promtool_accepts_the_config_and_rules(tmp_path: Path) -> None:
    rendered = tmp_path / "prometheus.yml"
    rendered.write_text(render_prometheus_config(Settings()))

    run_checker("promtool", "check", "config", str(PROMETHEUS_CONFIG))
    run_checker("promtool", "check", "config", str(rendered))


def test_amtool_accepts_the_alertmanager_config() -> None:
    run_checker("amtool", "check-config", str(ALERTMANAGER_CONFIG))


def test_compose_file_is_valid_and_matches_the_default_settings() -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    services = compose["services"]
    defaults = Settings()

    assert {"kafka", "clickhouse", "prometheus", "alertmanager", "grafana", "worker", "gateway"} <= set(
        services
    )
    build = services["worker"]["build"]
    assert (COMPOSE_FILE.parent / build["context"] / build["dockerfile"]).is_file()
    assert services["worker"]["command"] == ["worker"]
    assert services["gateway"]["command"] == ["gateway", "--host", "0.0.0.0"]
    assert (
        f"PLAINTEXT://{defaults.kafka_bootstrap_servers}"
        in services["kafka"]["environment"]["KAFKA_LISTENERS"]
    )
    assert (
        services["worker"]["environment"]["DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS"]
        == defaults.kafka_bootstrap_servers
    )
    assert f"--web.listen-address=127.0.0.1:{defaults.prometheus_port}" in services["prometheus"]["command"]
    assert (
        f"--web.listen-address=127.0.0.1:{defaults.alertmanager_port}" in services["alertmanager"]["command"]
    )


@pytest.mark.parametrize("service", ["prometheus", "alertmanager"])
def test_compose_mounts_the_deploy_files(service: str) -> None:
    volumes = yaml.safe_load(COMPOSE_FILE.read_text())["services"][service]["volumes"]
    bind_mounts = [volume.split(":")[0] for volume in volumes if volume.startswith("..")]

    assert bind_mounts
    for source in bind_mounts:
        assert (COMPOSE_FILE.parent / source).exists(), source


def test_compose_gives_the_gateway_every_secret_its_integrations_file_names() -> None:
    """Without them the gateway refuses to start (and compose restarts it in a loop)."""
    from producers.integrations import parse_integrations

    integrations = parse_integrations(yaml.safe_load(Settings().gateway_integrations_path.read_text()))
    referenced = {
        credential.secret_env
        for integration in integrations.integrations
        for credential in integration.credentials
        if credential.secret_env
    }
    environment = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["gateway"]["environment"]

    assert referenced and referenced <= set(environment)
    for name in referenced:  # from the environment or .env, never a literal in the file
        assert environment[name].startswith(f"${{{name}:?"), environment[name]
    assert environment["DEPTPULSE_KAFKA_BOOTSTRAP_SERVERS"] == Settings().kafka_bootstrap_servers


def test_compose_grafana_reads_clickhouse_as_the_read_only_user() -> None:
    from schemas.observability.dashboards import datasources

    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    (clickhouse,) = [s for s in datasources()["datasources"] if s["type"] == "grafana-clickhouse-datasource"]
    password_env = clickhouse["secureJsonData"]["password"].strip("${}")

    assert password_env in services["grafana"]["environment"]
    access = services["clickhouse-access"]
    script = " ".join(access["command"])
    assert "roles.sql" in script and f"CREATE USER IF NOT EXISTS {clickhouse['jsonData']['username']}" in script
    assert "GRANT deptpulse_grafana_ro TO grafana" in script
    (mount,) = access["volumes"]
    assert (COMPOSE_FILE.parent / mount.split(":")[0] / "roles.sql").is_file()
    assert services["grafana"]["depends_on"]["clickhouse-access"]["condition"] == "service_completed_successfully"


def test_compose_runs_the_wecom_relay_with_every_robot_variable_the_directory_names() -> None:
    relay = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["wecom-relay"]
    directory = load_directory(EXAMPLE_DIRECTORY)

    assert relay["command"] == ["wecom-relay"]  # bound to 127.0.0.1:19099, as Alertmanager's config says
    named = {d.head.wecom_webhook for d in directory.departments if d.head.wecom_webhook}
    assert named and named <= set(relay["environment"])
