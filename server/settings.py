"""One typed settings object, loaded from the TOML files in ``config/``.

Top-level scalar (and list) keys of ``defaults.toml`` can be overridden with
``VWINDOW_<KEY>`` environment variables; lists are given comma-separated.
Nothing is read at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from signaling.catalog import Catalog, MatterType, RecordingPolicy, ServiceField
from signaling.policy import CallPolicy, parse_hours
from signaling.regions import RegionTree
from signaling.routing import Stage, validate_stages
from signaling.turn import has_turn
from signaling.workdays import CalendarError, WorkCalendar

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
ENV_PREFIX = "VWINDOW_"


class SettingsError(ValueError):
    """A configuration file or override that cannot be used."""


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("var")
    ring_timeout_s: float = 20.0
    default_handle_s: float = 300.0
    queue_update_interval_s: float = 1.0
    redis_url: str = ""
    database_url: str = ""
    languages: list[str] = field(default_factory=lambda: ["zh", "en", "ar"])
    turn_secret: str = ""
    turn_ttl_s: int = 3600
    turn_relay_only: bool = False
    ping_interval_s: float = 10.0
    ping_timeout_s: float = 5.0
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    wrapup_timeout_s: float = 180.0
    reconnect_grace_s: float = 30.0
    service_hours: str = ""
    timezone: str = "Asia/Shanghai"
    recordings_dir: Path = Path("")
    recording_workers: int = 2
    recording_retention_days: int = 180
    recording_purge_interval_s: float = 3600.0
    recording_playback_clerk: bool = False
    password_hash_workers: int = 2
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    login_window_s: float = 900.0
    login_backoff_max_s: float = 300.0
    trusted_proxies: list[str] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)
    checkpoint_key: Path = Path("")
    checkpoint_every_events: int = 1000
    checkpoint_interval_s: float = 60.0
    socket_rate_limits: bool = True
    # loaded from the other files, not overridable from the environment
    config_dir: Path = DEFAULT_CONFIG_DIR
    regions: RegionTree = field(default_factory=lambda: RegionTree.build(["city"], {"x": {}}))
    catalog: Catalog = field(default_factory=lambda: Catalog([ServiceField("x", {}, ())]))
    stages: tuple[Stage, ...] = (Stage("jurisdiction", 0),)
    calendar: WorkCalendar = field(default_factory=lambda: WorkCalendar.from_toml_dict({"years": {}}))
    # names.toml: a kiosk's or center's name as stored -> its forms by language (for the visitor's screen)
    names: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def open_hours(self) -> tuple[dt.time, dt.time] | None:
        """Service hours as (start, end) local times, or None when always open."""
        return parse_hours(self.service_hours)

    def policy(self) -> CallPolicy:
        """The rules the core runs calls by."""
        return CallPolicy(
            regions=self.regions, stages=self.stages, catalog=self.catalog, languages=tuple(self.languages),
            calendar=self.calendar, timezone=self.timezone, service_hours=self.service_hours,
            ring_timeout_s=self.ring_timeout_s, default_handle_s=self.default_handle_s,
            wrapup_timeout_s=self.wrapup_timeout_s, reconnect_grace_s=self.reconnect_grace_s,
            queue_update_interval_s=self.queue_update_interval_s,
            recording_retention_days=self.recording_retention_days, ice_servers=tuple(self.ice_servers),
            turn_secret=self.turn_secret, turn_ttl_s=self.turn_ttl_s, turn_relay_only=self.turn_relay_only)

    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The addresses whose X-Forwarded-* headers are believed (``trusted_proxies``: addresses or networks)."""
        return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in self.trusted_proxies if p.strip())

    @property
    def db_url(self) -> str:
        """The records database: ``database_url``, or SQLite under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'records.sqlite3').resolve()}"

    @property
    def recordings_root(self) -> Path:
        """Where recordings go: ``recordings_dir``, or ``recordings/`` in the data directory."""
        return self.recordings_dir if str(self.recordings_dir) not in ("", ".") else self.data_dir / "recordings"

    @property
    def checkpoint_key_path(self) -> Path:
        """The Ed25519 key that signs checkpoints of the hash chain: ``checkpoint_key``, or ``checkpoint.key`` in
        the data directory."""
        return self.checkpoint_key if str(self.checkpoint_key) not in ("", ".") else self.data_dir / "checkpoint.key"

    @property
    def records_calls(self) -> bool:
        """Whether any service field's calls may be recorded."""
        return any(f.recording is not RecordingPolicy.NEVER for f in self.catalog)


_SCALARS = ("host", "port", "data_dir", "ring_timeout_s", "default_handle_s", "queue_update_interval_s",
            "redis_url", "database_url", "languages", "turn_secret", "turn_ttl_s", "turn_relay_only", "ping_interval_s",
            "ping_timeout_s", "ice_servers", "wrapup_timeout_s", "service_hours", "timezone",
            "reconnect_grace_s", "recordings_dir", "recording_workers", "recording_retention_days",
            "recording_purge_interval_s", "recording_playback_clerk", "checkpoint_key", "checkpoint_every_events",
            "checkpoint_interval_s", "password_hash_workers", "login_failures_per_account",
            "login_failures_per_address", "login_window_s", "login_backoff_max_s", "trusted_proxies",
            "allowed_origins", "socket_rate_limits")


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"configuration file {path} is missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: {exc}") from None


def _coerce(name: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.strip().lower() in {"1", "true", "yes", "on"}
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, Path):
            return Path(value)
        if isinstance(default, list):
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list):
                raise TypeError("expected a list")
            return value
        return str(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name}: cannot use {value!r} ({exc})") from None


def _catalog(data: Mapping[str, Any]) -> Catalog:
    fields = []
    for f in data.get("field", []):
        try:
            matters = tuple(MatterType(m["id"], dict(m["names"])) for m in f.get("matters", []))
            policy = RecordingPolicy(f.get("recording", "never"))
            fields.append(ServiceField(f["id"], dict(f["names"]), matters, f.get("icon", ""), policy))
        except KeyError as exc:
            raise SettingsError(f"fields.toml: a field or matter lacks {exc}") from None
        except ValueError:
            raise SettingsError(f"fields.toml: field {f.get('id')!r}: recording must be one of "
                                f"{', '.join(p.value for p in RecordingPolicy)}, not {f.get('recording')!r}") from None
    return Catalog(fields)


def _names(path: Path) -> dict[str, dict[str, str]]:
    """names.toml, optional: ``[names] "Stored name" = { zh = "...", ar = "..." }``."""
    if not path.is_file():
        return {}
    table = _read(path).get("names", {})
    if not isinstance(table, dict) or not all(
        isinstance(forms, dict) and all(isinstance(v, str) for v in forms.values()) for forms in table.values()
    ):
        raise SettingsError("names.toml: [names] maps a name to a table of its forms, e.g. { zh = \"...\" }")
    return {str(k): {str(lang): v for lang, v in forms.items()} for k, forms in table.items()}


def _stages(data: Mapping[str, Any], regions: RegionTree) -> tuple[Stage, ...]:
    stages = []
    for s in data.get("stage", []):
        try:
            level = regions.level_index(s["level"]) if "level" in s else None
            stages.append(Stage(s["name"], float(s["after_s"]), level, bool(s.get("require_language", True))))
        except KeyError as exc:
            raise SettingsError(f"routing.toml: a stage lacks {exc}") from None
    try:
        return validate_stages(stages)
    except ValueError as exc:
        raise SettingsError(f"routing.toml: {exc}") from None


def load_settings(
    config_dir: Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Read ``config_dir`` (default: the repository's ``config/``), then environment, then ``overrides``."""
    cdir = Path(config_dir) if config_dir else DEFAULT_CONFIG_DIR
    env = os.environ if env is None else env
    base = Settings()
    values: dict[str, Any] = {}
    defaults = _read(cdir / "defaults.toml")
    unknown = set(defaults) - set(_SCALARS)
    if unknown:
        raise SettingsError(f"defaults.toml: unknown settings {', '.join(sorted(unknown))}")
    for name in _SCALARS:
        default = getattr(base, name)
        if name in defaults:
            values[name] = _coerce(name, defaults[name], default)
        env_value = env.get(ENV_PREFIX + name.upper())
        if env_value is not None and name != "ice_servers":
            values[name] = _coerce(name, env_value, default)
    for name, value in overrides.items():
        if name not in _SCALARS:
            raise SettingsError(f"unknown setting {name}")
        values[name] = _coerce(name, value, getattr(base, name))
    regions_data = _read(cdir / "regions.toml")
    try:
        regions = RegionTree.build(regions_data.get("levels", []), regions_data.get("regions", {}))
    except ValueError as exc:
        raise SettingsError(f"regions.toml: {exc}") from None
    try:
        calendar = WorkCalendar.from_toml_dict(_read(cdir / "calendar.toml"))
    except CalendarError as exc:
        raise SettingsError(f"calendar.toml: {exc}") from None
    settings = dataclasses.replace(
        base,
        **values,
        config_dir=cdir,
        regions=regions,
        catalog=_catalog(_read(cdir / "fields.toml")),
        stages=_stages(_read(cdir / "routing.toml"), regions),
        calendar=calendar,
        names=_names(cdir / "names.toml"),
    )
    try:
        _ = settings.tz
        settings.open_hours()
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"timezone / service_hours: {exc}") from None
    if not settings.languages:
        raise SettingsError("languages: at least one language is needed")
    for name in ("recording_workers", "recording_retention_days"):
        if getattr(settings, name) < 0:
            raise SettingsError(f"{name}: must be 0 or more, not {getattr(settings, name)}")
    if settings.password_hash_workers < 1:
        raise SettingsError(f"password_hash_workers: must be 1 or more, not {settings.password_hash_workers}")
    for name in ("login_failures_per_account", "login_failures_per_address", "login_window_s",
                 "login_backoff_max_s"):
        if getattr(settings, name) <= 0:
            raise SettingsError(f"{name}: must be more than 0, not {getattr(settings, name)}")
    try:
        settings.proxy_networks()
    except ValueError as exc:
        raise SettingsError(f"trusted_proxies: {exc}") from None
    if settings.turn_ttl_s <= 0:
        raise SettingsError(f"turn_ttl_s: must be more than 0, not {settings.turn_ttl_s}")
    if settings.turn_relay_only and not has_turn(settings.ice_servers):
        raise SettingsError("turn_relay_only: no TURN server in ice_servers (a turn: or turns: url), so no call "
                            "could connect")
    if settings.checkpoint_every_events < 1 or settings.checkpoint_interval_s <= 0:
        raise SettingsError("checkpoint_every_events must be 1 or more and checkpoint_interval_s more than 0, not "
                            f"{settings.checkpoint_every_events} and {settings.checkpoint_interval_s}")
    if settings.recording_purge_interval_s <= 0:
        raise SettingsError("recording_purge_interval_s: must be more than 0, "
                            f"not {settings.recording_purge_interval_s}")
    return settings
