"""The web app's side of reef_alerts: a FastAPI router that previews alerts on history and
reads their live state (issue 14). Needs the `web` extra: `pip install 'reef-alerts[web]'`.

    from reef_alerts.web import make_router

    app.include_router(make_router(get_db, get_current_user_or_service), prefix="/api")
"""

try:
    import fastapi  # noqa: F401
except ImportError as error:  # pragma: no cover - the extra is installed wherever tests run
    raise ImportError("reef_alerts.web needs FastAPI: pip install 'reef-alerts[web]'") from error

from reef_alerts.web.router import make_router

__all__ = ["make_router"]
