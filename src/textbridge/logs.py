"""Logging: structlog, human-readable in development and JSON lines in production.

Nothing secret is logged: API keys and codes never reach a log call (keys are hashed before any
lookup), and request bodies are not logged.
"""

from __future__ import annotations

import logging

import structlog

from textbridge.settings import Environment, Settings


def configure(settings: Settings) -> None:
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.env is Environment.PRODUCTION
        # Plain tracebacks: the rich ones print every frame's local variables, and a local
        # can be an API key.
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
