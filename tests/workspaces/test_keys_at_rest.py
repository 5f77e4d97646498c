"""API keys are stored as hashes: neither the database's rows nor its file hold a key."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from storeloop import migrate
from storeloop.db import create_db_engine, session_scope
from storeloop.models import ApiKey
from storeloop.runtime import Runtime
from storeloop.workspaces.service import KeyKind, create_api_key, create_workspace


def test_a_key_row_holds_its_hash_and_prefix_only(runtime: Runtime) -> None:
    with session_scope(runtime.session_factory) as session:
        workspace = create_workspace(
            session, runtime.keyring.master_key, "Keys", f"keys-{os.urandom(4).hex()}"
        )
        created = {kind: create_api_key(session, workspace.id, kind, "k") for kind in KeyKind}
    with Session(runtime.engine) as session:
        rows = {
            row.kind: row
            for row in session.scalars(select(ApiKey).where(ApiKey.workspace_id == workspace.id))
        }
    assert set(rows) == {kind.value for kind in KeyKind}
    for kind, key in created.items():
        row = rows[kind.value]
        assert row.key_hash == hashlib.sha256(key.plaintext.encode()).hexdigest()
        assert key.plaintext.startswith(row.prefix)
        assert len(row.prefix) < len(key.plaintext) // 3
        secret_part = key.plaintext[len(row.prefix) :]
        values = [str(getattr(row, column.key)) for column in ApiKey.__table__.columns]
        assert not any(secret_part[:16] in value for value in values)


def test_no_key_reaches_the_database_file(tmp_path: Path) -> None:
    database = tmp_path / "keys.db"
    engine = create_db_engine(f"sqlite:///{database}")
    migrate.upgrade(engine)
    with Session(engine) as session:
        workspace = create_workspace(session, os.urandom(32), "Keys", "keys")
        keys = [create_api_key(session, workspace.id, kind, "k").plaintext for kind in KeyKind]
        session.commit()
    engine.dispose()
    content = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("keys.db"))
    for key in keys:
        # The hash was written and read back from these bytes; the key itself was not written.
        assert hashlib.sha256(key.encode()).hexdigest().encode() in content
        assert key[12:].encode() not in content
