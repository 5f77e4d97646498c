"""The tracking runtime: link cache, click writer, bot rules and cookie settings, built once."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine

from storeloop.tracking.bots import BotDetector
from storeloop.tracking.clicks import ClickWriter
from storeloop.tracking.network import parse_networks
from storeloop.tracking.repository import LinkCache, fetch_allowed_domains, host_allowed

__all__ = ["Tracking", "allowed_domains", "host_allowed"]


def allowed_domains(engine: Engine, workspace_id: uuid.UUID) -> tuple[str, ...]:
    """The store's allowed domains (its settings): where its pages may call the tracking
    endpoints from (``host_allowed``)."""
    return fetch_allowed_domains(engine, workspace_id)


class Tracking:
    def __init__(
        self,
        engine: Engine,
        *,
        cookie_domain: str | None = None,
        trusted_proxies: str = "",
        flush_ms: float = 200.0,
        flush_max: int = 256,
        velocity_per_minute: int = 20,
        link_ttl_s: float = 5.0,
    ) -> None:
        self.engine = engine
        self.links = LinkCache(engine, ttl_s=link_ttl_s)
        self.clicks = ClickWriter(engine, flush_ms=flush_ms, flush_max=flush_max)
        self.bots = BotDetector(velocity_per_minute)
        self.cookie_domain = cookie_domain or None
        self.trusted_proxies = parse_networks(trusted_proxies)

    def start(self) -> None:
        self.clicks.start()

    def stop(self) -> None:
        """Write every click still queued."""
        self.clicks.stop()
