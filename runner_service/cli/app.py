"""`python -m runner_service.cli.app`: how runner_service.processes (`dbfleet up`) and the service
tests start the API, workers and scheduler. The app is assembled in runner_service.cli, which
must not import this module: runpy would then warn on stderr, before the one line of a refused
command. It stays until those callers run `python -m runner_service.cli`."""

if __name__ == '__main__':
    from runner_service.cli import main
    main()
