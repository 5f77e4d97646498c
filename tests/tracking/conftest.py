"""A client factory for tracking tests that need their own settings or client address."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from storeloop.app import create_app
from storeloop.runtime import Runtime
from tests.conftest import make_settings

ClientFactory = Callable[..., tuple[TestClient, Runtime]]


@pytest.fixture
def make_client(database_url: str, tmp_path: Path) -> Iterator[ClientFactory]:
    """make_client(client=("203.0.113.7", 5000), cookie_domain=".store.com", ...): a started
    runtime with those settings and a TestClient on it; both closed after the test."""
    with ExitStack() as stack:

        def factory(
            client: tuple[str, int] = ("198.51.100.23", 40000), **overrides: object
        ) -> tuple[TestClient, Runtime]:
            runtime = Runtime(make_settings(database_url, tmp_path, **overrides))
            runtime.start()
            stack.callback(runtime.close)
            test_client = TestClient(create_app(runtime=runtime), client=client)
            stack.enter_context(test_client)
            return test_client, runtime

        yield factory
