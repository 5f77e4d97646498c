"""The storeloop CLI against a real (migrated) SQLite database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storeloop.cli import app
from storeloop.config import generate_key, get_settings


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STORELOOP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STORELOOP_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("STORELOOP_MASTER_KEY", generate_key())
    monkeypatch.setenv("STORELOOP_SECRET_KEY", generate_key())
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_workspace_user_and_key_lifecycle(cli_env: CliRunner) -> None:
    runner = cli_env
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    created = runner.invoke(app, ["workspace", "create", "Rosa Boutique"])
    assert created.exit_code == 0, created.output
    assert "rosa-boutique" in created.output
    duplicate = runner.invoke(app, ["workspace", "create", "Rosa Boutique"])
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.output

    user = runner.invoke(
        app,
        [
            "user",
            "create",
            "--workspace",
            "rosa-boutique",
            "--email",
            "Owner@Rosa.example",
            "--role",
            "owner",
            "--password",
            "correct horse battery",
        ],
    )
    assert user.exit_code == 0, user.output
    short = runner.invoke(
        app,
        [
            "user",
            "create",
            "--workspace",
            "rosa-boutique",
            "--email",
            "b@rosa.example",
            "--password",
            "short",
        ],
    )
    assert short.exit_code == 1
    assert "at least 10 characters" in short.output

    key = runner.invoke(
        app, ["key", "create", "--workspace", "rosa-boutique", "--kind", "write", "--name", "shop"]
    )
    assert key.exit_code == 0, key.output
    plaintext = re.search(r"slw_[A-Za-z0-9_-]{43}", key.output)
    assert plaintext is not None
    key_id = re.search(r"write key ([0-9a-f-]{36})", key.output)
    assert key_id is not None
    listing = runner.invoke(app, ["key", "list", "--workspace", "rosa-boutique"])
    assert plaintext.group(0)[:12] in listing.output
    # The whole id, as `key revoke` takes it, even on an 80-column terminal.
    assert key_id.group(1) in listing.output
    assert plaintext.group(0) not in listing.output
    revoked = runner.invoke(app, ["key", "revoke", key_id.group(1), "--workspace", "rosa-boutique"])
    assert revoked.exit_code == 0
    assert (
        plaintext.group(0)[:12]
        not in runner.invoke(app, ["key", "list", "--workspace", "rosa-boutique"]).output
    )
    missing = runner.invoke(app, ["key", "list", "--workspace", "nope"])
    assert missing.exit_code == 1
    assert "no workspace 'nope'" in missing.output


def test_doctor_reports_an_unmigrated_database_then_passes(cli_env: CliRunner) -> None:
    runner = cli_env
    before = runner.invoke(app, ["doctor"])
    assert before.exit_code == 1
    assert "run `storeloop migrate`" in before.output
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    after = runner.invoke(app, ["doctor"])
    assert after.exit_code == 0, after.output
    assert "FAIL" not in after.output
    # On SQLite, the inbox spool beside the database file is checked too (ADR 0011).
    words = " ".join(after.output.split())
    assert "ok inbox spool" in words
    assert "(0 accepted bodies waiting for the worker)" in words


def test_a_malformed_key_stops_every_command_before_it_writes(
    cli_env: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key that cannot be used is refused as the settings load, with the variable named:
    nothing is migrated, nothing is served, no traceback."""
    database = tmp_path / "prod.db"
    monkeypatch.setenv("STORELOOP_ENVIRONMENT", "production")
    monkeypatch.setenv("STORELOOP_DATABASE_URL", f"sqlite:///{database}")
    for name, value, problem in [
        ("STORELOOP_MASTER_KEY", "short", "is not valid base64"),
        ("STORELOOP_SECRET_KEY", "AAAA", "must decode to 32 bytes, got 3"),
    ]:
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            for command in (["serve", "--port", "0"], ["worker"], ["migrate"]):
                get_settings.cache_clear()
                result = cli_env.invoke(app, command)
                assert result.exit_code == 2, (command, result.output)
                assert f"configuration error: {name} {problem}" in " ".join(result.output.split())
                assert "Traceback" not in result.output
    assert not database.exists()


def test_a_setting_that_does_not_validate_names_its_variable(
    cli_env: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORELOOP_TRUSTED_PROXIES", "not-a-network")
    get_settings.cache_clear()
    result = cli_env.invoke(app, ["migrate"])
    assert result.exit_code == 2
    assert "STORELOOP_TRUSTED_PROXIES: 'not-a-network' is not an IP address" in " ".join(
        result.output.split()
    )
