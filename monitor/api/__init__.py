"""The HTTP API and dashboard: `create_app(settings)` builds the FastAPI app that `monitor api` serves."""
