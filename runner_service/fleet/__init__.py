"""The fleet as the API and the CLI both see it: hosts (listing, profile, edits), tags (definitions,
manual tags), tag rules (the loaded ones, a check of a file's text) and the backup catalog.

One service per concept, each over an open Store, so a route and the CLI's store path call the same
function: hosts.py, tags.py, rules.py, backups.py; schemas.py holds their request and response
bodies (it sits with runner_service.schemas, below the services and the API client)."""
