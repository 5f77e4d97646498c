"""`storeloop worker` can lower its own CPU priority, so that API processes beside it come first."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from storeloop import worker as worker_module
from storeloop.config import Settings

pytestmark = pytest.mark.skipif(not hasattr(os, "getpriority"), reason="Unix priorities")
WORKER = [sys.executable, "-c", "from storeloop.cli import main; main()", "worker"]


def _autogroup_nice(pid: int | str) -> int | None:
    """The nice value of a process's scheduling autogroup (Linux), None where there is none."""
    try:
        text = Path(f"/proc/{pid}/autogroup").read_text()
    except OSError:
        return None
    # Empty for a process without an autogroup of its own (in the root group, as where a
    # session dates from boot): that is no autogroup to test.
    return int(text.split()[-1]) if text.strip() else None


def _worker_niceness(
    tmp_path: Path, setting: str | None, *, shell: str | None = None
) -> tuple[int, int, int | None]:
    """(our niceness, the niceness of the process started, its autogroup's nice value), once a
    `storeloop worker` on an embedded database has started, always in a new session: the worker
    leads it alone, as under a service manager, or ``shell`` (a ``sh -c`` script, ``{worker}``
    standing for the worker's command line) does. Either way the session and its autogroup are
    the test's own: a worker that wrongly changed its session's group never changes the test
    runner's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORELOOP_")}
    env["STORELOOP_DATA_DIR"] = str(tmp_path / "data")
    if setting is not None:
        env["STORELOOP_WORKER_NICE"] = setting
    command = WORKER if shell is None else ["sh", "-c", shell.format(worker=shlex.join(WORKER))]
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        command,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
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
        os.killpg(process.pid, signal.SIGINT)
        process.wait(30)
        with contextlib.suppress(ProcessLookupError):  # what the shell left (sleep)
            os.killpg(process.pid, signal.SIGKILL)
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


needs_autogroups = pytest.mark.skipif(
    _autogroup_nice("self") is None, reason="no scheduling autogroups here"
)


@needs_autogroups
def test_a_worker_alone_in_its_own_session_lowers_its_autogroup(tmp_path: Path) -> None:
    """With autogroups, a session's threads are weighed as one group against other sessions':
    a thread's nice value alone would not let an API in another session come first."""
    ours, worker, group = _worker_niceness(tmp_path, "7")
    assert worker == min(19, ours + 7)
    assert group == worker


@needs_autogroups
def test_a_worker_in_a_shell_s_session_leaves_the_shared_autogroup_alone(tmp_path: Path) -> None:
    _ours, _shell, group = _worker_niceness(tmp_path, "7", shell="{worker}; :")
    assert group == 0


@needs_autogroups
def test_a_worker_leading_a_session_it_shares_leaves_the_autogroup_alone(tmp_path: Path) -> None:
    """As in ``sh -c 'storeloop serve & exec storeloop worker'``: the API is in the session."""
    _ours, _worker, group = _worker_niceness(tmp_path, "7", shell="sleep 60 & exec {worker}")
    assert group == 0


def test_a_worker_in_the_root_autogroup_leaves_it_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A process in the root autogroup (a session that dates from boot, as in some CI runners)
    reads the file empty: that group cannot be given a weight, so nothing is written and
    nothing is worth a warning."""
    shown = tmp_path / "autogroup"
    shown.write_text("")
    monkeypatch.setattr(worker_module, "_AUTOGROUP", str(shown))
    with caplog.at_level(logging.WARNING, logger="storeloop.worker"):
        worker_module._set_autogroup_nice(7)
    assert shown.read_text() == ""
    assert caplog.records == []


def test_a_session_joined_meanwhile_gets_its_autogroup_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = tmp_path / "autogroup"
    shown.write_text("/autogroup-85 nice 0\n")
    monkeypatch.setattr(worker_module, "_AUTOGROUP", str(shown))
    monkeypatch.setattr(worker_module, "_alone_in_own_session", lambda: True)
    worker_module._set_autogroup_nice(7)
    assert shown.read_text().startswith("7")  # what the kernel reads of it
    shown.write_text("/autogroup-85 nice 0\n")
    monkeypatch.setattr(worker_module, "_alone_in_own_session", lambda: False)
    worker_module._set_autogroup_nice(7)
    assert shown.read_text() == "0"


def test_the_setting_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORELOOP_WORKER_NICE", "20")
    with pytest.raises(ValidationError, match="worker_nice"):
        Settings()
    monkeypatch.setenv("STORELOOP_WORKER_NICE", "-1")
    with pytest.raises(ValidationError, match="worker_nice"):
        Settings()
