"""The background worker: processes the ingestion inbox and the derivation queue until stopped
(SIGINT/SIGTERM)."""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading

from storeloop.config import Settings
from storeloop.runtime import Runtime

logger = logging.getLogger(__name__)


def lower_priority(niceness: int) -> None:
    """Add ``niceness`` to this process's (Unix), so requests served beside it come first."""
    if niceness <= 0 or not hasattr(os, "nice"):
        return
    try:
        os.nice(niceness)
    except OSError as exc:  # e.g. a container that forbids it: run at the usual priority
        logger.warning("could not lower the worker's priority: %s", exc)
        return
    _lower_autogroup(niceness)


def _lower_autogroup(niceness: int) -> None:
    """Where the worker leads a session of its own (a service manager's or a benchmark's child),
    Linux's autogroup puts it in a scheduling group of its own, and a thread's nice value only
    weighs against threads of the same group: the API in another session would not come first.
    The group's own nice value does weigh against other groups (sched(7), "The autogroup
    feature"). A worker started from a shell shares the shell's group, whose nice value is
    left alone."""
    if os.getsid(0) != os.getpid():
        return
    try:
        with open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write(str(niceness))
    except OSError:  # not Linux, no autogroup, or not allowed: the thread's nice value stands
        pass


def run_worker(settings: Settings) -> None:
    lower_priority(settings.worker_nice)
    runtime = Runtime(settings)
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
