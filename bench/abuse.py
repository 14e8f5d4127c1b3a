"""Benchmark: an honest call's setup time while attackers flood the server, against the same with no attacker.

Run from the repository root::

    .venv/bin/python -m bench.abuse                # about 3 minutes
    .venv/bin/python -m bench.abuse --quick        # about a minute

The server is the project's, in its own process, started as ``bench.signaling`` starts it (``create_app`` on
``AppRunner``/``TCPSite`` with the logging ``vwindow serve`` sets up), on a fresh SQLite database with its
identities made before it starts. The honest pair is a kiosk and a clerk on ``bench.signaling``'s minimal
Socket.IO client, in this process: each call is ``request_call`` -> ``ring`` -> ``accept`` -> ``matched``, then
the kiosk hangs up and the clerk wraps up; **setup** is from sending ``request_call`` to the kiosk's
``matched``, over ``--calls`` calls one after another (median and p95).

Phases, each with the attacker in a process of its own, started a moment before the honest calls and stopped
after them:

- **quiet**: no attacker, on the same server just before each attack (the baseline beside every figure);
- **login flood**: 8 clients post the login form with wrong passwords as fast as answers come (usernames
  ``admin`` and random ones), with the server's default limits on failed logins;
- **login flood, limits off**: the same against a server whose limits are too high to stop anything
  (``VWINDOW_LOGIN_FAILURES_PER_ACCOUNT`` / ``_PER_ADDRESS`` = 10^9): every attempt is a real argon2 check,
  which shows what the pool of password threads alone does;
- **event flood**: one kiosk socket sends ``signal`` events for a call it is not in as fast as it can, with
  up to 256 unanswered at a time (each is schema-checked, goes through the one writer, and is refused).

The attacker process runs at nice 19: it stands for clients on other machines, and its own CPU on this one
would otherwise be counted against the server. Target: the setup time under attack within 2x the quiet one.
The attackers' request counts are printed, by answer, so it shows how much of each flood the server served.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.signaling import FIELD, KIOSK_REGION, MATTER, ROOT, TIMEOUT_S, Sock, _check_ok, _free_port, _keep

LOGIN_CLIENTS = 8
EVENTS_IN_FLIGHT = 256
ADMIN_PASSWORD = "bench admin password"
NO_LIMIT = str(10**9)
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


# ------------------------------------------------------------------ identities and the server


async def _make_identities(data_dir: Path) -> dict[str, str]:
    from server.records import db
    from server.records.db import make_engine
    from server.records.identities import IdentityStore
    from server.settings import load_settings

    settings = load_settings(data_dir=data_dir, recording_workers=0)
    await asyncio.to_thread(db.upgrade, settings.db_url)
    engine = make_engine(settings.db_url)
    store = IdentityStore(engine)
    kiosks = [(await store.add_kiosk(f"honest kiosk {i}", KIOSK_REGION))[1] for i in range(HONEST_KIOSKS)]
    clerks = [(await store.add_clerk(f"honest clerk {i}", [FIELD], ["sh/jiading"], ["zh", "en"],
                                     center="Jiading"))[1] for i in range(HONEST_CLERKS)]
    _, flooder = await store.add_kiosk("flooding kiosk", KIOSK_REGION)
    await store.add_user("Bench Admin", "admin", username="admin", password=ADMIN_PASSWORD)
    store.passwords.close()
    await engine.dispose()
    return {"kiosks": ",".join(kiosks), "clerks": ",".join(clerks), "flooder": flooder}


# The honest calls come from many kiosks, each placing a few: a kiosk may request 5 calls at once, then 1 every
# 10 s (server/live/limits.py), and one kiosk placing 120 calls in a minute would be refused as a flood itself.
HONEST_KIOSKS = 40
CALLS_PER_KIOSK = 4
HONEST_CLERKS = 20  # likewise a clerk may accept 10 calls at once, then 1 a second: one clerk at a time takes 8
CALLS_PER_CLERK = 8
_placed: collections.Counter[str] = collections.Counter()  # honest calls placed so far, per server


@contextlib.contextmanager
def server(data_dir: Path, log: Path, env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    with log.open("a") as err:
        proc = subprocess.Popen([sys.executable, "-m", "bench.signaling", "--serve", "project", "--port", str(port),
                                 "--data-dir", str(data_dir)], stdout=subprocess.PIPE, stderr=err, text=True,
                                cwd=ROOT, env={**os.environ, "VW_BENCH_SOCKET_LIMITS": "1", **env})
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "READY":
            raise RuntimeError(f"the server did not start; see {log}:\n{log.read_text()[-3000:]}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def attacker(kind: str, base: str, token: str, warm_s: float) -> Iterator[dict[str, Any]]:
    """The attacker in its own process until the block ends; then its counts (by answer) in the dict."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.abuse", "--attack", kind, "--url", base, "--token", token],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    counts: dict[str, Any] = {}
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ATTACKING":
            raise RuntimeError(f"the {kind} attacker did not start")
        time.sleep(warm_s)  # the flood is under way (and past any limit it meets) before the first honest call
        proc.send_signal(signal.SIGUSR1)  # its counts start again: those printed are of the measured window
        yield counts
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        with contextlib.suppress(json.JSONDecodeError):
            counts.update(json.loads(out.strip().splitlines()[-1]) if out.strip() else {})


# ------------------------------------------------------------------ attackers (their own process)


async def flood_logins(base: str, stop: asyncio.Event, counts: collections.Counter[str]) -> None:
    async def client(i: int) -> None:
        async with aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get("/login") as resp:
                found = CSRF_RE.search(await resp.text())
            assert found is not None
            while not stop.is_set():
                name = "admin" if i % 2 else f"guess-{secrets.token_hex(3)}"
                try:
                    async with http.post("/login", allow_redirects=False, data={
                            "username": name, "password": secrets.token_hex(6), "csrf_token": found.group(1)}) as resp:
                        await resp.read()
                        counts[str(resp.status)] += 1
                except aiohttp.ClientError as exc:
                    counts[type(exc).__name__] += 1

    await asyncio.gather(*(client(i) for i in range(LOGIN_CLIENTS)))


async def flood_events(base: str, token: str, stop: asyncio.Event, counts: collections.Counter[str]) -> None:
    async with aiohttp.ClientSession() as session:
        sock = Sock("/kiosk", token)
        sock.on_event = _keep
        await sock.connect(session, f"{base}/socket.io/?EIO=4&transport=websocket")
        window = asyncio.Semaphore(EVENTS_IN_FLIGHT)
        payload = {"call_id": "not-my-call", "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
                                                            "sdpMid": "0", "sdpMLineIndex": 0}}

        def answered(fut: asyncio.Future[Any]) -> None:
            window.release()
            if fut.cancelled() or fut.exception() is not None:
                counts["lost"] += 1
            else:
                ack = fut.result()
                counts["ok" if isinstance(ack, dict) and ack.get("ok") else
                       str((ack or {}).get("error", {}).get("code", "?"))] += 1

        while not stop.is_set() and sock.ws is not None and not sock.ws.closed:
            await window.acquire()
            fut = await sock.emit("signal", payload)
            counts["sent"] += 1
            fut.add_done_callback(answered)
        await sock.close()


def attack_main(kind: str, base: str, token: str) -> None:
    # The attacker's own CPU is not the server's cost: on this machine it shares the two cores with the server,
    # so it runs at the lowest priority, as if it were elsewhere, and takes only what the others leave.
    os.nice(19)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        counts: collections.Counter[str] = collections.Counter()
        loop.add_signal_handler(signal.SIGUSR1, counts.clear)
        print("ATTACKING", flush=True)
        task = (flood_logins(base, stop, counts) if kind == "login" else flood_events(base, token, stop, counts))
        with contextlib.suppress(Exception):
            await task
        print(json.dumps(dict(counts)), flush=True)

    asyncio.run(run())


# ------------------------------------------------------------------ the honest pair


@dataclass
class Pair:
    kiosk: Sock
    clerk: Sock


async def honest_calls(base: str, tokens: dict[str, str], n: int) -> list[float]:
    """``n`` calls one after another; each one's setup (request_call -> the kiosk's matched) in ms."""
    url = f"{base}/socket.io/?EIO=4&transport=websocket"
    kiosks, clerks = tokens["kiosks"].split(","), tokens["clerks"].split(",")
    async with aiohttp.ClientSession() as session:
        kiosk: Sock | None = None
        clerk: Sock | None = None
        try:
            setups = []
            for _ in range(n):
                if clerk is None or _placed[base] % CALLS_PER_CLERK == 0:  # the next clerk takes over, alone
                    if clerk is not None:
                        await clerk.close()
                    clerk = Sock("/clerk", clerks[_placed[base] // CALLS_PER_CLERK % len(clerks)])
                    clerk.on_event = _keep
                    await clerk.connect(session, url)
                    _check_ok(await clerk.call("set_status", {"status": "available"}), "set_status")
                if kiosk is None or _placed[base] % CALLS_PER_KIOSK == 0:  # the next kiosk takes over
                    if kiosk is not None:
                        await kiosk.close()
                    kiosk = Sock("/kiosk", kiosks[_placed[base] // CALLS_PER_KIOSK % len(kiosks)])
                    kiosk.on_event = _keep
                    await kiosk.connect(session, url)
                _placed[base] += 1
                ring, matched, ended = clerk.expect("ring"), kiosk.expect("matched"), clerk.expect("call_ended")
                t0 = time.perf_counter()
                ack = _check_ok(await kiosk.call("request_call", {"field": FIELD, "language": "en"}), "request_call")
                async with asyncio.timeout(TIMEOUT_S * 3):
                    rung = await ring
                    _check_ok(await clerk.call("accept", {"call_id": rung["call_id"]}), "accept")
                    await matched
                setups.append((time.perf_counter() - t0) * 1000)
                _check_ok(await kiosk.call("hangup", {"call_id": ack["call_id"]}), "hangup")
                async with asyncio.timeout(TIMEOUT_S * 3):
                    await ended
                _check_ok(await clerk.call("wrap_up", {"call_id": ack["call_id"], "matters": [
                    {"matter_type": MATTER, "outcome": "completed", "notes": "bench"}]}), "wrap_up")
            return setups
        finally:
            for sock in (kiosk, clerk):
                if sock is not None:
                    await sock.close()


def quantiles(values: Sequence[float]) -> tuple[float, float]:
    s = sorted(values)
    return s[len(s) // 2], s[min(len(s) - 1, int(len(s) * 0.95))]


# ------------------------------------------------------------------ phases and the table

PHASES = (("login flood (8 clients, default limits)", "login", False),
          ("login flood (8 clients, limits off: every attempt hashed)", "login", True),
          ("event flood (1 socket)", "events", False))
WARM_S = {"login": 6.0, "events": 1.0}  # the login flood runs past the per-address limit before it is measured


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Per phase, one server: the honest calls quiet, then again while the attacker floods (the quiet figure is
    measured on the same server just before, so a machine shared with other work drifts less between them)."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vw-abuse-") as tmp:
        for label, attack, limits_off in PHASES:
            data_dir = Path(tmp) / f"data{len(rows)}"
            data_dir.mkdir()
            tokens = asyncio.run(_make_identities(data_dir))
            env = {"VWINDOW_LOGIN_FAILURES_PER_ACCOUNT": NO_LIMIT,
                   "VWINDOW_LOGIN_FAILURES_PER_ADDRESS": NO_LIMIT} if limits_off else {}
            with server(data_dir, Path(tmp) / "server.log", env) as base:
                asyncio.run(honest_calls(base, tokens, 3))  # warm-up
                quiet = asyncio.run(honest_calls(base, tokens, args.calls))
                with attacker(attack, base, tokens["flooder"], WARM_S[attack]) as counts:
                    t0 = time.perf_counter()
                    attacked = asyncio.run(honest_calls(base, tokens, args.calls))
                    counts["_seconds"] = time.perf_counter() - t0
            row = {"label": label, "quiet": quantiles(quiet), "attacked": quantiles(attacked), "counts": counts}
            rows.append(row)
            print(f"  {label}: quiet {row['quiet']}, attacked {row['attacked']} ms; attacker {counts}",
                  file=sys.stderr)
    return rows


def _attack_summary(counts: dict[str, Any]) -> str:
    seconds = counts.pop("_seconds", None)
    if not counts:
        return "-"
    parts = [f"{k}: {v:,}" for k, v in sorted(counts.items()) if k != "sent"]
    if "sent" in counts:
        parts.insert(0, f"sent {counts['sent']:,}")
    rate = sum(v for k, v in counts.items() if k != "sent" and isinstance(v, int))
    tail = f" ({rate / seconds:,.0f} answered/s)" if seconds else ""
    return ", ".join(parts) + tail


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| condition | setup median ms | quiet median ms | setup p95 ms | quiet p95 ms | median / quiet | "
             "p95 / quiet | target ≤ 2× quiet | attacker's requests by answer (while measured) |",
             "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        (qm, qp), (am, ap) = r["quiet"], r["attacked"]
        ok = "✓" if am <= 2 * qm and ap <= 2 * qp else "✗"
        lines.append(f"| {r['label']} | {am:.1f} | {qm:.1f} | {ap:.1f} | {qp:.1f} | {am / qm:.2f}× | {ap / qp:.2f}× | "
                     f"{ok} | {_attack_summary(dict(r['counts']))} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="20 calls per phase instead of 60")
    p.add_argument("--calls", type=int, default=None, help="honest calls per phase (default 60)")
    p.add_argument("--attack", choices=("login", "events"), help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--token", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.attack:
        attack_main(args.attack, args.url, args.token)
        return 0
    if args.calls is None:
        args.calls = 20 if args.quick else 60
    started = time.perf_counter()
    rows = run(args)
    print(table(rows))
    print(f"\n{len(rows)} phases in {time.perf_counter() - started:.0f} s, {args.calls} honest calls each; setup is "
          "request_call -> the kiosk's matched (ring and accept included).", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
