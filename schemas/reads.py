"""SQL text of the reads over ``raw_events`` that the CLI (stream_processors) and the generated
Grafana panels (schemas.observability.dashboards) share, so both count the same way.

``PROVIDER_FILTER`` marks where a reader puts its provider condition (``AND provider_department =
...``, in its own parameter syntax) or nothing; :func:`with_provider_filter` fills it in.
"""

from __future__ import annotations

from typing import Final

PROVIDER_FILTER: Final = "PROVIDER_FILTER"

# Per survey campaign and provider (the overall row: ``overall`` = 1) and per customer: invitations
# and answers, each event once (LIMIT 1 BY event_id: raw_events may hold a batch written twice).
# NPS classes as the core's MinuteAggregator counts them: 9-10 promoters, 7-8 passives, 0-6 detractors.
CAMPAIGNS_SQL: Final = """
SELECT
    campaign_id,
    provider_department,
    customer_department,
    grouping(customer_department) AS overall,
    min(occurred_at) AS started,
    maxIfOrNull(occurred_at, answer) AS ended,
    countIf(NOT answer) AS invitation_events,
    sumIf(invited, NOT answer) AS invited,
    countIf(answer) AS answered,
    uniqExactIf(respondent, answer) AS respondents,
    countIf(answer AND score >= 9) AS promoters,
    countIf(answer AND score >= 7 AND score <= 8) AS passives,
    countIf(answer AND score <= 6) AS detractors
FROM (
    SELECT
        occurred_at,
        provider_department,
        customer_department,
        event_type = 'survey.answered' AS answer,
        JSONExtractString(payload, 'campaign_id') AS campaign_id,
        JSONExtractInt(payload, 'score') AS score,
        JSONExtractInt(payload, 'invited') AS invited,
        if(JSONExtractString(payload, 'respondent_id') = '', concat('event:', event_id),
           concat('respondent:', JSONExtractString(payload, 'respondent_id'))) AS respondent
    FROM raw_events
    WHERE event_type IN ('survey.answered', 'survey.invited')
      PROVIDER_FILTER
    LIMIT 1 BY event_id
)
WHERE campaign_id != ''
GROUP BY GROUPING SETS ((campaign_id, provider_department, customer_department),
                        (campaign_id, provider_department))
"""

# Improvement actions (action.recorded), each event once.
ACTIONS_SQL: Final = """
SELECT
    event_id,
    occurred_at,
    provider_department,
    customer_department,
    service_category,
    JSONExtractString(payload, 'title') AS title,
    JSONExtractString(payload, 'started_on') AS started_on,
    JSONExtractString(payload, 'owner') AS owner
FROM raw_events
WHERE event_type = 'action.recorded'
  PROVIDER_FILTER
LIMIT 1 BY event_id
"""


def with_provider_filter(sql: str, condition: str) -> str:
    """``sql`` with its provider filter: ``condition`` (e.g. ``AND provider_department = ...``) or ''."""
    return sql.replace(PROVIDER_FILTER, condition)
