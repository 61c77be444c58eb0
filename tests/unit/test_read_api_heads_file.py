"""The heads file: secrets from the environment, refused when short, shared or missing, with a
message that names the department and never the value; signed links."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from deptpulse.cli import main
from deptpulse.settings import EXAMPLE_DIRECTORY, REPO_ROOT
from schemas.directory import Directory, load_directory
from stream_processors.access.heads import HeadsError, link_signature, load_heads, parse_heads, signed_link
from stream_processors.access.rules import ReadAccess

pytestmark = pytest.mark.unit

HR_TOKEN = "hr-token-" + "x" * 32
HR_LINK = "hr-link-secret-" + "y" * 32
IT_TOKEN = "it-token-" + "z" * 32
ENVIRON = {"HR_TOKEN": HR_TOKEN, "HR_LINK": HR_LINK, "IT_TOKEN": IT_TOKEN}
RAW: dict[str, Any] = {
    "heads": {
        "hr": {"token_env": "HR_TOKEN", "link_secret_env": "HR_LINK", "proxy_users": ["wang.fang"]},
        "it": {"token_env": "IT_TOKEN"},
    }
}


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(EXAMPLE_DIRECTORY)


def test_secrets_are_read_from_the_named_variables(directory: Directory, tmp_path: Path) -> None:
    path = tmp_path / "heads.yaml"
    path.write_text(
        "heads:\n  hr: {token_env: HR_TOKEN, link_secret_env: HR_LINK}\n  it: {token_env: IT_TOKEN}\n",
        encoding="utf-8",
    )

    heads = load_heads(path, directory, ENVIRON)

    hr = heads.by_department["hr"]
    assert hr.token == SecretStr(HR_TOKEN) and hr.link_secret == SecretStr(HR_LINK)
    assert heads.by_department["it"].link_secret is None
    assert HR_TOKEN not in repr(heads)  # SecretStr: printed masked


@pytest.mark.parametrize(
    ("raw", "environ", "message"),
    [
        (
            RAW,
            {**ENVIRON, "IT_TOKEN": "short-but-sixteen+"},
            r"department 'it', token: .*IT_TOKEN is too short: use at least 32",
        ),
        (
            RAW,
            {k: v for k, v in ENVIRON.items() if k != "HR_LINK"},
            r"department 'hr', link secret: .*HR_LINK is not set",
        ),
        (RAW, {**ENVIRON, "IT_TOKEN": HR_TOKEN}, r"departments 'hr' and 'it' share a secret"),
        (RAW, {**ENVIRON, "IT_TOKEN": HR_LINK}, r"departments 'hr' and 'it' share a secret"),
        (RAW, {**ENVIRON, "HR_LINK": HR_TOKEN}, r"department 'hr' uses one secret as token and link secret"),
        (
            {"heads": {"nope": {"token_env": "HR_TOKEN"}}},
            ENVIRON,
            r"department 'nope' is not in the directory",
        ),
        ({"heads": {"hr": {}}}, ENVIRON, r"heads.hr: .*give token_env, link_secret_env or proxy_users"),
        ({"heads": {"hr": {"token": HR_TOKEN}}}, ENVIRON, r"heads.hr.token: Extra inputs"),
        (
            {"heads": {"hr": {"proxy_users": ["ada"]}, "it": {"proxy_users": ["ada"]}}},
            ENVIRON,
            r"proxy user 'ada' is named by 'hr' and 'it'",
        ),
    ],
)
def test_a_bad_file_refuses_to_load_naming_the_department_never_the_secret(
    directory: Directory, raw: dict[str, Any], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(HeadsError, match=message) as refused:
        parse_heads(raw, directory, environ)

    assert not any(secret in str(refused.value) for secret in (HR_TOKEN, HR_LINK, IT_TOKEN))


def test_a_missing_file_is_named(directory: Directory, tmp_path: Path) -> None:
    with pytest.raises(HeadsError, match=r"cannot read heads file .*missing\.yaml"):
        load_heads(tmp_path / "missing.yaml", directory, ENVIRON)


def test_a_signed_link_carries_department_expiry_and_signature() -> None:
    expires = datetime(2026, 3, 16, tzinfo=UTC)
    link = signed_link("http://pulse.example.com/", "hr", SecretStr(HR_LINK), expires)

    signature = link_signature(SecretStr(HR_LINK), "hr", int(expires.timestamp()))
    assert link == f"http://pulse.example.com/scorecard/hr?head=hr&expires=1773619200&signature={signature}"
    assert len(signature) == 64 and link_signature(SecretStr(HR_LINK), "hr", 1773619201) != signature


EXAMPLE = REPO_ROOT / "deploy" / "read-api" / "heads.example.yaml"
EXAMPLE_ENVIRON = {
    "DEPTPULSE_HEAD_HR_TOKEN": HR_TOKEN,
    "DEPTPULSE_HEAD_HR_LINK_SECRET": HR_LINK,
    "DEPTPULSE_HEAD_IT_TOKEN": IT_TOKEN,
}


def test_the_example_heads_file_loads(directory: Directory) -> None:
    heads = load_heads(EXAMPLE, directory, EXAMPLE_ENVIRON)

    assert sorted(heads.by_department) == ["hr", "it"]
    assert heads.by_department["it"].proxy_users == {"ada.park@example.com"}


def test_deptpulse_link_prints_a_link_the_read_api_accepts(directory: Directory) -> None:
    env = {"DEPTPULSE_READ_API_HEADS_PATH": str(EXAMPLE), **EXAMPLE_ENVIRON}
    result = CliRunner().invoke(
        main,
        ["link", "--department", "hr", "--days", "7", "--base-url", "https://pulse.example.com"],
        env=env,
    )

    assert result.exit_code == 0, result.output
    url = urlsplit(result.output.strip())
    assert url.netloc == "pulse.example.com" and url.path == "/scorecard/hr"
    link = {name: values[0] for name, values in parse_qs(url.query).items()}
    access = ReadAccess(directory, load_heads(EXAMPLE, directory, EXAMPLE_ENVIRON), anonymous=False)
    reader = access.authenticate({}, link)
    assert (reader.department, reader.via) == ("hr", "link")
    assert 7 * 86400 - 60 < int(link["expires"]) - datetime.now(UTC).timestamp() <= 7 * 86400
    assert HR_LINK not in result.output

    refused = CliRunner().invoke(main, ["link", "--department", "it"], env=env)
    assert refused.exit_code == 2 and "no link_secret_env" in refused.output


def test_the_worker_refuses_to_start_with_a_short_secret_naming_the_department() -> None:
    env = {
        "DEPTPULSE_READ_API_HEADS_PATH": str(EXAMPLE),
        **EXAMPLE_ENVIRON,
        "DEPTPULSE_HEAD_IT_TOKEN": "only-twenty-chars-xx",
    }
    result = CliRunner().invoke(main, ["worker"], env=env)

    assert result.exit_code == 2
    assert "department 'it', token" in result.output and "at least 32 characters" in result.output
    assert "only-twenty-chars-xx" not in result.output
