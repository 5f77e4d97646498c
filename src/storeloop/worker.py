"""The background worker: processes the ingestion inbox and the derivation queue until stopped
(SIGINT/SIGTERM)."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import threading
import time

from storeloop.config import Settings
from storeloop.runtime import Runtime

logger = logging.getLogger(__name__)
_AUTOGROUP_TRIES = 20
_AUTOGROUP = "/proc/self/autogroup"


def lower_priority(niceness: int) -> None:
    """Add ``niceness`` to this process's (Unix), so requests served beside it come first."""
    if niceness <= 0 or not hasattr(os, "nice"):
        return
    try:
        resulting = os.nice(niceness)
    except OSError as exc:  # e.g. a container that forbids it: run at the usual priority
        logger.warning("could not lower the worker's priority: %s", exc)
        return
    if _alone_in_own_session():
        _set_autogroup_nice(resulting)


def _alone_in_own_session() -> bool:
    """Whether this process leads a session no other process is in (it has started none yet).

    With Linux's autogroups (sched(7), "The autogroup feature"), every session is a scheduling
    group, the groups share the CPU as equals, and a thread's nice value only weighs against
    threads of its own group: an API in another session would not come first. The group's own
    nice value does weigh against other groups, but it is the whole session's, so it is set only
    where the session is the worker's alone (a service manager's or a benchmark's child), never
    a shell's or a script's that also runs the API. (A non-root CPU cgroup, as under Docker or
    systemd's CPU controller, replaces autogroups: there the unit's CPU weight decides.)"""
    pid = os.getpid()
    if os.getsid(0) != pid:
        return False
    try:
        # /proc of another PID namespace (numbers that are not ours), or one that hides other
        # users' processes: nobody can be seen to be absent, so the group is left alone.
        if int(os.readlink("/proc/self")) != pid or _proc_hides_processes():
            return False
        entries = os.listdir("/proc")
    except (OSError, ValueError):
        return False
    session = str(pid).encode()
    for entry in entries:
        if not entry.isdigit() or int(entry) == pid:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except FileNotFoundError:
            continue  # gone meanwhile
        except OSError:
            return False
        if len(fields) > 3 and fields[3] == session:  # state ppid pgrp session
            return False
    return True


def _proc_hides_processes() -> bool:
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 4 and fields[4] == "/proc":
                options = line.split(" - ", 1)[-1]
                return "hidepid=" in options and not any(
                    f"hidepid={value}" in options for value in ("0", "off")
                )
    return False


def _set_autogroup_nice(niceness: int) -> None:
    # Unprivileged writers get EAGAIN when another autogroup was changed in the last 100 ms
    # anywhere on the machine (workers starting together): wait and try again.
    for _ in range(_AUTOGROUP_TRIES):
        try:
            with open(_AUTOGROUP, "r+") as autogroup:
                shown = autogroup.read().split()  # "/autogroup-85 nice 0"
                if not shown:  # no group of its own (the root one, which cannot be lowered)
                    return
                previous = shown[-1]
                autogroup.seek(0)
                autogroup.write(str(niceness))
        except BlockingIOError:
            time.sleep(0.11)
            continue
        except FileNotFoundError:  # not Linux, or a kernel without autogroups
            return
        except (OSError, IndexError) as exc:
            logger.warning("could not lower the worker's scheduling group priority: %s", exc)
            return
        if not _alone_in_own_session():  # another process joined the session meanwhile
            with contextlib.suppress(OSError), open(_AUTOGROUP, "w") as autogroup:
                autogroup.write(previous)
        return
    logger.warning(
        "could not lower the worker's scheduling group priority: busy after %d tries",
        _AUTOGROUP_TRIES,
    )


def run_worker(settings: Settings) -> None:
    lower_priority(settings.worker_nice)
    runtime = Runtime(settings, role="worker")
    # What start-up allocated lives as long as the process: out of the collector's way, as in
    # the API (app.py). Without it every full collection walked it again.
    gc.collect()
    gc.freeze()
    stop = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    logger.info("worker started")
    derivations = threading.Thread(
        target=runtime.derivations.run, args=(stop,), name="storeloop-derivations"
    )
    derivations.start()
    try:
        runtime.processor.run(stop)
    finally:
        stop.set()
        derivations.join(30)
        runtime.close()
        logger.info("worker stopped")
