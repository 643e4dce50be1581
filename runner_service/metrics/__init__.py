"""/metrics: the fleet's figures for Prometheus, read at scrape time (collector.py)."""
