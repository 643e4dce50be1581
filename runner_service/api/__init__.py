"""dbfleet's REST API (FastAPI): /api/v1 jobs and tokens, /healthz, /openapi.json.

    uvicorn --factory runner_service.api.app:create_app     # or: dbfleet api
"""
