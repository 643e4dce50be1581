"""dbfleet's base: the store, tags, inspection, profiles, settings and time helpers.

The `dbfleet.mysql` collection's controller-side plugins import only this package; the
service (`runner_service`: API, workers, scheduler, CLI) builds on it, never the reverse.
"""
