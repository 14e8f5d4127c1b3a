"""The README's production coturn configuration, run for real: the ``/etc/turnserver.conf`` block of the README's
"TURN with coturn" section, with only what cannot be used here swapped (the public address for 127.0.0.1, ports
443 and 3478 for free ones, the certificate for a throwaway self-signed one, syslog for a log file).

It holds what the README promises: ``turns:`` (TLS over TCP) relays a bot call forced to relay, the credentials
are the TURN REST API's, peers in private and loopback ranges are refused (``denied-peer-ip``) unless explicitly
allowed (``allowed-peer-ip``: 127.0.0.1 here, since both relays live on loopback), and a call's username gets no
more allocations than ``user-quota``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioice import stun, turn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from signaling.turn import ice_servers_for_call
from tests.coturn import TurnServer, TurnUnavailableError, free_port
from tests.turn.conftest import HarnessFactory
from tests.turn.relay import WatchedPeerLink, bot_call

README = Path(__file__).resolve().parents[2] / "README.md"
CONF_HEAD = "# /etc/turnserver.conf: coturn for Virtual Windows"


def readme_config() -> list[str]:
    """The lines of the README's turnserver.conf block (comments and blank lines left out)."""
    text = README.read_text()
    start = text.index(CONF_HEAD)
    block = text[start:text.index("```", start)]
    return [line.strip() for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` and 127.0.0.1, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class ProductionTurnServer(TurnServer):
    """coturn on the README's configuration file, made runnable on loopback."""

    def __init__(self) -> None:
        super().__init__()
        self.tls_port = free_port()
        self.cert, self.key = self_signed(self.dir, "turn.example.gov.cn")
        swap = {
            "listening-port": str(self.port), "tls-listening-port": str(self.tls_port),
            "listening-ip": self.host, "relay-ip": self.host,
            "static-auth-secret": self.secret, "cert": str(self.cert), "pkey": str(self.key),
        }
        lines = []
        for line in readme_config():
            name = line.partition("=")[0]
            if name == "syslog":
                continue  # to a file of its own, to be read
            lines.append(f"{name}={swap[name]}" if name in swap else line)
        self.config = dict(line.partition("=")[::2] for line in lines if "=" in line)
        lines += [
            # both relays are on 127.0.0.1: loopback peers are off and 127/8 is denied, so let just this one through
            "allow-loopback-peers", "allowed-peer-ip=127.0.0.1",
            f"log-file={self.log_path}", "simple-log", "no-stdout-log", "verbose",
            f"userdb={self.dir / 'turndb'}", f"pidfile={self.dir / 'turnserver.pid'}",
        ]
        self.conf_path = self.dir / "turnserver.conf"
        self.conf_path.write_text("\n".join(lines) + "\n")

    @property
    def tls_url(self) -> str:
        return f"turns:{self.host}:{self.tls_port}?transport=tcp"

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.conf_path)]

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.cert))
        return context


@pytest.fixture
def production_turn() -> Iterator[ProductionTurnServer]:
    try:
        server = ProductionTurnServer().start()
    except TurnUnavailableError as exc:
        pytest.fail(f"coturn does not run the README's configuration: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


class Sink(asyncio.DatagramProtocol):
    pass


def credentials(server: TurnServer, call_id: str) -> tuple[str, str]:
    [entry] = ice_servers_for_call([{"urls": [server.url]}], call_id, time.time(), server.secret, 3600)
    return entry["username"], entry["credential"]


def test_the_readme_configuration_is_what_the_readme_says() -> None:
    config = dict(line.partition("=")[::2] for line in readme_config())
    assert config["tls-listening-port"] == "443" and "use-auth-secret" in config and "realm" in config
    assert "no-cli" in config and "allow-loopback-peers" not in config and "no-auth" not in config
    assert int(config["user-quota"]) > 0 and int(config["total-quota"]) > 0 and int(config["max-bps"]) > 0
    denied = [line.partition("=")[2] for line in readme_config() if line.startswith("denied-peer-ip=")]
    for private in ("10.0.0.1", "172.16.0.1", "172.31.255.254", "192.168.1.1", "127.0.0.1", "169.254.1.1",
                    "100.64.0.1", "::1", "fd00::1", "fe80::1"):
        address = ipaddress.ip_address(private)
        assert any(in_range(address, r) for r in denied), f"{private} is not denied"
    for public in ("198.51.100.7", "8.8.8.8", "2001:db8::1"):
        assert not any(in_range(ipaddress.ip_address(public), r) for r in denied), f"{public} is denied"


def in_range(address: ipaddress.IPv4Address | ipaddress.IPv6Address, text: str) -> bool:
    low, _, high = text.partition("-")
    first, last = ipaddress.ip_address(low), ipaddress.ip_address(high or low)
    return first.version == address.version and first <= address <= last  # type: ignore[operator]


async def test_turns_relays_a_relay_only_bot_call(harness_factory: HarnessFactory,
                                                  production_turn: ProductionTurnServer,
                                                  watched: list[WatchedPeerLink],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # the bots (aiortc) verify the TLS certificate against the default CAs: trust the throwaway one
    monkeypatch.setenv("SSL_CERT_FILE", str(production_turn.cert))
    harness = await harness_factory(production_turn, ice_servers=[{"urls": [production_turn.tls_url]}])
    result = await bot_call(harness, seconds=1.0)
    assert result.ok and result.video_frames > 5, result.summary()
    for link in watched:
        assert link.pair is not None and (link.pair[0].type, link.pair[1].type) == ("relay", "relay"), link.pair
    assert result.call_id is not None
    log = production_turn.log()
    # the allocations of the call, each on a TLS connection (coturn names its cipher and protocol)
    tls_sessions = re.findall(r"session \d+: new, realm=<turn\.example\.gov\.cn>, username=<\d+:"
                              + re.escape(result.call_id) + r">, lifetime=\d+, cipher=\S+, method=TLSv1\.[23]", log)
    assert len(tls_sessions) >= 2, production_turn.log_tail()


async def test_private_peers_are_refused(production_turn: ProductionTurnServer) -> None:
    username, password = credentials(production_turn, "call-private")
    relay, _ = await turn.create_turn_endpoint(
        Sink, server_addr=(production_turn.host, production_turn.tls_port), username=username, password=password,
        ssl=production_turn.tls_context(), transport="tcp")
    try:
        protocol = relay._TurnTransport__inner_protocol  # type: ignore[attr-defined]  # a ChannelBind by hand
        for number, peer in enumerate(("10.1.2.3", "172.16.5.5", "192.168.1.10", "127.0.0.2", "169.254.10.10")):
            with pytest.raises(stun.TransactionFailed) as failed:
                await protocol.channel_bind(0x4000 + number, (peer, 9))
            code, _ = failed.value.response.attributes["ERROR-CODE"]
            assert code == 403, (peer, str(failed.value))  # Forbidden
        # the one address the test allows (allowed-peer-ip) passes the same denials
        await protocol.channel_bind(0x4010, ("127.0.0.1", 9))
    finally:
        relay.close()


async def test_a_call_gets_no_more_allocations_than_user_quota(production_turn: ProductionTurnServer) -> None:
    quota = int(production_turn.config["user-quota"])
    username, password = credentials(production_turn, "call-quota")
    relays = []
    try:
        for _ in range(quota):
            relay, _ = await turn.create_turn_endpoint(
                Sink, server_addr=(production_turn.host, production_turn.port), username=username, password=password)
            relays.append(relay)
        with pytest.raises(stun.TransactionFailed) as failed:
            relays.append((await turn.create_turn_endpoint(
                Sink, server_addr=(production_turn.host, production_turn.port), username=username,
                password=password))[0])
        code, _ = failed.value.response.attributes["ERROR-CODE"]
        assert code == 486, failed.value  # Allocation Quota Reached
        # another call (another username) is not held back by this one's quota
        other = credentials(production_turn, "call-other")
        relays.append((await turn.create_turn_endpoint(
            Sink, server_addr=(production_turn.host, production_turn.port), username=other[0],
            password=other[1]))[0])
    finally:
        for relay in relays:
            relay.close()
