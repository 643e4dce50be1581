"""Namespace hosts for tests and the demo: real sshd, mariadbd and cron per host (see harness.py)."""
