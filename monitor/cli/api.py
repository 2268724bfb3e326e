"""`monitor api`: the HTTP API, live feed and dashboard (uvicorn on API_HOST:API_PORT), plus the alert loop."""

from __future__ import annotations

import click

from core.settings import get_settings


def explainer_loader(checkpoint: str):
    """Loads the explaining model when the API first needs it: torch and captum stay out of a process that never
    explains a post."""

    def load():
        from workers.explain import Explainer

        return Explainer.load(checkpoint, "cpu")

    return load


@click.command("api")
@click.option("--host", default=None, help="Listen address [default: API_HOST].")
@click.option("--port", type=int, default=None, help="Listen port [default: API_PORT].")
@click.option("--alerts/--no-alerts", default=None,
              help="Evaluate alert rules every ALERT_INTERVAL_S in this process (replicas share the work through a "
                   "PostgreSQL advisory lock). [default: API_ALERTS]")
def api(host: str | None, port: int | None, alerts: bool | None) -> None:
    """Serve the HTTP API (docs at /docs) and the dashboard (/)."""
    import uvicorn

    from monitor.api.app import create_app

    settings = get_settings()
    app = create_app(settings, run_alerts=settings.api.alerts if alerts is None else alerts,
                     explainer=explainer_loader(settings.model.checkpoint))
    uvicorn.run(app, host=host or settings.api.host, port=port or settings.api.port, log_config=None,
                proxy_headers=False, access_log=False)
