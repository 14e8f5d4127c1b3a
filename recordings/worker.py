"""A recorder worker process: ``python -m recordings.worker --root DIR``.

It runs one :class:`~recordings.recorder.Recorder` and serves the requests of
:mod:`recordings.protocol` (JSON lines on stdin, replies on stdout), several
at a time. It exits after a ``shutdown`` request, on SIGTERM or when stdin
closes (the server went away), in each case after stopping every call and
finalizing its recordings. SIGINT is ignored: a Ctrl-C in the server's
terminal reaches the whole process group, and the server shuts its workers
down itself.

Anything else that writes to stdout (a stray print, a C library) would
corrupt the replies, so the worker keeps a private copy of the stdout pipe
for replies and points file descriptor 1 at stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import msgspec

from recordings import protocol
from recordings.info import RecordingInfo

logger = logging.getLogger(__name__)

MAX_LINE = 4 * 1024 * 1024  # an SDP offer is a few KiB; this bounds a runaway line


class RecorderService(Protocol):
    """What a worker serves: :class:`~recordings.recorder.Recorder`, or a stand-in (the benchmark's baseline)."""

    @property
    def load(self) -> int: ...

    def calls(self) -> list[str]: ...

    async def answer(self, call_id: str, participant: str, offer_sdp: str) -> str: ...

    async def stop_call(self, call_id: str) -> list[RecordingInfo]: ...

    async def close(self) -> list[RecordingInfo]: ...


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Server:
    def __init__(self, service: RecorderService, output_fd: int) -> None:
        self.service = service
        self.output_fd = output_fd
        self.done = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    def send(self, reply: protocol.Reply) -> None:
        data = protocol.encode(reply)
        while data:  # a blocking pipe: os.write may write part of a long line
            written = os.write(self.output_fd, data)
            data = data[written:]

    async def handle(self, request: protocol.Request) -> None:
        try:
            reply: protocol.Reply
            if isinstance(request, protocol.AnswerRequest):
                sdp = await self.service.answer(request.call_id, request.participant, request.offer_sdp)
                reply = protocol.Answered(id=request.id, answer_sdp=sdp)
            elif isinstance(request, protocol.StopCallRequest):
                infos = await self.service.stop_call(request.call_id)
                reply = protocol.Stopped(id=request.id, recordings=[info.to_dict() for info in infos])
            elif isinstance(request, protocol.StatsRequest):
                reply = protocol.WorkerStats(
                    id=request.id, participants=self.service.load, calls=self.service.calls(), cpu_s=cpu_seconds()
                )
            else:
                infos = await self.shutdown()
                reply = protocol.Stopped(id=request.id, recordings=[info.to_dict() for info in infos])
        except ValueError as exc:  # a bad offer or name: the caller's mistake, said in the reply
            logger.warning("request %d (%s) refused: %s", request.id, type(request).__name__, exc)
            reply = protocol.Failed(id=request.id, error_type=type(exc).__name__, error=str(exc))
        except Exception as exc:
            logger.exception("request %d (%s) failed", request.id, type(request).__name__)
            reply = protocol.Failed(id=request.id, error_type=type(exc).__name__, error=str(exc))
        self.send(reply)

    async def shutdown(self) -> list[RecordingInfo]:
        others = [task for task in self.tasks if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        infos = await self.service.close()
        self.done.set()
        return infos

    def start(self, request: protocol.Request) -> None:
        task = asyncio.create_task(self.handle(request), name=f"request-{request.id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def serve(service: RecorderService, *, input_fd: int = 0, output_fd: int = 1) -> None:
    """Serve requests from ``input_fd`` until shutdown, SIGTERM or end of input; replies go to ``output_fd``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(input_fd, "rb", buffering=0, closefd=False)
    )
    server = _Server(service, output_fd)
    terminated = asyncio.Event()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, terminated.set)
    server.send(protocol.Ready(id=0, pid=os.getpid()))

    async def read_requests() -> None:
        while not server.done.is_set():
            try:
                line = await reader.readline()
            except ValueError:  # a line over MAX_LINE
                logger.error("dropping a request line over %d bytes", MAX_LINE)
                continue
            if not line:
                return
            try:
                request = protocol.decode_request(line)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                logger.error("bad request line: %s", exc)
                continue
            server.start(request)

    reading = asyncio.create_task(read_requests())
    waiting = [reading, asyncio.create_task(terminated.wait()), asyncio.create_task(server.done.wait())]
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not server.done.is_set():
            logger.info("worker %d: %s; stopping", os.getpid(), "SIGTERM" if terminated.is_set() else "end of input")
            await server.shutdown()
        await asyncio.gather(*server.tasks, return_exceptions=True)
    finally:
        for task in waiting:
            task.cancel()
        transport.close()


def _protect_stdout() -> int:
    """A private duplicate of stdout for replies; fd 1 (and ``sys.stdout``) then go to stderr."""
    output_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return output_fd


def main(argv: list[str] | None = None, *, service: Callable[[Path], RecorderService] | None = None) -> int:
    """Run a worker: parse ``argv``, guard stdout, serve until told to stop.

    ``service`` builds what is served from the recordings root (default:
    :class:`~recordings.recorder.Recorder`); the benchmark passes its
    MediaRecorder baseline.
    """
    parser = argparse.ArgumentParser(prog="python -m recordings.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="the recordings directory")
    parser.add_argument("--allow-loopback", action="store_true", help="also gather 127.0.0.1 ICE candidates")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    os.umask(0o077)  # recordings are personal data: folders and files for the server's user only
    output_fd = _protect_stdout()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format=f"recorder-worker[{os.getpid()}] %(levelname)s %(name)s: %(message)s",
    )
    if args.allow_loopback:  # for hosts whose only interface is loopback (CI sandboxes); imported only then
        from rtc.loopback import install_loopback_candidates

        install_loopback_candidates()
    if service is None:
        from recordings.recorder import Recorder

        service = Recorder

    async def run() -> None:
        assert service is not None
        await serve(service(args.root), output_fd=output_fd)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
