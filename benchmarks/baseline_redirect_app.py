"""The bare peer of GET /r/{code}: a Starlette route that answers 302 to a fixed destination.

No look-up, no click, no cookie, no storage: what the same uvicorn can do when the application
does nothing but route and redirect. Served by the redirect benchmark with the settings
`storeloop serve` uses (uvicorn auto loop/http, no access log).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

DESTINATION = "https://store.example/products/linen-shirt?utm_source=bench&utm_medium=influencer"


async def redirect(request: Request) -> Response:
    code = request.path_params["code"]
    return RedirectResponse(f"{DESTINATION}&code={code}", status_code=302)


async def ready(_request: Request) -> Response:
    return Response("ok")


def create_app() -> Starlette:
    return Starlette(routes=[Route("/r/{code}", redirect), Route("/readyz", ready)])
