"""Serving the API: uvicorn with the app factory, ending live event streams when asked to stop.

    serve('127.0.0.1', 8080)      # what `dbfleet api` runs (runner_service.processes.run_api)
"""

from __future__ import annotations

from runner_service.api import shutdown

# What uvicorn gives open requests to end on SIGTERM before it cancels them; live streams end at once.
API_GRACE_SECONDS = 3


def serve(host: str, port: int, log_level: str = 'info') -> None:
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            shutdown.begin()
            super().handle_exit(sig, frame)

    Server(uvicorn.Config('runner_service.api.app:create_app', factory=True, host=host, port=port,
                          log_level=log_level, proxy_headers=False, access_log=log_level == 'debug',
                          timeout_graceful_shutdown=API_GRACE_SECONDS)).run()
