"""The benchmark's WebSocket load: open many sockets, hold them, time echoes.

Run by wslab.bench inside a lab container's network namespace (nsenter -n)
on a core of its own, against nginx on 127.0.0.1; prints one JSON object per
line: progress lines ({"progress": ...}) while it works, then the result
({"result": ...}). Every phase is bounded in count and time and stops by
itself; every socket it opened is closed before it exits.

    python -m wslab.benchclient --url ws://127.0.0.1/ws/echo/ --sockets 10000 \\
        --hold 60 --echo-sockets 1000 --echo-rate 500 --echo-seconds 10 \\
        --rss-pids nginx=101,102 --rss-pids app=201 \\
        --broadcast-url ws://127.0.0.1/ws/broadcast/ --broadcast-sockets 1000 --broadcast-rounds 5

The broadcast phase comes last, once the held sockets are closed: that many
sockets join one room (a channel-layer group, so across worker processes
where there are several), and one of them sends a message per round; each
round's figure is the time from the send until the last socket got it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import resource
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

# Handshakes in flight at once while ramping up.
RAMP_CONCURRENCY = 200
# Bounds on each handshake and each echo; a phase as a whole never outlasts PHASE_TIMEOUT_S.
OPEN_TIMEOUT_S = 30.0
ECHO_TIMEOUT_S = 30.0
PHASE_TIMEOUT_S = 600.0
PROGRESS_EVERY_S = 5.0
MAX_SOCKETS = 50_000
MAX_HOLD_S = 600.0


@dataclass
class SocketsResult:
    url: str
    sockets: int
    opened: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    ramp_s: float = 0.0
    handshakes_per_s: float = 0.0
    connect_p50_ms: float | None = None
    connect_p99_ms: float | None = None
    hold_s: float = 0.0
    dropped_during_hold: int = 0
    echoed_after_hold: int = 0
    # KiB of resident memory per process group, before the ramp and with every socket open.
    rss_kib_before: dict[str, int] = field(default_factory=dict)
    rss_kib_open: dict[str, int] = field(default_factory=dict)
    # What the server agreed to (Sec-WebSocket-Extensions) when offered what a
    # browser offers: permessage-deflate keeps compression state per socket.
    extensions: str = ""
    echo_sockets: int = 0
    echo_rate_per_s: float = 0.0
    echo_messages: int = 0
    echo_failed: int = 0
    echo_p50_ms: float | None = None
    echo_p99_ms: float | None = None
    # One message to every socket of a room: per round, ms from the send
    # until the last socket had it, and how many got it in the least
    # successful round.
    broadcast_sockets: int = 0
    broadcast_opened: int = 0
    broadcast_failures: dict[str, int] = field(default_factory=dict)
    broadcast_processes: int = 0
    broadcast_reached: int = 0
    broadcast_ms: list[float] = field(default_factory=list)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of VALUES (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def failure_kind(exc: BaseException) -> str:
    """A refused handshake by its HTTP status, anything else by its type."""
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def rss_kib(pids: Sequence[int]) -> int:
    """Resident memory of PIDS in KiB, from /proc (a process gone counts 0)."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def _progress(**fields) -> None:
    print(json.dumps({"progress": fields}), flush=True)


async def _open(url: str, origin: str) -> ClientConnection:
    # No client pings: the servers ping, and 10,000 client timers would load
    # the client, not the server.
    return await connect(
        url, origin=origin, open_timeout=OPEN_TIMEOUT_S, ping_interval=None, close_timeout=1, proxy=None
    )


async def _ramp(url: str, origin: str, count: int, result: SocketsResult) -> list[ClientConnection]:
    """Open COUNT sockets, RAMP_CONCURRENCY handshakes at a time, and fill
    RESULT's ramp figures (opened, failures by kind, handshakes/s, connect
    percentiles, the extensions the server agreed to)."""
    opened: list[ClientConnection] = []
    failures: collections.Counter[str] = collections.Counter()
    connect_ms: list[float] = []
    gate = asyncio.Semaphore(RAMP_CONCURRENCY)
    started = time.monotonic()
    last_report = started

    async def one() -> None:
        nonlocal last_report
        async with gate:
            t0 = time.monotonic()
            try:
                ws = await _open(url, origin)
            except Exception as exc:  # every failure is counted by its kind, none is fatal
                failures[failure_kind(exc)] += 1
                return
            connect_ms.append((time.monotonic() - t0) * 1000)
            opened.append(ws)
        now = time.monotonic()
        if now - last_report >= PROGRESS_EVERY_S:
            last_report = now
            _progress(phase="ramp", opened=len(opened), failed=sum(failures.values()), seconds=round(now - started, 1))

    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), PHASE_TIMEOUT_S)
    seconds = time.monotonic() - started
    result.ramp_s = round(seconds, 2)
    result.opened = len(opened)
    result.failures = dict(failures)
    result.handshakes_per_s = round(len(opened) / seconds, 1) if seconds else 0.0
    result.connect_p50_ms = _round(percentile(connect_ms, 0.50))
    result.connect_p99_ms = _round(percentile(connect_ms, 0.99))
    if opened:
        result.extensions = opened[0].response.headers.get("Sec-WebSocket-Extensions", "")
    return opened


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def _echo_all(sockets: list[ClientConnection], label: str) -> int:
    async def one(index: int, ws: ClientConnection) -> bool:
        text = f"{label} {index}"
        try:
            await ws.send(text)
            return await asyncio.wait_for(ws.recv(), ECHO_TIMEOUT_S) == text
        except Exception:  # a socket that fails its echo is counted, not raised
            return False

    results = await asyncio.wait_for(
        asyncio.gather(*(one(i, ws) for i, ws in enumerate(sockets))), PHASE_TIMEOUT_S
    )
    return sum(results)


async def _hold(sockets: list[ClientConnection], seconds: float) -> int:
    """Hold the sockets idle for SECONDS; return how many closed meanwhile."""
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        await asyncio.sleep(min(PROGRESS_EVERY_S, seconds - elapsed))
        closed = sum(ws.close_code is not None for ws in sockets)
        _progress(phase="hold", seconds=round(time.monotonic() - started, 1), of=seconds, closed=closed)
    return sum(ws.close_code is not None for ws in sockets)


async def _echo_latency(sockets: list[ClientConnection], rate: float, seconds: float, result: SocketsResult) -> None:
    """Messages sent round-robin over SOCKETS (some of the held ones, the rest
    still open and idle) at RATE per second for SECONDS."""
    result.echo_sockets = len(sockets)
    result.echo_rate_per_s = rate
    if not sockets:
        return
    rtts: list[float] = []
    failed = 0
    pending: set[asyncio.Task[None]] = set()

    async def one(ws: ClientConnection, text: str) -> None:
        nonlocal failed
        t0 = time.monotonic()
        try:
            await ws.send(text)
            if await asyncio.wait_for(ws.recv(), ECHO_TIMEOUT_S) == text:
                rtts.append((time.monotonic() - t0) * 1000)
                return
        except Exception:  # counted as failed
            pass
        failed += 1

    total = int(rate * seconds)
    started = time.monotonic()
    for n in range(total):
        # A fixed schedule: message n leaves at n / rate, whatever the earlier
        # ones took; a socket whose previous message is still out is skipped
        # to the next (one message in flight per socket).
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(sockets[n % len(sockets)], f"echo {n}"))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait_for(asyncio.gather(*pending), ECHO_TIMEOUT_S + 5)
    result.echo_messages = len(rtts) + failed
    result.echo_failed = failed
    result.echo_p50_ms = _round(percentile(rtts, 0.50))
    result.echo_p99_ms = _round(percentile(rtts, 0.99))


async def _arrival(ws: ClientConnection, text: str) -> float:
    """When the broadcast TEXT reached WS (monotonic seconds)."""
    while json.loads(await ws.recv()).get("message") != text:
        pass
    return time.monotonic()


async def _broadcast(url: str, origin: str, count: int, rounds: int, result: SocketsResult) -> None:
    """COUNT sockets join one fresh room at URL (ws://.../ws/broadcast/);
    one of them sends ROUNDS messages, one at a time."""
    result.broadcast_sockets = count
    room_url = f"{url.rstrip('/')}/bench-{uuid.uuid4().hex[:12]}/"
    gate = asyncio.Semaphore(RAMP_CONCURRENCY)

    async def join() -> tuple[ClientConnection, int]:
        async with gate:
            ws = await _open(room_url, origin)
            try:
                # The consumer's welcome names the process that holds the socket.
                return ws, json.loads(await asyncio.wait_for(ws.recv(), ECHO_TIMEOUT_S))["pid"]
            except BaseException:
                await ws.close()
                raise

    joined = await asyncio.wait_for(asyncio.gather(*(join() for _ in range(count)), return_exceptions=True),
                                    PHASE_TIMEOUT_S)
    members = [item for item in joined if not isinstance(item, BaseException)]
    result.broadcast_failures = dict(collections.Counter(
        failure_kind(item) for item in joined if isinstance(item, BaseException)))
    sockets = [ws for ws, _ in members]
    result.broadcast_opened = len(sockets)
    result.broadcast_processes = len({pid for _, pid in members})
    try:
        if not sockets:
            return
        reached_least = len(sockets)
        for round_ in range(rounds):
            text = f"round {round_}"
            waiting = [asyncio.create_task(_arrival(ws, text)) for ws in sockets]
            await asyncio.sleep(0)  # every receiver is waiting before the send
            sent = time.monotonic()
            await sockets[0].send(text)
            done, late = await asyncio.wait(waiting, timeout=ECHO_TIMEOUT_S)
            for task in late:
                task.cancel()
            arrivals = [task.result() for task in done if not task.exception()]
            reached_least = min(reached_least, len(arrivals))
            if arrivals:
                result.broadcast_ms.append(round((max(arrivals) - sent) * 1000, 2))
            _progress(phase="broadcast", round=round_ + 1, of=rounds, reached=len(arrivals),
                      ms=result.broadcast_ms[-1] if arrivals else None)
        result.broadcast_reached = reached_least
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


async def run(args: argparse.Namespace) -> SocketsResult:
    origin = args.origin
    result = SocketsResult(url=args.url, sockets=args.sockets)
    groups = {name: [int(p) for p in pids.split(",") if p] for name, pids in (g.split("=", 1) for g in args.rss_pids)}
    result.rss_kib_before = {name: rss_kib(pids) for name, pids in groups.items()}
    _progress(phase="ramp", opened=0, of=args.sockets)
    sockets = await _ramp(args.url, origin, args.sockets, result)
    try:
        result.rss_kib_open = {name: rss_kib(pids) for name, pids in groups.items()}
        _progress(phase="ramp", opened=result.opened, failed=sum(result.failures.values()), seconds=result.ramp_s)
        result.hold_s = args.hold
        result.dropped_during_hold = await _hold(sockets, args.hold)
        alive = [ws for ws in sockets if ws.close_code is None]
        result.echoed_after_hold = await _echo_all(alive, "after hold")
        if args.echo_sockets:
            # Latency with every other socket still open: the server's load as held.
            _progress(phase="echo", sockets=min(args.echo_sockets, len(alive)), rate=args.echo_rate,
                      seconds=args.echo_seconds)
            await _echo_latency(alive[: args.echo_sockets], args.echo_rate, args.echo_seconds, result)
    finally:
        _progress(phase="close", sockets=len(sockets))
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    if args.broadcast_url and args.broadcast_sockets:
        _progress(phase="broadcast", sockets=args.broadcast_sockets, rounds=args.broadcast_rounds)
        await _broadcast(args.broadcast_url, origin, args.broadcast_sockets, args.broadcast_rounds, result)
    return result


def _bounded(kind, low, high):
    def parse(text: str):
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wslab.benchclient", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--origin", default="http://127.0.0.1")
    parser.add_argument("--sockets", type=_bounded(int, 1, MAX_SOCKETS), required=True)
    parser.add_argument("--hold", type=_bounded(float, 0, MAX_HOLD_S), default=60.0)
    parser.add_argument("--echo-sockets", type=_bounded(int, 0, MAX_SOCKETS), default=0)
    parser.add_argument("--echo-rate", type=_bounded(float, 1, 100_000), default=500.0)
    parser.add_argument("--echo-seconds", type=_bounded(float, 1, MAX_HOLD_S), default=10.0)
    parser.add_argument("--rss-pids", action="append", default=[], metavar="NAME=PID,PID")
    parser.add_argument("--broadcast-url", default="", help="ws://.../ws/broadcast/ (a room is added)")
    parser.add_argument("--broadcast-sockets", type=_bounded(int, 0, MAX_SOCKETS), default=0)
    parser.add_argument("--broadcast-rounds", type=_bounded(int, 1, 100), default=5)
    args = parser.parse_args(argv)
    wanted = max(args.sockets, args.broadcast_sockets) + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(wanted, soft), hard), hard))
    result = asyncio.run(run(args))
    print(json.dumps({"result": asdict(result)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
