"""The bare peer of POST /v1/batch: a Starlette route that reads the body, parses it, answers 200.

No authentication, no validation, no encryption, no storage: what the same uvicorn can do when
the application does nothing but receive and parse. Served by the benchmark with the settings
`storeloop serve` uses (uvicorn auto loop/http, no access log).
"""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def batch(request: Request) -> Response:
    document = orjson.loads(await request.body())
    accepted = len(document.get("batch", ())) if isinstance(document, dict) else 0
    return Response(
        orjson.dumps({"success": True, "accepted": accepted}), media_type="application/json"
    )


def create_app() -> Starlette:
    return Starlette(routes=[Route("/v1/batch", batch, methods=["POST"])])
