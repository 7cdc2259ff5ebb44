"""``python -m hubbub.chat URL --channel C --name N``: the chat without the ``hubbub`` CLI."""

from __future__ import annotations

import argparse
import sys

from hubbub.chat.app import CONNECT_TIMEOUT, run_chat


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hubbub.chat", description="An interactive terminal chat on a hubbub server."
    )
    parser.add_argument("url", help="ws://host:port/connection/websocket or tcp://host:port")
    parser.add_argument("--channel", default="chat:lobby", help="channel to join first")
    parser.add_argument("--name", required=True, help="the name others see")
    parser.add_argument("--codec", default="json", choices=("json", "protobuf", "msgpack"))
    parser.add_argument(
        "--connect-timeout", type=float, default=CONNECT_TIMEOUT, help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    return run_chat(
        args.url, args.channel, args.name, args.codec, connect_timeout=args.connect_timeout
    )


if __name__ == "__main__":
    sys.exit(main())
