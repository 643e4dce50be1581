"""`python -m runner_service.cli`: the `dbfleet` command without its console script."""

from runner_service.cli import main

main()
