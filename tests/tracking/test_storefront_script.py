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
from tests.factories.influencers import make_campaign, make_influencer
from tests.factories.tracking import allow_domains, clicks_of, make_link
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
<script src="{tracker}/t.js" data-write-key="{write_key}" {attributes} async></script>
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
{script}
</body></html>"""


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, cookie_domain=".store.test")


class ShopServer:
    """A two-page test shop under uvicorn, in a thread, on an ephemeral port."""

    def __init__(
        self, tracker: str, write_key: str, *, attributes: str = "", script: str = ""
    ) -> None:
        self.port = _free_port()

        def page(request: Request) -> HTMLResponse:
            title = "Linen shirt" if "products" in request.url.path else "Rosa Boutique"
            html = SHOP_PAGE.format(
                title=title,
                tracker=tracker,
                write_key=write_key,
                attributes=attributes,
                script=script,
            )
            return HTMLResponse(html)

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
        influencer = make_influencer(runtime, workspace.id, handles={"tiktok": "@ana"})
        campaign = make_campaign(
            runtime, workspace.id, name="Spring Drop", influencer_ids=[influencer.id]
        )
        link = make_link(
            runtime,
            workspace.id,
            f"{shop_url}/products/linen-shirt",
            campaign_id=campaign.id,
            influencer_id=influencer.id,
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
        assert server_cookies["sl_click"]["value"] == f"{workspace.id.hex}.{click_id}"
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


def _on_own_domain(live_server: LiveServer) -> str:
    # The script on another host than the shop, outside its parent domain: no /t/ctx call.
    return f"http://127.0.0.1:{live_server.port}"


def test_push_after_load_and_reset(
    page: Page, live_server: LiveServer, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "store.test")
    with ShopServer(_on_own_domain(live_server), workspace.write_key) as shop:
        with page.expect_response(_is_batch):
            page.goto(f"http://shop.store.test:{shop.port}/")
        with page.expect_response(_is_batch):
            # The snippet's queue API, used after the script has loaded.
            page.evaluate("storeloop.push(['track', 'Pushed', {n: 1}])")
        with page.expect_response(_is_batch):
            page.evaluate("storeloop.identify('user-1'); storeloop.track('Signed In')")
        first_visitor = page.evaluate("localStorage.getItem('sl_aid')")
        with page.expect_response(_is_batch):
            page.evaluate("storeloop.reset(); storeloop.track('Signed Out')")
        assert page.evaluate("localStorage.getItem('sl_uid')") is None
        second_visitor = page.evaluate("localStorage.getItem('sl_aid')")

    events = _stored_events(runtime, workspace)
    assert [(e["type"], e.get("event"), e.get("userId")) for e in events] == [
        ("page", None, None),
        ("track", "Pushed", None),
        ("identify", None, "user-1"),
        ("track", "Signed In", "user-1"),
        ("track", "Signed Out", None),
    ]
    assert events[1]["properties"] == {"n": 1}
    assert second_visitor != first_visitor
    assert [e["anonymousId"] for e in events] == [first_visitor] * 4 + [second_visitor]


def test_pending_consent_stores_and_sends_nothing_until_given(
    page: Page, live_server: LiveServer, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "store.test")
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url) if _is_batch_url(request) else None)
    tracker = _on_own_domain(live_server)
    with ShopServer(tracker, workspace.write_key, attributes='data-consent="pending"') as shop:
        page.goto(f"http://shop.store.test:{shop.port}/")
        page.wait_for_function("window.storeloop && !Array.isArray(window.storeloop)")
        page.evaluate("storeloop.track('Before Consent')")
        page.wait_for_timeout(200)  # longer than the script's 30 ms batching
        assert sent == []
        assert page.evaluate("[localStorage.length, document.cookie]") == [0, ""]
        with page.expect_response(_is_batch):
            page.evaluate("storeloop.consent(true)")
        visitor = page.evaluate("localStorage.getItem('sl_aid')")

    events = _stored_events(runtime, workspace)
    assert [(e["type"], e.get("event")) for e in events] == [
        ("page", None),
        ("track", "Before Consent"),
    ]
    assert {e["anonymousId"] for e in events} == {visitor}


def _is_batch_url(request: Any) -> bool:
    return bool(request.url.endswith("/v1/batch"))


def test_keepalive_only_for_batches_under_60_kb(
    page: Page, live_server: LiveServer, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "store.test")
    # Record the keepalive flag of every fetch the script makes.
    page.add_init_script(
        "window.keepalives = []; const f = window.fetch;"
        "window.fetch = (url, o) => { keepalives.push(!!(o && o.keepalive)); return f(url, o); };"
    )
    with ShopServer(_on_own_domain(live_server), workspace.write_key) as shop:
        with page.expect_response(_is_batch):
            page.goto(f"http://shop.store.test:{shop.port}/")
        with page.expect_response(_is_batch):
            # One batch of 20 events of 4 KB each (queued within the script's 30 ms).
            page.evaluate(
                "for (let i = 0; i < 20; i++) storeloop.track('Big', {notes: 'x'.repeat(4000)})"
            )
        assert page.evaluate("keepalives") == [True, False]


def test_late_context_answers_are_ignored_and_leaving_sends_queued_calls(
    page: Page, live_server: LiveServer, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "store.test")
    held: list[Any] = []
    page.route("**/t/ctx*", lambda route: held.append(route))
    tracker = f"http://t.store.test:{live_server.port}"
    with ShopServer(tracker, workspace.write_key) as shop:
        # 1. /t/ctx hangs: the script starts on its own, then the late answer changes nothing.
        with page.expect_response(_is_batch):
            page.goto(f"http://shop.store.test:{shop.port}/")
        visitor = page.evaluate("localStorage.getItem('sl_aid')")
        held[0].fulfill(
            status=200,
            content_type="application/json",
            headers={
                "access-control-allow-origin": f"http://shop.store.test:{shop.port}",
                "access-control-allow-credentials": "true",
            },
            body='{"click_id": null, "anonymous_id": "late-visitor"}',
        )
        page.wait_for_function("sessionStorage.getItem('sl_ctx') === null")
        with page.expect_response(_is_batch):
            page.evaluate("storeloop.track('After Late Context')")

        # 2. A new session whose /t/ctx hangs again; the visitor leaves before the script
        # started: the queued call goes out with the page.
        page.evaluate("sessionStorage.clear()")
        page.goto(f"http://shop.store.test:{shop.port}/products/linen-shirt")
        page.evaluate("storeloop.track('Queued Before Leaving')")
        page.goto("about:blank")  # a beacon on pagehide, seen in the stored events below

    def stored() -> list[tuple[str | None, str]]:
        return [(e.get("event"), e["anonymousId"]) for e in _stored_events(runtime, workspace)]

    deadline = time.monotonic() + 10
    while len(stored()) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored() == [
        (None, visitor),
        ("After Late Context", visitor),
        (None, visitor),
        ("Queued Before Leaving", visitor),
    ]
