"""The Quickstart's first command as a new user runs it: ``storeloop demo`` on the embedded
default (no database URL, no secrets set), a real process that loads the store through the
real paths, prints its credentials and serves them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import orjson

from tests.factories.events import track
from tests.factories.sdk import free_port

LOAD_TIMEOUT_SECONDS = 300


def test_demo_loads_a_store_prints_its_keys_and_serves_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    # A new user's environment: none of the suite's STORELOOP_* settings.
    env = {name: value for name, value in os.environ.items() if not name.startswith("STORELOOP_")}
    env["STORELOOP_DATA_DIR"] = str(data)
    command = [str(Path(sys.executable).parent / "storeloop"), "demo", "--port", str(port)]
    log = tmp_path / "demo.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--visitors-per-day", "4"], env=env, stdout=output, stderr=output
        )
    try:
        deadline = time.monotonic() + LOAD_TIMEOUT_SECONDS
        while b"storeloop is running" not in log.read_bytes():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        printed = log.read_text()
        credentials = orjson.loads((data / "demo-credentials.json").read_bytes())
        assert credentials["loaded"] is True, printed
        assert (data / "demo-credentials.json").stat().st_mode & 0o777 == 0o600
        assert (data / "secrets.json").stat().st_mode & 0o777 == 0o600
        for shown in ("write_key", "secret_key", "password"):
            assert credentials[shown] in printed
        assert f"http://127.0.0.1:{port}" in printed
        assert re.search(r"loaded 90 days in \d+ s: [\d,]+ events", printed), printed

        base = f"http://127.0.0.1:{port}"
        secret = {"Authorization": f"Bearer {credentials['secret_key']}"}
        assert httpx.get(f"{base}/docs", timeout=10).status_code == 200
        login = httpx.get(f"{base}/login", timeout=10)
        assert login.status_code == 200
        assert "password" in login.text
        profiles = httpx.get(f"{base}/api/v1/profiles", headers=secret, timeout=10).json()
        assert profiles["items"], "the demo store has customers"
        event = track(anonymousId="new-user-check")
        answer = httpx.post(
            f"{base}/v1/batch",
            json={"batch": [event]},
            auth=(credentials["write_key"], ""),
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"success": True, "accepted": 1}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    assert process.returncode in (0, -signal.SIGTERM)
