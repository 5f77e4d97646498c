"""The process's long-lived parts (engine, keyring, writer, processor), built once from Settings."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Collection
from datetime import timedelta

from sqlalchemy.orm import Session

from storeloop.analytics.marks import mark_profile_days
from storeloop.analytics.tasks import RefreshRollups
from storeloop.attribution.service import attribute_stale_orders, mark_profile_orders_stale
from storeloop.attribution.touchpoints import derive_touchpoints
from storeloop.config import Settings
from storeloop.db import SqliteStatistics, create_db_engine, make_session_factory
from storeloop.derivation import DerivationRunner
from storeloop.ingestion.processor import InboxProcessor
from storeloop.ingestion.service import IngestionService, WriteKeyRateLimiter
from storeloop.ingestion.spool import SpoolCheckpointer, checkpoint_rarely, create_spool_engine
from storeloop.ingestion.validation import Limits
from storeloop.ingestion.writer import GroupCommitWriter
from storeloop.orders.tasks import derive_orders
from storeloop.tracking.service import Tracking
from storeloop.workspaces.keyring import Keyring
from storeloop.workspaces.service import KeyAuthenticator
from storeloop.workspaces.staff import LoginRateLimiter

logger = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings, *, role: str = "api") -> None:
        """``role`` names the process's PostgreSQL sessions (``storeloop api``, ``storeloop
        worker``: their ``application_name`` in pg_stat_activity and the server's logs)."""
        self.settings = settings
        self.engine = create_db_engine(
            settings.resolved_database_url, application_name=f"storeloop {role}"
        )
        self.session_factory = make_session_factory(self.engine)
        # On SQLite, accepted bodies wait in a file of their own (ADR 0011).
        self.spool = create_spool_engine(settings.resolved_database_url)
        self.keyring = Keyring(settings.master_key_bytes(), self.session_factory)
        self.authenticator = KeyAuthenticator()
        # Signs dashboard session and CSRF tokens (workspaces.staff).
        self.signing_key = settings.secret_key_bytes()
        self.login_limiter = LoginRateLimiter(_redis_limits_uri(settings))
        self.limits = Limits(
            max_event_bytes=settings.max_event_bytes,
            max_json_depth=settings.max_json_depth,
            max_age=timedelta(days=settings.max_event_age_days),
            max_future=timedelta(hours=settings.max_event_future_hours),
        )
        self.writer = GroupCommitWriter(
            self.engine,
            inbox_engine=self.spool,
            max_items=settings.group_commit_max_items,
            max_wait_ms=settings.group_commit_max_wait_ms,
            housekeeping=self.authenticator.flush_usage,
            on_connect=checkpoint_rarely if self.spool is not None else None,
        )
        # The spool's checkpoints, off the group commit (started with the API's runtime).
        self.spool_checkpointer = SpoolCheckpointer(self.spool) if self.spool is not None else None
        self.ingestion = IngestionService(
            session_factory=self.session_factory,
            keyring=self.keyring,
            authenticator=self.authenticator,
            writer=self.writer,
            rate_limiter=WriteKeyRateLimiter(settings.rate_limit, _redis_limits_uri(settings)),
            limits=self.limits,
            max_body_bytes=settings.max_batch_bytes,
        )
        self.processor = InboxProcessor(
            self.session_factory,
            self.keyring,
            self.limits,
            batch_size=settings.resolved_processor_batch_size,
            spool=self.spool,
            on_profiles_merged=_profiles_merged,
        )
        # Orders and touchpoints derived from stored events; attribution of stale orders after.
        self.derivations = DerivationRunner(
            self.session_factory,
            self.keyring,
            # Orders first: touchpoint handlers appended after may point at the order.
            handlers=[derive_orders, derive_touchpoints],
            follow_ups=[attribute_stale_orders],
            # Then the dashboard's rollups of every day that changed (ADR 0008), and SQLite's
            # planner statistics as the store grows.
            jobs=[
                RefreshRollups(self.session_factory, settings.rollup_settle_seconds),
                SqliteStatistics(self.engine),
            ],
        )
        # Tracked-link redirects: link cache, batched click writer, bot rules.
        self.tracking = Tracking(
            self.engine,
            cookie_domain=settings.cookie_domain,
            trusted_proxies=settings.trusted_proxies,
            flush_ms=settings.click_flush_ms,
            flush_max=settings.click_flush_max,
            velocity_per_minute=settings.click_velocity_per_minute,
        )
        self._processor_stop = threading.Event()
        self._processor_thread: threading.Thread | None = None
        self._derivation_thread: threading.Thread | None = None

    def start(self) -> None:
        self.writer.start()
        if self.spool_checkpointer is not None:
            self.spool_checkpointer.start()
        self.tracking.start()
        if self.settings.inprocess_worker:
            self._processor_stop.clear()
            self._processor_thread = threading.Thread(
                target=self.processor.run,
                args=(self._processor_stop,),
                name="storeloop-inbox-processor",
                daemon=True,
            )
            self._processor_thread.start()
            self._derivation_thread = threading.Thread(
                target=self.derivations.run,
                args=(self._processor_stop,),
                name="storeloop-derivations",
                daemon=True,
            )
            self._derivation_thread.start()

    def stop(self) -> None:
        """Commit what was accepted, stop the processor; the inbox keeps anything unprocessed."""
        # Clicks first and whatever happens to the other writer: they exist nowhere but in
        # memory (the inbox keeps unprocessed events in the database).
        try:
            self.tracking.stop()
        finally:
            try:
                self.writer.stop()
            finally:
                if self.spool_checkpointer is not None:
                    self.spool_checkpointer.stop()
        if self._processor_thread is not None:
            self._processor_stop.set()
            self._processor_thread.join(30)
            self._processor_thread = None
        if self._derivation_thread is not None:
            self._derivation_thread.join(30)
            self._derivation_thread = None

    def close(self) -> None:
        self.stop()
        self.engine.dispose()
        if self.spool is not None:
            self.spool.dispose()


def _profiles_merged(
    session: Session, workspace_id: uuid.UUID, profile_ids: Collection[uuid.UUID]
) -> None:
    """Merged profiles gather each other's touchpoints (re-attribution) and visits (rollups)."""
    mark_profile_orders_stale(session, workspace_id, profile_ids)
    mark_profile_days(session, workspace_id, profile_ids)


def _redis_limits_uri(settings: Settings) -> str | None:
    if not settings.redis_url:
        return None
    # limits names its Redis storage scheme "redis://"; TLS is "rediss://".
    return settings.redis_url
