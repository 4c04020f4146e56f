"""TextFlow (``shared/seeds/textflow-api.md``)."""

from textbridge.compat.textflow.endpoints import render_error, router

__all__ = ["render_error", "router"]
