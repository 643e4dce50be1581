"""`python -m runner_service.cli.app`: how runner_service.processes (`dbfleet up`) and the service
tests start the API, workers and scheduler. The app itself is assembled in runner_service.cli;
this module stays until those callers run `python -m runner_service.cli`."""

from runner_service.cli import app, main

__all__ = ['app', 'main']

if __name__ == '__main__':
    main()
