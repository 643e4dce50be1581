"""dbfleet's base: the store, tags, inspection, profiles, settings and time helpers.

The `dbfleet.mysql` collection's controller-side plugins import only this package; the
service (`runner_service`: API, workers, scheduler, CLI) builds on it, never the reverse.
"""

# The one place the version is written: pyproject.toml reads it from here, runner_service
# re-exports it, and a test holds galaxy.yml's version equal to it.
__version__ = '0.1.0'
