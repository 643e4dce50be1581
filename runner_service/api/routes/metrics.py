"""GET /metrics: the fleet's figures in the Prometheus text format (or OpenMetrics, when the
scraper asks for it), read from the store and Redis at scrape time (runner_service.metrics)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import choose_encoder

from runner_service.api.deps import MetricsReader, MetricsRegistry
from runner_service.api.errors import error_responses

router = APIRouter(tags=['metrics'])
# Enough for any scraper's Accept; the rest of a longer one is not read.
ACCEPT_READ = 1024


@router.get('/metrics', response_class=Response, responses={
    **error_responses(401, 403),
    200: {'content': {'text/plain': {'schema': {'type': 'string'}}},
          'description': 'the figures (docs/monitoring/README.md names each)'}})
def metrics(request: Request, registry: MetricsRegistry, caller: MetricsReader) -> Response:
    """Jobs, queues, workers, schedules, pools, events, backups and crontab entries; a viewer
    token unless DBFLEET_METRICS_AUTH is off. The format follows Accept: OpenMetrics when asked."""
    encode, content_type = choose_encoder(request.headers.get('accept', '')[:ACCEPT_READ])
    return Response(encode(registry), media_type=content_type)
