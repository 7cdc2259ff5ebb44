"""The load generator's own Python cost per received frame (no sockets).

`hubbub bench fanout` reads every delivery on one core, so what the wire spends per frame
bounds the fan-out it can measure. This times ``CentrifugeWire.receive`` (JSON, recording
latencies) on frames of 1, 2, 4, 8 and 38 publications shaped as hubbub sends them (38:
what one frame carried at 15,348 publications/s to 100 subscribers), and beside it the
stamp scan alone (``STAMP.findall``) and the least any scan of the frame can cost (a bare
``bytes.count`` of the stamp's key):

    .venv/bin/python benchmarks/wire_receive.py [--number N]

Compare code versions by running it with ``PYTHONPATH`` pointing at another checkout's
``src``.
"""

from __future__ import annotations

import argparse
import time
import timeit

from hubbub.bench.payload import STAMP, make
from hubbub.bench.wire import CentrifugeWire, Counters
from hubbub.codecs.json import JsonCodec


def frame_of(publications: int, size: int) -> bytes:
    """``publications`` pushes on one channel, one per line, as a coalesced frame."""
    push = b'{"push":{"channel":"bench:fanout","pub":{"data":%s,"offset":%d}}}'
    return b"\n".join(push % (make(n, size), n + 1) for n in range(publications))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000, help="frames per size")
    parser.add_argument("--payload-size", type=int, default=64)
    args = parser.parse_args()
    counters = Counters()
    counters.recording = True
    wire = CentrifugeWire(JsonCodec(), counters, "bench:fanout", lambda frame: None)
    wire.ready = True
    print("publications/frame  bytes  ns/frame  ns/delivery  scan ns  count ns")
    for publications in (1, 2, 4, 8, 38):
        frame = frame_of(publications, args.payload_size)
        number = max(1, args.number // publications)
        seconds = timeit.timeit(
            lambda frame=frame: wire.receive(frame, time.monotonic_ns()), number=number
        )
        counters.take_latencies()  # the folds every FOLD_STAMPS were timed above; not the rest
        per_frame = seconds / number * 1e9
        scan = timeit.timeit(lambda frame=frame: STAMP.findall(frame), number=number)
        count = timeit.timeit(lambda frame=frame: frame.count(b'"bt":'), number=number)
        print(
            f"{publications:18d}  {len(frame):5d}  {per_frame:8.0f}  "
            f"{per_frame / publications:11.0f}  {scan / number * 1e9:7.0f}  "
            f"{count / number * 1e9:8.0f}"
        )


if __name__ == "__main__":
    main()
