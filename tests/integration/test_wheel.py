"""deptpulse installed as a wheel (``pip install .``, not editable) finds its data outside the checkout.

The wheel is built from this checkout and installed into a fresh venv without its dependencies,
which come from this venv through PYTHONPATH (a PYTHONPATH entry's .pth files are not read, so
this venv's editable install cannot shadow the wheel). Every command runs in a directory outside
the checkout, so nothing can be found relative to it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# Files the installed package reads: the example directory, the gateway's example integrations,
# the local stack's configuration and templates, the Kafka pom, migrations and JSON Schemas.
DATA = [
    "deptpulse/deploy/directory/example-org.yaml",
    "deptpulse/deploy/gateway/integrations.example.yaml",
    "deptpulse/deploy/prometheus/prometheus.yml",
    "deptpulse/deploy/alertmanager/templates/deptpulse.tmpl",
    "deptpulse/deploy/grafana/dashboards/scorecard.json",
    "deptpulse/deploy/kafka/pom.xml",
    "schemas/clickhouse/001_raw_events.sql",
    "schemas/jsonschema/service-event.v1.schema.json",
]
_NOT_SOURCE = (
    ".git",
    ".venv",
    ".deptpulse",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """(the wheel's venv, the environment to run it with), the wheel built from this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    # Built from a copy: an in-tree build would leave build/ in the checkout, whose stale files a
    # later build could package.
    source = root / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    dist = root / "dist"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dist), str(source)]
    subprocess.run(build, check=True, capture_output=True, timeout=600)
    (wheel,) = dist.glob("deptpulse-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [name for name in DATA if name not in names] == []

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        str(wheel),
    ]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("DEPTPULSE_", "PYTHON"))
    } | {"PYTHONPATH": sysconfig.get_paths()["purelib"], "DEPTPULSE_HOME": str(root / "home")}
    yield venv, env


def run(installed: tuple[Path, dict[str, str]], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    _, env = installed
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_installed_package_is_the_wheel_and_its_defaults_exist(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    venv, _ = installed
    probe = (
        "import deptpulse, json; from deptpulse.settings import Settings; s = Settings(); "
        "print(json.dumps([deptpulse.__file__, str(s.directory_path), str(s.gateway_integrations_path)]))"
    )

    result = run(installed, tmp_path, str(venv / "bin" / "python"), "-c", probe)

    assert result.returncode == 0, result.stderr
    module, directory, integrations = (Path(path) for path in json.loads(result.stdout))
    assert (
        module.is_relative_to(venv) and directory.is_relative_to(venv) and integrations.is_relative_to(venv)
    )
    assert directory.is_file() and integrations.is_file()


def test_rules_generate_writes_what_the_checkout_has(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    venv, _ = installed
    out = tmp_path / "deploy"

    result = run(
        installed,
        tmp_path / "elsewhere",
        str(venv / "bin" / "deptpulse"),
        "rules",
        "generate",
        "--deploy-dir",
        str(out),
    )

    assert result.returncode == 0, result.stderr
    generated = sorted(path.relative_to(out) for path in out.rglob("*") if path.is_file())
    assert len(generated) >= 10
    assert {str(path): (out / path).read_text() for path in generated} == {
        str(path): (REPO / "deploy" / path).read_text() for path in generated
    }


def test_schema_export_check_and_migrations_find_their_files(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    venv, _ = installed
    deptpulse = str(venv / "bin" / "deptpulse")

    schemas = run(installed, tmp_path, deptpulse, "schema", "export", "--check")
    migrated = run(installed, tmp_path, deptpulse, "db", "migrate")

    assert schemas.returncode == 0 and "JSON Schema files match the models" in schemas.stdout, schemas.stderr
    assert migrated.returncode == 0 and "is up to date" in migrated.stdout, migrated.stderr
    assert "applied 001_" in migrated.stdout
