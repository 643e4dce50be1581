"""The `dbfleet` command line."""

from runner_service.cli.app import app, main

__all__ = ["app", "main"]
