"""Every endpoint the worker's read API serves besides the scorecard's, over one ClickHouse client:
comments and themes, survey campaigns, improvement actions, requests at risk of an SLA breach; and
the served scorecard page. The
worker and the tests' stand-in for it mount the same set."""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from deptpulse.settings import Settings
from schemas.directory import Directory
from stream_processors.actions.api import endpoints as action_endpoints
from stream_processors.actions.measuring import ActionsService, ClickHouseActions
from stream_processors.at_risk.api import endpoints as at_risk_endpoints
from stream_processors.at_risk.reading import AtRiskService
from stream_processors.comments.api import endpoints as comment_endpoints
from stream_processors.comments.reading import ClickHouseComments, CommentsService
from stream_processors.scorecard.page import ReportPage
from stream_processors.scorecard.queries import ClickHouseAggregates
from stream_processors.scorecard.read_api import Endpoint
from stream_processors.scorecard.service import ScorecardService
from stream_processors.surveys.api import endpoints as survey_endpoints
from stream_processors.surveys.campaigns import CampaignsService, ClickHouseCampaigns


@dataclass(frozen=True)
class Reads:
    """The services the read API answers from, each over the same client."""

    scorecard: ScorecardService
    comments: CommentsService
    campaigns: CampaignsService
    actions: ActionsService
    at_risk: AtRiskService
    directory: Directory

    @classmethod
    def over(cls, client: Client, directory: Directory, settings: Settings) -> Reads:
        comments = CommentsService(
            ClickHouseComments(client), settings.comments_min_respondents, settings.themes_min_comments
        )
        return cls(
            ScorecardService(ClickHouseAggregates(client), directory),
            comments,
            CampaignsService(ClickHouseCampaigns(client), directory, comments),
            ActionsService(
                ClickHouseActions(client),
                directory,
                settings.action_window_days,
                settings.action_settling_days,
            ),
            AtRiskService.over(client, directory),
            directory,
        )

    def endpoints(self) -> dict[str, Endpoint]:
        """The endpoints of the features that read beside the scorecard."""
        return {
            **comment_endpoints(self.comments, self.directory),
            **survey_endpoints(self.campaigns, self.directory),
            **action_endpoints(self.actions, self.directory),
            **at_risk_endpoints(self.at_risk, self.directory),
        }

    def page(self) -> ReportPage:
        """The served scorecard page (``/scorecard/<department>``)."""
        return ReportPage(
            self.scorecard, self.directory, self.comments, self.campaigns, self.actions, self.at_risk
        )


def read_endpoints(client: Client, directory: Directory, settings: Settings) -> dict[str, Endpoint]:
    """The endpoints of the features that read beside the scorecard, each over ``client``."""
    return Reads.over(client, directory, settings).endpoints()
