"""TextBoost (``shared/seeds/textboost-api.txt``)."""

from textbridge.compat.textboost.endpoints import render_error, router

__all__ = ["render_error", "router"]
