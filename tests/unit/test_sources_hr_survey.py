"""HR pulse survey adapter and CSV reader, on the project's own export-shaped fixtures.

The vendors' published exports run in test_sources_vendor_payloads.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from producers.sources import hr_survey
from producers.sources.common import AdapterError
from schemas.directory import UnmappedValue, load_directory
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
