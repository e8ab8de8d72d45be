"""A local Prefect stack for the demo, ``bahfs extract`` and the end-to-end test:
a real ``prefect server start`` (SQLite under ``PREFECT_HOME``), a process work
pool, ``prefect deploy`` from ``prefect.yaml``, and a ``prefect worker``, all as
subprocesses with their own environment; :meth:`LocalPrefect.stop` ends what it
started. The settings that matter offline (see the README's gotchas) are set here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from store.errors import OrchestrationError, ToolMissingError

PROJECT_DIR = Path(__file__).resolve().parent.parent
POOL = "bahfs-local"
#: basic authentication: the server's ``user:password``, and what clients send
AUTH_SERVER_ENV, AUTH_CLIENT_ENV = "PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_AUTH_STRING"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """Environment for every Prefect process of this stack."""
    env = dict(os.environ)
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # offline: no telemetry errors
        "PREFECT_WORKER_QUERY_SECONDS": "1",  # pick runs up within a second
        "PREFECT_CLI_PROMPT": "false",
        "PROJECT_DIR": str(PROJECT_DIR),  # the pull step of prefect.yaml
        "PYTHONUNBUFFERED": "1",
    })
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


class LocalPrefect:
    """``with LocalPrefect(home) as p: p.deploy(); p.start_worker(); p.run(...)``;
    ``env`` adds to (or overrides) the environment of every process it starts.
    ``host``: the interface the server listens on (default: loopback alone);
    ``auth``: ``user:password`` for HTTP basic authentication, given to the server
    (``PREFECT_SERVER_API_AUTH_STRING``) and to every client and worker it starts
    (``PREFECT_API_AUTH_STRING``)."""

    def __init__(self, home: Path, port: int | None = None,
                 env: dict[str, str] | None = None, *, host: str = "127.0.0.1",
                 auth: str | None = None) -> None:
        self.home = Path(home).resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)  # its database holds run parameters and logs
        self.host, self.port = host, port or free_port()
        self.api_url = f"http://{host}:{self.port}/api"
        secret = {AUTH_SERVER_ENV: auth, AUTH_CLIENT_ENV: auth} if auth else {}
        self.env = {**prefect_env(self.home, self.api_url), **secret, **(env or {})}
        self.exe = str(Path(sys.executable).with_name("prefect"))
        if not Path(self.exe).is_file():
            raise ToolMissingError("the prefect command is not installed next to Python",
                                   path=self.exe, expected="`make setup` (installs Prefect)")
        self._procs: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
        self._server: subprocess.Popen[bytes] | None = None

    @property
    def server_pid(self) -> int | None:
        """The pid (and process group) of the server this object started; None when
        it started none (an object made for a server already running at ``port``)."""
        return self._server.pid if self._server is not None else None

    # -- processes ---------------------------------------------------------------
    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.home / f"{name}.log", "ab")
        proc = subprocess.Popen([self.exe, *args], env=self.env, cwd=PROJECT_DIR, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self._procs.append((proc, log))
        return proc

    def start_server(self, timeout_s: float = 90.0) -> None:
        proc = self._server = self._spawn("server", ["server", "start", "--host", self.host,
                                                   "--port", str(self.port)])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise OrchestrationError("the Prefect server did not become healthy",
                               path=self.home / "server.log",
                               expected=f"{self.api_url}/health to answer in {timeout_s:.0f} s")

    def start_worker(self, *, run_once: bool = False) -> subprocess.Popen[bytes]:
        args = ["worker", "start", "--pool", POOL, "--type", "process"]
        return self._spawn("worker", [*args, "--run-once"] if run_once else args)

    def cli(self, *args: str, timeout_s: float = 600.0, stream: bool = False) -> str:
        """Run ``prefect ARGS`` against this server; its output (or, with ``stream``,
        straight to this terminal), or an error that quotes it."""
        res = subprocess.run([self.exe, *args], env=self.env, cwd=PROJECT_DIR,
                             capture_output=not stream, text=True, timeout=timeout_s)
        if res.returncode != 0:
            said = "" if stream else f": {(res.stdout + res.stderr)[-2000:]}"
            raise OrchestrationError(f"`prefect {' '.join(args)}` failed{said}",
                                     path=self.home, expected="see server.log and worker.log")
        return res.stdout or ""

    # -- the steps of docs/operations.md ---------------------------------------------
    def deploy(self, *names: str) -> None:
        """Create the process work pool, then ``prefect deploy`` from prefect.yaml."""
        self.cli("work-pool", "create", POOL, "--type", "process", "--overwrite")
        targets = [a for n in names for a in ("--name", n)] or ["--all"]
        self.cli("deploy", *targets)

    def run(self, deployment: str, params: dict[str, Any], *, watch: bool = True,
            timeout_s: float = 1800.0, stream: bool = False) -> str:
        """``prefect deployment run DEPLOYMENT --params JSON [--watch]``; its output."""
        args = ["deployment", "run", deployment, "--params", json.dumps(params)]
        if watch:
            args += ["--watch", "--watch-timeout", str(int(timeout_s))]
        return self.cli(*args, timeout_s=timeout_s + 60, stream=stream)

    def follow_worker(self, pattern: str, say: Any) -> threading.Event:
        """Call ``say(line)`` for each new line of the worker's log containing
        ``pattern`` (progress for the demo) until the returned event is set."""
        stop = threading.Event()
        path = self.home / "worker.log"

        def tail() -> None:
            pos = path.stat().st_size if path.exists() else 0
            while not stop.wait(1.0):
                if not path.exists():
                    continue
                with open(path, "rb") as fh:
                    fh.seek(pos)
                    chunk = fh.read()
                pos += len(chunk)
                for line in chunk.decode("utf-8", "replace").splitlines():
                    if pattern in line:
                        say(line.strip())

        threading.Thread(target=tail, daemon=True).start()
        return stop

    def stop(self) -> None:
        for proc, log in reversed(self._procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            log.close()
        self._procs.clear()

    def __enter__(self) -> LocalPrefect:
        self.start_server()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
