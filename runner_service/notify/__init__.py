"""Notifications: notifiers (webhook, e-mail, Slack-compatible), an outbox of deliveries in the
store, and the senders that work it off (`service.py`, `kinds.py`, `senders.py`, `outbox.py`);
what notices the events (`watch.py`) and runs both in the API (`loop.py`) sit above the schedules."""
