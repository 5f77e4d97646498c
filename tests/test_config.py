"""Settings: an embedded default that needs nothing, and a production mode that needs everything."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from storeloop.config import ConfigurationError, Settings, generate_key


def test_embedded_default_generates_owner_only_secrets(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    master = settings.master_key_bytes()
    assert len(master) == 32
    secrets_file = tmp_path / "data" / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    # The same secrets come back on the next start.
    assert Settings(data_dir=tmp_path / "data").master_key_bytes() == master
    assert (
        settings.resolved_database_url
        == f"sqlite:///{(tmp_path / 'data' / 'storeloop.db').resolve()}"
    )


def test_production_refuses_to_start_without_explicit_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STORELOOP_ENVIRONMENT", "production")
    with pytest.raises(ConfigurationError) as excinfo:
        Settings()
    message = str(excinfo.value)
    for name in ("STORELOOP_DATABASE_URL", "STORELOOP_MASTER_KEY", "STORELOOP_SECRET_KEY"):
        assert name in message
    monkeypatch.setenv("STORELOOP_DATABASE_URL", "postgresql://db/storeloop")
    monkeypatch.setenv("STORELOOP_MASTER_KEY", generate_key())
    monkeypatch.setenv("STORELOOP_SECRET_KEY", generate_key())
    assert Settings().environment == "production"


def test_malformed_master_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="STORELOOP_MASTER_KEY must decode to 32 bytes"):
        Settings(data_dir=tmp_path, master_key="c2hvcnQ=").master_key_bytes()
    with pytest.raises(ConfigurationError, match="STORELOOP_MASTER_KEY is not valid base64"):
        Settings(data_dir=tmp_path, master_key="***").master_key_bytes()
