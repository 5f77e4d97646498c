"""The `storeloop` command: serve, worker, migrate, demo, workspaces, users, keys, doctor."""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from storeloop import migrate as migrations
from storeloop.config import ConfigurationError, Settings, get_settings
from storeloop.db import create_db_engine, make_session_factory, session_scope
from storeloop.demostore.loader import DEMO_VISITORS_PER_DAY
from storeloop.influencers import schemas as influencer_schemas
from storeloop.influencers import service as influencers
from storeloop.kit.crypto import InstanceCipher, unwrap_data_key
from storeloop.kit.errors import StoreloopError
from storeloop.kit.timeutil import as_utc
from storeloop.workspaces import service as workspaces
from storeloop.workspaces.keyring import Keyring

app = typer.Typer(
    help="storeloop: a self-hosted growth engine for online stores.", no_args_is_help=True
)
workspace_app = typer.Typer(
    help="Create and list workspaces (one per store).", no_args_is_help=True
)
user_app = typer.Typer(help="Create staff users.", no_args_is_help=True)
key_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")
console = Console(soft_wrap=True)
errors = Console(stderr=True)


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigurationError as exc:
        errors.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _table(*headers: str, whole: tuple[str, ...] = ()) -> Table:
    """A listing whose first column is the full id, never cut or wrapped whatever the
    terminal's width (the other commands take it), nor the ``whole`` columns; the others wrap
    rather than lose their ends."""
    table = Table(Column("id", no_wrap=True, min_width=36))
    for header in headers:
        if header in whole:
            table.add_column(header, no_wrap=True)
        else:
            table.add_column(header, overflow="fold")
    return table


def _print_listing(table: Table) -> None:
    """On a terminal, within its width (the id whole, other columns wrapped); piped, at the
    table's own width, so that scripts read whole lines."""
    if console.is_terminal:
        console.print(table)
        return
    width = console.measure(table, options=console.options.update_width(10_000)).maximum
    Console(width=max(width, console.width)).print(table)


def _minute(moment: datetime | None) -> str:
    """A listing's time, in UTC to the minute (the API gives the full value)."""
    return "" if moment is None else as_utc(moment).strftime("%Y-%m-%d %H:%M")


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


def _migrate(settings: Settings) -> None:
    """The schema at the latest revision and, on a SQLite file, the inbox spool (ADR 0011)."""
    from storeloop.ingestion.spool import create_spool_engine

    engine = create_db_engine(settings.resolved_database_url)
    try:
        migrations.upgrade(engine)
    finally:
        engine.dispose()
    spool = create_spool_engine(settings.resolved_database_url)
    if spool is not None:
        spool.dispose()


def _resolve_workspace(session: object, ref: str) -> uuid.UUID:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    workspace = workspaces.find_workspace(session, ref)
    if workspace is None:
        raise _fail(f"no workspace {ref!r} (give its id or slug)")
    return workspace.id


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    settings = _settings()
    _migrate(settings)
    console.print("database migrated to the latest schema")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    workers: Annotated[int, typer.Option(help="API processes (PostgreSQL only for > 1)")] = 1,
) -> None:
    """Serve the tracking and management API."""
    settings = _settings()
    if workers > 1 and settings.is_sqlite:
        raise _fail("several API processes need PostgreSQL; SQLite runs in one process")
    _migrate(settings)
    uvicorn.run(
        "storeloop.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="info",
        access_log=False,
        # One setting for proxies: uvicorn rewrites the client address from X-Forwarded-For
        # only for STORELOOP_TRUSTED_PROXIES (by default nobody), never for every peer.
        **_proxy_options(settings.trusted_proxies),
    )


def _proxy_options(trusted_proxies: str) -> dict[str, Any]:
    """uvicorn's proxy options for STORELOOP_TRUSTED_PROXIES (comma- or space-separated)."""
    networks = trusted_proxies.replace(",", " ").split()
    if not networks:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(networks)}


@app.command()
def worker() -> None:
    """Process the ingestion inbox (production runs one or more of these)."""
    from storeloop.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run_worker(_settings())


@workspace_app.command("create")
def workspace_create(
    name: Annotated[str, typer.Argument(help="the store's name")],
    slug: Annotated[
        str | None, typer.Option(help="short unique name; derived from the name")
    ] = None,
) -> None:
    """Create a workspace for one store."""
    settings = _settings()
    factory = make_session_factory(create_db_engine(settings.resolved_database_url))
    try:
        with session_scope(factory) as session:
            workspace = workspaces.create_workspace(
                session, settings.master_key_bytes(), name, slug
            )
            console.print(f"workspace [bold]{workspace.slug}[/bold] created: {workspace.id}")
    except StoreloopError as exc:
        raise _fail(exc.message) from None


@workspace_app.command("list")
def workspace_list() -> None:
    """List workspaces."""
    settings = _settings()
    factory = make_session_factory(create_db_engine(settings.resolved_database_url))
    table = _table("slug", "name", "created")
    with factory() as session:
        for workspace in workspaces.list_workspaces(session):
            table.add_row(
                str(workspace.id), workspace.slug, workspace.name, _minute(workspace.created_at)
            )
    _print_listing(table)


@user_app.command("create")
def user_create(
    workspace: Annotated[str, typer.Option(help="workspace id or slug")],
    email: Annotated[str, typer.Option(help="the user's email")],
    role: Annotated[
        workspaces.Role, typer.Option(help="role in the workspace")
    ] = workspaces.Role.ANALYST,
    password: Annotated[
        str | None,
        typer.Option(
            help="omit to be prompted (or set STORELOOP_PASSWORD)", envvar="STORELOOP_PASSWORD"
        ),
    ] = None,
) -> None:
    """Create a staff user (or add an existing one to a workspace)."""
    settings = _settings()
    if password is None:
        password = getpass.getpass("password: ")
    factory = make_session_factory(create_db_engine(settings.resolved_database_url))
    try:
        with session_scope(factory) as session:
            workspace_id = _resolve_workspace(session, workspace)
            user = workspaces.create_user(
                session,
                InstanceCipher(settings.master_key_bytes()),
                workspace_id,
                email,
                password,
                role,
            )
            console.print(f"user {user.id} is now {role.value} of the workspace")
    except StoreloopError as exc:
        raise _fail(exc.message) from None


@key_app.command("create")
def key_create(
    workspace: Annotated[str, typer.Option(help="workspace id or slug")],
    kind: Annotated[
        workspaces.KeyKind, typer.Option(help="write (tracking) or secret (management API)")
    ],
    name: Annotated[str, typer.Option(help="what the key is for")] = "",
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    settings = _settings()
    factory = make_session_factory(create_db_engine(settings.resolved_database_url))
    with session_scope(factory) as session:
        workspace_id = _resolve_workspace(session, workspace)
        created = workspaces.create_api_key(session, workspace_id, kind, name)
    console.print(f"{kind.value} key {created.key.id} (shown once, keep it safe):")
    console.print(created.plaintext, soft_wrap=True, highlight=False)


@key_app.command("list")
def key_list(
    workspace: Annotated[str, typer.Option(help="workspace id or slug")],
    include_revoked: Annotated[bool, typer.Option(help="also list revoked keys")] = False,
) -> None:
    """List a workspace's API keys (prefixes only)."""
    settings = _settings()
    factory = make_session_factory(create_db_engine(settings.resolved_database_url))
    headers = ["kind", "prefix", "name", "created"] + (["revoked"] if include_revoked else [])
    table = _table(*headers, whole=("kind", "prefix"))
    with factory() as session:
        workspace_id = _resolve_workspace(session, workspace)
        for key in workspaces.list_api_keys(session, workspace_id, include_revoked=include_revoked):
            row = [str(key.id), key.kind, key.prefix + "…", key.name, _minute(key.created_at)]
            table.add_row(*row, *([_minute(key.revoked_at)] if include_revoked else []))
    _print_listing(table)


@key_app.command("revoke")
def key_revoke(
    key_id: Annotated[uuid.UUID, typer.Argument(help="the key's id")],
    workspace: Annotated[str, typer.Option(help="workspace id or slug")],
) -> None:
    """Revoke an API key (takes effect within seconds on every process)."""
    settings = _settings()
    factory = make_session_factory(create_db_engine(settings.resolved_database_url))
    try:
        with session_scope(factory) as session:
            workspace_id = _resolve_workspace(session, workspace)
            workspaces.revoke_api_key(session, workspace_id, key_id)
    except StoreloopError as exc:
        raise _fail(exc.message) from None
    console.print(f"key {key_id} revoked")


@app.command()
def doctor() -> None:
    """Check the configuration, the database, the schema and the keys."""
    ok = True

    def report(passed: bool, what: str, detail: str = "") -> None:
        nonlocal ok
        ok = ok and passed
        mark = "[green]ok[/green]  " if passed else "[red]FAIL[/red]"
        console.print(f"{mark} {what}" + (f": {detail}" if detail else ""))

    try:
        settings = get_settings()
        report(True, "configuration", f"{settings.environment} mode")
    except ConfigurationError as exc:
        report(False, "configuration", str(exc))
        raise typer.Exit(1) from None
    secrets_file = settings.data_dir / "secrets.json"
    if not (settings.master_key and settings.secret_key) and secrets_file.exists():
        mode = stat.S_IMODE(secrets_file.stat().st_mode)
        report(mode == 0o600, "local secrets file permissions", oct(mode))
    try:
        master_key = settings.master_key_bytes()
        report(True, "master key")
    except ConfigurationError as exc:
        report(False, "master key", str(exc))
        raise typer.Exit(1) from None
    engine = create_db_engine(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        report(True, "database reachable", engine.url.render_as_string(hide_password=True))
    except Exception as exc:
        report(False, "database reachable", type(exc).__name__)
        raise typer.Exit(1) from None
    current, heads = migrations.current(engine), migrations.heads(engine)
    report(
        current in heads,
        "schema up to date",
        f"at {current}, latest {', '.join(heads)}"
        + ("" if current in heads else " (run `storeloop migrate`)"),
    )
    if current in heads:
        factory = make_session_factory(engine)
        with factory() as session:
            broken = []
            for workspace in workspaces.list_workspaces(session):
                try:
                    unwrap_data_key(master_key, workspace.id, workspace.wrapped_data_key)
                except Exception:
                    broken.append(workspace.slug)
        report(not broken, "workspace keys open with the master key", ", ".join(broken))
    engine.dispose()
    _doctor_spool(settings, report)
    if not ok:
        raise typer.Exit(1)


def _doctor_spool(settings: Settings, report: Callable[[bool, str, str], None]) -> None:
    """On SQLite, the inbox spool beside the database file (ADR 0011)."""
    from storeloop.ingestion.spool import create_spool_engine, spool_path

    path = spool_path(settings.resolved_database_url)
    if path is None:
        return
    if not path.exists():
        report(True, "inbox spool", f"{path} (not created yet: `storeloop migrate` creates it)")
        return
    try:
        spool = create_spool_engine(settings.resolved_database_url)
    except Exception as exc:
        report(False, "inbox spool", f"{path}: {exc}")
        return
    assert spool is not None
    with spool.connect() as connection:
        waiting = connection.execute(text("SELECT count(*) FROM inbox")).scalar_one()
    spool.dispose()
    report(True, "inbox spool", f"{path} ({waiting} accepted bodies waiting for the worker)")


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="port to serve on")] = 8000,
    visitors_per_day: Annotated[
        int, typer.Option(help="storefront visitors a day (before weekly seasonality)")
    ] = DEMO_VISITORS_PER_DAY,
    seed: Annotated[int, typer.Option(help="seed of the generated store")] = 2026,
) -> None:
    """Create a demo clothing store with 90 days of history, loaded through the real paths
    (management API, click import, tracking API, Shopify webhooks), and serve it."""
    from storeloop.demostore.loader import (
        LoadError,
        RichProgress,
        Target,
        WorkerBacklog,
        events_per_second,
        load_scenario,
    )
    from storeloop.demostore.scenario import build_scenario
    from storeloop.ingestion.spool import create_spool_engine

    started = time.monotonic()
    settings = _settings()
    _migrate(settings)
    engine = create_db_engine(settings.resolved_database_url)
    spool = create_spool_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    credentials_file = settings.data_dir / "demo-credentials.json"
    with session_scope(factory) as session:
        existing = workspaces.find_workspace(session, "demo")
        if existing is None:
            workspace = workspaces.create_workspace(
                session, settings.master_key_bytes(), "Demo Store", "demo"
            )
            workspace_id = workspace.id
            password = secrets.token_urlsafe(12)
            workspaces.create_user(
                session,
                InstanceCipher(settings.master_key_bytes()),
                workspace.id,
                "owner@demo.storeloop.dev",
                password,
                workspaces.Role.OWNER,
            )
            write_key = workspaces.create_api_key(
                session, workspace.id, workspaces.KeyKind.WRITE, "demo storefront"
            ).plaintext
            secret_key = workspaces.create_api_key(
                session, workspace.id, workspaces.KeyKind.SECRET, "demo admin"
            ).plaintext
            stored: dict[str, Any] = {
                "email": "owner@demo.storeloop.dev",
                "password": password,
                "write_key": write_key,
                "secret_key": secret_key,
                "loaded": False,
            }
            fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(orjson.dumps(stored))
            load_store = True
        else:
            workspace_id = existing.id
            load_store = False
    stored = orjson.loads(credentials_file.read_bytes())
    base_url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(
        "storeloop.app:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)

    def load() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.05)
        if load_store:
            scenario = build_scenario(seed=seed, visitors_per_day=visitors_per_day)
            target = Target(base_url, stored["write_key"], stored["secret_key"])
            try:
                with Progress(
                    SpinnerColumn(),
                    TextColumn("[progress.description]{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=console,
                ) as bars:
                    report = load_scenario(
                        scenario,
                        target,
                        progress=RichProgress(bars),
                        backlog=WorkerBacklog(engine, workspace_id, spool),
                        # Below the write key's rate limit: a 429 costs a second of Retry-After.
                        events_per_second=events_per_second(settings.rate_limit),
                    )
            except LoadError as exc:
                errors.print(f"[red]the demo store did not load completely:[/red] {exc}")
            else:
                stored["loaded"] = True
                credentials_file.write_bytes(orjson.dumps(stored))
                phases = ", ".join(f"{name} {secs:.1f} s" for name, secs in report.seconds.items())
                console.print(
                    f"loaded {(scenario.end - scenario.start).days} days in "
                    f"{time.monotonic() - started:.0f} s: {report.events:,} events, "
                    f"{report.clicks:,} link clicks ({report.bot_clicks:,} bots), "
                    f"{report.orders.total():,} orders, {report.refunds.total():,} refunds, "
                    f"{report.posts} posts of {report.influencers} influencers ({phases})"
                )
        elif not stored.get("loaded", True):
            errors.print(
                "[yellow]the demo store's first load did not finish; to load it again, stop "
                f"this and remove {settings.data_dir}[/yellow]"
            )
        console.print(f"\n[bold green]storeloop is running at {base_url}[/bold green]")
        console.print(f"  dashboard:   {base_url}/dashboard")
        console.print(f"  login:       {stored['email']} / {stored['password']}")
        console.print(f"  API docs:    {base_url}/docs")
        console.print(f"  write key:   {stored['write_key']}")
        console.print(f"  secret key:  {stored['secret_key']}")
        console.print(
            f"  try:         curl -H 'Authorization: Bearer {stored['secret_key']}' "
            f"{base_url}/api/v1/profiles"
        )
        console.print("  (credentials are kept in " + str(credentials_file) + "; Ctrl+C stops)")

    threading.Thread(target=load, daemon=True).start()
    try:
        server.run()
    finally:
        engine.dispose()
        if spool is not None:
            spool.dispose()


# -- influencers, campaigns, links, discount codes, posts, store settings ----------------------

influencer_app = typer.Typer(help="Create and list influencers.", no_args_is_help=True)
campaign_app = typer.Typer(help="Create and list campaigns.", no_args_is_help=True)
link_app = typer.Typer(help="Create and list tracked links (/r/{code}).", no_args_is_help=True)
code_app = typer.Typer(help="Create and list discount codes.", no_args_is_help=True)
post_app = typer.Typer(help="Import social posts and stories.", no_args_is_help=True)
store_settings_app = typer.Typer(
    help="Tracking and attribution settings of a store.", no_args_is_help=True
)
app.add_typer(influencer_app, name="influencer")
app.add_typer(campaign_app, name="campaign")
app.add_typer(link_app, name="link")
app.add_typer(code_app, name="code")
app.add_typer(post_app, name="post")
app.add_typer(store_settings_app, name="settings")

WorkspaceOption = Annotated[str, typer.Option(help="workspace id or slug")]


def _marketing_factory(settings: Settings) -> tuple[sessionmaker[Session], Keyring]:
    factory = make_session_factory(create_db_engine(settings.resolved_database_url))
    return factory, Keyring(settings.master_key_bytes(), factory)


@contextmanager
def _reported_errors() -> Iterator[None]:
    """Bad input and refused operations end the command with one red line and exit code 1."""
    try:
        yield
    except ValidationError as exc:
        raise _input_error(exc) from None
    except StoreloopError as exc:
        raise _fail(exc.message) from None


def _input_error(exc: ValidationError) -> typer.Exit:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return _fail(f"{where}: {first['msg']}")


def _all_pages(fetch: Callable[[str | None], Any]) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return items


@influencer_app.command("create")
def influencer_create(
    workspace: WorkspaceOption,
    name: Annotated[str, typer.Option(help="the influencer's name")],
    handle: Annotated[
        list[str] | None, typer.Option(help="platform=handle, e.g. instagram=@ana (repeatable)")
    ] = None,
    email: Annotated[str | None, typer.Option(help="contact email (stored encrypted)")] = None,
    phone: Annotated[str | None, typer.Option(help="contact phone (stored encrypted)")] = None,
    payout_notes: Annotated[str | None, typer.Option(help="payout details (encrypted)")] = None,
) -> None:
    """Create an influencer."""
    handles: dict[str, str] = {}
    for item in handle or []:
        platform, separator, value = item.partition("=")
        if not separator or not platform.strip() or not value.strip():
            raise _fail(f"--handle {item!r}: write it as platform=handle")
        handles[platform] = value
    factory, keyring = _marketing_factory(_settings())
    with _reported_errors():
        contact = (
            influencer_schemas.Contact(email=email, phone=phone, payout_notes=payout_notes)
            if email or phone or payout_notes
            else None
        )
        data = influencer_schemas.InfluencerCreate(name=name, handles=handles, contact=contact)
        with session_scope(factory) as session:
            workspace_id = _resolve_workspace(session, workspace)
            created = influencers.create_influencer(
                session, keyring.cipher(workspace_id), workspace_id, data
            )
    console.print(f"influencer [bold]{created.name}[/bold] created: {created.id}")


@influencer_app.command("list")
def influencer_list(workspace: WorkspaceOption) -> None:
    """List influencers, newest first (without contact data)."""
    factory, keyring = _marketing_factory(_settings())
    table = _table("name", "handles", "status", "contact", "created")
    with factory() as session:
        workspace_id = _resolve_workspace(session, workspace)
        cipher = keyring.cipher(workspace_id)
        rows = _all_pages(
            lambda cursor: influencers.list_influencers(
                session, cipher, workspace_id, limit=200, cursor=cursor
            )
        )
    for row in rows:
        handles = " ".join(f"{platform}:{value}" for platform, value in sorted(row.handles.items()))
        table.add_row(
            str(row.id),
            row.name,
            handles,
            row.status,
            "yes" if row.has_contact else "",
            _minute(row.created_at),
        )
    _print_listing(table)


@campaign_app.command("create")
def campaign_create(
    workspace: WorkspaceOption,
    name: Annotated[str, typer.Option(help="the campaign's name")],
    currency: Annotated[str, typer.Option(help="ISO 4217 currency of the costs, e.g. EUR")],
    influencer: Annotated[
        list[str] | None, typer.Option(help="influencer id or name (repeatable)")
    ] = None,
    channel: Annotated[str, typer.Option(help="channel group of its traffic")] = "Influencer",
    fee: Annotated[str, typer.Option(help="fee paid to the influencer(s)")] = "0",
    seeding_cost: Annotated[str, typer.Option(help="value of products sent")] = "0",
    paid_boost_cost: Annotated[str, typer.Option(help="paid promotion of the posts")] = "0",
    starts: Annotated[str | None, typer.Option(help="start, ISO 8601 (2026-03-01)")] = None,
    ends: Annotated[str | None, typer.Option(help="end, ISO 8601")] = None,
    utm_campaign: Annotated[str | None, typer.Option(help="utm_campaign of its links")] = None,
) -> None:
    """Create a campaign; its total cost is fee + seeding + paid boost."""
    factory, _keyring = _marketing_factory(_settings())
    with _reported_errors(), session_scope(factory) as session:
        workspace_id = _resolve_workspace(session, workspace)
        data = influencer_schemas.CampaignCreate.model_validate(
            {
                "name": name,
                "currency": currency,
                "channel": channel,
                "influencer_ids": [
                    influencers.resolve_influencer(session, workspace_id, ref)
                    for ref in influencer or []
                ],
                "fee": fee,
                "seeding_cost": seeding_cost,
                "paid_boost_cost": paid_boost_cost,
                "starts_at": starts,
                "ends_at": ends,
                "utm_campaign": utm_campaign,
            }
        )
        created = influencers.create_campaign(session, workspace_id, data)
    console.print(
        f"campaign [bold]{created.name}[/bold] created: {created.id} "
        f"(total cost {created.total_cost} {created.currency})"
    )


@campaign_app.command("list")
def campaign_list(workspace: WorkspaceOption) -> None:
    """List campaigns, newest first."""
    factory, _keyring = _marketing_factory(_settings())
    table = _table("name", "channel", "influencers", "total cost", "status", "starts", "ends")
    with factory() as session:
        workspace_id = _resolve_workspace(session, workspace)
        rows = _all_pages(
            lambda cursor: influencers.list_campaigns(
                session, workspace_id, limit=200, cursor=cursor
            )
        )
    for row in rows:
        table.add_row(
            str(row.id),
            row.name,
            row.channel,
            str(len(row.influencer_ids)),
            f"{row.total_cost} {row.currency}",
            row.status,
            _minute(row.starts_at),
            _minute(row.ends_at),
        )
    _print_listing(table)


def _short_url_base(settings: Settings, base_url: str | None) -> str:
    return base_url or settings.tracking_base_url or f"http://{settings.host}:{settings.port}"


@link_app.command("create")
def link_create(
    workspace: WorkspaceOption,
    destination: Annotated[str, typer.Option(help="where the link leads (an allowed domain)")],
    code: Annotated[
        str | None, typer.Option(help="the code in /r/{code}; generated if left out")
    ] = None,
    influencer: Annotated[str | None, typer.Option(help="influencer id or name")] = None,
    campaign: Annotated[str | None, typer.Option(help="campaign id or name")] = None,
    base_url: Annotated[
        str | None, typer.Option(help="public base URL of the tracking host, for the short URL")
    ] = None,
) -> None:
    """Create a tracked link and print its short URL."""
    settings = _settings()
    factory, _keyring = _marketing_factory(settings)
    with _reported_errors(), session_scope(factory) as session:
        workspace_id = _resolve_workspace(session, workspace)
        data = influencer_schemas.LinkCreate(
            destination_url=destination,
            code=code,
            influencer_id=influencers.resolve_influencer(session, workspace_id, influencer)
            if influencer
            else None,
            campaign_id=influencers.resolve_campaign(session, workspace_id, campaign)
            if campaign
            else None,
        )
        created = influencers.create_link(
            session, workspace_id, data, base_url=_short_url_base(settings, base_url)
        )
    console.print(f"link {created.id}: {created.short_url} -> {created.destination_url}")


@link_app.command("list")
def link_list(
    workspace: WorkspaceOption,
    base_url: Annotated[
        str | None, typer.Option(help="public base URL of the tracking host")
    ] = None,
) -> None:
    """List tracked links, newest first."""
    settings = _settings()
    factory, _keyring = _marketing_factory(settings)
    table = _table("code", "short url", "destination", "active")
    with factory() as session:
        workspace_id = _resolve_workspace(session, workspace)
        rows = _all_pages(
            lambda cursor: influencers.list_links(
                session,
                workspace_id,
                base_url=_short_url_base(settings, base_url),
                limit=200,
                cursor=cursor,
            )
        )
    for row in rows:
        table.add_row(
            str(row.id),
            row.code,
            row.short_url,
            row.destination_url,
            "yes" if row.is_active else "no",
        )
    _print_listing(table)


@code_app.command("create")
def code_create(
    workspace: WorkspaceOption,
    code: Annotated[str, typer.Option(help="the discount code (matched case-insensitively)")],
    influencer: Annotated[str | None, typer.Option(help="influencer id or name")] = None,
    campaign: Annotated[str | None, typer.Option(help="campaign id or name")] = None,
) -> None:
    """Register a discount code of an influencer or a campaign."""
    factory, _keyring = _marketing_factory(_settings())
    with _reported_errors(), session_scope(factory) as session:
        workspace_id = _resolve_workspace(session, workspace)
        data = influencer_schemas.DiscountCodeCreate(
            code=code,
            influencer_id=influencers.resolve_influencer(session, workspace_id, influencer)
            if influencer
            else None,
            campaign_id=influencers.resolve_campaign(session, workspace_id, campaign)
            if campaign
            else None,
        )
        created = influencers.create_discount_code(session, workspace_id, data)
    console.print(f"discount code [bold]{created.code}[/bold] created: {created.id}")


@code_app.command("list")
def code_list(workspace: WorkspaceOption) -> None:
    """List discount codes, newest first."""
    factory, _keyring = _marketing_factory(_settings())
    table = _table("code", "influencer", "campaign", "active")
    with factory() as session:
        workspace_id = _resolve_workspace(session, workspace)
        rows = _all_pages(
            lambda cursor: influencers.list_discount_codes(
                session, workspace_id, limit=200, cursor=cursor
            )
        )
    for row in rows:
        table.add_row(
            str(row.id),
            row.code,
            str(row.influencer_id or ""),
            str(row.campaign_id or ""),
            "yes" if row.is_active else "no",
        )
    _print_listing(table)


@post_app.command("import")
def post_import(
    file: Annotated[Path, typer.Argument(help="CSV with platform,url,kind,posted_at,...")],
    workspace: WorkspaceOption,
) -> None:
    """Create or update posts from a CSV file (matched on url); bad rows are listed."""
    factory, _keyring = _marketing_factory(_settings())
    try:
        text_body = influencers.decode_csv(file.read_bytes())
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror}") from None
    except StoreloopError as exc:
        raise _fail(exc.message) from None
    try:
        with session_scope(factory) as session, Progress(console=console) as progress:
            workspace_id = _resolve_workspace(session, workspace)
            task = progress.add_task(
                f"importing {file.name}", total=influencers.count_csv_rows(text_body)
            )
            result = influencers.import_posts(
                session, workspace_id, text_body, progress=lambda n: progress.advance(task, n)
            )
    except StoreloopError as exc:
        raise _fail(exc.message) from None
    console.print(
        f"{result.rows} rows: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.failed} failed"
    )
    for error in result.errors:
        errors.print(f"line {error.line} {error.column or ''}: {error.code}: {error.reason}")
    if result.failed:
        raise typer.Exit(1)


@store_settings_app.command("set")
def store_settings_set(
    workspace: WorkspaceOption,
    allowed_domain: Annotated[
        list[str] | None,
        typer.Option(help="host tracked links may lead to (repeatable; replaces the list)"),
    ] = None,
    lookback_days: Annotated[int | None, typer.Option(help="attribution window, 1-365")] = None,
    half_life_days: Annotated[float | None, typer.Option(help="time-decay half-life")] = None,
    discount_code_precedence: Annotated[
        bool | None, typer.Option(help="a discount code outranks clicks in attribution")
    ] = None,
    shopify_secret: Annotated[
        str | None, typer.Option(help="Shopify webhook signing secret", envvar="SHOPIFY_SECRET")
    ] = None,
    woocommerce_secret: Annotated[
        str | None,
        typer.Option(help="WooCommerce webhook secret", envvar="WOOCOMMERCE_SECRET"),
    ] = None,
) -> None:
    """Change a store's settings; options left out keep their value."""
    values: dict[str, Any] = {
        "allowed_domains": allowed_domain or None,
        "lookback_days": lookback_days,
        "time_decay_half_life_days": half_life_days,
        "discount_code_precedence": discount_code_precedence,
        "shopify_webhook_secret": shopify_secret,
        "woocommerce_webhook_secret": woocommerce_secret,
    }
    factory, keyring = _marketing_factory(_settings())
    with _reported_errors():
        update = influencer_schemas.StoreSettingsUpdate.model_validate(
            {name: value for name, value in values.items() if value is not None}
        )
        with session_scope(factory) as session:
            workspace_id = _resolve_workspace(session, workspace)
            view = influencers.update_store_settings(
                session, keyring.cipher(workspace_id), workspace_id, update
            )
    _print_store_settings(view)


@store_settings_app.command("show")
def store_settings_show(workspace: WorkspaceOption) -> None:
    """Show a store's settings (webhook secrets only as set / not set)."""
    factory, _keyring = _marketing_factory(_settings())
    with factory() as session:
        workspace_id = _resolve_workspace(session, workspace)
        view = influencers.get_store_settings(session, workspace_id)
    _print_store_settings(view)


def _print_store_settings(view: influencer_schemas.StoreSettingsView) -> None:
    console.print(f"allowed domains:          {', '.join(view.allowed_domains) or '(none)'}")
    console.print(f"lookback days:            {view.lookback_days}")
    console.print(f"time-decay half-life:     {view.time_decay_half_life_days} days")
    console.print(f"discount code precedence: {view.discount_code_precedence}")
    console.print(f"channel rules:            {len(view.channel_rules)}")
    console.print(f"shopify secret:           {'set' if view.has_shopify_secret else 'not set'}")
    console.print(
        f"woocommerce secret:       {'set' if view.has_woocommerce_secret else 'not set'}"
    )


orders_app = typer.Typer(help="Import orders.", no_args_is_help=True)
app.add_typer(orders_app, name="orders")


@orders_app.command("import")
def orders_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file (.gz too)")],
    workspace: Annotated[str, typer.Option(help="workspace id or slug")],
    preset: Annotated[
        str | None, typer.Option(help="column layout preset, e.g. uci-online-retail")
    ] = None,
    map: Annotated[
        list[str] | None, typer.Option("--map", help="column=field (repeatable)")
    ] = None,
    currency: Annotated[str | None, typer.Option(help="3-letter currency of the orders")] = None,
    date_format: Annotated[
        str | None,
        typer.Option(help="iso (default), dmy, mdy, or a strptime pattern such as %d.%m.%Y"),
    ] = None,
) -> None:
    """Import orders from a CSV of order lines; re-importing the same file changes nothing."""
    from storeloop.orders import csv_import

    settings = _settings()
    try:
        import_settings = csv_import.import_settings(preset, map or [], currency, date_format)
    except StoreloopError as exc:
        raise _fail(exc.message) from None
    engine = create_db_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    try:
        with factory() as session:
            workspace_id = _resolve_workspace(session, workspace)
        cipher = Keyring(settings.master_key_bytes(), factory).cipher(workspace_id)
        with Progress(console=console) as progress:
            task = progress.add_task("importing", total=file.stat().st_size)
            result = csv_import.import_file(
                factory,
                cipher,
                workspace_id,
                file,
                import_settings,
                lambda done, total: progress.update(task, completed=done, total=total),
            )
    except StoreloopError as exc:
        raise _fail(exc.message) from None
    finally:
        engine.dispose()
    console.print(
        f"rows {result.rows}: {result.imported} orders imported, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.cancellations} cancellations, "
        f"{len(result.errors)} rows with errors"
    )
    for error in result.errors[:50]:
        console.print(f"  line {error.line}, column {error.column}: {error.reason}")


def main() -> None:
    app()
