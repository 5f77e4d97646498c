"""The influencer, campaign, link, code, post and settings commands against a migrated SQLite."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storeloop import cli
from storeloop.cli import app
from storeloop.config import generate_key, get_settings


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("STORELOOP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STORELOOP_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("STORELOOP_MASTER_KEY", generate_key())
    monkeypatch.setenv("STORELOOP_SECRET_KEY", generate_key())
    get_settings.cache_clear()
    monkeypatch.setattr(cli.console, "width", 250)  # tables unabridged
    monkeypatch.setattr(cli.errors, "width", 250)
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    created = runner.invoke(app, ["workspace", "create", "Rosa Boutique"])
    assert created.exit_code == 0, created.output
    yield runner
    get_settings.cache_clear()


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_marketing_commands(runner: CliRunner, tmp_path: Path) -> None:
    ws = ("--workspace", "rosa-boutique")
    settings = _ok(
        runner,
        "settings",
        "set",
        *ws,
        "--allowed-domain",
        "rosa.example",
        "--allowed-domain",
        "Shop.Rosa.Example",
        "--lookback-days",
        "45",
        "--shopify-secret",
        "shpss_cli_secret",
    )
    assert "rosa.example, shop.rosa.example" in settings
    assert "lookback days:            45" in settings
    assert "shopify secret:           set" in settings
    assert "shpss_cli_secret" not in settings
    assert "woocommerce secret:       not set" in _ok(runner, "settings", "show", *ws)

    influencer = _ok(
        runner,
        "influencer",
        "create",
        *ws,
        "--name",
        "Ana Styles",
        "--handle",
        "instagram=@ana",
        "--email",
        "ana@example.com",
    )
    influencer_id = re.search(r"created: ([0-9a-f-]{36})", influencer)
    assert influencer_id is not None
    listing = _ok(runner, "influencer", "list", *ws)
    assert "Ana Styles" in listing
    assert "instagram:@ana" in listing
    assert "ana@example.com" not in listing

    campaign = _ok(
        runner,
        "campaign",
        "create",
        *ws,
        "--name",
        "Spring",
        "--currency",
        "eur",
        "--influencer",
        "ana styles",
        "--fee",
        "100.50",
        "--seeding-cost",
        "20",
        "--paid-boost-cost",
        "0.5",
    )
    assert "(total cost 121.0000 EUR)" in campaign
    assert "Spring" in _ok(runner, "campaign", "list", *ws)

    link = _ok(
        runner,
        "link",
        "create",
        *ws,
        "--destination",
        "https://shop.rosa.example/scarf",
        "--code",
        "Ana-Spring",
        "--influencer",
        influencer_id.group(1),
        "--campaign",
        "Spring",
        "--base-url",
        "https://go.rosa.example",
    )
    assert "https://go.rosa.example/r/Ana-Spring -> https://shop.rosa.example/scarf" in link
    refused = runner.invoke(
        app, ["link", "create", *ws, "--destination", "https://evil.example/", "--code", "evil"]
    )
    assert refused.exit_code == 1
    assert "allowed domains" in refused.output
    taken = runner.invoke(
        app,
        ["link", "create", *ws, "--destination", "https://rosa.example/", "--code", "ANA-SPRING"],
    )
    assert taken.exit_code == 1
    assert "already taken" in taken.output
    assert "Ana-Spring" in _ok(runner, "link", "list", *ws)

    assert "ANA10" in _ok(
        runner, "code", "create", *ws, "--code", "ANA10", "--influencer", "Ana Styles"
    )
    ownerless = runner.invoke(app, ["code", "create", *ws, "--code", "FREE"])
    assert ownerless.exit_code == 1
    assert "ANA10" in _ok(runner, "code", "list", *ws)

    csv_file = tmp_path / "posts.csv"
    csv_file.write_text(
        "platform,url,kind,posted_at,influencer,campaign,reach\n"
        "instagram,https://instagram.com/p/1,reel,2026-03-01,Ana Styles,Spring,1000\n"
        "tiktok,https://tiktok.com/@ana/video/2,video,,,,2000\n"
    )
    imported = _ok(runner, "post", "import", str(csv_file), *ws)
    assert "2 rows: 2 created, 0 updated, 0 unchanged, 0 failed" in imported
    again = _ok(runner, "post", "import", str(csv_file), *ws)
    assert "2 rows: 0 created, 0 updated, 2 unchanged, 0 failed" in again
    csv_file.write_text("platform,url,reach\ninstagram,https://instagram.com/p/3,lots\n")
    bad = runner.invoke(app, ["post", "import", str(csv_file), *ws])
    assert bad.exit_code == 1
    assert "1 rows: 0 created, 0 updated, 0 unchanged, 1 failed" in bad.output
    assert "line 2 reach: invalid_number" in bad.output
