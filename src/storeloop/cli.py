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
from typing import Annotated

import orjson
import typer
import uvicorn
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import text

from storeloop import migrate as migrations
from storeloop.config import ConfigurationError, Settings, get_settings
from storeloop.db import create_db_engine, make_session_factory, session_scope
from storeloop.kit.crypto import InstanceCipher, unwrap_data_key
from storeloop.kit.errors import StoreloopError
from storeloop.workspaces import service as workspaces
from storeloop.workspaces.repository import WorkspaceRepository

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


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


def _migrate(settings: Settings) -> None:
    engine = create_db_engine(settings.resolved_database_url)
    try:
        migrations.upgrade(engine)
    finally:
        engine.dispose()


def _resolve_workspace(session: object, ref: str) -> uuid.UUID:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    repository = WorkspaceRepository(session)
    try:
        workspace = repository.get(uuid.UUID(ref))
    except ValueError:
        workspace = repository.by_slug(ref)
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
    )


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
    table = Table("id", "slug", "name", "created")
    with factory() as session:
        for workspace in WorkspaceRepository(session).all():
            table.add_row(
                str(workspace.id), workspace.slug, workspace.name, str(workspace.created_at)
            )
    console.print(table)


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
    table = Table("id", "kind", "prefix", "name", "created", "revoked")
    with factory() as session:
        workspace_id = _resolve_workspace(session, workspace)
        for key in workspaces.list_api_keys(session, workspace_id, include_revoked=include_revoked):
            table.add_row(
                str(key.id),
                key.kind,
                key.prefix + "…",
                key.name,
                str(key.created_at),
                str(key.revoked_at or ""),
            )
    console.print(table)


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
            for workspace in WorkspaceRepository(session).all():
                try:
                    unwrap_data_key(master_key, workspace.id, workspace.wrapped_data_key)
                except Exception:
                    broken.append(workspace.slug)
        report(not broken, "workspace keys open with the master key", ", ".join(broken))
    engine.dispose()
    if not ok:
        raise typer.Exit(1)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="port to serve on")] = 8000,
    visitors: Annotated[int, typer.Option(help="visitors in the sample")] = 400,
) -> None:
    """Create a demo store, load a sample through the tracking API, and serve it."""
    from storeloop.demo import sample_events, send

    settings = _settings()
    _migrate(settings)
    factory = make_session_factory(create_db_engine(settings.resolved_database_url))
    credentials_file = settings.data_dir / "demo-credentials.json"
    with session_scope(factory) as session:
        existing = WorkspaceRepository(session).by_slug("demo")
        if existing is None:
            workspace = workspaces.create_workspace(
                session, settings.master_key_bytes(), "Demo Store", "demo"
            )
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
            fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(
                    orjson.dumps(
                        {
                            "email": "owner@demo.storeloop.dev",
                            "password": password,
                            "write_key": write_key,
                            "secret_key": secret_key,
                        }
                    )
                )
            load_sample = True
        else:
            load_sample = False
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
            time.sleep(0.05)
        if load_sample:
            events = list(sample_events(visitors))
            with Progress(console=console) as progress:
                task = progress.add_task(
                    "loading the demo store through /v1/batch", total=len(events)
                )
                send(base_url, stored["write_key"], events, lambda n: progress.advance(task, n))
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
    server.run()


def main() -> None:
    app()
