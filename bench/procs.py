"""The runner's handle on one contender subprocess: send a command, wait for its JSON line."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from bench.targets import Target
from bench.workloads import Sizes, item_table_for

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class ChildFailed(RuntimeError):
    """The contender process died, timed out or answered nonsense; the text says why."""


class ContenderProcess:
    """``python -m bench.child`` for one contender on one backend."""

    def __init__(self, name: str, target: Target, sizes: Sizes, log: Path) -> None:
        self.name = name
        self.log = log
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PACKAGE_ROOT), env.get("PYTHONPATH", "")]))
        env["BENCH_ITEM_TABLE"] = item_table_for(name)
        command = [
            sys.executable,
            "-m",
            "bench.child",
            "--contender",
            name,
            "--target",
            json.dumps(target.to_json()),
            "--sizes",
            json.dumps(asdict(sizes)),
        ]
        # stderr goes to a file: a chatty library could otherwise fill a pipe and hang.
        self._stderr: IO[str] = log.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                self.kill()
                raise ChildFailed(f"timed out after {timeout:g} s")
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise ChildFailed(f"exit {self.proc.returncode}: {self._last_error()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def hello(self, timeout: float) -> dict[str, Any]:
        """The first line: ready (with streaming notes) or unavailable."""
        return self._read(timeout)

    def send(self, command: str) -> None:
        """Send one command; its reply is read by `reply` (so several children can work at once)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.proc.wait()
            raise ChildFailed(f"exit {self.proc.returncode}: {self._last_error()}") from None

    def reply(self, timeout: float) -> dict[str, Any]:
        """The reply to the command sent last."""
        return self._read(timeout)

    def request(self, command: str, timeout: float) -> dict[str, Any]:
        """Send one command and return its reply."""
        self.send(command)
        return self.reply(timeout)

    def _last_error(self) -> str:
        lines = self.log.read_text(encoding="utf-8").strip().splitlines()
        return lines[-1][:300] if lines else "no output"

    def traceback(self) -> str:
        """Everything the child wrote to stderr (the parent never writes to that file)."""
        return self.log.read_text(encoding="utf-8")

    def quit(self, timeout: float = 60) -> None:
        """Ask the child to close its connections and exit; kill it if it will not."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.kill()
        self._stderr.close()

    def kill(self) -> None:
        """End the child now (it is ours: we started it)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
