"""The scorecard page the read API serves at ``/scorecard/<department>``: the page
``deptpulse report --provider <department> --format html`` writes, from the same :func:`produce`."""

from __future__ import annotations

from datetime import datetime

from schemas.directory import Directory
from stream_processors.actions.api import ActionsSource
from stream_processors.at_risk.api import AtRiskSource
from stream_processors.comments.api import CommentsSource
from stream_processors.scorecard.report import ReportRequest, produce
from stream_processors.scorecard.service import ScorecardSource
from stream_processors.scorecard.windows import Window
from stream_processors.surveys.api import CampaignsSource


class ReportPage:
    """A :class:`~stream_processors.scorecard.read_api.ScorecardPage` over the report's sources."""

    def __init__(
        self,
        source: ScorecardSource,
        directory: Directory,
        comments: CommentsSource,
        campaigns: CampaignsSource,
        actions: ActionsSource,
        at_risk: AtRiskSource | None = None,
    ) -> None:
        self._source = source
        self._directory = directory
        self._comments = comments
        self._campaigns = campaigns
        self._actions = actions
        self._at_risk = at_risk

    def render(
        self, provider: str, window: Window, with_comments: bool, matrix_shared: bool, generated_at: datetime
    ) -> str:
        request = ReportRequest(window, provider, output_format="html", with_comments=with_comments)
        return produce(
            self._source,
            self._directory,
            request,
            generated_at,
            comments=self._comments,
            campaigns=self._campaigns,
            actions=self._actions,
            matrix_shared=matrix_shared,
            at_risk=self._at_risk,
        )
