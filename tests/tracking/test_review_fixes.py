"""Regressions of the tracking review: cookie scope, prefetches, outages, bounded queues,
shutdown order, proxy trust, handle order and the app-owned runtime."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, func, select

from storeloop.app import create_app
from storeloop.cli import _proxy_options
from storeloop.kit.ids import new_id
from storeloop.models import Click
from storeloop.runtime import Runtime
from storeloop.tracking import repository
from storeloop.tracking.clicks import ClickWriter
from storeloop.tracking.repository import LinkCache, LinkRow, LinksUnavailable, utm_parameters
from tests.conftest import make_settings
from tests.factories.tracking import allow_domains, clicks_of, make_link
from tests.factories.workspaces import WorkspaceKeys, make_workspace
from tests.tracking.conftest import ClientFactory

BROWSER = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


# --- 1. cookie domain per store -----------------------------------------------------------------


def test_cookie_domain_only_on_hosts_under_it_and_under_the_links_store(
    make_client: ClientFactory, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    client, rt = make_client(cookie_domain=".store.com")
    allow_domains(rt, workspace.id, "store.com")
    allow_domains(rt, other_workspace.id, "other-shop.com")
    own = make_link(rt, workspace.id)
    foreign = make_link(rt, other_workspace.id, "https://other-shop.com/")

    def click_cookie(url: str) -> str:
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 302
        [cookie] = [c for c in response.headers.get_list("set-cookie") if c.startswith("sl_click")]
        return cookie

    assert click_cookie(f"https://t.store.com/r/{own.code}").endswith("; Domain=.store.com")
    # The other store's link served from the same host: a host-only cookie, never .store.com.
    assert "Domain=" not in click_cookie(f"https://t.store.com/r/{foreign.code}")
    # A host outside the configured cookie domain: host-only too.
    assert "Domain=" not in click_cookie(f"https://links.example.net/r/{own.code}")


# --- 10. prefetches and embedded fetches --------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-mode": "no-cors"},
        {"sec-fetch-mode": "cors"},
        {"sec-fetch-mode": "navigate", "sec-purpose": "prefetch"},
        {"purpose": "prefetch"},
    ],
)
def test_prefetches_are_flagged_and_get_no_cookie(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, headers: dict[str, str]
) -> None:
    allow_domains(runtime, workspace.id, "store.com")
    link = make_link(runtime, workspace.id)
    response = client.get(
        f"/r/{link.code}", headers={"user-agent": BROWSER, **headers}, follow_redirects=False
    )
    assert response.status_code == 302
    assert "set-cookie" not in response.headers
    [click] = clicks_of(runtime, workspace.id)
    assert (click.is_bot, click.bot_reason) == (True, "not_navigation")


def test_a_navigation_is_a_person(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "store.com")
    link = make_link(runtime, workspace.id)
    headers = {"user-agent": BROWSER, "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}
    response = client.get(f"/r/{link.code}", headers=headers, follow_redirects=False)
    assert len(response.headers.get_list("set-cookie")) == 2
    [click] = clicks_of(runtime, workspace.id)
    assert (click.is_bot, click.bot_reason) == (False, None)


# --- 7 and 12. the link cache during outages and floods -------------------------------------------


def _redirect(code: str) -> repository.Redirect:
    return repository.Redirect(new_id(), new_id(), f"https://store.com/{code}", "?", "")


def test_stale_links_are_served_while_the_database_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [0.0]
    cache = LinkCache(create_engine("sqlite://"), ttl_s=5.0, clock=lambda: now[0])
    known = _redirect("known")
    database_up = [True]

    def fetch(_engine: Engine, code: str) -> LinkRow | None:
        if not database_up[0]:
            raise ConnectionError("database down")
        return None if code != "known" else object()  # type: ignore[return-value]

    monkeypatch.setattr(repository, "fetch_link", fetch)
    monkeypatch.setattr(repository, "build_redirect", lambda _row: known)

    async def scenario() -> None:
        assert await cache.get("known") is known
        now[0] = 60.0  # expired
        database_up[0] = False
        assert await cache.get("known") is known  # stale-if-error
        with pytest.raises(LinksUnavailable):
            await cache.get("never-seen")

    asyncio.run(scenario())
    assert cache.stale_served == 1


def test_a_cold_miss_during_an_outage_gets_the_friendly_page(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(_engine: Engine, _code: str) -> None:
        raise ConnectionError("database down")

    monkeypatch.setattr(repository, "fetch_link", down)
    response = client.get("/r/cold-code", follow_redirects=False)
    assert response.status_code == 503
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "briefly unavailable" in response.text
    assert "location" not in response.headers


def test_unknown_codes_never_evict_known_links(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = LinkCache(create_engine("sqlite://"), max_entries=10, max_unknown=3)
    hot = _redirect("hot")
    lookups: list[str] = []

    def fetch(_engine: Engine, code: str) -> object | None:
        lookups.append(code)
        return object() if code == "hot" else None

    monkeypatch.setattr(repository, "fetch_link", fetch)
    monkeypatch.setattr(repository, "build_redirect", lambda _row: hot)

    async def scenario() -> None:
        assert await cache.get("hot") is hot
        for number in range(1000):
            assert await cache.get(f"random-{number}") is None
        assert await cache.get("hot") is hot

    asyncio.run(scenario())
    assert lookups.count("hot") == 1  # still cached after the flood
    assert len(cache._unknown) == 3


def test_cold_lookups_run_a_bounded_number_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = LinkCache(create_engine("sqlite://"), max_lookups=2)
    running = [0]
    most = [0]
    lock = threading.Lock()
    release = threading.Event()

    def fetch(_engine: Engine, _code: str) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(5)
        with lock:
            running[0] -= 1

    monkeypatch.setattr(repository, "fetch_link", fetch)

    async def scenario() -> None:
        tasks = [asyncio.create_task(cache.get(f"code-{n}")) for n in range(8)]
        await asyncio.sleep(0.05)
        release.set()
        assert await asyncio.gather(*tasks) == [None] * 8

    asyncio.run(scenario())
    assert most[0] == 2


# --- 14. the handle that names the source ---------------------------------------------------------


def test_utm_source_takes_handles_in_platform_order_not_key_order() -> None:
    def row(handles: dict[str, str]) -> LinkRow:
        return LinkRow(new_id(), new_id(), "https://store.com/", True, {}, None, None, {}, None,
                       handles, ("store.com",))  # fmt: skip

    # JSONB returns keys sorted (tiktok first), SQLite as written: the same answer either way.
    for handles in ({"tiktok": "@ana.tt", "instagram": "@ana.ig"},
                    {"instagram": "@ana.ig", "tiktok": "@ana.tt"}):  # fmt: skip
        assert utm_parameters(row(handles))["utm_source"] == "ana.ig"
    assert utm_parameters(row({"zz": "@z", "aa": "@a"}))["utm_source"] == "a"


# --- 6 and 8. the click writer: bounded, observable, shut down first ----------------------------


def _row() -> dict[str, object]:
    return {
        "id": new_id(), "workspace_id": new_id(), "link_id": new_id(),
        "clicked_at": None, "ip_truncated": None, "user_agent": "x", "referrer": None,
        "anonymous_id": "a", "is_bot": False, "bot_reason": None,
    }  # fmt: skip


def test_a_full_click_queue_drops_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    writer = ClickWriter(create_engine("sqlite://"), max_pending=2, flush_max=100)
    for _ in range(5):
        writer.record(_row())
    assert (writer.pending, writer.dropped) == (2, 3)
    assert caplog.text == ""  # nothing logged per click


def test_writer_liveness_and_readyz(make_client: ClientFactory) -> None:
    client, rt = make_client()
    assert rt.tracking.clicks.is_alive is True
    assert client.get("/readyz").status_code == 200
    rt.tracking.clicks.stop()
    assert rt.tracking.clicks.is_alive is False
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "click_writer_down"


def test_a_held_flush_lock_never_hangs_shutdown() -> None:
    writer = ClickWriter(create_engine("sqlite://"), lock_timeout_s=0.01)
    writer._flush_lock.acquire()
    writer.record(_row())
    writer.stop()  # returns although a (hung) flush holds the lock
    assert writer.pending == 1
    writer._flush_lock.release()


def test_runtime_stops_the_click_writer_even_when_the_other_writer_fails(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Runtime(make_settings(database_url, tmp_path))
    runtime.start()
    order: list[str] = []
    clicks_stop = runtime.tracking.stop

    def failing_stop() -> None:
        order.append("events")
        raise RuntimeError("boom")

    def clicks_first() -> None:
        order.append("clicks")
        clicks_stop()

    monkeypatch.setattr(runtime.writer, "stop", failing_stop)
    monkeypatch.setattr(runtime.tracking, "stop", clicks_first)
    with pytest.raises(RuntimeError):
        runtime.stop()
    assert order == ["clicks", "events"]
    assert runtime.tracking.clicks.is_alive is False
    monkeypatch.undo()
    runtime.close()


# --- 22. the runtime the app owns ---------------------------------------------------------------


def test_clicks_recorded_by_an_app_owned_runtime_are_stored_at_exit(
    database_url: str, tmp_path: Path
) -> None:
    # A flush interval longer than the test: only the app's shutdown writes.
    settings = make_settings(database_url, tmp_path, click_flush_ms=600_000, click_flush_max=10_000)
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    workspace = make_workspace(runtime)
    allow_domains(runtime, workspace.id, "store.com")
    link = make_link(runtime, workspace.id)
    with TestClient(app) as client:
        for _ in range(3):
            assert client.get(f"/r/{link.code}", follow_redirects=False).status_code == 302
    engine = create_engine(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            query = select(func.count()).select_from(Click)
            stored = connection.scalar(query.where(Click.workspace_id == workspace.id))
    finally:
        engine.dispose()
    assert stored == 3


# --- 2. proxy trust -----------------------------------------------------------------------------


def test_serve_trusts_forwarded_headers_only_from_configured_proxies() -> None:
    assert _proxy_options("") == {"proxy_headers": False}
    assert _proxy_options(" 10.0.0.0/8, 127.0.0.1 ") == {
        "proxy_headers": True,
        "forwarded_allow_ips": "10.0.0.0/8,127.0.0.1",
    }
