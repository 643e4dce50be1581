"""GET /metrics: the fleet's figures in the Prometheus text format (or OpenMetrics, when the
scraper asks for it), read from the store and Redis at scrape time (runner_service.metrics)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from prometheus_client.exposition import choose_encoder

from runner_service.api.deps import MetricsReader, MetricsRegistry
from runner_service.api.errors import error_responses

router = APIRouter(tags=['metrics'])


@router.get('/metrics', response_class=Response, responses={
    **error_responses(401, 403),
    200: {'content': {'text/plain': {'schema': {'type': 'string'}}},
          'description': 'the figures (docs/monitoring/README.md names each)'}})
def metrics(registry: MetricsRegistry, caller: MetricsReader,
            accept: Annotated[str | None, Header(max_length=1024)] = None) -> Response:
    """Jobs, queues, workers, schedules, pools, events, backups and crontab entries; a viewer
    token unless DBFLEET_METRICS_AUTH is off."""
    encode, content_type = choose_encoder(accept or '')
    return Response(encode(registry), media_type=content_type)
