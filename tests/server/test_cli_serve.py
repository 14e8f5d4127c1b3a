"""``vwindow serve`` on a port that is taken: one line that says so and how to pick another, and a non-zero exit."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_serve_on_a_taken_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "server.cli.main", "--data-dir", str(tmp_path), "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
    assert done.returncode == 1, (done.returncode, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: port {port} on 127.0.0.1 is already in use"), lines[0]
    assert "--port" in lines[0] and "VWINDOW_PORT=" in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""
