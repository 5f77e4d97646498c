"""`storeloop worker` can lower its own CPU priority, so that API processes beside it come first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from storeloop.config import Settings

pytestmark = pytest.mark.skipif(not hasattr(os, "getpriority"), reason="Unix priorities")
WORKER = [sys.executable, "-c", "from storeloop.cli import main; main()", "worker"]


def _worker_niceness(tmp_path: Path, setting: str | None) -> tuple[int, int]:
    """(our niceness, a running `storeloop worker`'s) on an embedded database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORELOOP_")}
    env["STORELOOP_DATA_DIR"] = str(tmp_path / "data")
    if setting is not None:
        env["STORELOOP_WORKER_NICE"] = setting
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(WORKER, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"worker started" not in (tmp_path / "worker.log").read_bytes():
            assert process.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
        return os.getpriority(os.PRIO_PROCESS, 0), os.getpriority(os.PRIO_PROCESS, process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        log.close()


def test_the_worker_lowers_its_priority_when_configured(tmp_path: Path) -> None:
    ours, worker = _worker_niceness(tmp_path, "10")
    assert worker == min(19, ours + 10)


def test_the_worker_keeps_its_priority_by_default(tmp_path: Path) -> None:
    ours, worker = _worker_niceness(tmp_path, None)
    assert worker == ours


def test_the_setting_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORELOOP_WORKER_NICE", "20")
    with pytest.raises(ValidationError, match="worker_nice"):
        Settings()
    monkeypatch.setenv("STORELOOP_WORKER_NICE", "-1")
    with pytest.raises(ValidationError, match="worker_nice"):
        Settings()
