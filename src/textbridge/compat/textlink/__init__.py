"""TextLink (``shared/seeds/textlink-api.md``)."""

from textbridge.compat.textlink.endpoints import render_error, router

__all__ = ["render_error", "router"]
