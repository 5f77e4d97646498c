"""The storefront script in a real headless Chromium, on a test shop served from another host.

storeloop answers as t.store.test and the shop as shop.store.test (both mapped to 127.0.0.1 by
Chromium's resolver rules), the recommended setup: a tracking subdomain of the store's domain.
A visitor follows /r/{code}, lands on the shop with the click id, the script sends the page view
and an e-commerce event, and the stored events carry the visitor id and click id of the redirect.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from storeloop.config import Settings
from storeloop.kit.crypto import row_aad
from storeloop.models import Event
from storeloop.runtime import Runtime
from tests.conftest import LiveServer, _free_port, make_settings
from tests.factories.tracking import (
    allow_domains,
    clicks_of,
    make_campaign,
    make_influencer,
    make_link,
)
from tests.factories.workspaces import WorkspaceKeys

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

if not CHROMIUM.exists():
    if os.environ.get("STORELOOP_REQUIRE_CHROMIUM") == "1":
        raise RuntimeError("STORELOOP_REQUIRE_CHROMIUM=1 but /usr/bin/chromium is missing")
    pytest.skip("Chromium is not installed (./dev test installs it)", allow_module_level=True)

from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright  # noqa: E402

DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SHOP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><link rel="icon" href="data:,">
<script src="{tracker}/t.js" data-write-key="{write_key}" async></script>
</head><body>
<h1>{title}</h1>
<button id="add" type="button">Add to cart</button>
<script>
  window.storeloop = window.storeloop || [];
  document.getElementById("add").addEventListener("click", function () {{
    storeloop.track("Product Added", {{product_id: "linen-shirt", sku: "LS-01", price: 59.0,
      quantity: 1, currency: "EUR"}});
  }});
</script>
</body></html>"""


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, cookie_domain=".store.test")


class ShopServer:
    """A two-page test shop under uvicorn, in a thread, on an ephemeral port."""

    def __init__(self, tracker: str, write_key: str) -> None:
        self.port = _free_port()

        def page(request: Request) -> HTMLResponse:
            title = "Linen shirt" if "products" in request.url.path else "Rosa Boutique"
            return HTMLResponse(SHOP_PAGE.format(title=title, tracker=tracker, write_key=write_key))

        app = Starlette(routes=[Route("/", page), Route("/products/linen-shirt", page)])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ShopServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the shop server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--host-resolver-rules=MAP *.store.test 127.0.0.1"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # Headless Chromium says "HeadlessChrome", which the bot rules rightly flag: be a browser.
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", on_console)
    yield page
    context.close()
    assert errors == [], errors


def _stored_events(runtime: Runtime, workspace: WorkspaceKeys) -> list[dict[str, Any]]:
    runtime.processor.drain()
    cipher = runtime.keyring.cipher(workspace.id)
    with runtime.session_factory() as session:
        rows = session.scalars(
            select(Event).where(Event.workspace_id == workspace.id).order_by(Event.timestamp)
        ).all()
        return [
            orjson.loads(cipher.open(row.payload_sealed, row_aad("events", row.id, "payload")))
            for row in rows
        ]


def _is_batch(response: Any) -> bool:
    return bool(response.url.endswith("/v1/batch") and response.request.method == "POST")


def test_click_landing_page_view_and_product_added_reach_storeloop(
    page: Page, live_server: LiveServer, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    tracker = f"http://t.store.test:{live_server.port}"
    with ShopServer(tracker, workspace.write_key) as shop:
        shop_url = f"http://shop.store.test:{shop.port}"
        allow_domains(runtime, workspace.id, "store.test")
        link = make_link(
            runtime,
            workspace.id,
            f"{shop_url}/products/linen-shirt",
            campaign_id=make_campaign(runtime, workspace.id, name="Spring Drop"),
            influencer_id=make_influencer(runtime, workspace.id, handles={"tiktok": "@ana"}),
        )

        # 1. The visitor follows the tracked link and lands on the shop.
        with page.expect_response(_is_batch) as landing_batch:
            page.goto(f"{tracker}/r/{link.code}")
        assert landing_batch.value.status == 200
        landed = page.url
        assert landed.startswith(
            f"{shop_url}/products/linen-shirt?utm_source=ana&utm_medium=influencer"
            "&utm_campaign=spring-drop&sl_click="
        ), landed
        click_id = landed.rsplit("sl_click=", 1)[1]
        server_cookies = {c["name"]: c for c in page.context.cookies(tracker)}
        assert server_cookies["sl_click"]["value"] == click_id
        assert server_cookies["sl_click"]["httpOnly"] is True
        assert server_cookies["sl_click"]["domain"] == ".store.test"
        visitor_id = server_cookies["sl_aid"]["value"]

        # 2. An e-commerce event, through the script's public API.
        with page.expect_response(_is_batch) as added_batch:
            page.get_by_role("button", name="Add to cart").click()
        assert added_batch.value.status == 200
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "storefront-script.png"))

        # 3. Script storage wiped (what Safari does to script-set storage after 7 days), a new
        # session: the visitor and click ids come back from the server's HttpOnly cookies.
        page.evaluate(
            "localStorage.clear(); sessionStorage.clear();"
            "document.cookie = 'sl_aid=; max-age=0; path=/';"
        )
        with page.expect_response(_is_batch) as return_batch:
            page.goto(f"{shop_url}/")
        assert return_batch.value.status == 200

    events = _stored_events(runtime, workspace)
    assert [(e["type"], e.get("event")) for e in events] == [
        ("page", None),
        ("track", "Product Added"),
        ("page", None),
    ]
    landing, added, returning = events
    assert {e["anonymousId"] for e in events} == {visitor_id}
    assert [e["context"]["storeloop"] for e in events] == [{"click_id": click_id}] * 3
    assert landing["context"]["campaign"] == {
        "source": "ana",
        "medium": "influencer",
        "name": "spring-drop",
    }
    assert landing["context"]["page"]["path"] == "/products/linen-shirt"
    assert landing["context"]["page"]["title"] == "Linen shirt"
    assert landing["context"]["page"]["referrer"] == ""
    assert "campaign" not in added["context"]
    assert "campaign" not in returning["context"]
    assert returning["context"]["page"]["url"] == f"{shop_url}/"
    assert added["properties"] == {
        "product_id": "linen-shirt",
        "sku": "LS-01",
        "price": 59,
        "quantity": 1,
        "currency": "EUR",
    }
    assert str(uuid.UUID(landing["messageId"])) == landing["messageId"]
    # The click and the events share the visitor id: later visits and orders join the click.
    [click] = clicks_of(runtime, workspace.id)
    assert (str(click.id), click.anonymous_id, click.is_bot) == (click_id, visitor_id, False)
