"""Every feature's router is made here, so they all parse bodies the same way."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter


def make_router(**kwargs: Any) -> APIRouter:
    # Clients of the seed services often send JSON without (or with a wrong) Content-Type;
    # the body is parsed as JSON regardless.
    return APIRouter(strict_content_type=False, **kwargs)
