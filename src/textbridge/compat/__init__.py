"""The dialects: TextLink, TextFlow (and TextBoost) spoken wire-compatibly.

Each is a thin translation over the services the native API uses: it reads the seed's fields,
calls the same service, and answers the seed's shapes and status codes, errors included. No
business rule, validation or price lives here.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from textbridge.api.errors import ErrorRenderer
from textbridge.compat import textboost, textflow, textlink
from textbridge.settings import Dialect, Settings

DIALECTS: dict[Dialect, tuple[APIRouter, ErrorRenderer]] = {
    Dialect.TEXTLINK: (textlink.router, textlink.render_error),
    Dialect.TEXTFLOW: (textflow.router, textflow.render_error),
}


def mount(app: FastAPI, settings: Settings) -> None:
    """Each dialect under ``/<name>/api``, and the root dialect also under ``/api``.

    TextBoost's paths (``/api/http/...``, ``/api/v3/...``) collide with no other dialect's, so
    they are always served under ``/api`` too."""
    renderers: list[tuple[str, ErrorRenderer]] = app.state.error_renderers
    for dialect, (router, render_error) in DIALECTS.items():
        app.include_router(router, prefix=f"/{dialect.value}/api")
        renderers.append((f"/{dialect.value}/api/", render_error))
    app.include_router(textboost.router, prefix="/textboost/api")
    app.include_router(textboost.router, prefix="/api", include_in_schema=False)
    for prefix in ("/textboost/api/", "/api/http/", "/api/v3/"):
        renderers.append((prefix, textboost.render_error))
    router, render_error = DIALECTS[settings.root_dialect]
    app.include_router(router, prefix="/api", include_in_schema=False)
    renderers.append(("/api/", render_error))
