"""Server nodes as processes of their own (``vwindow serve`` on Redis and PostgreSQL), to kill and restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    port: int
    data_dir: Path
    env: dict[str, str]
    log: Path
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Node:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server.cli.main", "--data-dir", str(self.data_dir), "serve",
                "--port", str(self.port), cwd=REPO, env=self.env, stdout=out, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True)
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                if self.proc.returncode is not None:
                    raise AssertionError(f"node :{self.port} exited with {self.proc.returncode}: {self.tail()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.url + "/healthz") as resp:
                        if resp.status == 200:
                            return self
                await asyncio.sleep(0.1)
        raise AssertionError(f"node :{self.port} did not serve within 60 s: {self.tail()}")

    def kill(self) -> None:
        """SIGKILL, the whole process group (recorder workers too)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    async def stop(self) -> None:
        self.kill()
        if self.proc is not None:
            await self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


@dataclass
class Cluster:
    nodes: list[Node]
    redis_url: str
    database_url: str
    data_dir: Path
    redis: aioredis.Redis = field(init=False)

    def __post_init__(self) -> None:
        self.redis = aioredis.from_url(self.redis_url)

    async def leader(self, timeout: float = 15.0) -> Node:
        """The node that holds the lease (its id carries its port)."""
        async with asyncio.timeout(timeout):
            while True:
                holder = await self.redis.get("vw:leader")
                name = holder.decode() if isinstance(holder, bytes) else str(holder or "")
                for node in self.nodes:
                    alive = node.proc is not None and node.proc.returncode is None
                    if name and alive and f"-{node.port}-" in name:
                        return node
                await asyncio.sleep(0.05)

    async def followers(self) -> list[Node]:
        leader = await self.leader()
        return [n for n in self.nodes if n is not leader and n.proc is not None and n.proc.returncode is None]

    def cli_env(self) -> dict[str, str]:
        return {**os.environ, "VWINDOW_DATABASE_URL": self.database_url, "VWINDOW_REDIS_URL": self.redis_url}

    async def close(self) -> None:
        for node in self.nodes:
            await node.stop()
        await self.redis.aclose()


async def start_cluster(data_dir: Path, redis_url: str, database_url: str, n: int = 3,
                        **settings: str) -> Cluster:
    env = {**os.environ, "VWINDOW_REDIS_URL": redis_url, "VWINDOW_DATABASE_URL": database_url,
           "VWINDOW_RECORDING_WORKERS": "0", "VWINDOW_PING_INTERVAL_S": "2", "VWINDOW_PING_TIMEOUT_S": "2"}
    env.update({f"VWINDOW_{k.upper()}": v for k, v in settings.items()})
    nodes = [Node(free_port(), data_dir, env, data_dir / f"node{i}.log") for i in range(n)]
    for node in nodes:  # one after another: each runs the migrations at start
        await node.start()
    return Cluster(nodes, redis_url, database_url, data_dir)
