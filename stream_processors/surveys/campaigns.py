"""Survey campaigns (``deptpulse surveys``, ``/api/v1/surveys``): per campaign and provider, overall
and per customer department, how many were invited and answered, the response rate, the NPS with
its margin, and the change against the provider's previous campaign.

Invitations (``survey.invited``) and answers (``survey.answered`` naming a ``campaign_id``) are read
from ``raw_events``, deduplicated by event_id. Answers without any recorded invitation still count
for their campaign (the rate is then unknown); more respondents than invitations is a data problem,
never a rate above 100 %. The NPS counts every answer of the campaign, as the scorecard does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, ConfigDict, Field

from schemas import reads
from schemas.directory import AlertPolicy, Directory
from schemas.reads import with_provider_filter
from stream_processors.comments.reading import CommentQuery, ThemesAnswer
from stream_processors.core.aggregates import nps_with_margin
from stream_processors.core.effects import Verdict, nps_effect, response_rate
from stream_processors.scorecard.read_api import BadRequest
from stream_processors.scorecard.service import check_department, policy_of
from stream_processors.scorecard.windows import MAX_LENGTH, Window, shown


class UnknownCampaign(BadRequest):
    """A campaign id no invitation or answer names (for the provider, when one is given)."""


class CampaignRow(BaseModel):
    """One survey campaign of a provider: overall (``customer_department`` null) or for one customer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    campaign_id: str
    provider_department: str
    customer_department: str | None  # null: the provider overall in this campaign
    started: datetime  # the first invitation or answer
    ended: datetime | None  # the last answer; null before any
    invited: int | None  # null: no invitation was recorded
    answered: int
    respondents: int  # distinct respondent_id; an answer without one counts as one respondent
    response_rate: float | None  # respondents / invited; null when unknown or impossible
    low_response: bool  # the rate is below the policy's survey_min_response_rate
    data_problem: str | None  # why the rate is not given although invitations were recorded
    nps: float | None  # -100..100; null below the policy's nps_min_sample
    nps_margin95: float | None
    nps_insufficient: bool
    promoters: int
    passives: int
    detractors: int
    previous_campaign_id: str | None  # the provider's campaign before, answered by the same customer
    nps_change: float | None  # this NPS minus the previous campaign's; null below the sample minimum
    nps_change_low: float | None  # its 95 % interval
    nps_change_high: float | None
    change_verdict: Verdict | None  # null without a previous campaign
    # The campaign's comment themes (overall rows; comments.campaign_id), empty when there are too few
    # respondents or comments to show any (the comments' privacy minimum and theme minimum).
    themes: list[str] = Field(default_factory=list)


CAMPAIGN_FIELDS: Final = tuple(CampaignRow.model_fields)


@dataclass(frozen=True, slots=True)
class CampaignCounts:
    """What storage holds about one campaign of one provider: overall (``customer_department`` None)
    or for one customer department."""

    campaign_id: str
    provider_department: str
    customer_department: str | None
    started: datetime
    ended: datetime | None
    invitation_events: int
    invited: int
    answered: int
    respondents: int
    promoters: int
    passives: int
    detractors: int

    @property
    def nps_counts(self) -> tuple[int, int, int]:
        return (self.promoters, self.passives, self.detractors)


class CampaignReader(Protocol):
    def campaign_counts(self, provider: str | None = None) -> list[CampaignCounts]:
        """Every campaign's counts per customer and overall (one ``customer_department=None`` entry per
        campaign and provider), of ``provider`` or of every provider."""
        ...


# --- from counts to rows (pure) --------------------------------------------------------------------


def campaign_rows(counts: Iterable[CampaignCounts], directory: Directory) -> list[CampaignRow]:
    """Rows in campaign order (by start): each campaign's overall row, then its customers in
    directory order. ``counts`` must hold the overall entry of every (campaign, provider)."""
    groups: dict[tuple[str, str], dict[str | None, CampaignCounts]] = {}
    for each in counts:
        groups.setdefault((each.campaign_id, each.provider_department), {})[each.customer_department] = each
    ordered = sorted(groups.items(), key=lambda item: (item[1][None].started, item[0][1], item[0][0]))
    customer_order = {department: index for index, department in enumerate(directory.department_ids())}
    earlier: dict[str, list[dict[str | None, CampaignCounts]]] = {}  # per provider, in campaign order
    rows: list[CampaignRow] = []
    for (_, provider), group in ordered:
        policy = policy_of(directory, provider)
        before = earlier.setdefault(provider, [])
        customers = sorted(
            (customer for customer in group if customer is not None),
            key=lambda customer: (customer_order.get(customer, len(customer_order)), customer),
        )
        incomplete = _incomplete_invitations([group[customer] for customer in customers])
        for customer in [None, *customers]:
            previous = next(
                (g[customer] for g in reversed(before) if customer in g and g[customer].answered), None
            )
            rows.append(
                campaign_row(group[customer], policy, previous, incomplete if customer is None else None)
            )
        before.append(group)
    return rows


def _incomplete_invitations(customers: Sequence[CampaignCounts]) -> str | None:
    """Why the overall rate of a campaign would mislead: customers who answered without recorded
    invitations, or with more respondents than invitations; None when there are none."""
    uninvited = [c.customer_department for c in customers if c.answered and not c.invitation_events]
    over = [c.customer_department for c in customers if c.invitation_events and c.respondents > c.invited]
    reasons = (
        [f"answers from {', '.join(map(str, uninvited))} without recorded invitations"] if uninvited else []
    )
    if over:
        reasons.append(f"more respondents than invitations from {', '.join(map(str, over))}")
    return "; ".join(reasons) + ": the invitations are incomplete" if reasons else None


def campaign_row(
    counts: CampaignCounts,
    policy: AlertPolicy,
    previous: CampaignCounts | None = None,
    incomplete: str | None = None,
) -> CampaignRow:
    """One row: the rate (unless a data problem, or ``incomplete`` says why an overall rate would
    mislead), the low-response flag, the NPS and its change against ``previous`` (figures null below
    the policy's sample minimum)."""
    invited = counts.invited if counts.invitation_events else None
    rate, problem = None, None
    if invited is not None and incomplete:
        problem = incomplete
    elif invited is not None:
        measured = response_rate(invited, counts.respondents)
        rate = measured.rate
        if measured.problem:
            problem = (
                f"{counts.respondents} respondents but {invited} invitations: the invitations are incomplete"
            )
    short = counts.answered < policy.nps_min_sample
    nps = None if short else nps_with_margin(*counts.nps_counts)
    change_low = change_high = change = None
    verdict: Verdict | None = None
    if previous is not None:
        effect = nps_effect(previous.nps_counts, counts.nps_counts, min_sample=policy.nps_min_sample)
        verdict = effect.verdict
        if verdict != "insufficient":
            change, change_low, change_high = effect.difference, effect.low, effect.high
    return CampaignRow(
        campaign_id=counts.campaign_id,
        provider_department=counts.provider_department,
        customer_department=counts.customer_department,
        started=counts.started,
        ended=counts.ended,
        invited=invited,
        answered=counts.answered,
        respondents=counts.respondents,
        response_rate=rate,
        low_response=rate is not None and rate < policy.survey_min_response_rate,
        data_problem=problem,
        nps=nps[0] if nps else None,
        nps_margin95=nps[1] if nps else None,
        nps_insufficient=short,
        promoters=counts.promoters,
        passives=counts.passives,
        detractors=counts.detractors,
        previous_campaign_id=previous.campaign_id if previous else None,
        nps_change=change,
        nps_change_low=change_low,
        nps_change_high=change_high,
        change_verdict=verdict,
    )


def campaign_ids(rows: Iterable[CampaignRow]) -> list[str]:
    """The distinct campaign ids of ``rows``, in campaign order."""
    return list(dict.fromkeys(row.campaign_id for row in rows))


def select_campaign(rows: list[CampaignRow], campaign: str | None, provider: str | None) -> list[CampaignRow]:
    """Only ``campaign``'s rows (all for None); :class:`UnknownCampaign` lists the known ids."""
    if campaign is None:
        return rows
    known = campaign_ids(rows)
    if campaign not in known:
        whose = f" of {provider}" if provider else ""
        listed = ", ".join(known) if known else "none recorded yet"
        raise UnknownCampaign(f"unknown campaign {shown(campaign)}: the campaigns{whose} are {listed}")
    return [row for row in rows if row.campaign_id == campaign]


def latest_campaign(rows: Sequence[CampaignRow], provider: str) -> list[CampaignRow]:
    """The provider's most recently started campaign: its overall row, then its customers' rows."""
    mine = [row for row in rows if row.provider_department == provider]
    if not mine:
        return []
    latest = mine[-1].campaign_id  # rows are in campaign order
    return [row for row in mine if row.campaign_id == latest]


# --- ClickHouse ------------------------------------------------------------------------------------

CAMPAIGNS_SQL: Final = {
    with_provider: with_provider_filter(
        reads.CAMPAIGNS_SQL, "AND provider_department = {provider:String}" if with_provider else ""
    )
    for with_provider in (False, True)
}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class ClickHouseCampaigns:
    """:class:`CampaignReader` over ``raw_events``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def campaign_counts(self, provider: str | None = None) -> list[CampaignCounts]:
        parameters: dict[str, Any] = {} if provider is None else {"provider": provider}
        result = self._client.query(CAMPAIGNS_SQL[provider is not None], parameters=parameters)
        return [
            CampaignCounts(
                campaign_id=row["campaign_id"],
                provider_department=row["provider_department"],
                customer_department=None if row["overall"] else row["customer_department"],
                started=_utc(row["started"]),
                ended=None if row["ended"] is None else _utc(row["ended"]),
                invitation_events=int(row["invitation_events"]),
                invited=int(row["invited"]),
                answered=int(row["answered"]),
                respondents=int(row["respondents"]),
                promoters=int(row["promoters"]),
                passives=int(row["passives"]),
                detractors=int(row["detractors"]),
            )
            for row in result.named_results()
        ]


class CampaignThemes(Protocol):
    """The comments' themes of a selection (:class:`stream_processors.comments.reading.CommentsService`)."""

    def themes(self, query: CommentQuery, top: int = 10) -> ThemesAnswer: ...


THEMES_PER_CAMPAIGN: Final = 3


class CampaignsService:
    """Campaign rows of a provider (or every provider), optionally one campaign's; with ``comments``,
    each campaign's overall row carries the top themes of its comments."""

    def __init__(
        self, reader: CampaignReader, directory: Directory, comments: CampaignThemes | None = None
    ) -> None:
        self.reader = reader
        self.directory = directory
        self.comments = comments

    def campaigns(self, provider: str | None = None, campaign: str | None = None) -> list[CampaignRow]:
        """Raises UnknownDepartment, or :class:`UnknownCampaign` naming the known campaigns."""
        check_department(self.directory, provider, "provider")
        rows = campaign_rows(self.reader.campaign_counts(provider), self.directory)
        selected = select_campaign(rows, campaign, provider)
        return [self._with_themes(row) for row in selected] if self.comments is not None else selected

    def _with_themes(self, row: CampaignRow) -> CampaignRow:
        if self.comments is None or row.customer_department is not None:
            return row
        # The campaign's answers span [started, ended]; a window needs an end after its start.
        until = max(row.ended or row.started, row.started) + timedelta(minutes=1)
        if until - row.started > MAX_LENGTH:
            return row
        query = CommentQuery(row.provider_department, Window(row.started, until), campaign=row.campaign_id)
        answer = self.comments.themes(query, THEMES_PER_CAMPAIGN)
        return row.model_copy(update={"themes": [theme.term for theme in answer.themes]})
