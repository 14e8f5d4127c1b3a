"""Three nodes behind nginx on Redis and PostgreSQL, on this machine: what ``scripts/cluster`` runs.

Redis (append-only file, ``appendfsync always``) and PostgreSQL are throwaway servers (the ones the test suite
starts, from tests/redis_server.py and tests/pg.py), the nodes are ``vwindow serve`` processes on the next ports,
the first with ``--demo`` (kiosk and clerk links, bot clerks), and nginx (deploy/nginx.conf) listens on ``--port``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.pg import PostgresServer  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: the node at {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"error: the node at {url} did not answer within {timeout_s:.0f} s")


def relay(proc: subprocess.Popen[bytes], own: str, public: str) -> None:
    """The demo node's output, with its links pointing at nginx instead of the node itself."""
    assert proc.stdout is not None
    for raw in proc.stdout:
        print(raw.decode(errors="replace").rstrip().replace(own, public), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="nginx listens here (the nodes on the next ports)")
    parser.add_argument("--nodes", type=int, default=3)
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    ports = [args.port + i for i in range(args.nodes + 1)]
    for port in ports:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"error: port {port} is taken (another cluster still running?); "
                                 f"choose other ports with --port")

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # from the start: whatever was started is stopped again
    run = Path(tempfile.mkdtemp(prefix="vwindow-cluster-"))
    procs: list[subprocess.Popen[bytes]] = []
    redis = RedisServer().start()
    postgres = PostgresServer(fsync=True)
    postgres.start()
    try:
        postgres.psql("CREATE DATABASE vwindow")
        env = {**os.environ, "VWINDOW_REDIS_URL": redis.url, "VWINDOW_DATABASE_URL": postgres.url("vwindow"),
               "VWINDOW_RECORDINGS_DIR": str(run / "recordings"),  # the storage every node shares
               "VWINDOW_CHECKPOINT_KEY": str(run / "checkpoint.key"),  # one signing key for all nodes (README)
               # nginx on this host: its X-Forwarded-For names the client, for the limits on failed logins
               "VWINDOW_TRUSTED_PROXIES": "127.0.0.1"}
        ports = ports[1:]
        for i, port in enumerate(ports):  # one after another: the first runs the migrations and the demo's seed
            argv = [sys.executable, "-m", "server.cli.main", "--data-dir", str(run / f"node{i + 1}"), "serve",
                    "--port", str(port)]
            if i == 0:
                argv += ["--demo", "--bots", "2"]
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE if i == 0 else subprocess.DEVNULL,
                                    stderr=None if i == 0 else subprocess.DEVNULL)
            procs.append(proc)
            if i == 0:
                threading.Thread(target=relay, args=(proc, f"127.0.0.1:{port}", f"127.0.0.1:{args.port}"),
                                 daemon=True).start()
            wait_healthy(f"http://127.0.0.1:{port}", proc)
        conf = (REPO / "deploy" / "nginx.conf").read_text()
        conf = (conf.replace("@PREFIX@", str(run)).replace("@PORT@", str(args.port))
                .replace("@UPSTREAMS@", "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;"
                                                  for p in ports)))
        (run / "nginx.conf").write_text(conf)
        proxy = subprocess.Popen([nginx, "-p", str(run), "-c", str(run / "nginx.conf"), "-g", "daemon off;"])
        procs.append(proxy)
        wait_healthy(f"http://127.0.0.1:{args.port}", proxy)
        print(f"\n{args.nodes} nodes on ports {', '.join(map(str, ports))} behind nginx on "
              f"http://127.0.0.1:{args.port} (Redis {redis.url}, PostgreSQL {postgres.url('vwindow')}).\n"
              f"Open the links above through nginx; kill a node (kill -9 <pid>: "
              f"{', '.join(str(p.pid) for p in procs[:-1])}) and the pages carry on through the others.\n"
              "Ctrl-C stops everything.", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        postgres.stop()
        redis.close()
        shutil.rmtree(run, ignore_errors=True)
        print(re.sub(r"\s+", " ", "stopped: nodes, nginx, PostgreSQL and Redis"))


if __name__ == "__main__":
    main()
