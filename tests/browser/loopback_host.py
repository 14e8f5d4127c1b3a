"""Run Chromium as on a host whose only network interface is loopback (test helper, not a test module).

Started by the wrapper that :func:`tests.browser.test_loopback.loopback_browser` gives Playwright as the browser
executable, already inside a new network namespace (``unshare --net``): there the only interface is ``lo``, down.
This brings ``lo`` up, forwards ``127.0.0.1:<port>`` of the namespace to the test server's Unix socket (a Unix
socket is reachable from any network namespace), then runs Chromium with Playwright's pipes (fds 3 and 4) and
exits with its status.

    python loopback_host.py PORT SOCKET_PATH CHROMIUM [CHROMIUM ARGS...]
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
import struct
import sys

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
IFREQ = "16sH22x"  # sizeof(struct ifreq) is 40


def bring_loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(IFREQ, b"lo", 0)  # struct ifreq: the name, then ifr_flags
        flags = struct.unpack(IFREQ, fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack(IFREQ, b"lo", flags | IFF_UP))


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def main(port: int, path: str, command: list[str]) -> int:
    bring_loopback_up()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(path)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    server = await asyncio.start_server(forward, "127.0.0.1", port)
    async with server:
        browser = await asyncio.create_subprocess_exec(*command, pass_fds=(3, 4))
        return await browser.wait()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3:])))
