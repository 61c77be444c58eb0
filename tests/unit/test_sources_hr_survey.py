"""HR pulse survey adapter and CSV reader, on the project's own export-shaped fixtures and inline CSV:
answers (with questions, services, campaigns, respondents) and invitations.

The vendors' published exports run in test_sources_vendor_payloads.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from producers.sources import convert, hr_survey
from producers.sources.common import AdapterError
from schemas.directory import Directory, UnmappedValue, load_directory
from schemas.events import event_to_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
DIRECTORY = load_directory(FIXTURES / "directory.yaml")

pytestmark = pytest.mark.unit


def rows(name: str) -> list[dict[str, Any]]:
    return hr_survey.read_csv((FIXTURES / "hr-survey" / name).read_text(encoding="utf-8"))


def adapt(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(event_to_json(event)) for event in hr_survey.adapt(row, DIRECTORY)]


def answers(name: str) -> list[tuple[str, str, str, str, int]]:
    return [
        (e["event_id"], e["occurred_at"], e["provider_department"], e["customer_department"], e["score"])
        for row in rows(name)
        for e in adapt(row)
    ]


def test_long_export_one_answer_a_row() -> None:
    assert answers("pulse_long.csv") == [
        ("hr-survey:r-1001:score", "2026-03-20T08:12:00Z", "it", "finance", 9),
        ("hr-survey:r-1002:score", "2026-03-20T02:40:00Z", "hr", "engineering", 6),  # 研发部, +08:00
        ("hr-survey:r-1003:score", "2026-03-20T11:05:00Z", "it", "sales", 10),
    ]
    first = adapt(rows("pulse_long.csv")[0])[0]
    assert (first["source"], first["event_type"], first["comment"], first["attributes"]) == (
        "hr-survey",
        "survey.answered",
        "Fast and friendly",
        {},
    )


def test_pulsestage_export_is_rescaled_from_1_5_and_keeps_the_raw_answer() -> None:
    question_id = "how_likely_are_you_to_recommend_it_support_to_a_colleague"
    assert answers("pulsestage_export.csv") == [
        (f"hr-survey:41:{question_id}", "2026-03-21T08:00:00Z", "it", "finance", 10),
        (f"hr-survey:42:{question_id}", "2026-03-21T08:30:00Z", "it", "sales", 3),
    ]
    assert adapt(rows("pulsestage_export.csv")[1])[0]["attributes"] == {
        "question": "How likely are you to recommend IT support to a colleague?",
        "vendor_score": "2",
        "vendor_scale": "1-5",
    }


def test_qualtrics_wide_export_one_answer_per_mapped_question() -> None:
    assert answers("qualtrics_export.csv") == [
        # RecordedDate is naive in the export; its ImportId row names Asia/Shanghai
        ("hr-survey:R_1a2B3c4D5e6F7g8:nps_it", "2026-03-22T01:01:11Z", "it", "engineering", 8),
        ("hr-survey:R_1a2B3c4D5e6F7g8:nps_hr", "2026-03-22T01:01:11Z", "hr", "engineering", 10),
        ("hr-survey:R_9h8G7f6E5d4C3b2:nps_it", "2026-03-22T02:16:03Z", "it", "sales", 3),  # nps_hr unanswered
    ]
    assert adapt(rows("qualtrics_export.csv")[1])[0]["comment"] == "VPN is slow"


def test_read_csv_drops_qualtrics_header_rows_only() -> None:
    assert [row["ResponseId"] for row in rows("qualtrics_export.csv")] == [
        "R_1a2B3c4D5e6F7g8",
        "R_9h8G7f6E5d4C3b2",
    ]
    assert rows("qualtrics_export.csv")[0]["RecordedDate"] == "2026-03-22T09:01:11+08:00"
    assert len(rows("pulse_long.csv")) == 3


def test_importing_twice_repeats_the_event_ids() -> None:
    assert answers("pulse_long.csv") == answers("pulse_long.csv")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"score": "11"}, "score: Input should be less than or equal to 10"),
        ({"score": "-1"}, "score: Input should be greater than or equal to 0"),
        ({"score": "7.5"}, "invalid score '7.5': expected a whole number"),
        ({"answered_at": "2026-03-20 09:12"}, "timestamp answered_at='2026-03-20 09:12' has no UTC offset"),
        ({"answered_at": ""}, "missing column: one of 'answered_at', 'RecordedDate', 'created_at'"),
        ({"response_id": ""}, "missing column: one of 'response_id', 'ResponseId', 'id'"),
        (
            {"department": ""},
            "cannot tell the customer department: the payload has no 'department' or 'Department' or 'team'",
        ),
        (
            {"score": ""},
            "no score: expected a 'score' or 'response_value' column, or columns mapped under hr-survey field 'question'",
        ),
    ],
)
def test_bad_rows_name_the_column(change: dict[str, str], message: str) -> None:
    with pytest.raises(AdapterError) as caught:
        hr_survey.adapt(rows("pulse_long.csv")[0] | change, DIRECTORY)
    assert message in str(caught.value)


def test_pulsestage_answers_outside_1_5_are_rejected() -> None:
    with pytest.raises(AdapterError, match=r"invalid response_value 0: PulseStage answers are 1-5"):
        hr_survey.adapt(rows("pulsestage_export.csv")[0] | {"response_value": "0"}, DIRECTORY)


def test_unmapped_department_names_the_value_and_the_mapping() -> None:
    with pytest.raises(
        UnmappedValue, match=r"^no department mapping for hr-survey field 'department' value 'Marketing'$"
    ):
        hr_survey.adapt(rows("pulse_long.csv")[0] | {"department": "Marketing"}, DIRECTORY)


def test_unmapped_question_names_the_value_and_the_mapping() -> None:
    row = rows("pulsestage_export.csv")[0] | {"question_text": "How is the canteen?"}
    with pytest.raises(
        UnmappedValue,
        match=r"^no department mapping for hr-survey field 'question' value 'How is the canteen\?'$",
    ):
        hr_survey.adapt(row, DIRECTORY)


# --- questions, services, campaigns and respondents ---------------------------------------------------

EXAMPLE_ORG = load_directory(
    Path(__file__).resolve().parents[2] / "deploy" / "directory" / "example-org.yaml"
)


def csv_rows(text: str) -> list[dict[str, Any]]:
    return hr_survey.read_csv(text.strip() + "\n")


def adapt_in(row: dict[str, Any], directory: Directory) -> list[dict[str, Any]]:
    return [json.loads(event_to_json(event)) for event in hr_survey.adapt(row, directory)]


def fields(events: list[dict[str, Any]], *names: str) -> list[tuple[Any, ...]]:
    return [tuple(event.get(name) for name in names) for event in events]


def test_existing_exports_keep_their_question_and_respondent() -> None:
    keys = ("question_id", "respondent_id", "campaign_id", "service_category")
    assert [fields(adapt(row), *keys) for row in rows("pulse_long.csv")] == [
        [(None, "r-1001", None, None)],  # a bare score: no question
        [(None, "r-1002", None, None)],
        [(None, "r-1003", None, None)],
    ]
    question_id = "how_likely_are_you_to_recommend_it_support_to_a_colleague"
    assert [fields(adapt(row), *keys) for row in rows("pulsestage_export.csv")] == [
        [(question_id, "41", None, None)],
        [(question_id, "42", None, None)],
    ]
    assert [fields(adapt(row), *keys) for row in rows("qualtrics_export.csv")] == [
        [("nps_it", "R_1a2B3c4D5e6F7g8", None, None), ("nps_hr", "R_1a2B3c4D5e6F7g8", None, None)],
        [("nps_it", "R_9h8G7f6E5d4C3b2", None, None)],
    ]


CAMPAIGN_EXPORT = """
response_id,answered_at,department,about,campaign,question_id,question,service,score,comment
p-1,2026-04-21T10:05:00+08:00,Finance,HR,hr-pulse-2026-w17,recruiting-speed,How quickly does HR fill open positions?,hr.recruiting,3,招聘太慢了，面试安排拖了三周
p-1,2026-04-21T10:05:00+08:00,Finance,HR,hr-pulse-2026-w17,overall,How satisfied are you with HR?,,7,
p-2,2026-04-21T11:00:00+02:00,Sales,人力资源部,hr-pulse-2026-w17,,How accurate is your payroll?,hr.payroll,9,
"""


def test_a_long_export_names_question_service_campaign_and_respondent() -> None:
    events = [event for row in csv_rows(CAMPAIGN_EXPORT) for event in adapt_in(row, EXAMPLE_ORG)]
    assert fields(
        events,
        "event_id",
        "provider_department",
        "customer_department",
        "question_id",
        "service_category",
        "campaign_id",
        "respondent_id",
        "score",
    ) == [
        ("hr-survey:p-1:recruiting_speed", "hr", "finance", "recruiting-speed", "hr.recruiting", "hr-pulse-2026-w17", "p-1", 3),
        ("hr-survey:p-1:overall", "hr", "finance", "overall", None, "hr-pulse-2026-w17", "p-1", 7),
        # no question_id column value: the question text, slugged
        ("hr-survey:p-2:how_accurate_is_your_payroll", "hr", "sales", "how_accurate_is_your_payroll", "hr.payroll", "hr-pulse-2026-w17", "p-2", 9),
    ]  # fmt: skip
    assert events[0]["comment"] == "招聘太慢了，面试安排拖了三周"
    assert events[0]["attributes"] == {"question": "How quickly does HR fill open positions?"}


@pytest.mark.parametrize("column", ["campaign_id", "campaign", "survey_id"])
def test_the_campaign_comes_from_any_of_its_columns(column: str) -> None:
    row = rows("pulse_long.csv")[1] | {column: "hr-pulse-2026-w12"}
    assert [event["campaign_id"] for event in adapt(row)] == ["hr-pulse-2026-w12"]


def test_a_qualtrics_embedded_campaign_and_respondent_apply_to_every_answer_of_the_row() -> None:
    row = rows("qualtrics_export.csv")[0] | {"campaign_id": "hr-pulse-2026-w12", "respondent_id": "emp-7f3a"}
    assert fields(adapt(row), "question_id", "campaign_id", "respondent_id") == [
        ("nps_it", "hr-pulse-2026-w12", "emp-7f3a"),
        ("nps_hr", "hr-pulse-2026-w12", "emp-7f3a"),
    ]


def test_a_question_id_alone_finds_the_provider_through_the_question_mapping() -> None:
    row = {"response_id": "q-9", "answered_at": "2026-03-20T09:00:00Z", "department": "Sales", "question_id": "nps_hr", "score": "4"}  # fmt: skip
    assert fields(adapt(row), "event_id", "provider_department", "question_id") == [
        ("hr-survey:q-9:nps_hr", "hr", "nps_hr")
    ]


# --- invitations ---------------------------------------------------------------------------------------

INVITATION_COUNTS = """
campaign_id,department,about,invited,invited_at
hr-pulse-2026-w17,Finance,HR,48,2026-04-21T10:00:00+08:00
hr-pulse-2026-w17,Sales,HR,52,2026-04-21T10:00:00+08:00
"""

INVITEE_LIST = """
record_type,campaign_id,department,about,email,sent_at
invitation,hr-pulse-2026-w17,Finance,HR,li.na@example.com,2026-04-21T10:00:00+08:00
invitation,hr-pulse-2026-w17,Finance,HR,max.roth@example.com,2026-04-21T10:00:00+08:00
answer,,,,,
"""


def test_an_invitations_export_with_counts() -> None:
    events = [event for row in csv_rows(INVITATION_COUNTS) for event in adapt_in(row, EXAMPLE_ORG)]
    assert fields(
        events,
        "event_type",
        "occurred_at",
        "provider_department",
        "customer_department",
        "campaign_id",
        "invited",
    ) == [
        ("survey.invited", "2026-04-21T02:00:00Z", "hr", "finance", "hr-pulse-2026-w17", 48),
        ("survey.invited", "2026-04-21T02:00:00Z", "hr", "sales", "hr-pulse-2026-w17", 52),
    ]
    assert events[0]["event_id"].startswith("hr-survey:invited:hr-pulse-2026-w17:finance:hr:row-")
    assert events == [event for row in csv_rows(INVITATION_COUNTS) for event in adapt_in(row, EXAMPLE_ORG)]


def test_an_invitee_list_is_one_invitation_a_row_and_keeps_no_address() -> None:
    found, rejects = convert("hr-survey", csv_rows(INVITEE_LIST), EXAMPLE_ORG)
    invitations = [json.loads(event_to_json(event)) for event in found]
    assert [(event["customer_department"], event["invited"]) for event in invitations] == [("finance", 1)] * 2
    assert len({event["event_id"] for event in invitations}) == 2
    assert "example.com" not in json.dumps(invitations)
    # The third row says it is an answer, and has none: rejected, not dropped.
    assert [(reject.record, reject.reason) for reject in rejects] == [
        (3, "missing column: one of 'response_id', 'ResponseId', 'id'")
    ]


def test_an_invitation_id_names_the_event() -> None:
    row = csv_rows(INVITATION_COUNTS)[0] | {"invitation_id": "batch-1"}
    assert (
        adapt_in(row, EXAMPLE_ORG)[0]["event_id"] == "hr-survey:invited:hr-pulse-2026-w17:finance:hr:batch-1"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"invited": "0"}, "invalid invited '0': an invitation row invites 1 or more people"),
        ({"invited": "-3"}, "invalid invited '-3': an invitation row invites 1 or more people"),
        ({"invited": "forty"}, "invalid invited 'forty': expected a whole number"),
        ({"invited": "4.5"}, "invalid invited '4.5': expected a whole number"),
        ({"invited": "2000000"}, "invited: Input should be less than or equal to 1000000"),
        ({"campaign_id": ""}, "missing column: one of 'campaign_id', 'campaign', 'survey_id'"),
        ({"about": ""}, "cannot tell the provider department: the payload has no 'provider_department' or 'about'"),
        ({"invited_at": ""}, "missing column: one of 'invited_at', 'sent_at', 'answered_at', 'RecordedDate', 'created_at'"),
        ({"invited_at": "2026-04-21 10:00"}, "timestamp invited_at='2026-04-21 10:00' has no UTC offset"),
        ({"record_type": "reminder"}, "invalid record_type 'reminder': expected 'invitation' or 'answer'"),
        ({"record_type": "answer"}, "an answer row (record_type answer) has an 'invited' count"),
        ({"score": "7"}, "a row with both an invitation (record_type or 'invited') and a score"),
    ],
)  # fmt: skip
def test_bad_invitations_name_the_column(change: dict[str, str], message: str) -> None:
    with pytest.raises(AdapterError) as caught:
        hr_survey.adapt(csv_rows(INVITATION_COUNTS)[0] | change, EXAMPLE_ORG)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ("hr.canteen", "unknown service service='hr.canteen': hr's services are hr.payroll, hr.onboarding, hr.recruiting"),
        ("it.access", "unknown service service='it.access': hr's services are hr.payroll, hr.onboarding, hr.recruiting"),
    ],
)  # fmt: skip
def test_a_service_must_be_one_of_the_providers(service: str, message: str) -> None:
    with pytest.raises(AdapterError) as caught:
        hr_survey.adapt(csv_rows(CAMPAIGN_EXPORT)[0] | {"service": service}, EXAMPLE_ORG)
    assert str(caught.value) == message
