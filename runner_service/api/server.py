"""Serving the API: uvicorn with the app factory, ending live event streams when asked to stop.

    serve('127.0.0.1', 8080)      # what `dbfleet api` runs (runner_service.processes.run_api)
    serve('0.0.0.0', 8443, tls_cert='api.pem', tls_key='api.key')                  # HTTPS only
    serve('10.0.0.5', 8080, proxy_headers=True, forwarded_allow_ips='10.0.0.2,10.0.0.3')  # behind proxies
"""

from __future__ import annotations

from runner_service.api import shutdown

# What uvicorn gives open requests to end on SIGTERM before it cancels them; live streams end at once.
API_GRACE_SECONDS = 3


def serve(host: str, port: int, log_level: str = 'info', tls_cert: str | None = None, tls_key: str | None = None,
          proxy_headers: bool = False, forwarded_allow_ips: str = '127.0.0.1,::1', access_log: bool = False) -> None:
    """uvicorn's own TLS and proxy-header handling: with proxy_headers, X-Forwarded-For and
    X-Forwarded-Proto are believed from the peers in forwarded_allow_ips only, and the access log
    (on with access_log, or at debug level) names the client they give; anyone else's are ignored."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            shutdown.begin()
            super().handle_exit(sig, frame)

    Server(uvicorn.Config('runner_service.api.app:create_app', factory=True, host=host, port=port,
                          log_level=log_level, proxy_headers=proxy_headers, forwarded_allow_ips=forwarded_allow_ips,
                          access_log=access_log or log_level == 'debug', ssl_certfile=tls_cert, ssl_keyfile=tls_key,
                          timeout_graceful_shutdown=API_GRACE_SECONDS)).run()
