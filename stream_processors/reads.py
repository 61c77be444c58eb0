"""Every endpoint the worker's read API serves besides the scorecard's, over one ClickHouse client:
comments and themes, survey campaigns, improvement actions. The worker and the tests' stand-in for
it mount the same set."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from deptpulse.settings import Settings
from schemas.directory import Directory
from stream_processors.actions.api import endpoints as action_endpoints
from stream_processors.actions.measuring import ActionsService, ClickHouseActions
from stream_processors.comments.api import endpoints as comment_endpoints
from stream_processors.comments.reading import ClickHouseComments, CommentsService
from stream_processors.scorecard.read_api import Endpoint
from stream_processors.surveys.api import endpoints as survey_endpoints
from stream_processors.surveys.campaigns import CampaignsService, ClickHouseCampaigns


def read_endpoints(client: Client, directory: Directory, settings: Settings) -> dict[str, Endpoint]:
    """The endpoints of the features that read beside the scorecard, each over ``client``."""
    comments = CommentsService(
        ClickHouseComments(client), settings.comments_min_respondents, settings.themes_min_comments
    )
    actions = ActionsService(
        ClickHouseActions(client), directory, settings.action_window_days, settings.action_settling_days
    )
    return {
        **comment_endpoints(comments, directory),
        **survey_endpoints(CampaignsService(ClickHouseCampaigns(client), directory, comments), directory),
        **action_endpoints(actions, directory),
    }
