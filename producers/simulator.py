"""A deterministic simulator of how the departments of an organisation serve each other.

:func:`simulate` turns a directory, a time window, a rate and a seed into canonical events in
event-time order: requests between department pairs (everyone asks IT and HR a lot, Sales asks
Legal, Finance asks Procurement, ...), opened mostly in the customer's working hours with a
weekday and time-of-day shape, answered and resolved inside the provider's business hours
(its calendar and timezone, via zoneinfo) relative to the SLA targets of the directory, with
``waiting_on_customer`` pauses, reopens, closes, CSAT that falls as replies get slower, and
fortnightly HR pulse surveys (``survey.answered``). The same arguments give the same events.

Scenarios (:data:`SCENARIOS`) are small dataclasses of knobs: ``steady``; ``it-degradation``,
where from the middle of the window IT's replies to Finance slow down six-fold and Finance's
CSAT and survey scores for IT fall, enough for the satisfaction, SLA and NPS alerts to fire; and
``hr-recruiting`` (a :class:`ServiceEpisode`), the product's story over a quarter: HR's
recruiting is slow and complained about until an improvement action (``action.recorded``) six
weeks before the end, fast and praised after it, with a survey campaign (``survey.invited``,
``survey.answered`` by question) on each side. Its moments are timed from the END of the window
(:func:`hr_recruiting_timeline`), so a demo that simulates up to now always ends the story today.

:func:`simulate` never sleeps, so a month of history takes seconds; :func:`live` paces any
event stream to wall time for ``deptpulse simulate --rate``.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from time import sleep as _sleep
from time import time as _wall_time
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

from schemas.directory import Calendar, Department, Directory, SlaTarget
from schemas.events import (
    ActionRecorded,
    Event,
    FeedbackSubmitted,
    RequestClosed,
    RequestOpened,
    RequestReopened,
    RequestResolved,
    RequestResponded,
    RequestStatusChanged,
    SurveyAnswered,
    SurveyInvited,
)
from schemas.ids import IN_PROGRESS, WAITING_ON_CUSTOMER

_E = TypeVar("_E", bound=Event)

HOUR: Final = 3600.0
DAY: Final = 86400.0

# --- scenarios ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Degradation:
    """One provider serving one customer badly from some point of the window on."""

    provider: str
    customer: str
    starts_at: float = 0.5  # fraction of the window
    reply_slowdown: float = 6.0  # multiplies first-response and reply delays (business time)
    resolution_slowdown: float = 3.0
    csat_drop: float = 0.6  # subtracted from the mean CSAT, on top of the slowness effect
    survey_drop: float = 3.5  # subtracted from the mean survey score (0-10)
    volume_factor: float = 2.0  # unhappy customers open more requests (follow-ups, escalations)
    feedback_share: float = 0.6  # and answer more CSAT surveys

    def applies(self, provider: str, customer: str, at: float, starts: float) -> bool:
        return provider == self.provider and customer == self.customer and at >= starts


@dataclass(frozen=True)
class Phrases:
    """Comments in Chinese and in English; people write in their department's locale, some in the other."""

    zh: tuple[str, ...]
    en: tuple[str, ...]

    def pick(self, rng: random.Random, locale: str) -> str:
        chinese = (locale == "zh") != (rng.random() < _OTHER_LANGUAGE_SHARE)
        return rng.choice(self.zh if chinese else self.en)


# (comments when the score is low, comments when it is high); None: no comment in that case
Tones = tuple[Phrases | None, Phrases | None]


@dataclass(frozen=True)
class SurveyQuestion:
    """A question of a survey campaign: a 0-10 score, about one service of the provider or none."""

    question_id: str
    service: str | None  # the answers' service_category, if the directory has it
    mean_before: float  # mean score while the episode's service is slow
    mean_after: float  # and once the action took effect
    comments_before: Tones = (None, None)
    comments_after: Tones = (None, None)
    comment_share: float = 0.1  # of the answers a comment of the right tone exists for


@dataclass(frozen=True)
class SurveyCampaign:
    """A survey round about the provider, ``days_before_end`` days before the window's end."""

    days_before_end: int
    low_response_customer: str | None = None  # the one department that hardly answers this round


@dataclass(frozen=True)
class CampaignTiming:
    """A campaign's id (``<prefix>-<ISO year>-w<ISO week>`` of its launch) and launch (10:00 local)."""

    campaign_id: str
    launch: datetime


@dataclass(frozen=True)
class EpisodeTimeline:
    """When the moments of a :class:`ServiceEpisode` fall, for a window that ends at a given instant."""

    action_start: datetime  # midnight (provider's zone) of started_on: the service is fast from here
    started_on: date  # the provider's local date of the action, as action.recorded says
    action_recorded_at: datetime  # the action.recorded event's occurred_at
    campaigns: tuple[CampaignTiming, ...]  # in the order of ServiceEpisode.campaigns


@dataclass(frozen=True, kw_only=True)
class ServiceEpisode:
    """One service of a provider is slow until an improvement action, then fast again.

    Timed from the END of the window, in the provider's calendar: the action starts on the first
    working day at or after ``action_days_before_end`` days before the end; a campaign launches at
    10:00 on the first working day at or after its ``days_before_end``. Until the action, the
    service's replies take ``reply_slowdown`` and its work ``resolution_slowdown`` times as long;
    from the action on, new requests are served normally and the open backlog goes first, at
    ``backlog_pace`` times the normal duration of what was left of each step.
    """

    provider: str
    service: str
    action_title: str
    action_days_before_end: int
    reply_slowdown: float = 7.0
    resolution_slowdown: float = 3.5
    backlog_pace: float = 0.25
    csat_drop: float = 0.8  # subtracted from the mean CSAT of slow requests, on top of slowness
    feedback_share: float = 0.55  # unhappy customers answer more CSAT surveys
    slow_comments: Phrases  # on slow requests rated 1-3
    neutral_comments: Phrases  # on the service's other requests, now and then
    fast_comments: Phrases  # on requests after the action rated 4-5
    ordinary_comments: Phrases  # on the provider's other requests, rated 4-5
    service_comments: tuple[tuple[str, Phrases], ...] = ()  # instead of those, for these services
    campaign_prefix: str
    campaigns: tuple[SurveyCampaign, ...]
    questions: tuple[SurveyQuestion, ...]
    invited: tuple[int, int] = (40, 60)  # invitees per customer department and campaign
    response_rate: tuple[float, float] = (0.35, 0.70)
    low_response_rate: tuple[float, float] = (0.12, 0.24)

    def timeline(self, directory: Directory, end: datetime) -> EpisodeTimeline:
        """The action and the campaigns of a window that ends at ``end``."""
        clock = BusinessClock(directory.department(self.provider).calendar)

        def working_day_from(days_before_end: int) -> date:
            first = (end - timedelta(days=days_before_end)).astimezone(clock.zone).date()
            for offset in range(14):  # a holiday week and a weekend at most; a calendar without hours: as is
                if clock.intervals(first + timedelta(days=offset)):
                    return first + timedelta(days=offset)
            return first

        started_on = working_day_from(self.action_days_before_end)
        action_start = datetime.combine(started_on, time(0), clock.zone).astimezone(UTC)
        campaigns = []
        for campaign in self.campaigns:
            day = working_day_from(campaign.days_before_end)
            year, week, _ = day.isocalendar()
            launch = datetime.combine(day, _SURVEY_LAUNCH, clock.zone).astimezone(UTC)
            campaigns.append(CampaignTiming(f"{self.campaign_prefix}-{year}-w{week:02d}", launch))
        if len({c.campaign_id for c in campaigns}) < len(campaigns):
            raise ValueError("two campaigns of the episode fall in one ISO week: their ids would clash")
        return EpisodeTimeline(
            action_start,
            started_on,
            action_start + timedelta(seconds=_ACTION_RECORDED_AFTER),
            tuple(campaigns),
        )

    def request_comment(
        self, rng: random.Random, service: str | None, slow: bool, csat: int, locale: str
    ) -> str | None:
        """A feedback comment on one of the provider's requests, or None."""
        if service == self.service:
            if slow and csat <= 3:
                return self.slow_comments.pick(rng, locale) if rng.random() < 0.6 else None
            if not slow and csat >= 4:
                return self.fast_comments.pick(rng, locale) if rng.random() < 0.35 else None
            return self.neutral_comments.pick(rng, locale) if rng.random() < 0.2 else None
        if csat >= 4:
            phrases = dict(self.service_comments).get(service or "", self.ordinary_comments)
            return phrases.pick(rng, locale) if rng.random() < 0.15 else None
        return rng.choice(LOW_CSAT_COMMENTS) if csat <= 2 and rng.random() < 0.5 else None


@dataclass(frozen=True)
class Scenario:
    """The knobs of a simulation; shares are per request."""

    name: str
    description: str
    feedback_share: float = 0.35
    waiting_share: float = 0.25
    reopen_share: float = 0.06
    close_share: float = 0.85
    reply_median_of_target: float = 0.3  # first reply, as a fraction of the SLA target
    reply_spread: float = 0.45  # lognormal sigma: ~0.5 % breach the first-response target
    survey_every_days: int = 14  # fortnightly pulse surveys; 0: none
    survey_respondents: tuple[int, int] = (22, 32)  # per (customer, provider): above nps_min_sample
    degradation: Degradation | None = None
    episode: ServiceEpisode | None = None
    # Overrides of PROVIDER_WEIGHT and SERVICE_WEIGHT: who is asked how much in this scenario.
    provider_weight: tuple[tuple[str, float], ...] = ()
    service_weight: tuple[tuple[str, float], ...] = ()


# --- the hr-recruiting story ------------------------------------------------------------------------

HR_RECRUITING: Final = "hr-recruiting"
HR_RECRUITING_DAYS: Final = 91  # the quarter the story spans: simulate this many days up to the end
# Request events per second of event time for the quarter. Measured on a 2-core machine: 34,000-
# 37,500 events in all (five seeds and ends), generated in 1.1-1.3 s; `deptpulse simulate --out`
# writes the JSONL in 1.5 s (2.2 s wall with start-up).
HR_RECRUITING_RATE_PER_S: Final = 0.0045
# The action starts on the first working day (HR's calendar) at or after this many days before the
# end: 28 days before it, a settling week and 28 days after it all fit in the quarter.
HR_RECRUITING_ACTION_DAYS_BEFORE_END: Final = 42
HR_PULSE_BEFORE_DAYS_BEFORE_END: Final = 55  # a campaign while recruiting is slow
HR_PULSE_AFTER_DAYS_BEFORE_END: Final = 8  # and one after the fix
HR_PULSE_LOW_RESPONSE_DEPARTMENT: Final = "legal"  # answers fewer than 30 % in the second campaign

RECRUITING_SLOW_COMMENTS: Final = Phrases(
    zh=(
        "招聘太慢了，面试安排拖了三周",
        "招聘流程太慢，岗位空缺两个月",
        "面试一直排不上，候选人都去别家了",
        "简历筛选等了十天才有回复，招聘进度太慢",
        "岗位开了六周还没有一个面试，招聘效率太低",
        "招聘需求提交一周都没人回复",
        "候选人等offer等太久，最后放弃了",
        "招聘太慢，团队人手严重不足",
    ),
    en=(
        "hiring takes too long",
        "recruiting is slow, candidates drop out",
        "Three weeks to schedule one interview.",
        "The position has been open for two months and we have seen two CVs.",
        "Nobody from recruiting replied for a week.",
        "Recruiting is so slow that our best candidate accepted another offer.",
        "Hiring process is far too slow, the team is understaffed.",
        "Still waiting for interview slots; recruiting is the bottleneck.",
    ),
)
RECRUITING_NEUTRAL_COMMENTS: Final = Phrases(
    zh=("希望能定期更新招聘进度", "招聘专员态度很好", "请提供职位描述模板", "下周再跟进一下候选人情况"),
    en=(
        "Please share a weekly status of open positions.",
        "The recruiter was friendly.",
        "A job description template would help.",
        "Will follow up on the candidate next week.",
    ),
)
RECRUITING_FAST_COMMENTS: Final = Phrases(
    zh=(
        "招聘速度明显加快",
        "三天内就安排了面试，很满意",
        "每个岗位都有专人负责，沟通顺畅多了",
        "招聘效率提高了很多，谢谢",
        "这次很快就招到了合适的人",
    ),
    en=(
        "hiring is much faster now",
        "Interviews scheduled within three days, great.",
        "One owner per position makes a real difference.",
        "Recruiting turned this around quickly, thanks.",
        "Much faster hiring, the new process works.",
    ),
)
HR_ORDINARY_COMMENTS: Final = Phrases(
    zh=("谢谢，问题已解决", "回复很及时", "处理得很专业"),
    en=("Thanks, all sorted.", "Quick and helpful.", "Friendly and professional."),
)
PAYROLL_COMMENTS: Final = Phrases(
    zh=("工资单的问题很快就解决了", "薪资问题处理得很及时", "工资一直很准时准确"),
    en=(
        "Payslip question answered quickly.",
        "Payroll fixed it the same day, thanks.",
        "Salary always right and on time.",
    ),
)
ONBOARDING_COMMENTS: Final = Phrases(
    zh=("新员工入职手续办得很顺利", "入职第一天账号和电脑都准备好了"),
    en=("Onboarding went smoothly.", "The new hire had accounts and a laptop on day one."),
)
HR_OVERALL_SLOW_COMMENTS: Final = Phrases(
    zh=("人力资源部整体不错，但招聘太慢", "除了招聘，其他都挺好"),
    en=("HR is helpful, but recruiting drags everything down.", "Fine overall, except hiring."),
)
HR_OVERALL_BETTER_COMMENTS: Final = Phrases(
    zh=("这个季度人力资源部进步很大", "招聘改进后整体体验好多了"),
    en=("HR got much better this quarter.", "Since recruiting was reorganised, working with HR is easy."),
)

HR_RECRUITING_EPISODE: Final = ServiceEpisode(
    provider="hr",
    service="hr.recruiting",
    action_title="Recruiting reorganised: one owner per open position, interviews scheduled within 3 days",
    action_days_before_end=HR_RECRUITING_ACTION_DAYS_BEFORE_END,
    slow_comments=RECRUITING_SLOW_COMMENTS,
    neutral_comments=RECRUITING_NEUTRAL_COMMENTS,
    fast_comments=RECRUITING_FAST_COMMENTS,
    ordinary_comments=HR_ORDINARY_COMMENTS,
    service_comments=(("hr.payroll", PAYROLL_COMMENTS), ("hr.onboarding", ONBOARDING_COMMENTS)),
    campaign_prefix="hr-pulse",
    campaigns=(
        SurveyCampaign(HR_PULSE_BEFORE_DAYS_BEFORE_END),
        SurveyCampaign(
            HR_PULSE_AFTER_DAYS_BEFORE_END, low_response_customer=HR_PULSE_LOW_RESPONSE_DEPARTMENT
        ),
    ),
    questions=(
        SurveyQuestion(
            "recruiting-speed",
            "hr.recruiting",
            mean_before=3.5,
            mean_after=8.4,
            comments_before=(RECRUITING_SLOW_COMMENTS, None),
            comments_after=(RECRUITING_NEUTRAL_COMMENTS, RECRUITING_FAST_COMMENTS),
            comment_share=0.4,
        ),
        SurveyQuestion(
            "payroll-accuracy",
            "hr.payroll",
            mean_before=8.4,
            mean_after=8.4,
            comments_before=(None, PAYROLL_COMMENTS),
            comments_after=(None, PAYROLL_COMMENTS),
        ),
        SurveyQuestion(
            "overall",
            None,
            mean_before=6.5,
            mean_after=8.3,
            comments_before=(HR_OVERALL_SLOW_COMMENTS, HR_ORDINARY_COMMENTS),
            comments_after=(None, HR_OVERALL_BETTER_COMMENTS),
            comment_share=0.15,
        ),
    ),
)

HR_PULSE_QUESTIONS: Final = tuple(question.question_id for question in HR_RECRUITING_EPISODE.questions)


def hr_recruiting_timeline(directory: Directory, end: datetime) -> EpisodeTimeline:
    """When the hr-recruiting story's action and campaigns fall, for a window ending at ``end``.

    ``campaigns[0]`` is the campaign while recruiting is slow, ``campaigns[1]`` the one after the fix.
    """
    return HR_RECRUITING_EPISODE.timeline(directory, end)


SCENARIOS: Final[dict[str, Scenario]] = {
    "steady": Scenario("steady", "Every department serves within its SLAs; CSAT around 4.5."),
    "it-degradation": Scenario(
        "it-degradation",
        "From the middle of the window IT answers Finance six times slower; Finance's CSAT and "
        "survey scores for IT fall.",
        degradation=Degradation(provider="it", customer="finance"),
    ),
    HR_RECRUITING: Scenario(
        HR_RECRUITING,
        "A quarter of HR: recruiting is slow and complained about until an improvement action "
        "six weeks before the end, then fast and praised; HR survey campaigns before and after.",
        survey_every_days=0,  # the episode's campaigns ask about HR instead
        episode=HR_RECRUITING_EPISODE,
        provider_weight=(("hr", 12.0),),  # HR is asked most; the rest of the organisation is sparse
        service_weight=(("hr.recruiting", 2.0),),
    ),
}

# --- the organisation's traffic -------------------------------------------------------------------

# How much each department is asked for help, and how many people ask; unknown ids weigh 1.
PROVIDER_WEIGHT: Final = {
    "it": 6.0, "hr": 4.0, "facilities": 2.0, "finance": 1.5,
    "procurement": 1.0, "engineering": 1.0, "legal": 0.5, "sales": 0.3,
}  # fmt: skip
CUSTOMER_WEIGHT: Final = {"engineering": 3.0, "sales": 2.5, "finance": 1.2, "it": 1.0, "hr": 0.8}
# Pairs that are heavier than the two weights above suggest.
PAIR_FACTOR: Final = {
    ("sales", "legal"): 8.0, ("procurement", "legal"): 4.0, ("finance", "procurement"): 6.0,
    ("it", "procurement"): 4.0, ("sales", "finance"): 3.0, ("engineering", "it"): 1.5,
    ("it", "engineering"): 3.0, ("sales", "engineering"): 2.0, ("finance", "it"): 1.5,
}  # fmt: skip
SERVICE_WEIGHT: Final = {"it.access": 5.0, "it.hardware": 3.0, "it.outage": 0.5}
UNCATEGORISED_SHARE: Final = 0.05
PRIORITY_WEIGHT: Final = {"P1": 0.03, "P2": 0.15, "P3": 0.57, "P4": 0.25}
FALLBACK_SLA: Final = SlaTarget(first_response=4 * 3600, resolution=3 * 86400)
CHANNELS: Final = ("portal", "portal", "portal", "email", "chat")
TICKETING_SOURCES: Final = ("jira-sm", "servicenow", "zendesk")
SURVEY_SOURCE: Final = "hr-survey"
SURVEYED_PROVIDERS: Final = ("it", "hr", "facilities", "finance")
# Requests by local hour of the customer, inside its working hours; 1.0 is the busiest hour.
HOURLY_SHAPE: Final = {8: 0.7, 9: 0.9, 10: 1.0, 11: 1.0, 12: 0.6, 13: 0.7, 14: 0.95, 15: 0.9, 16: 0.8, 17: 0.6}  # fmt: skip
AFTER_HOURS_SHAPE: Final = 0.03
WEEKDAY_FACTOR: Final = (1.15, 1.05, 1.0, 0.95, 0.8, 1.0, 1.0)  # Monday's backlog, Friday's exodus
_SHAPE_MAX: Final = 1.15
LOW_CSAT_COMMENTS: Final = ("Took days to get a first answer.", "Still not fixed.", "Nobody replied.")
LOW_SCORE_COMMENTS: Final = ("Slow to respond lately.", "Hard to reach anyone.", "Tickets sit for days.")
_PILOT_CANDIDATES: Final = 8_000
_SURVEY_ANCHOR: Final = date(2026, 1, 5)  # a Monday: waves fall on the same days in every run
_SURVEY_LAUNCH: Final = time(10, 0)
_SURVEY_ANSWER_SPAN: Final = 2 * 9 * HOUR  # answers arrive over about two business days
_CAMPAIGN_ANSWER_SPAN: Final = 3 * 8 * HOUR  # campaign answers: three business days, most on the first
_ACTION_RECORDED_AFTER: Final = 10 * HOUR  # an action is recorded at 10:00 on the day it starts
_ACTION_SOURCE: Final = "deptpulse"
_OTHER_LANGUAGE_SHARE: Final = 0.3  # of comments written in the other language than the department's
_SKIPPED_QUESTION_SHARE: Final = 0.05  # of questions a respondent leaves unanswered


class BusinessClock:
    """Business time on a department calendar; instants are POSIX timestamps (seconds)."""

    def __init__(self, calendar: Calendar) -> None:
        self.zone = ZoneInfo(calendar.timezone)
        weekdays = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        self._hours = [calendar.working_hours.get(day, []) for day in weekdays]  # type: ignore[call-overload]
        self._holidays = frozenset(calendar.holidays)
        self._always_open = not any(self._hours)
        self._days: dict[date, tuple[tuple[float, float], ...]] = {}

    def intervals(self, day: date) -> tuple[tuple[float, float], ...]:
        """The working intervals of a local day, as timestamps."""
        cached = self._days.get(day)
        if cached is None:
            cached = (
                ()
                if day in self._holidays
                else tuple(
                    (
                        datetime.combine(day, interval.start, self.zone).timestamp(),
                        datetime.combine(day, interval.end, self.zone).timestamp(),
                    )
                    for interval in self._hours[day.weekday()]
                )
            )
            self._days[day] = cached
        return cached

    def add(self, at: float, seconds: float) -> float:
        """The instant ``seconds`` of business time after ``at``: always inside working hours."""
        if self._always_open:
            return at + seconds
        day = datetime.fromtimestamp(at, self.zone).date()
        remaining = seconds
        for _ in range(3660):  # ten years of days: a calendar with hours always ends this
            for start, end in self.intervals(day):
                if at >= end:
                    continue
                begin = max(at, start)
                if begin + remaining <= end:
                    return begin + remaining
                remaining -= end - begin
            day += timedelta(days=1)
        raise ValueError("no working hours within ten years")

    def between(self, start: float, end: float) -> float:
        """Business seconds from ``start`` to ``end`` (0 when ``end`` is not later)."""
        if end <= start:
            return 0.0
        if self._always_open:
            return end - start
        day = datetime.fromtimestamp(start, self.zone).date()
        last = datetime.fromtimestamp(end, self.zone).date()
        total = 0.0
        while day <= last:
            for begin, finish in self.intervals(day):
                total += max(0.0, min(finish, end) - max(begin, start))
            day += timedelta(days=1)
        return total

    def opening_shape(self, at: float) -> float:
        """Relative chance that someone of this department opens a request at ``at``."""
        local = datetime.fromtimestamp(at, self.zone)
        working = self._always_open or any(start <= at < end for start, end in self.intervals(local.date()))
        if not working:
            return AFTER_HOURS_SHAPE
        return HOURLY_SHAPE.get(local.hour, 0.5) * WEEKDAY_FACTOR[local.weekday()]


@dataclass(frozen=True)
class _Pair:
    customer: str
    provider: str


@dataclass
class _Organisation:
    """What the simulation needs of the directory, precomputed once."""

    directory: Directory
    scenario: Scenario
    clocks: dict[str, BusinessClock] = field(init=False)
    pairs: list[_Pair] = field(init=False)
    cumulative_weights: list[float] = field(init=False)
    sources: dict[str, str] = field(init=False)
    prefixes: dict[str, str] = field(init=False)
    service_weight: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        departments = self.directory.departments
        self.clocks = {d.id: BusinessClock(d.calendar) for d in departments}
        self.pairs = [_Pair(c.id, p.id) for c in departments for p in departments if c.id != p.id]
        provider_weight = {**PROVIDER_WEIGHT, **dict(self.scenario.provider_weight)}
        self.service_weight = {**SERVICE_WEIGHT, **dict(self.scenario.service_weight)}
        weights = [
            provider_weight.get(pair.provider, 1.0)
            * CUSTOMER_WEIGHT.get(pair.customer, 1.0)
            * PAIR_FACTOR.get((pair.customer, pair.provider), 1.0)
            for pair in self.pairs
        ]
        self.cumulative_weights = list(itertools.accumulate(weights))
        self.sources = {d.id: _ticketing_source(d, index) for index, d in enumerate(departments)}
        self.prefixes = {d.id: _request_prefix(d) for d in departments}

    def choose_pair(self, rng: random.Random) -> _Pair:
        point = rng.random() * self.cumulative_weights[-1]
        return self.pairs[bisect.bisect_right(self.cumulative_weights, point)]

    def choose_service(self, rng: random.Random, provider: str) -> tuple[str | None, str | None]:
        """A service category of the provider (or none) and a priority its SLAs know."""
        department = self.directory.department(provider)
        service = None
        if department.services and rng.random() >= UNCATEGORISED_SHARE:
            services = department.services
            service = rng.choices(services, [self.service_weight.get(s.id, 1.0) for s in services])[0]
        slas = service.sla if service and service.sla else department.default_sla
        priorities: list[str] = list(slas) or list(PRIORITY_WEIGHT)
        priority = rng.choices(priorities, [PRIORITY_WEIGHT[p] for p in priorities])[0]
        return (service.id if service else None), priority


def _ticketing_source(department: Department, index: int) -> str:
    """Each department works in one ticketing system; spread them over the ones it is mapped in."""
    mapped = sorted({m.source for m in department.mappings if m.source in TICKETING_SOURCES})
    candidates = mapped or list(TICKETING_SOURCES)
    return candidates[index % len(candidates)]


def _request_prefix(department: Department) -> str:
    for mapping in department.mappings:
        if mapping.source == "jira-sm" and mapping.field == "project":
            return mapping.values[0]
    return department.id.upper()


# --- one request's life ---------------------------------------------------------------------------


# A planned event: when, which model, which fields on top of the request's common fields.
_Planned = tuple[float, type[Event], dict[str, Any]]


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


@dataclass(frozen=True, slots=True)
class _Pace:
    """A request of a :class:`ServiceEpisode`: ``before`` times the normal durations until ``change``,
    ``after`` times what is left from then on (a step that spans the change is split at it)."""

    add: Callable[[float, float], float]
    between: Callable[[float, float], float]
    change: float
    reply_before: float
    work_before: float
    after: float

    def reply(self, at: float, seconds: float) -> float:
        return self._step(at, seconds, self.reply_before)

    def work(self, at: float, seconds: float) -> float:
        return self._step(at, seconds, self.work_before)

    def _step(self, at: float, seconds: float, before: float) -> float:
        if at >= self.change:
            return self.add(at, seconds * self.after)
        slow_end = self.add(at, seconds * before)
        if slow_end <= self.change:
            return slow_end
        done = self.between(at, self.change) / (seconds * before)
        return self.add(self.change, max(0.0, 1.0 - done) * seconds * self.after)


@dataclass
class _Lifecycle:
    """Plans every event of one request at once; the caller interleaves requests by time."""

    organisation: _Organisation
    scenario: Scenario
    degradation_starts: float
    episode_change: float = math.inf  # when the episode's action starts

    def plan(self, rng: random.Random, opened: float, pair: _Pair) -> tuple[dict[str, Any], list[_Planned]]:
        provider_clock = self.organisation.clocks[pair.provider]
        customer_clock = self.organisation.clocks[pair.customer]
        service, priority = self.organisation.choose_service(rng, pair.provider)
        target = self.organisation.directory.sla_target(pair.provider, service, priority, pair.customer) or FALLBACK_SLA
        business_clock = target.clock == "business"
        provider_add = provider_clock.add if business_clock else _calendar_add
        scenario, degradation, episode = self.scenario, self.scenario.degradation, self.scenario.episode
        degraded = degradation is not None and degradation.applies(
            pair.provider, pair.customer, opened, self.degradation_starts
        )
        slow = degradation.reply_slowdown if degradation and degraded else 1.0
        slow_resolution = degradation.resolution_slowdown if degradation and degraded else 1.0
        pace = None
        if episode is not None and pair.provider == episode.provider and service == episode.service:
            pace = _Pace(
                provider_add,
                provider_clock.between if business_clock else _calendar_between,
                self.episode_change,
                episode.reply_slowdown,
                episode.resolution_slowdown,
                1.0 if opened >= self.episode_change else episode.backlog_pace,
            )
        episode_slow = pace is not None and opened < self.episode_change
        reply = pace.reply if pace else provider_add
        do_work = pace.work if pace else provider_add

        first_reply = max(
            60.0,
            _lognormal(rng, scenario.reply_median_of_target * target.first_response, scenario.reply_spread)
            * slow,
        )
        responded = reply(opened, first_reply)
        planned: list[_Planned] = [
            (opened, RequestOpened, {"attributes": {"channel": rng.choice(CHANNELS)}}),
            (responded, RequestResponded, {}),
        ]
        last = responded
        if rng.random() < scenario.waiting_share:
            waiting = provider_add(last, rng.uniform(60.0, 1800.0))
            resumed = customer_clock.add(waiting, _lognormal(rng, 3 * HOUR, 0.8))
            last = reply(resumed, _lognormal(rng, 0.2 * target.first_response, 0.6) * slow)
            planned += [
                (waiting, RequestStatusChanged, {"status": WAITING_ON_CUSTOMER}),
                (resumed, RequestStatusChanged, {"status": IN_PROGRESS}),
                (last, RequestResponded, {}),
            ]
        work = max(60.0, _lognormal(rng, 0.2 * target.resolution, 0.7) * slow_resolution)
        resolved = do_work(last, work)
        if pace is not None:  # the business time it took, not the normal work it needed
            first_reply, work = pace.between(opened, responded), pace.between(last, resolved)
        planned.append((resolved, RequestResolved, {}))
        reopened = rng.random() < scenario.reopen_share
        if reopened:
            reopened_at = customer_clock.add(resolved, _lognormal(rng, 2 * HOUR, 0.8))
            replied = reply(reopened_at, _lognormal(rng, 0.3 * target.first_response, 0.5) * slow)
            resolved = do_work(replied, _lognormal(rng, 0.1 * target.resolution, 0.7))
            planned += [
                (reopened_at, RequestReopened, {}),
                (replied, RequestResponded, {}),
                (resolved, RequestResolved, {}),
            ]
        if episode is not None and episode_slow:
            feedback_share = episode.feedback_share
        elif degradation and degraded:
            feedback_share = degradation.feedback_share
        else:
            feedback_share = scenario.feedback_share
        if rng.random() < feedback_share:
            if episode is not None and episode_slow:
                drop = episode.csat_drop
            else:
                drop = degradation.csat_drop if degradation and degraded else 0.0
            csat = self._csat(
                rng,
                first_reply / target.first_response,
                (first_reply + work) / target.resolution,
                reopened,
                drop,
            )
            extra: dict[str, Any] = {"csat": csat}
            if episode is not None and pair.provider == episode.provider:
                locale = self.organisation.directory.department(pair.customer).locale
                comment = episode.request_comment(rng, service, episode_slow, csat, locale)
                if comment is not None:
                    extra["comment"] = comment
            elif csat <= 2 and rng.random() < 0.5:
                extra["comment"] = rng.choice(LOW_CSAT_COMMENTS)
            planned.append(
                (customer_clock.add(resolved, _lognormal(rng, 1.5 * HOUR, 1.0)), FeedbackSubmitted, extra)
            )
        if rng.random() < scenario.close_share:
            planned.append((resolved + 3 * DAY + rng.uniform(0, HOUR), RequestClosed, {}))

        common = {
            "schema_version": 1,
            "source": self.organisation.sources[pair.provider],
            "provider_department": pair.provider,
            "customer_department": pair.customer,
            "service_category": service,
            "priority": priority,
        }
        return common, planned

    @staticmethod
    def _csat(
        rng: random.Random, reply_ratio: float, resolution_ratio: float, reopened: bool, drop: float
    ) -> int:
        """CSAT 1-5: about 4.7 when served within target, one point less per doubling beyond it."""
        mean = (
            4.7
            - 0.9 * max(0.0, math.log2(reply_ratio))
            - 0.5 * max(0.0, math.log2(resolution_ratio))
            - (0.8 if reopened else 0.0)
            - drop
        )
        return min(5, max(1, round(rng.gauss(mean, 0.7))))


def _calendar_add(at: float, seconds: float) -> float:
    return at + seconds


def _calendar_between(start: float, end: float) -> float:
    return max(0.0, end - start)


# --- the simulation -------------------------------------------------------------------------------


# A scheduled event: (when, tie-breaker, model, fields); a tuple, so the heap compares in C.
_Pending = tuple[float, int, type[Event], dict[str, Any]]


class _Simulation:
    def __init__(
        self, directory: Directory, start: datetime, duration: timedelta, seed: int, scenario: Scenario
    ) -> None:
        self.organisation = _Organisation(directory, scenario)
        self.scenario = scenario
        self.start = start.timestamp()
        self.end = self.start + duration.total_seconds()
        self.seed = seed
        starts = scenario.degradation.starts_at if scenario.degradation else 1.0
        self.timeline = scenario.episode.timeline(directory, start + duration) if scenario.episode else None
        self.lifecycle = _Lifecycle(
            self.organisation,
            scenario,
            self.start + starts * (self.end - self.start),
            self.timeline.action_start.timestamp() if self.timeline else math.inf,
        )
        # Ids: unique per run, stable for the same arguments, distinct for another window or seed.
        tag_rng = random.Random(f"{seed}/{start.isoformat()}/{duration.total_seconds()}/{scenario.name}")
        self.tag = f"{tag_rng.getrandbits(24):06x}"
        self._shape_ceiling = _SHAPE_MAX * max(
            1.0, scenario.degradation.volume_factor if scenario.degradation else 1.0
        )
        self._pending: list[_Pending] = []
        self._sequence = itertools.count()
        self.requests = 0

    def accepts(self, rng: random.Random, at: float, pair: _Pair) -> bool:
        """Thinning: a candidate arrival becomes a request with the customer's opening shape."""
        shape = self.organisation.clocks[pair.customer].opening_shape(at)
        degradation = self.scenario.degradation
        if degradation and degradation.applies(
            pair.provider, pair.customer, at, self.lifecycle.degradation_starts
        ):
            shape *= degradation.volume_factor
        return rng.random() * self._shape_ceiling < shape

    def candidate_rate(self, rate_per_s: float) -> float:
        """Candidates per second so that the window holds ``rate_per_s`` request events per second.

        A pilot run (own generator, same model) measures how many in-window events a candidate
        yields: about 6 over a month, about 1 in a one-minute window where lifecycles are cut off.
        """
        rng = random.Random(f"pilot/{self.seed}")
        in_window = 0
        for _ in range(_PILOT_CANDIDATES):
            at = self.start + rng.random() * (self.end - self.start)
            pair = self.organisation.choose_pair(rng)
            if self.accepts(rng, at, pair):
                _, planned = self.lifecycle.plan(rng, at, pair)
                in_window += sum(1 for when, _, _ in planned if when < self.end)
        per_candidate = max(in_window, 1) / _PILOT_CANDIDATES
        return rate_per_s / per_candidate

    def run(self, rate_per_s: float) -> Iterator[Event]:
        rng = random.Random(self.seed)
        candidates_per_s = self.candidate_rate(rate_per_s)
        launches = self._launches()
        next_launch = next(launches, None)
        at = self.start
        while True:
            at += rng.expovariate(candidates_per_s)
            if at >= self.end:
                break
            while next_launch is not None and next_launch[0] <= at:
                next_launch[1](rng)
                next_launch = next(launches, None)
            yield from self._due(at)
            pair = self.organisation.choose_pair(rng)
            if self.accepts(rng, at, pair):
                self._open(rng, at, pair)
        while next_launch is not None:
            next_launch[1](rng)
            next_launch = next(launches, None)
        yield from self._due(self.end, inclusive=False)

    def _launches(self) -> Iterator[tuple[float, Callable[[random.Random], None]]]:
        """What schedules events at an instant, in time order: pulse waves, an episode's campaigns and action.

        Each is called with the traffic's generator once the traffic reaches its instant, so that
        the events it schedules (never earlier than that instant) come out in time order.
        """
        waves = (
            (launch, functools.partial(self._launch_survey, wave=wave, launch=launch))
            for wave, launch in self._survey_waves()
        )
        story: list[tuple[float, Callable[[random.Random], None]]] = []
        if self.timeline is not None:
            for index, timing in enumerate(self.timeline.campaigns):
                launch = timing.launch.timestamp()
                if self.start - 7 * DAY <= launch < self.end:  # answers of a week-old campaign still come
                    story.append((launch, functools.partial(self._launch_campaign, index=index)))
            recorded = self.timeline.action_recorded_at.timestamp()
            if self.start <= recorded < self.end:
                story.append((recorded, self._record_action))
        story.sort(key=lambda item: item[0])
        return heapq.merge(waves, story, key=lambda item: item[0])

    def _due(self, until: float, inclusive: bool = True) -> Iterator[Event]:
        pending = self._pending
        while pending and (pending[0][0] <= until if inclusive else pending[0][0] < until):
            at, _, model, fields = heapq.heappop(pending)
            yield model(occurred_at=_utc(at), **fields)

    def _open(self, rng: random.Random, at: float, pair: _Pair) -> None:
        self.requests += 1
        request_id = f"{self.organisation.prefixes[pair.provider]}-{self.tag}-{self.requests}"
        common, planned = self.lifecycle.plan(rng, at, pair)
        for index, (when, model, extra) in enumerate(planned):
            if when >= self.end:
                continue
            fields = {
                **common,
                **extra,
                "event_type": _EVENT_TYPE[model],
                "request_id": request_id,
                "event_id": f"{request_id}.{index}",
            }
            heapq.heappush(self._pending, (when, next(self._sequence), model, fields))

    def _survey_waves(self) -> Iterator[tuple[int, float]]:
        """Pulse-survey launches (wave number, instant), Mondays 10:00 in the HR calendar's zone.

        Waves that began up to a week before the window still send answers into it.
        """
        every = self.scenario.survey_every_days
        if every <= 0:
            return
        clock = self.organisation.clocks.get("hr") or next(iter(self.organisation.clocks.values()))
        first_day = datetime.fromtimestamp(self.start - 7 * DAY, clock.zone).date()
        wave = max(0, math.ceil((first_day - _SURVEY_ANCHOR).days / every))
        while True:
            day = _SURVEY_ANCHOR + timedelta(days=wave * every)
            launch = datetime.combine(day, _SURVEY_LAUNCH, clock.zone).timestamp()
            if launch >= self.end:
                return
            yield wave, launch
            wave += 1

    def _launch_survey(self, rng: random.Random, wave: int, launch: float) -> None:
        organisation = self.organisation
        degradation = self.scenario.degradation
        providers = [p for p in SURVEYED_PROVIDERS if organisation.directory.has_department(p)]
        providers = providers or [d.id for d in organisation.directory.departments if d.services]
        low, high = self.scenario.survey_respondents
        answer = 0
        for provider in providers:
            for customer in organisation.directory.department_ids():
                if customer == provider:
                    continue
                degraded = degradation is not None and degradation.applies(
                    provider, customer, launch, self.lifecycle.degradation_starts
                )
                mean = 8.3 - (degradation.survey_drop if degradation and degraded else 0.0)
                for _ in range(rng.randint(low, high)):
                    answer += 1
                    when = organisation.clocks[customer].add(launch, rng.uniform(0, _SURVEY_ANSWER_SPAN))
                    score = min(10, max(0, round(rng.gauss(mean, 1.6))))
                    if when < self.start or when >= self.end:
                        continue
                    fields: dict[str, Any] = {
                        "schema_version": 1,
                        "event_type": "survey.answered",
                        "event_id": f"survey-{self.tag}-w{wave}-{answer}",
                        "source": SURVEY_SOURCE,
                        "provider_department": provider,
                        "customer_department": customer,
                        "score": score,
                        "attributes": {"survey": f"pulse-w{wave}"},
                    }
                    if score <= 4 and rng.random() < 0.4:
                        fields["comment"] = rng.choice(LOW_SCORE_COMMENTS)
                    heapq.heappush(self._pending, (when, next(self._sequence), SurveyAnswered, fields))

    def _launch_campaign(self, _traffic: random.Random, index: int) -> None:
        """One campaign of the episode: invitations per customer department, then answers over days.

        Its own generator (seed and campaign id): the answers do not change with the traffic's rate.
        """
        episode, timeline = self.scenario.episode, self.timeline
        assert episode is not None and timeline is not None
        campaign, timing = episode.campaigns[index], timeline.campaigns[index]
        rng = random.Random(f"{self.seed}/{timing.campaign_id}")
        launch = timing.launch.timestamp()
        fixed = launch >= self.lifecycle.episode_change
        directory = self.organisation.directory
        for customer in directory.department_ids():
            if customer == episode.provider:
                continue
            invited = rng.randint(*episode.invited)
            low_response = customer == campaign.low_response_customer
            rate = rng.uniform(*(episode.low_response_rate if low_response else episode.response_rate))
            common = {
                "schema_version": 1,
                "source": SURVEY_SOURCE,
                "provider_department": episode.provider,
                "customer_department": customer,
                "campaign_id": timing.campaign_id,
            }
            prefix = f"survey-{self.tag}-{timing.campaign_id}-{customer}"
            invitation = {**common, "event_type": "survey.invited", "event_id": f"{prefix}-invited"}
            self._schedule(launch, SurveyInvited, {**invitation, "invited": invited})
            locale = directory.department(customer).locale
            clock = self.organisation.clocks[customer]
            for respondent in range(1, round(invited * rate) + 1):
                when = clock.add(launch, rng.random() ** 2 * _CAMPAIGN_ANSWER_SPAN)  # most answer at once
                for question in episode.questions:
                    if rng.random() < _SKIPPED_QUESTION_SHARE:
                        continue
                    score = min(
                        10,
                        max(0, round(rng.gauss(question.mean_after if fixed else question.mean_before, 1.6))),
                    )
                    low, high = question.comments_after if fixed else question.comments_before
                    phrases = low if score <= 6 else high if score >= 8 else None
                    answer: dict[str, Any] = {
                        **common,
                        "event_type": "survey.answered",
                        "event_id": f"{prefix}-{respondent}-{question.question_id}",
                        "service_category": _known_service(directory, question.service),
                        "question_id": question.question_id,
                        "respondent_id": f"{prefix}-{respondent}",
                        "score": score,
                    }
                    if phrases is not None and rng.random() < question.comment_share:
                        answer["comment"] = phrases.pick(rng, locale)
                    self._schedule(when, SurveyAnswered, answer)

    def _record_action(self, _traffic: random.Random) -> None:
        """The episode's improvement action, recorded the morning it starts."""
        episode, timeline = self.scenario.episode, self.timeline
        assert episode is not None and timeline is not None
        directory = self.organisation.directory
        fields: dict[str, Any] = {
            "schema_version": 1,
            "event_type": "action.recorded",
            "event_id": f"action-{self.tag}-{episode.service}",
            "source": _ACTION_SOURCE,
            "provider_department": episode.provider,
            "service_category": _known_service(directory, episode.service),
            "title": episode.action_title,
            "started_on": timeline.started_on,
        }
        head = directory.department(episode.provider).head.email
        if "." in head.rpartition("@")[2]:  # the directory allows a dotless domain, the contract does not
            fields["owner"] = head
        self._schedule(timeline.action_recorded_at.timestamp(), ActionRecorded, fields)

    def _schedule(self, when: float, model: type[Event], fields: dict[str, Any]) -> None:
        """Queue an event that is not part of a request, if it falls inside the window."""
        if self.start <= when < self.end:
            heapq.heappush(self._pending, (when, next(self._sequence), model, fields))


def _known_service(directory: Directory, service: str | None) -> str | None:
    return service if service is not None and directory.has_service(service) else None


_EVENT_TYPE: Final[dict[type[Event], str]] = {
    RequestOpened: "request.opened",
    RequestResponded: "request.responded",
    RequestStatusChanged: "request.status_changed",
    RequestResolved: "request.resolved",
    RequestReopened: "request.reopened",
    RequestClosed: "request.closed",
    FeedbackSubmitted: "feedback.submitted",
}


def _utc(at: float) -> datetime:
    # Whole milliseconds: what ticketing systems export, and stable across float round trips.
    return datetime.fromtimestamp(round(at, 3), UTC)


# --- public API -----------------------------------------------------------------------------------


def scenario_named(name: str) -> Scenario:
    """The scenario called ``name``; KeyError lists the known ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def simulate(
    directory: Directory,
    start: datetime,
    duration: timedelta,
    rate_per_s: float,
    seed: int = 0,
    scenario: str | Scenario = "steady",
) -> Iterator[Event]:
    """Events with ``start <= occurred_at < start + duration``, in event-time order, never sleeping.

    ``rate_per_s`` is the average number of request events per second of event time (pulse
    surveys come on top, on their own calendar). The same arguments give the same events.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if rate_per_s <= 0 or duration <= timedelta(0):
        raise ValueError("rate_per_s and duration must be positive")
    chosen = scenario if isinstance(scenario, Scenario) else scenario_named(scenario)
    return _Simulation(directory, start, duration, seed, chosen).run(rate_per_s)


def history(
    directory: Directory,
    end: datetime,
    days: int = 30,
    rate_per_s: float = 0.05,
    seed: int = 0,
    scenario: str | Scenario = "steady",
) -> Iterator[Event]:
    """``days`` of history up to ``end``: the demo's month (about 130,000 events at the default rate)."""
    return simulate(directory, end - timedelta(days=days), timedelta(days=days), rate_per_s, seed, scenario)


def live(
    events: Iterable[_E],
    rate_per_s: float,
    *,
    wall_clock: Callable[[], float] = _wall_time,
    sleep: Callable[[float], None] = _sleep,
) -> Iterator[_E]:
    """Pace events to wall time: at most ``rate_per_s`` a second, none before its ``occurred_at``."""
    if rate_per_s <= 0:
        raise ValueError("rate_per_s must be positive")
    began = wall_clock()
    for index, event in enumerate(events):
        due = max(began + index / rate_per_s, event.occurred_at.timestamp())
        delay = due - wall_clock()
        if delay > 0:
            sleep(delay)
        yield event
