"""The dashboard's routes, one module per area, and their installation in the app."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from storeloop.dashboard.pages import auth, customers, live, marketing, orders, overview
from storeloop.dashboard.web import (
    CsrfFailed,
    LoginRequired,
    PageForbidden,
    PageInvalid,
    PageNotFound,
    login_url,
    render,
    with_security_headers,
)

ROUTERS = (
    auth.router,
    overview.router,
    marketing.router,
    orders.router,
    customers.router,
    live.router,
)


def install_dashboard(app: FastAPI) -> None:
    """Mount the pages, the packaged static files and the page-style error handlers."""
    app.mount(
        "/static",
        StaticFiles(packages=[("storeloop.dashboard", "static")]),
        name="static",
    )
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.headers.get("hx-request") == "true":
            # A partial refresh: a redirect would be followed and the sign-in page swapped into
            # the card; htmx sends the whole page to sign in instead.
            return with_security_headers(
                Response(status_code=401, headers={"HX-Redirect": login_url("/dashboard")})
            )
        return with_security_headers(RedirectResponse(login_url(exc.next_path), status_code=303))

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, _exc: CsrfFailed) -> Response:
        return render(
            request,
            "error.html",
            {
                "title": "Form expired",
                "message": "This form was stale or not sent from the dashboard. "
                "Go back, reload the page and try again.",
            },
            status_code=403,
        )

    @app.exception_handler(PageForbidden)
    async def page_forbidden(request: Request, exc: PageForbidden) -> Response:
        return render(
            request, "error.html", {"title": "Not allowed", "message": exc.message}, status_code=403
        )

    @app.exception_handler(PageNotFound)
    async def page_not_found(request: Request, exc: PageNotFound) -> Response:
        return render(
            request, "error.html", {"title": "Not found", "message": exc.message}, status_code=404
        )

    @app.exception_handler(PageInvalid)
    async def page_invalid(request: Request, exc: PageInvalid) -> Response:
        return render(
            request,
            "error.html",
            {
                "title": "This page could not be shown",
                "message": " ".join(exc.messages),
                "messages": exc.messages,
                "retry_path": exc.retry_path,
            },
            status_code=400,
        )
