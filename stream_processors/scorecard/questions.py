"""Survey answers by question (``deptpulse report --by question``): each question's score
distribution (0-10), mean with its 95 % interval, and NPS with its margin, so that "recruiting
speed" can stand out as the weak question of HR's survey.

Answers are read from ``raw_events`` (every accepted ``survey.answered``, with or without a
comment), deduplicated by event_id; minute buckets do not keep the question. A question's figures
follow the NPS sample minimum of the provider's policy, like the scorecard's NPS.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final, NamedTuple

from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, ConfigDict

from schemas.directory import AlertPolicy
from stream_processors.core import MinuteAggregate, summarize
from stream_processors.scorecard.windows import Window, query_parameters

SCORES: Final = range(11)

_ANSWERS_SQL: Final = """
SELECT provider_department, question_id, in_window, score, count() AS answers,
       groupUniqArray(service_category) AS services
FROM (
    SELECT provider_department, service_category, occurred_at >= {since:DateTime64(3, 'UTC')} AS in_window,
           JSONExtractString(payload, 'question_id') AS question_id,
           toUInt8(JSONExtractInt(payload, 'score')) AS score
    FROM raw_events
    WHERE event_type = 'survey.answered'
      AND occurred_at >= {previous_since:DateTime64(3, 'UTC')} AND occurred_at < {until:DateTime64(3, 'UTC')}
      PROVIDER_FILTER
      CUSTOMER_FILTER
    LIMIT 1 BY event_id
)
GROUP BY provider_department, question_id, in_window, score
"""
QUESTION_SQL: Final = {
    (with_provider, with_customer): _ANSWERS_SQL.replace(
        "PROVIDER_FILTER", "AND provider_department = {provider:String}" if with_provider else ""
    ).replace("CUSTOMER_FILTER", "AND customer_department = {customer:String}" if with_customer else "")
    for with_provider in (False, True)
    for with_customer in (False, True)
}


class QuestionKey(NamedTuple):
    provider_department: str
    question_id: str  # "" for answers without one


class QuestionCounts(NamedTuple):
    """Answers per score (index 0-10) per question, in the window and the one before; the services
    the answers named."""

    current: dict[QuestionKey, list[int]]
    previous: dict[QuestionKey, list[int]]
    services: dict[QuestionKey, set[str]]


class QuestionRow(BaseModel):
    """One survey question of a provider in a window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider_department: str
    customer_department: str | None  # null: every customer
    question_id: str  # "" for answers without a question id
    service_category: str | None  # the service the answers name, when they all name the same one
    since: datetime
    until: datetime
    answers: int
    distribution: list[int]  # answers per score 0..10
    mean: float | None  # 0-10; null below the sample minimum
    mean_low95: float | None  # Student's t interval of the mean
    mean_high95: float | None
    nps: float | None
    nps_margin95: float | None
    insufficient: bool
    mean_change: float | None  # against the window before, when both have enough answers


def read_question_counts(
    client: Client, window: Window, provider: str | None = None, customer: str | None = None
) -> QuestionCounts:
    """The answers of ``survey.answered`` events by question and score, both windows."""
    parameters = query_parameters(window, provider, customer)
    sql = QUESTION_SQL[(provider is not None, customer is not None)]
    counts = QuestionCounts({}, {}, {})
    for row in client.query(sql, parameters=parameters).named_results():
        key = QuestionKey(row["provider_department"], row["question_id"])
        target = counts.current if row["in_window"] else counts.previous
        target.setdefault(key, [0] * len(SCORES))[int(row["score"])] += int(row["answers"])
        counts.services.setdefault(key, set()).update(service for service in row["services"] if service)
    return counts


def mean_interval(distribution: list[int]) -> tuple[float, float, float] | None:
    """(mean, low, high): the mean score and its Student's t 95 % interval; None without answers."""
    n = sum(distribution)
    if n == 0:
        return None
    mean = sum(score * count for score, count in enumerate(distribution)) / n
    if n == 1:
        return mean, mean, mean
    variance = sum(count * (score - mean) ** 2 for score, count in enumerate(distribution)) / (n - 1)
    from scipy import stats  # here: scipy.stats is 65 MiB of RSS the worker needs only for this read

    half = float(stats.t.ppf(0.975, n - 1)) * math.sqrt(variance / n)
    return mean, max(0.0, mean - half), min(10.0, mean + half)


def _nps_aggregate(distribution: list[int]) -> MinuteAggregate:
    return MinuteAggregate(
        nps_detractors=sum(distribution[:7]), nps_passives=sum(distribution[7:9]), nps_promoters=sum(distribution[9:])
    )


def question_rows(
    counts: QuestionCounts,
    window: Window,
    policies: Mapping[str, AlertPolicy] | None,
    default_policy: AlertPolicy,
    customer: str | None = None,
    order: Iterable[str] = (),
) -> list[QuestionRow]:
    """A row per (provider, question) with answers in the window or the one before; providers in
    ``order`` first, questions by their mean (lowest first: the weak question leads)."""
    keys = set(counts.current) | set(counts.previous)
    rank = {provider: index for index, provider in enumerate(order)}
    rows = []
    for key in keys:
        policy = (policies or {}).get(key.provider_department, default_policy)
        distribution = counts.current.get(key, [0] * len(SCORES))
        answers = sum(distribution)
        short = answers < policy.nps_min_sample
        figures = mean_interval(distribution)
        summary = summarize(_nps_aggregate(distribution))
        before = counts.previous.get(key)
        before_figures = mean_interval(before) if before and sum(before) >= policy.nps_min_sample else None
        services = counts.services.get(key, set())
        rows.append(
            QuestionRow(
                provider_department=key.provider_department,
                customer_department=customer,
                question_id=key.question_id,
                service_category=next(iter(services)) if len(services) == 1 else None,
                since=window.since,
                until=window.until,
                answers=answers,
                distribution=distribution,
                mean=None if short or figures is None else figures[0],
                mean_low95=None if short or figures is None else figures[1],
                mean_high95=None if short or figures is None else figures[2],
                nps=None if short else summary.nps,
                nps_margin95=None if short else summary.nps_margin95,
                insufficient=short,
                mean_change=None
                if short or figures is None or before_figures is None
                else figures[0] - before_figures[0],
            )
        )
    return sorted(
        rows,
        key=lambda row: (
            rank.get(row.provider_department, len(rank)),
            row.provider_department,
            row.insufficient,
            row.mean if row.mean is not None else math.inf,
            row.question_id,
        ),
    )
