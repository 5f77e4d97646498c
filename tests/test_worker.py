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


def _autogroup_nice(pid: int | str) -> int | None:
    """The nice value of a process's scheduling autogroup (Linux), None where there is none."""
    try:
        text = Path(f"/proc/{pid}/autogroup").read_text()
    except OSError:
        return None
    return int(text.split()[-1])


def _worker_niceness(
    tmp_path: Path, setting: str | None, *, new_session: bool = False
) -> tuple[int, int, int | None]:
    """(our niceness, a running `storeloop worker`'s, its autogroup's nice value) on an embedded
    database; ``new_session``: the worker leads a session of its own, as under a service
    manager."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORELOOP_")}
    env["STORELOOP_DATA_DIR"] = str(tmp_path / "data")
    if setting is not None:
        env["STORELOOP_WORKER_NICE"] = setting
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        WORKER, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=new_session
    )
    try:
        deadline = time.monotonic() + 60
        while b"worker started" not in (tmp_path / "worker.log").read_bytes():
            assert process.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
        return (
            os.getpriority(os.PRIO_PROCESS, 0),
            os.getpriority(os.PRIO_PROCESS, process.pid),
            _autogroup_nice(process.pid),
        )
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        log.close()


def test_the_worker_lowers_its_priority_by_default(tmp_path: Path) -> None:
    ours, worker, _group = _worker_niceness(tmp_path, None)
    assert worker == min(19, ours + 10)


def test_the_worker_lowers_its_priority_as_configured(tmp_path: Path) -> None:
    ours, worker, _group = _worker_niceness(tmp_path, "5")
    assert worker == min(19, ours + 5)


def test_the_worker_keeps_its_priority_at_zero(tmp_path: Path) -> None:
    ours, worker, _group = _worker_niceness(tmp_path, "0")
    assert worker == ours


@pytest.mark.skipif(_autogroup_nice("self") is None, reason="no scheduling autogroups here")
def test_a_worker_leading_its_session_lowers_its_autogroup(tmp_path: Path) -> None:
    """With autogroups, a session's threads are weighed as one group against other sessions':
    a thread's nice value alone would not let an API in another session come first."""
    _ours, _worker, group = _worker_niceness(tmp_path, "7", new_session=True)
    assert group == 7


@pytest.mark.skipif(_autogroup_nice("self") is None, reason="no scheduling autogroups here")
def test_a_worker_in_its_parent_s_session_leaves_the_shared_autogroup_alone(
    tmp_path: Path,
) -> None:
    before = _autogroup_nice("self")
    _ours, _worker, group = _worker_niceness(tmp_path, "7")
    assert group == before == _autogroup_nice("self")


def test_the_setting_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORELOOP_WORKER_NICE", "20")
    with pytest.raises(ValidationError, match="worker_nice"):
        Settings()
    monkeypatch.setenv("STORELOOP_WORKER_NICE", "-1")
    with pytest.raises(ValidationError, match="worker_nice"):
        Settings()
