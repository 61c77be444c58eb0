"""Open requests about to breach an SLA target: read from the request facts, judged by
:mod:`stream_processors.core.at_risk`, for the worker's gauge, the read API and the scorecard page."""
