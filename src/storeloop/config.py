"""Settings from the environment (``STORELOOP_*``), with an embedded default that needs nothing set.

In development mode, missing secrets are generated once into ``<data_dir>/secrets.json`` (mode
0600); production mode refuses to start without explicit secrets and a database URL.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

import orjson
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(RuntimeError):
    """The settings cannot run a server as given."""


_COOKIE_DOMAIN = re.compile(r"\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STORELOOP_", env_file=None, extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("./storeloop-data")
    database_url: str | None = None
    redis_url: str | None = None
    # base64 of 32 bytes; wraps every workspace's data key and seals staff accounts.
    master_key: SecretStr | None = None
    # base64 of 32 bytes; will sign dashboard sessions. Required in production from the start so
    # deployments do not change shape when the dashboard arrives.
    secret_key: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = 8000
    # Run the inbox processor inside the API process (the embedded default). Production runs
    # `storeloop worker` processes instead.
    inprocess_worker: bool = True
    # Unix niceness `storeloop worker` adds to itself at start (0-19; 0 leaves it alone). Where
    # the API and the workers share cores, a tracking request then gets the CPU first and the
    # inbox backlog is processed in the time the API leaves: measured at 10 against 0, more
    # events/s accepted on PostgreSQL and a lower paced p99 on both backends
    # (docs/benchmarks.md, 2026-12-06, third). See storeloop.worker for Linux's autogroups and
    # CPU cgroups.
    worker_nice: int = Field(default=10, ge=0, le=19)

    max_event_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    max_json_depth: int = 24
    max_event_age_days: int = 3 * 365
    max_event_future_hours: int = 24
    rate_limit: str = Field(default="2000/second", description="per write key, `limits` syntax")

    # Inbox entries per processor transaction. SQLite has one write lock: the tracking API never
    # takes it (bodies go to the spool, ADR 0011, refusals with them, ADR 0014), but webhook
    # deliveries, click batches, the management API and sign-ins wait for a whole processor
    # transaction. 16 would store 47% more events/s than 4 and make those waits four times
    # longer; the tracking API's p99 did not tell the two apart (docs/benchmarks.md). PostgreSQL
    # has row locks and takes larger ones.
    processor_batch_size: int | None = Field(default=None, ge=1, le=1000)

    # 0: the writer commits as soon as it is free, and whatever arrived during a commit forms the
    # next group. Measured (docs/benchmarks.md, 2026-12-06): 0 took about 2 ms off p50 and p99
    # with the API alone, but with workers on the same cores it did worse at saturation.
    group_commit_max_wait_ms: float = Field(default=2.0, ge=0, le=100)
    # At most 1,000: a group is one INSERT (7 values a body), within both databases' bound on
    # parameters per statement.
    group_commit_max_items: int = Field(default=256, ge=1, le=1000)

    # Tracked links (/r/{code}) and the storefront script (/t.js): see docs/tracking.md.
    # Where /r/ and /t.js are served, e.g. https://t.store.com (links shown with this base).
    tracking_base_url: str | None = None
    # Domain of the click and visitor cookies, e.g. ".store.com" when storeloop answers on
    # t.store.com; unset = host-only cookies of the host that served the redirect.
    cookie_domain: str | None = None
    # Comma-separated CIDRs of reverse proxies whose X-Forwarded-For / -Proto are believed.
    trusted_proxies: str = ""
    # Clicks are written in batches: every this many milliseconds, or sooner at this many clicks.
    click_flush_ms: float = Field(default=200.0, gt=0)
    click_flush_max: int = Field(default=256, ge=1)
    # More clicks than this from one IP range and user agent on one link within a minute are
    # flagged as bots ("velocity").
    click_velocity_per_minute: int = Field(default=20, ge=1)
    # The dashboard's rollups: a day that keeps changing (today) is recomputed at most this often.
    rollup_settle_seconds: float = Field(default=5.0, ge=0, le=3600)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        for item in value.replace(",", " ").split():
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from exc
        return value

    @field_validator("cookie_domain")
    @classmethod
    def _cookie_domain(cls, value: str | None) -> str | None:
        if value and not _COOKIE_DOMAIN.fullmatch(value):
            raise ValueError(f"{value!r} is not a domain such as .store.com")
        return value or None

    @field_validator("master_key", "secret_key")
    @classmethod
    def _key_is_32_bytes(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """Checked as the settings load, so that no command starts (or writes anything) with a
        key it cannot use."""
        if value is not None and value.get_secret_value():
            _decode_key(value.get_secret_value(), f"STORELOOP_{str(info.field_name).upper()}")
        return value

    @model_validator(mode="after")
    def _production_needs_explicit_values(self) -> Settings:
        if self.environment == "production":
            missing = [
                name
                for name in ("database_url", "master_key", "secret_key")
                if not getattr(self, name)
            ]
            if missing:
                names = ", ".join(f"STORELOOP_{name.upper()}" for name in missing)
                raise ConfigurationError(f"production mode needs {names} set explicitly")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'storeloop.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def resolved_processor_batch_size(self) -> int:
        if self.processor_batch_size is not None:
            return self.processor_batch_size
        return 4 if self.is_sqlite else 64

    def master_key_bytes(self) -> bytes:
        return _decode_key(self._secret("master_key"), "STORELOOP_MASTER_KEY")

    def secret_key_bytes(self) -> bytes:
        """The key that signs dashboard session tokens and CSRF tokens."""
        return _decode_key(self._secret("secret_key"), "STORELOOP_SECRET_KEY")

    def _secret(self, name: str) -> str:
        value: SecretStr | None = getattr(self, name)
        if value is not None and value.get_secret_value():
            return value.get_secret_value()
        return _local_secrets(self.data_dir)[name]


def _decode_key(value: str, env_name: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ConfigurationError(f"{env_name} is not valid base64") from exc
    if len(raw) != 32:
        raise ConfigurationError(f"{env_name} must decode to 32 bytes, got {len(raw)}")
    return raw


def generate_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _local_secrets(data_dir: Path) -> dict[str, str]:
    """Secrets of the embedded default, created on first use with owner-only permissions."""
    path = data_dir / "secrets.json"
    if path.exists():
        loaded: dict[str, str] = orjson.loads(path.read_bytes())
        return loaded
    data_dir.mkdir(parents=True, exist_ok=True)
    values = {"master_key": generate_key(), "secret_key": generate_key()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(orjson.dumps(values, option=orjson.OPT_INDENT_2))
    return values


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings from the environment; a value that does not validate is a
    ConfigurationError naming its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"STORELOOP_{'_'.join(str(part) for part in error['loc']).upper()}: "
            f"{error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise ConfigurationError(problems) from None
