"""The station's local HTTP API (FastAPI): REST under /api/v1, bearer-token auth."""
