"""What the kernel alone charges one core to send one frame to each of N subscribers.

    python benchmarks/write_floor.py --subscribers 100,300,1000 --rounds 50

N loopback TCP connections (TCP_NODELAY, as uvloop sets it); a reader process pinned
to CPU 1 drains them all; this process, pinned to CPU 0, sends one 180-byte frame (the
size of a JSON publication push) to every connection and times the round. No Python
server, no WebSocket, no codec: one ``send()`` per socket.

A publication to N subscribers on one core can reach the last of them no sooner than
one such round, so ``round ms`` is a floor under the p99 publish → deliver latency
that `hubbub bench fanout` measures for any server on this machine (on loopback the
sending core also runs the receiver's TCP processing and the ACK). Writes
``results/write-floor.json``.

``--steer-receive 1`` (root only) sets receive packet steering on ``lo`` to CPU 1 for
the run and puts the old mask back after: the receivers' TCP processing then runs on
their own core, as it would on a second host behind a network card, and the round
shows what the sending core alone pays. The JSON records the mask that was in force.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import selectors
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

FRAME = b"x" * 180
HERE = Path(__file__).resolve().parent
RPS_MASK = Path("/sys/class/net/lo/queues/rx-0/rps_cpus")


@contextlib.contextmanager
def _steered(cpu: int | None) -> Iterator[str]:
    """Receive steering of ``lo`` to ``cpu`` (None: as it is); yields the mask in force."""
    before = RPS_MASK.read_text().strip() if RPS_MASK.exists() else "unknown"
    if cpu is None:
        yield before
        return
    try:
        RPS_MASK.write_text(f"{1 << cpu:x}\n")
    except OSError as exc:
        raise SystemExit(f"cannot set {RPS_MASK} (root needed): {exc}") from None
    try:
        yield RPS_MASK.read_text().strip()
    finally:
        RPS_MASK.write_text(f"{before}\n")


def _pairs(count: int) -> tuple[list[socket.socket], list[socket.socket]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(count)
    readers, writers = [], []
    for _ in range(count):
        reader = socket.create_connection(listener.getsockname())
        writer, _ = listener.accept()
        writer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.setblocking(False)
        readers.append(reader)
        writers.append(writer)
    listener.close()
    return readers, writers


def _drain(readers: list[socket.socket], seconds: float) -> None:
    selector = selectors.DefaultSelector()
    for reader in readers:
        reader.setblocking(False)
        selector.register(reader, selectors.EVENT_READ)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in selector.select(0.2):
            with contextlib.suppress(BlockingIOError):
                key.fileobj.recv(65536)  # type: ignore[union-attr]


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


def measure(count: int, rounds: int, gap: float) -> dict[str, float]:
    """Time ``rounds`` rounds of one send to each of ``count`` connections."""
    readers, writers = _pairs(count)
    child = os.fork()
    if child == 0:  # the subscribers' side
        _pin(1)
        _drain(readers, rounds * gap + 5)
        os._exit(0)
    _pin(0)
    time.sleep(0.3)
    durations = []
    for _ in range(rounds):
        start = time.perf_counter()
        for writer in writers:
            writer.send(FRAME)
        durations.append(time.perf_counter() - start)
        time.sleep(gap)
    os.kill(child, 9)
    os.waitpid(child, 0)
    for sock in readers + writers:
        sock.close()
    durations.sort()
    median = statistics.median(durations)
    return {
        "subscribers": count,
        "rounds": rounds,
        "round_ms_median": round(median * 1e3, 3),
        "round_ms_p90": round(durations[int(0.9 * (len(durations) - 1))] * 1e3, 3),
        "send_us_median": round(median / count * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", default="100,300,1000")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between rounds")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "write-floor.json")
    parser.add_argument(
        "--steer-receive", type=int, metavar="CPU", help="steer lo's receive work to CPU"
    )
    args = parser.parse_args()
    with _steered(args.steer_receive) as mask:
        rows = [measure(int(n), args.rounds, args.gap) for n in args.subscribers.split(",")]
    for row in rows:
        print(
            f"{row['subscribers']:>6} subscribers: one round {row['round_ms_median']:.2f} ms "
            f"(p90 {row['round_ms_p90']:.2f}), {row['send_us_median']:.2f} µs per send()"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "schema": "hubbub.bench.write-floor/1",
                "machine": {
                    "cpus": os.cpu_count(),
                    "kernel": platform.release(),
                    "python": platform.python_version(),
                },
                "frame_bytes": len(FRAME),
                "lo_rps_cpus": mask,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
