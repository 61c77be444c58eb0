"""The gateway's integrations file: parsing, secrets from the environment, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from deptpulse.settings import REPO_ROOT
from producers.integrations import IntegrationsError, load_integrations, parse_integrations

pytestmark = pytest.mark.unit

EXAMPLE = REPO_ROOT / "deploy" / "gateway" / "integrations.example.yaml"
EXAMPLE_ENV = {
    "DEPTPULSE_GW_JIRA_SECRET": "jira-secret-0123456789",
    "DEPTPULSE_GW_ZENDESK_SECRET": "zendesk-secret-0123456789",
    "DEPTPULSE_GW_SERVICENOW_TOKEN": "servicenow-token-0123456789",
    "DEPTPULSE_GW_HR_TOKEN": "hr-token-0123456789abcdef",
}


def test_the_example_file_loads_with_its_variables_set() -> None:
    integrations = load_integrations(EXAMPLE, EXAMPLE_ENV)
    by_name = {integration.name: integration for integration in integrations.integrations}
    assert set(by_name) == {"jira-cloud", "zendesk", "servicenow", "hr-survey"}
    assert integrations.replay_window == 300
    zendesk = by_name["zendesk"].credentials[0]
    assert zendesk.type == "zendesk-signature"
    assert zendesk.secret_bytes() == b"zendesk-secret-0123456789"
    assert by_name["hr-survey"].rate_limit is not None


def test_a_missing_variable_is_named() -> None:
    environ = {key: value for key, value in EXAMPLE_ENV.items() if key != "DEPTPULSE_GW_HR_TOKEN"}
    with pytest.raises(
        IntegrationsError,
        match=r"integrations.example.yaml: environment variable DEPTPULSE_GW_HR_TOKEN is not set",
    ):
        load_integrations(EXAMPLE, environ)


def test_secrets_do_not_show_in_repr_or_errors() -> None:
    integrations = load_integrations(EXAMPLE, EXAMPLE_ENV)
    assert "zendesk-secret-0123456789" not in repr(integrations)
    assert "zendesk-secret-0123456789" not in str(integrations.model_dump())
    with pytest.raises(IntegrationsError) as caught:
        parse_integrations(
            {
                "integrations": [
                    {
                        "name": "x",
                        "sources": ["s"],
                        "credentials": [{"type": "bearer", "token": "short-secret"}],
                    }
                ]
            }
        )
    assert "short-secret" not in str(caught.value)
    assert "at least 16 characters" in str(caught.value)


def test_inline_token_alias_and_rate_limit_default_burst() -> None:
    integrations = parse_integrations(
        {
            "replay_window": "2m",
            "integrations": [
                {
                    "name": "tools",
                    "sources": ["hr-survey"],
                    "credentials": [{"type": "bearer", "token": "inline-token-0123456789"}],
                    "rate_limit": {"requests_per_second": 5},
                }
            ],
        }
    ).with_secrets({})
    tools = integrations.integrations[0]
    assert integrations.replay_window == 120
    assert tools.credentials[0].secret_bytes() == b"inline-token-0123456789"
    assert tools.rate_limit is not None and tools.rate_limit.capacity == 5


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"integrations": []}, "integrations: List should have at least 1 item"),
        (
            {"integrations": [{"name": "x", "sources": ["s"], "credentials": [{"type": "bearer"}]}]},
            "give exactly one of the secret",
        ),
        (
            {
                "integrations": [
                    {"name": "x", "sources": ["s"], "credentials": [{"type": "basic", "secret_env": "V"}]}
                ]
            },
            "does not match any of the expected tags",
        ),
        (
            {
                "integrations": [
                    {"name": "x", "sources": ["s"], "credentials": [{"type": "bearer", "token_env": "A"}]},
                    {"name": "x", "sources": ["s"], "credentials": [{"type": "bearer", "token_env": "B"}]},
                ]
            },
            "duplicate integration names ['x']",
        ),
        (
            {
                "integrations": [
                    {"name": "x", "sources": [], "credentials": [{"type": "bearer", "token_env": "A"}]}
                ]
            },
            "integrations.0.sources",
        ),
    ],
)
def test_invalid_files_name_the_field(raw: object, message: str) -> None:
    with pytest.raises(IntegrationsError, match="invalid integrations") as caught:
        parse_integrations(raw)
    assert message in str(caught.value)


def test_a_secret_shared_by_two_integrations_is_refused() -> None:
    integrations = parse_integrations(
        {
            "integrations": [
                {"name": "a", "sources": ["s"], "credentials": [{"type": "bearer", "token_env": "A"}]},
                {"name": "b", "sources": ["s"], "credentials": [{"type": "bearer", "token_env": "B"}]},
            ]
        }
    )
    same = "the-same-token-0123456789"
    with pytest.raises(IntegrationsError, match="integrations 'a' and 'b' share a bearer secret"):
        integrations.with_secrets({"A": same, "B": same})


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(IntegrationsError, match="cannot read integrations file"):
        load_integrations(tmp_path / "missing.yaml", {})
    broken = tmp_path / "broken.yaml"
    broken.write_text("integrations: [\n", encoding="utf-8")
    with pytest.raises(IntegrationsError, match="is not valid YAML"):
        load_integrations(broken, {})


def test_an_unresolved_secret_cannot_be_used() -> None:
    integrations = parse_integrations(
        {
            "integrations": [
                {"name": "a", "sources": ["s"], "credentials": [{"type": "bearer", "token_env": "A"}]}
            ]
        }
    )
    with pytest.raises(IntegrationsError, match="not resolved"):
        integrations.integrations[0].credentials[0].secret_bytes()
