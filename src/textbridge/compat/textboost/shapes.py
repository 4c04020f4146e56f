"""TextBoost's answers: ``{status: "success", data}``, lists paged the Laravel way."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

PER_PAGE = 25


def answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def success(data: Any) -> Response:
    return answer({"status": "success", "data": data})


def laravel_page(items: list[Any], page: int, total: int) -> dict[str, Any]:
    """``?page=N`` in; ``current_page``, ``data``, ``per_page``, ``last_page``, ``total`` out."""
    return {
        "current_page": page,
        "data": items,
        "per_page": PER_PAGE,
        "last_page": max(1, -(-total // PER_PAGE)),
        "total": total,
    }
