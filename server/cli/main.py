"""The ``vwindow`` command: serve, manage kiosks and clerks, run bots."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import errno
import getpass
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.cli.logs import OneLineFormatter
from server.records import db
from server.records.identities import IdentityStore
from server.settings import Settings, SettingsError, load_settings

logger = logging.getLogger("vwindow")
MIN_PASSWORD = 10


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vwindow", description="Virtual Windows: video service windows for "
                                "government service centers.")
    p.add_argument("--config", type=Path, default=None, help="configuration directory (default: the bundled config/)")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (overrides VWINDOW_DATA_DIR)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every routing decision")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the signaling server and the pages")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--demo", action="store_true", help="issue demo kiosks and clerks and start bot clerks")
    serve.add_argument("--bots", type=int, default=2, help="bot clerks in demo mode (default 2)")

    kiosk = sub.add_parser("kiosk", help="manage kiosk devices").add_subparsers(dest="action", required=True)
    ka = kiosk.add_parser("add", help="register a kiosk; prints its device token as the last line")
    ka.add_argument("--name", required=True)
    ka.add_argument("--region", required=True, help="region path, e.g. sh/jiading/xincheng/park-3")
    kiosk.add_parser("list", help="list kiosks")
    kr = kiosk.add_parser("revoke", help="revoke a kiosk's token")
    kr.add_argument("id")

    clerk = sub.add_parser("clerk", help="manage clerks").add_subparsers(dest="action", required=True)
    ca = clerk.add_parser("add", help="register a clerk; prints their token as the last line")
    ca.add_argument("--name", required=True)
    ca.add_argument("--fields", required=True, type=_csv, help="service fields, comma-separated (e.g. tax,market)")
    ca.add_argument("--regions", required=True, type=_csv, help="covered region paths, comma-separated")
    ca.add_argument("--languages", required=True, type=_csv, help="languages spoken, comma-separated (zh,en,ar)")
    ca.add_argument("--center", default="", help="the clerk's service center, shown to visitors")
    ca.add_argument("--username", default=None, help="also let the clerk log in to the console with a password")
    ca.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    clerk.add_parser("list", help="list clerks")
    cr = clerk.add_parser("revoke", help="revoke a clerk's token")
    cr.add_argument("id")

    records = sub.add_parser("records", help="the durable records").add_subparsers(dest="action", required=True)
    rv = records.add_parser("verify", help="walk the hash chain of the event log, check every row the pages read "
                            "against its seal in the chain, every signed checkpoint, and every recording file against "
                            "the checksum in its event; exit 1 naming the first broken link, every bad row (table "
                            "and id), checkpoint and recording")
    rv.add_argument("--checkpoint", type=Path, action="append", default=[], metavar="FILE",
                    help="also check the chain against this exported checkpoint (vwindow records checkpoint --export)"
                    "; catches an end cut off together with its stored checkpoints (repeatable)")
    rv.add_argument("--public-key", action="append", default=[], metavar="HEX",
                    help="also trust this Ed25519 public key (hex, as exported) for stored checkpoints, e.g. another "
                    "node's (repeatable; the key file at checkpoint_key is trusted when it exists)")
    rc = records.add_parser("checkpoint", help="sign the chain head now with the key at checkpoint_key (when it "
                            "exists and the chain grew) and print the latest checkpoint")
    rc.add_argument("--export", type=Path, default=None, metavar="FILE",
                    help="write the latest signed checkpoint, with its public key, to FILE (keep it off this host)")
    recs = sub.add_parser("recordings", help="recorded calls").add_subparsers(dest="action", required=True)
    rp = recs.add_parser("purge", help="delete recordings older than the retention (recording_retention_days); "
                         "the deletion is logged and the rest of the session record stays")
    rp.add_argument("--older-than-days", type=float, default=None, metavar="N",
                    help="delete recordings that started more than N days ago (default: recording_retention_days)")
    rp.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    dbp = sub.add_parser("db", help="the records database schema").add_subparsers(dest="action", required=True)
    dbp.add_parser("upgrade", help="apply every migration (serve does this at start)")
    dd = dbp.add_parser("downgrade", help="undo migrations down to a revision")
    dd.add_argument("revision", help="e.g. 0001 or base")

    user = sub.add_parser("user", help="manage people who log in").add_subparsers(dest="action", required=True)
    ua = user.add_parser("add", help="add a login (asks for the password)")
    ua.add_argument("--role", choices=["admin", "clerk"], default="admin")
    ua.add_argument("--username", required=True)
    ua.add_argument("--name", default="")
    ua.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    bot = sub.add_parser("bot", help="headless aiortc clients").add_subparsers(dest="role", required=True)
    for role in ("clerk", "kiosk"):
        b = bot.add_parser(role, help=f"act as a {role}")
        b.add_argument("--url", default="http://127.0.0.1:8080", help="server URL")
        b.add_argument("--token", default=os.environ.get("VWINDOW_TOKEN"),
                       help="device or clerk token (default: $VWINDOW_TOKEN)")
        b.add_argument("--loopback-ice", action="store_true",
                       help="offer 127.0.0.1 as an ICE candidate (hosts with only a loopback interface)")
        if role == "clerk":
            b.add_argument("--auto-accept", action="store_true", help="accept every call that rings")
            b.add_argument("--center", default="", help="caption: the service center's name")
        else:
            b.add_argument("--field", required=True)
            b.add_argument("--language", default="en")
            b.add_argument("--seconds", type=float, default=5.0, help="how long to stay in the call")
            b.add_argument("--timeout", type=float, default=60.0, help="give up if not connected by then")
            consent = b.add_mutually_exclusive_group()
            consent.add_argument("--record", dest="consent", action="store_const", const=True,
                                 help="accept the recording notice (needed for fields that record every call)")
            consent.add_argument("--no-record", dest="consent", action="store_const", const=False,
                                 help="decline the recording of a field that asks")
    return p


def _validate_identity(settings: Settings, fields: Sequence[str], regions: Sequence[str],
                       languages: Sequence[str]) -> None:
    for f in fields:
        if f not in settings.catalog:
            raise SystemExit(f"error: unknown service field {f!r}; known: {', '.join(settings.catalog.ids())}")
    for r in regions:
        if r not in settings.regions:
            raise SystemExit(f"error: unknown region {r!r} (see config/regions.toml)")
    for lang in languages:
        if lang not in settings.languages:
            raise SystemExit(f"error: unsupported language {lang!r}; offered: {', '.join(settings.languages)}")
    if not fields or not regions or not languages:
        raise SystemExit("error: a clerk needs at least one field, one region and one language")


async def _store(settings: Settings) -> tuple[AsyncEngine, IdentityStore]:
    await asyncio.to_thread(db.upgrade, settings.db_url)
    engine = db.make_engine(settings.db_url)
    return engine, IdentityStore(engine)


async def cmd_kiosk(args: argparse.Namespace, settings: Settings) -> int:
    engine, store = await _store(settings)
    try:
        if args.action == "add":
            if args.region not in settings.regions:
                raise SystemExit(f"error: unknown region {args.region!r} (see config/regions.toml)")
            kiosk, token = await store.add_kiosk(args.name, args.region)
            print(f"kiosk {kiosk.id} '{kiosk.name}' in {kiosk.region}")
            print(f"open: http://{settings.host}:{settings.port}/kiosk#token={token}")
            print(token)
        elif args.action == "list":
            for k in await store.kiosks():
                print(f"{k.id}\t{k.name}\t{k.region}\t{'revoked' if k.revoked else 'active'}")
        elif not await store.revoke(args.id):
            raise SystemExit(f"error: no active kiosk {args.id}")
        else:
            print(f"revoked {args.id}")
    finally:
        await engine.dispose()
    return 0


def _read_password(args: argparse.Namespace) -> str | None:
    if not getattr(args, "username", None):
        return None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
    if len(password) < MIN_PASSWORD:
        raise SystemExit(f"error: the password needs at least {MIN_PASSWORD} characters")
    return password


async def cmd_clerk(args: argparse.Namespace, settings: Settings) -> int:
    engine, store = await _store(settings)
    try:
        if args.action == "add":
            _validate_identity(settings, args.fields, args.regions, args.languages)
            password = _read_password(args)
            clerk, token = await store.add_clerk(args.name, args.fields, args.regions, args.languages,
                                                 center=args.center, username=args.username, password=password)
            print(f"clerk {clerk.id} '{clerk.name}': fields {','.join(clerk.fields)}; "
                  f"regions {','.join(clerk.regions)}; languages {','.join(clerk.languages)}")
            print(f"open: http://{settings.host}:{settings.port}/clerk#token={token}")
            print(token)
        elif args.action == "list":
            for c in await store.clerks():
                print(f"{c.id}\t{c.name}\t{','.join(c.fields)}\t{','.join(c.regions)}\t{','.join(c.languages)}\t"
                      f"{'revoked' if c.revoked else 'active'}")
        elif not await store.revoke(args.id):
            raise SystemExit(f"error: no active clerk {args.id}")
        else:
            print(f"revoked {args.id}")
    finally:
        await engine.dispose()
    return 0


async def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    engine, store = await _store(settings)
    try:
        password = _read_password(args)
        user, _ = await store.add_user(args.name or args.username, args.role, username=args.username,
                                       password=password, with_token=False)
        print(f"{user.role} {user.id} '{user.name}' can log in as {args.username}")
    except sa.exc.IntegrityError:
        raise SystemExit(f"error: the username {args.username!r} is taken") from None
    finally:
        await engine.dispose()
    return 0


async def cmd_records(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "checkpoint":
        return await _checkpoint(args, settings)
    from server.records import checkpoints
    from server.records.audit import audit
    from server.records.chain import Records
    from server.records.evidence import RecordingStore

    try:
        exported = [checkpoints.read_export(path) for path in args.checkpoint]
        trusted = checkpoints.trusted_keys(settings.checkpoint_key_path, args.public_key)
    except (ValueError, checkpoints.CheckpointKeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for e in exported:
        trusted.setdefault(e["key_id"], bytes.fromhex(e["public_key"]))  # kept elsewhere, so trusted as well
    engine, _ = await _store(settings)
    try:
        result = await audit(engine, trusted, exported)
        files = await RecordingStore(Records(engine), settings.recordings_root).verify_files()
    finally:
        await engine.dispose()
    print(result.describe())
    print(files.describe())
    return 0 if result.ok and files.ok else 1


async def _checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from server.records import checkpoints

    path = settings.checkpoint_key_path
    engine, _ = await _store(settings)
    try:
        if path.exists():
            try:
                signer = checkpoints.Checkpointer(engine, checkpoints.load_key(path))
            except checkpoints.CheckpointKeyError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            await signer.start()
            if await signer.sign_head() is None and signer.refused:
                print(f"error: not signed: {signer.refused}", file=sys.stderr)
                return 1
        elif args.export is None:
            print(f"error: no checkpoint key at {path} (the server creates it at its first start; set "
                  "checkpoint_key)", file=sys.stderr)
            return 2
        last = await checkpoints.latest(engine)
    finally:
        await engine.dispose()
    if last is None:
        print("error: no signed checkpoint yet", file=sys.stderr)
        return 1
    when = dt.datetime.fromtimestamp(last["at"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    print(f"checkpoint {last['id']}: {last['seq']} events, head {last['hash']}, signed {when} by key "
          f"{last['key_id']} (public key {last['public_key']})")
    if args.export is not None:
        args.export.write_text(json.dumps(checkpoints.export(last), indent=2) + "\n")
        print(f"exported to {args.export}")
    return 0


async def cmd_recordings(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from server.records.chain import Records
    from server.records.evidence import RecordingStore

    days = settings.recording_retention_days if args.older_than_days is None else args.older_than_days
    if days <= 0:
        if args.older_than_days is not None:
            raise SystemExit("error: --older-than-days needs a number of days above 0")
        print("recording_retention_days is 0: recordings are kept for ever; nothing purged "
              "(give --older-than-days N to purge anyway)")
        return 0
    engine, _ = await _store(settings)
    try:
        store = RecordingStore(Records(engine), settings.recordings_root)
        purged = await store.purge(time.time(), days, "retention (vwindow recordings purge)", dry_run=args.dry_run)
    finally:
        await engine.dispose()
    verb = "would delete" if args.dry_run else "deleted"
    for p in purged:
        print(f"{verb} {p.describe()}")
    print(f"{len(purged)} recording(s) older than {days:g} days {verb}{' (dry run)' if args.dry_run else ''}")
    return 0


async def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "upgrade":
        await asyncio.to_thread(db.upgrade, settings.db_url)
        print("database schema is up to date")
    else:
        await asyncio.to_thread(db.downgrade, settings.db_url, args.revision)
        print(f"database schema downgraded to {args.revision}")
    return 0


class AddressInUseError(Exception):
    """The host and port to serve on are taken (by another server, or an earlier one still running)."""


def check_address_free(host: str, port: int) -> None:
    """Raise :class:`AddressInUseError` before anything starts (workers, migrations, logs) if the port is taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return  # the server's own bind says what is wrong with the host
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds: TIME_WAIT is no conflict
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise AddressInUseError from None


def address_in_use_message(host: str, port: int) -> str:
    other = port + 1 if 0 < port < 65535 else 8080
    return (f"error: port {port} on {host} is already in use; stop what uses it or choose another port with "
            f"--port {other} (or VWINDOW_PORT={other})")


async def _serve(settings: Settings, demo: bool, bots: int, config_dir: Path) -> None:
    from aiohttp import web

    from server.app import create_app
    from server.cli import demo as demo_mode
    from server.cli.seed import seed_history
    from server.keys import IDENTITIES

    check_address_free(settings.host, settings.port)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()  # runs the migrations
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUseError from None
        raise
    base_url = f"http://{settings.host}:{settings.port}"
    procs: list[asyncio.subprocess.Process] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if demo:
            info = await demo_mode.setup_demo(settings, app[IDENTITIES], bots)
            seeded = await seed_history(app, settings, app[IDENTITIES])
            if seeded:
                print(f"Seeded {seeded} past calls of sample history for the administrator's pages.")
            procs = await demo_mode.start_bots(info, base_url, str(config_dir))
            demo_mode.print_demo(info, base_url)
        else:
            print(f"Virtual Windows serving on {base_url} (Ctrl+C to stop)", flush=True)
        await stop.wait()
    finally:
        await demo_mode.stop_bots(procs)
        await runner.cleanup()


async def _bot(args: argparse.Namespace) -> int:
    from client import bot

    if not args.token:
        raise SystemExit("error: give --token or set VWINDOW_TOKEN")
    if args.loopback_ice:
        from rtc.loopback import allow_loopback_candidates

        allow_loopback_candidates()
    if args.role == "clerk":
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await bot.ClerkBot(args.url, args.token, auto_accept=args.auto_accept, center=args.center).run(stop=stop)
        return 0
    kiosk = bot.KioskBot(args.url, args.token, field=args.field, language=args.language,
                         recording_consent=args.consent)
    result = await kiosk.run(args.seconds, timeout_s=args.timeout)
    print(result.summary())
    if kiosk.recorder.offers:
        print(f"recorder: {kiosk.recorder.answers} of {kiosk.recorder.offers} connection(s) answered"
              + (f"; last error: {kiosk.recorder.error}" if kiosk.recorder.error else ""))
    return 0 if result.ok else 1


def configure_logging(verbose: bool) -> None:
    """The command's logging: INFO (DEBUG with --verbose); routing decisions and media stacks only when verbose."""
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    if not verbose:
        logging.getLogger("server.live.writer").setLevel(logging.WARNING)
        logging.getLogger("aiortc").setLevel(logging.WARNING)
        logging.getLogger("aioice").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    if args.command == "bot":
        return asyncio.run(_bot(args))
    overrides: dict[str, object] = {}
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if args.command == "serve":
        if args.host is not None:
            overrides["host"] = args.host
        if args.port is not None:
            overrides["port"] = args.port
    try:
        settings = load_settings(args.config, None, **overrides)
        db.async_url(settings.db_url)  # a bad URL or a missing driver is said now, not at the first query
    except (SettingsError, db.DatabaseURLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    commands = {"kiosk": cmd_kiosk, "clerk": cmd_clerk, "user": cmd_user, "records": cmd_records,
                "recordings": cmd_recordings, "db": cmd_db}
    if args.command in commands:
        return asyncio.run(commands[args.command](args, settings))
    config_dir = args.config or settings.config_dir
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(settings, args.demo, args.bots, config_dir))
    except AddressInUseError:
        print(address_in_use_message(settings.host, settings.port), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
