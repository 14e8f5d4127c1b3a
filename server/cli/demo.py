"""Demo mode: sample kiosks, a clerk console login and headless bot clerks.

Demo identities are re-issued at every start (tokens are stored hashed, so
they cannot be shown again) and are marked so they never mix with real ones;
those of an earlier start that took calls stay, revoked, so that the sessions
they took keep their names. Names are what the visitor sees: no hints for the
console's user in them (the console says whose it is).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from dataclasses import dataclass, field

from server.records.identities import IdentityStore
from server.settings import Settings

logger = logging.getLogger(__name__)

DEMO_KIOSKS = [
    ("Demo window, New Town Science Park", "sh/jiading/xincheng/park-3"),
    ("Demo window, Changshou Creative Park", "sh/putuo/changshou/park-1"),
    ("Demo window, Bund Finance Park", "sh/huangpu/nanjing-east/park-1"),
]
DEMO_CENTER = "Shanghai city service center"  # its zh/ar names: config/names.toml
DEMO_CLERK = "Chen Jing"  # the clerk console's own identity (log in as "clerk")


@dataclass
class Demo:
    kiosks: list[tuple[str, str, str]] = field(default_factory=list)  # name, region, token
    clerk_token: str = ""
    password: str = ""  # for the demo logins "admin" and "clerk"
    bot_tokens: list[tuple[str, str]] = field(default_factory=list)  # name, token


async def setup_demo(settings: Settings, identities: IdentityStore, bots: int) -> Demo:
    await identities.remove_demo()
    demo = Demo()
    fields = settings.catalog.ids()
    root = next(iter(settings.regions.regions))
    for name, region in DEMO_KIOSKS:
        if region in settings.regions:
            _, token = await identities.add_kiosk(name, region, demo=True)
            demo.kiosks.append((name, region, token))
    demo.password = secrets.token_urlsafe(9)
    _, demo.clerk_token = await identities.add_clerk(
        DEMO_CLERK, fields, [root], settings.languages, center=DEMO_CENTER, demo=True,
        username="clerk", password=demo.password,
    )
    await identities.add_user("Demo administrator", "admin", username="admin", password=demo.password,
                              with_token=False, demo=True)
    for i in range(1, bots + 1):
        name = f"Bot clerk {i}"
        _, token = await identities.add_clerk(name, fields, [root], settings.languages, center=DEMO_CENTER, demo=True)
        demo.bot_tokens.append((name, token))
    return demo


def print_demo(demo: Demo, base_url: str) -> None:
    print(f"\nVirtual Windows demo running on {base_url}")
    for name, _region, token in demo.kiosks:
        print(f"  kiosk   {name}:\n          {base_url}/kiosk#token={token}")
    print(f"  clerk   console of {DEMO_CLERK} (answer calls yourself):\n"
          f"          {base_url}/clerk#token={demo.clerk_token}")
    print(f"  admin   {base_url}/login  user admin, password {demo.password}  (the clerk can log in as "
          f"clerk with the same password)")
    if demo.bot_tokens:
        print(f"  bots    {len(demo.bot_tokens)} headless clerk(s) answer calls automatically "
              "(start with --bots 0 to take every call yourself)")
    print("Press Ctrl+C to stop.\n", flush=True)


async def start_bots(demo: Demo, base_url: str, config_dir: str) -> list[asyncio.subprocess.Process]:
    """Each bot runs in its own process: one event loop carries only a few media calls."""
    procs = []
    for name, token in demo.bot_tokens:
        env = dict(os.environ, VWINDOW_TOKEN=token)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.cli.main", "--config", config_dir, "bot", "clerk",
            "--url", base_url, "--auto-accept", "--center", DEMO_CENTER, env=env,
        )
        logger.info("started %s (pid %d)", name, proc.pid)
        procs.append(proc)
    return procs


async def stop_bots(procs: list[asyncio.subprocess.Process]) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
