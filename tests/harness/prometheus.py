"""A throwaway Prometheus server on loopback that scrapes one target every second.

The first sample is queryable about 6 s after start (target discovery's first update), so
`query` polls until a result arrives.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .patroni import Harness, HarnessError, free_port

BINARY = "prometheus"


def available() -> str | None:
    """None when Prometheus can run here, else why not."""
    return None if shutil.which(BINARY) else "prometheus is not installed (Debian package prometheus)"


class Prometheus(Harness):
    """``with Prometheus(target_port) as prom:`` scrapes ``127.0.0.1:target_port`` every second."""

    def __init__(self, target_port: int) -> None:
        reason = available()
        if reason is not None:
            raise HarnessError(reason)
        self.target_port = target_port
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ar-prometheus-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        (self.root / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: app\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{self.target_port}']\n"
        )
        with (self.root / "prometheus.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    BINARY,
                    f"--config.file={self.root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while not self._ready():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise HarnessError("prometheus did not become ready")
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def query(self, promql: str, timeout: float = 20.0, until: Any = None) -> list[dict[str, Any]]:
        """The instant-vector result of ``promql``, polled until non-empty (and ``until(result)``)."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        deadline = time.monotonic() + timeout
        while True:
            with urllib.request.urlopen(url, timeout=2) as resp:
                body = json.loads(resp.read())
            result: list[dict[str, Any]] = body["data"]["result"]
            if result and (until is None or until(result)):
                return result
            if time.monotonic() > deadline:
                raise HarnessError(f"no result for {promql!r} within {timeout} s (last: {result})")
            time.sleep(0.25)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        shutil.rmtree(self.root, ignore_errors=True)
