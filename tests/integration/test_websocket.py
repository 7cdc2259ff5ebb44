"""The client protocol end to end over real sockets against an in-process server.

Tests taking ``client_factory`` run over WebSocket and raw TCP alike; the rest pin
down what only WebSocket has (subprotocols, query formats, frames, health pages).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from conftest import eventually, ws_url

from hubbub.server import Server
from integration.conftest import Client, ClientFactory
from integration.wsclient import WAIT, WsClient, http_get, open_client, payload

CHANNEL = "chat:lobby"


@pytest.fixture
async def clients(server: Server, client_factory: ClientFactory) -> Any:
    """Factory of connected JSON clients on the default server, over each transport."""

    async def make(**kwargs: Any) -> Client:
        return await client_factory.client(server, **kwargs)

    return make


# ----------------------------------------------------------------------- connect


async def test_connect_reply_has_client_id_ping_and_pong(
    server: Server, client_factory: ClientFactory
) -> None:
    """The connect reply carries a non-empty client id, a ping interval and pong: true."""
    client = await client_factory.open(server)
    result = await client.connect(name="python")
    assert isinstance(result["client"], str) and result["client"]
    assert isinstance(result["ping"], int) and result["ping"] > 0
    assert result["pong"] is True
    assert isinstance(client.raw_frames[0], str)  # JSON goes out as text
    if isinstance(client, WsClient):
        assert client.ws.subprotocol is None
    await client.close()


async def test_client_ids_are_unique(clients: Any) -> None:
    """Two connections get two different client ids."""
    a, b = await clients(), await clients()
    assert a.client_id != b.client_id


# --------------------------------------------------------- subscribe and publish


async def test_publication_reaches_every_subscriber(clients: Any) -> None:
    """A publication reaches every subscriber, the publisher too, with data, info, offset."""
    a, b = await clients(), await clients()
    await a.subscribe(CHANNEL)
    await b.subscribe(CHANNEL)
    reply = await b.call("publish", {"channel": CHANNEL, "data": {"text": "hi"}})
    assert "error" not in reply and isinstance(reply["publish"], dict)
    for client in (a, b):
        push = await client.push("pub")
        assert push["channel"] == CHANNEL
        pub = push["pub"]
        assert pub["data"] == {"text": "hi"}
        assert pub["info"] == {"user": "", "client": b.client_id}
        assert pub["offset"] == 1


async def test_publish_reply_is_a_result_even_without_subscribing(clients: Any) -> None:
    """Publishing without being subscribed succeeds with a publish result."""
    a = await clients()
    reply = await a.call("publish", {"channel": "chat:elsewhere", "data": [1, 2]})
    assert reply["id"] > 0 and "publish" in reply and "error" not in reply


async def test_publications_arrive_in_order(clients: Any) -> None:
    """Publications of one channel reach a subscriber in publish order, offsets +1."""
    a, b = await clients(), await clients()
    await a.subscribe(CHANNEL)
    for i in range(10):
        await b.publish(CHANNEL, {"n": i})
    pubs = await a.pubs(10)
    assert [p["data"]["n"] for p in pubs] == list(range(10))
    assert [p["offset"] for p in pubs] == list(range(1, 11))


async def test_unsubscribed_client_gets_no_more_publications(clients: Any) -> None:
    """After unsubscribe (reply {}), a client receives nothing more from the channel."""
    a, b = await clients(), await clients()
    await a.subscribe(CHANNEL)
    reply = await a.call("unsubscribe", {"channel": CHANNEL})
    assert reply["unsubscribe"] == {}
    await b.publish(CHANNEL, {"n": 1})
    await a.subscribe("chat:other")
    await b.publish("chat:other", {"n": 2})
    push = await a.push("pub")
    assert push["channel"] == "chat:other"  # the chat:lobby one never came


async def test_unsubscribe_of_unknown_channel_succeeds(clients: Any) -> None:
    """Unsubscribing from a channel the client is not in still answers a result."""
    a = await clients()
    reply = await a.call("unsubscribe", {"channel": "chat:never"})
    assert reply["unsubscribe"] == {}


# ---------------------------------------------------------------- join / leave


async def test_join_and_leave_pushes_between_two_clients(clients: Any) -> None:
    """A subscriber sees a join when another client subscribes and a leave when it unsubscribes."""
    a, b = await clients(), await clients()
    await a.subscribe(CHANNEL, join_leave=True)
    await b.subscribe(CHANNEL, join_leave=True)
    join = await a.push("join")
    assert join["channel"] == CHANNEL
    assert join["join"]["info"] == {"user": "", "client": b.client_id}
    await b.call("unsubscribe", {"channel": CHANNEL})
    leave = await a.push("leave")
    assert leave["channel"] == CHANNEL
    assert leave["leave"]["info"] == {"user": "", "client": b.client_id}


async def test_leave_push_when_a_subscriber_disconnects(clients: Any) -> None:
    """A client that drops its connection is announced with a leave push."""
    a, b = await clients(), await clients()
    await a.subscribe(CHANNEL, join_leave=True)
    await b.subscribe(CHANNEL, join_leave=True)
    await a.push("join")
    b.abort()  # no close frame: the socket just goes away
    leave = await a.push("leave")
    assert leave["leave"]["info"]["client"] == b.client_id


# -------------------------------------------------------------------- presence


async def test_presence_and_presence_stats(clients: Any) -> None:
    """presence lists every subscribed connection; presence_stats counts clients and users."""
    a, b = await clients(), await clients()
    await a.subscribe(CHANNEL)
    await b.subscribe(CHANNEL)
    presence = (await a.call("presence", {"channel": CHANNEL}))["presence"]["presence"]
    assert presence == {
        a.client_id: {"user": "", "client": a.client_id},
        b.client_id: {"user": "", "client": b.client_id},
    }
    stats = (await a.call("presence_stats", {"channel": CHANNEL}))["presence_stats"]
    assert stats == {"num_clients": 2, "num_users": 1}  # both anonymous: one user ""

    await b.close()

    async def only_a() -> bool:
        reply = await a.call("presence", {"channel": CHANNEL})
        return set(reply["presence"]["presence"]) == {a.client_id}

    await eventually(only_a)
    stats = (await a.call("presence_stats", {"channel": CHANNEL}))["presence_stats"]
    assert stats == {"num_clients": 1, "num_users": 1}


async def test_presence_of_empty_channel_writes_empty_map_and_zero_counts(clients: Any) -> None:
    """presence of a channel nobody is in is {} and presence_stats writes explicit zeros."""
    a = await clients()
    assert (await a.call("presence", {"channel": "chat:empty"}))["presence"] == {"presence": {}}
    stats = (await a.call("presence_stats", {"channel": "chat:empty"}))["presence_stats"]
    assert stats == {"num_clients": 0, "num_users": 0}


async def test_presence_where_presence_is_off_is_not_available(
    client_factory: ClientFactory,
) -> None:
    """presence in a namespace without presence answers 108 not available."""
    server = await client_factory.start(
        **{"channels.namespaces.quiet": {"allow_subscribe": True, "allow_presence": True}}
    )
    a = await client_factory.client(server)
    reply = await a.call("presence", {"channel": "quiet:x"})
    assert reply["error"] == {"code": 108, "message": "not available"}
    reply = await a.call("presence_stats", {"channel": "quiet:x"})
    assert reply["error"]["code"] == 108
    await a.close()


# --------------------------------------------------------------------- history


async def _published(client: Client, channel: str, n: int) -> str:
    """Publish n messages {"n": 1..n}; return the stream epoch."""
    for i in range(1, n + 1):
        await client.publish(channel, {"n": i})
    reply = await client.call("history", {"channel": channel, "limit": 0})
    return str(reply["history"]["epoch"])


def _ns(history: dict[str, Any]) -> list[int]:
    return [p["data"]["n"] for p in history["publications"]]


async def test_history_limit_since_and_reverse(clients: Any) -> None:
    """history pages by limit, since and reverse, always reporting the current top."""
    a = await clients()
    epoch = await _published(a, CHANNEL, 5)

    async def history(**request: Any) -> dict[str, Any]:
        reply = await a.call("history", {"channel": CHANNEL, **request})
        assert "error" not in reply, reply
        result: dict[str, Any] = reply["history"]
        assert result["epoch"] == epoch and result["offset"] == 5
        return result

    position = await history(limit=0)
    assert position["publications"] == []  # limit 0: the position only, [] still written
    assert _ns(await history(limit=-1)) == [1, 2, 3, 4, 5]
    assert _ns(await history(limit=2)) == [1, 2]
    assert _ns(await history(limit=2, reverse=True)) == [5, 4]
    assert _ns(await history(limit=2, since={"offset": 2, "epoch": epoch})) == [3, 4]
    assert _ns(await history(limit=10, since={"offset": 4, "epoch": epoch}, reverse=True)) == [
        3,
        2,
        1,
    ]
    assert _ns(await history(limit=10, since={"offset": 5, "epoch": epoch})) == []
    assert [p["offset"] for p in (await history(limit=-1))["publications"]] == [1, 2, 3, 4, 5]


async def test_history_bad_requests_and_cap(client_factory: ClientFactory) -> None:
    """reverse history before offset 0 is 107; limits above history_max_limit are capped."""
    server = await client_factory.start(**{"client.history_max_limit": 3})
    a = await client_factory.client(server)
    epoch = await _published(a, CHANNEL, 5)
    reply = await a.call(
        "history",
        {"channel": CHANNEL, "limit": 2, "reverse": True, "since": {"offset": 0, "epoch": epoch}},
    )
    assert reply["error"] == {"code": 107, "message": "bad request"}
    for limit in (-1, 100):
        reply = await a.call("history", {"channel": CHANNEL, "limit": limit})
        assert _ns(reply["history"]) == [1, 2, 3], limit
    await a.close()


async def test_history_with_wrong_epoch_is_unrecoverable(clients: Any) -> None:
    """history since a position of another epoch answers 112 unrecoverable position."""
    a = await clients()
    await _published(a, CHANNEL, 2)
    reply = await a.call(
        "history", {"channel": CHANNEL, "limit": 10, "since": {"offset": 1, "epoch": "nope"}}
    )
    assert reply["error"] == {"code": 112, "message": "unrecoverable position"}


async def test_history_where_history_is_off_is_not_available(
    client_factory: ClientFactory,
) -> None:
    """history in a namespace that keeps no history answers 108 not available."""
    server = await client_factory.start(
        **{
            "channels.namespaces.plain": {
                "allow_subscribe": True,
                "allow_publish": True,
                "allow_history": True,
            }
        }
    )
    a = await client_factory.client(server)
    await a.publish("plain:x", {"n": 1})
    reply = await a.call("history", {"channel": "plain:x", "limit": 10})
    assert reply["error"] == {"code": 108, "message": "not available"}
    await a.close()


# -------------------------------------------------------------------- recovery


async def test_recovery_after_a_cut_connection_replays_exactly_the_missed(
    clients: Any,
) -> None:
    """Resubscribing with recover + offset + epoch replays exactly the publications missed."""
    a, b = await clients(), await clients()
    sub = await a.subscribe(CHANNEL, recover=False)
    assert sub["recoverable"] is True and sub["epoch"]
    epoch = sub["epoch"]
    await b.publish(CHANNEL, {"n": 1})
    seen = (await a.push("pub"))["pub"]["offset"]
    assert seen == 1

    a.abort()  # cut: no close frame
    for i in range(2, 6):
        await b.publish(CHANNEL, {"n": i})

    a2 = await clients()
    sub = await a2.subscribe(CHANNEL, recover=True, offset=seen, epoch=epoch)
    assert sub["recovered"] is True
    assert sub["was_recovering"] is True
    assert sub["epoch"] == epoch
    assert sub["offset"] == seen  # the client advances it while processing the replay
    assert [p["data"]["n"] for p in sub["publications"]] == [2, 3, 4, 5]
    assert [p["offset"] for p in sub["publications"]] == [2, 3, 4, 5]

    await b.publish(CHANNEL, {"n": 6})
    live = (await a2.push("pub"))["pub"]
    assert (live["data"]["n"], live["offset"]) == (6, 6)  # no gap, no duplicate
    assert a2.pushes.empty()


async def test_recovery_at_the_top_is_recovered_with_nothing_to_replay(clients: Any) -> None:
    """A client that missed nothing is recovered with no publications."""
    a = await clients()
    epoch = await _published(a, CHANNEL, 3)
    sub = await a.subscribe(CHANNEL, recover=True, offset=3, epoch=epoch)
    assert sub["recovered"] is True
    assert sub.get("publications", []) == []


async def test_recovery_with_a_gap_larger_than_history_is_not_recovered(
    client_factory: ClientFactory,
) -> None:
    """When more were missed than history keeps: recovered false, no publications, top offset."""
    server = await client_factory.start(**{"channels.namespaces.chat.history_size": 3})
    a = await client_factory.client(server)
    b = await client_factory.client(server)
    sub = await a.subscribe(CHANNEL)
    epoch = sub["epoch"]
    await a.close()
    for i in range(1, 6):
        await b.publish(CHANNEL, {"n": i})

    a2 = await client_factory.client(server)
    sub = await a2.subscribe(CHANNEL, recover=True, offset=0, epoch=epoch)
    assert sub.get("recovered", False) is False
    assert sub["was_recovering"] is True
    assert sub.get("publications", []) == []  # never a partial replay
    assert sub["offset"] == 5 and sub["epoch"] == epoch
    for client in (b, a2):
        await client.close()


async def test_recovery_of_more_than_recovery_max_limit_is_not_recovered(
    client_factory: ClientFactory,
) -> None:
    """More missed publications than client.recovery_max_limit: recovered false, none replayed."""
    server = await client_factory.start(**{"client.recovery_max_limit": 2})
    a = await client_factory.client(server)
    epoch = await _published(a, CHANNEL, 3)
    sub = await a.subscribe(CHANNEL, recover=True, offset=0, epoch=epoch)
    assert sub.get("recovered", False) is False
    assert sub.get("publications", []) == []
    assert sub["offset"] == 3
    await a.call("unsubscribe", {"channel": CHANNEL})
    sub = await a.subscribe(CHANNEL, recover=True, offset=1, epoch=epoch)
    assert sub["recovered"] is True  # exactly the limit is fine
    assert [p["offset"] for p in sub["publications"]] == [2, 3]
    await a.close()


async def test_recovery_with_a_wrong_epoch_is_not_recovered(clients: Any) -> None:
    """A recovery position from another epoch is not trusted: recovered false, nothing replayed."""
    a = await clients()
    await _published(a, CHANNEL, 2)
    sub = await a.subscribe(CHANNEL, recover=True, offset=1, epoch="other")
    assert sub.get("recovered", False) is False
    assert sub.get("publications", []) == []
    assert sub["offset"] == 2


async def test_unrecoverable_subscribe_with_flag_2_is_error_112(clients: Any) -> None:
    """With subscribe flag 2 (reject unrecovered) a failed recovery answers 112 instead."""
    a = await clients()
    await _published(a, CHANNEL, 2)
    reply = await a.call(
        "subscribe",
        {"channel": CHANNEL, "recover": True, "offset": 1, "epoch": "other", "flag": 3},
    )
    assert reply["error"] == {"code": 112, "message": "unrecoverable position"}
    sub = await a.subscribe(CHANNEL)  # the failed subscribe left no subscription behind
    assert sub["recoverable"] is True


# ------------------------------------------------------------------------- rpc


async def test_rpc_to_a_registered_handler(server: Server, client_factory: ClientFactory) -> None:
    """rpc calls the handler registered with node.rpc and returns its data."""

    @server.node.rpc("echo")
    async def echo(ctx: Any, data: bytes) -> bytes:
        return data

    a = await client_factory.client(server)
    reply = await a.call("rpc", {"method": "echo", "data": {"ping": [1, 2]}})
    assert reply["rpc"] == {"data": {"ping": [1, 2]}}
    await a.close()


async def test_rpc_to_an_unknown_method_is_method_not_found(clients: Any) -> None:
    """rpc to a method nobody registered answers 104 method not found."""
    a = await clients()
    reply = await a.call("rpc", {"method": "nope", "data": {}})
    assert reply["error"] == {"code": 104, "message": "method not found"}


# --------------------------------------------------------------- error replies


async def test_default_namespace_denies_subscribe_and_publish(clients: Any) -> None:
    """The example's default namespace allows nothing: 103, and the connection stays usable."""
    a = await clients()
    reply = await a.call("subscribe", {"channel": "lobby"})
    assert reply["error"] == {"code": 103, "message": "permission denied"}
    reply = await a.call("publish", {"channel": "lobby", "data": {}})
    assert reply["error"] == {"code": 103, "message": "permission denied"}
    await a.subscribe(CHANNEL)  # still connected and working


async def test_unknown_namespace_is_unknown_channel(clients: Any) -> None:
    """A channel in a namespace that is not configured answers 102 unknown channel."""
    a = await clients()
    for method, request in (
        ("subscribe", {"channel": "nosuch:room"}),
        ("publish", {"channel": "nosuch:room", "data": {}}),
        ("history", {"channel": "nosuch:room"}),
        ("presence", {"channel": "nosuch:room"}),
    ):
        reply = await a.call(method, request)
        assert reply["error"] == {"code": 102, "message": "unknown channel"}, method


async def test_invalid_subscribe_requests(clients: Any) -> None:
    """A channel name over 255 bytes is 107; a map/shared-poll subscription type is 108."""
    a = await clients()
    reply = await a.call("subscribe", {"channel": "chat:" + "x" * 251})
    assert reply["error"] == {"code": 107, "message": "bad request"}
    reply = await a.call("subscribe", {"channel": CHANNEL, "type": 1})
    assert reply["error"] == {"code": 108, "message": "not available"}
    await a.subscribe(CHANNEL)  # neither left a subscription behind


async def test_unknown_format_is_refused_at_the_handshake(server: Server) -> None:
    """?format= naming no codec fails the upgrade with HTTP 400."""
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as caught:
        await WsClient.open(ws_url(server, "format=xml"))
    assert caught.value.response.status_code == 400


async def test_second_subscribe_to_one_channel_is_already_subscribed(clients: Any) -> None:
    """Subscribing twice to one channel answers 105, also when both are in one frame."""
    a = await clients()
    await a.subscribe(CHANNEL)
    reply = await a.call("subscribe", {"channel": CHANNEL})
    assert reply["error"] == {"code": 105, "message": "already subscribed"}
    first, second = await a.batch(
        ("subscribe", {"channel": "chat:twice"}), ("subscribe", {"channel": "chat:twice"})
    )
    assert "subscribe" in first
    assert second["error"]["code"] == 105


async def test_channel_limit_per_client(client_factory: ClientFactory) -> None:
    """Over client.max_channels_per_client subscriptions answers 106 limit exceeded."""
    server = await client_factory.start(**{"client.max_channels_per_client": 2})
    a = await client_factory.client(server)
    await a.subscribe("chat:1")
    await a.subscribe("chat:2")
    reply = await a.call("subscribe", {"channel": "chat:3"})
    assert reply["error"] == {"code": 106, "message": "limit exceeded"}
    await a.call("unsubscribe", {"channel": "chat:1"})
    await a.subscribe("chat:3")  # a freed slot can be used again
    await a.close()


# ------------------------------------------------------------------- framing


async def test_publications_in_one_turn_are_coalesced_into_one_frame(server: Server) -> None:
    """Several publications in one loop turn reach a subscriber as ONE frame, one per line."""
    a = await open_client(ws_url(server))
    await a.subscribe(CHANNEL)
    before = len(a.raw_frames)
    for i in range(5):  # the memory broker never suspends: all five in this turn
        await server.node.publish(CHANNEL, json.dumps({"n": i}).encode())
    pubs = await a.pubs(5)
    assert [p["data"]["n"] for p in pubs] == list(range(5))
    new_frames = a.raw_frames[before:]
    assert len(new_frames) == 1
    lines = str(new_frames[0]).split("\n")
    assert len(lines) == 5
    assert [json.loads(line)["push"]["pub"]["data"]["n"] for line in lines] == list(range(5))
    await a.close()


async def test_several_commands_in_one_frame(server: Server, client_factory: ClientFactory) -> None:
    """One frame may carry connect and further commands; each gets its own reply in order."""
    a = await client_factory.open(server)
    connect, sub1, sub2, presence = await a.batch(
        ("connect", {}),
        ("subscribe", {"channel": "chat:a"}),
        ("subscribe", {"channel": "chat:b"}),
        ("presence", {"channel": "chat:a"}),
    )
    assert connect["connect"]["client"]
    assert "subscribe" in sub1 and "subscribe" in sub2
    assert list(presence["presence"]["presence"]) == [connect["connect"]["client"]]
    await a.close()


async def test_trailing_newline_in_a_frame_is_tolerated(server: Server) -> None:
    """A JSON frame ending in a newline is accepted (SDKs and Centrifuge allow it)."""
    a = await WsClient.open(ws_url(server))
    future = a.expect(1)
    await a.send_raw('{"id":1,"connect":{}}\n')
    reply = await asyncio.wait_for(future, WAIT)
    assert reply["connect"]["client"]
    await a.close()


# -------------------------------------------------------------------- protobuf


@pytest.mark.parametrize("how", ["subprotocol", "format=protobuf", "cf_protocol=protobuf"])
async def test_protobuf_connection(server: Server, how: str) -> None:
    """Protobuf by subprotocol (echoed) or query (?format=, old cf_protocol=): full round trip."""
    if how == "subprotocol":
        p = await WsClient.open(ws_url(server), protobuf=True)
        assert p.ws.subprotocol == "centrifuge-protobuf"
    else:
        p = await WsClient.open(ws_url(server, how), protobuf=True, subprotocols=[])
        assert p.ws.subprotocol is None
    result = await p.connect()
    assert result["client"] and result["ping"] > 0 and result["pong"] is True
    assert isinstance(p.raw_frames[0], bytes)

    sub = await p.subscribe(CHANNEL)
    assert sub["recoverable"] is True
    publish = await p.call("publish", {"channel": CHANNEL, "data": b'{"text":"pb"}'})
    assert "publish" in publish and "error" not in publish  # present even when empty
    pub = (await p.push("pub"))["pub"]
    assert pub["data"] == b'{"text":"pb"}'
    assert pub["info"]["client"] == p.client_id
    assert pub["offset"] == 1

    error = await p.call("subscribe", {"channel": "lobby"})
    assert error["error"]["code"] == 103 and error["error"]["message"] == "permission denied"
    await p.close()


async def test_json_and_protobuf_clients_share_a_channel(
    server: Server, client_factory: ClientFactory
) -> None:
    """JSON publications reach Protobuf subscribers as JSON bytes, and the other way round."""
    j = await client_factory.client(server)
    p = await client_factory.client(server, protobuf=True)
    await j.subscribe(CHANNEL)
    await p.subscribe(CHANNEL)
    await j.publish(CHANNEL, {"from": "json"})
    await p.publish(CHANNEL, {"from": "protobuf"})  # sent as the JSON text's bytes
    for client in (j, p):
        pubs = await client.pubs(2)
        assert [payload(x["data"]) for x in pubs] == [{"from": "json"}, {"from": "protobuf"}]
    history = (await p.call("history", {"channel": CHANNEL, "limit": -1}))["history"]
    assert [payload(x["data"]) for x in history["publications"]] == [
        {"from": "json"},
        {"from": "protobuf"},
    ]
    await j.close()
    await p.close()


async def test_newlines_in_a_protobuf_payload_do_not_break_json_framing(
    server: Server, client_factory: ClientFactory
) -> None:
    """Pretty-printed JSON from a Protobuf publisher reaches JSON clients as one line each."""
    j = await client_factory.client(server)
    p = await client_factory.client(server, protobuf=True)
    await j.subscribe(CHANNEL)
    for n in range(3):  # back to back: likely one coalesced frame
        await p.publish(CHANNEL, json.dumps({"n": n, "list": [1, 2]}, indent=2).encode())
    pubs = await j.pubs(3)
    assert [x["data"] for x in pubs] == [{"n": n, "list": [1, 2]} for n in range(3)]
    await j.close()
    await p.close()


async def test_binary_payload_closes_json_subscribers_with_3506(
    server: Server, client_factory: ClientFactory
) -> None:
    """Binary data from a Protobuf publisher closes JSON subscribers 3506; Protobuf ones get it."""
    j = await client_factory.client(server)
    p = await client_factory.client(server, protobuf=True)
    await j.subscribe(CHANNEL)
    await p.subscribe(CHANNEL)
    await p.publish(CHANNEL, b"\xff\x00 not json")
    assert (await p.push("pub"))["pub"]["data"] == b"\xff\x00 not json"
    assert await j.closed() == (3506, "inappropriate protocol")
    await p.close()


async def test_binary_payload_in_history_closes_json_client_with_3506(
    server: Server, client_factory: ClientFactory
) -> None:
    """A JSON client asking history that holds binary data is closed 3506, never sent bad JSON."""
    p = await client_factory.client(server, protobuf=True)
    await p.publish(CHANNEL, b"\xff\x00 not json")
    j = await client_factory.client(server)
    with contextlib.suppress(ConnectionError):
        await j.call("history", {"channel": CHANNEL, "limit": -1})
    assert await j.closed() == (3506, "inappropriate protocol")
    await p.close()


async def test_binary_payload_in_recovery_closes_json_client_with_3506(
    server: Server, client_factory: ClientFactory
) -> None:
    """A JSON client recovering binary publications is closed 3506, never sent bad JSON."""
    j = await client_factory.client(server)
    epoch = (await j.subscribe(CHANNEL))["epoch"]
    await j.call("unsubscribe", {"channel": CHANNEL})
    p = await client_factory.client(server, protobuf=True)
    await p.publish(CHANNEL, b"\xff\x00 not json")
    with contextlib.suppress(ConnectionError):
        await j.call(
            "subscribe", {"channel": CHANNEL, "recover": True, "offset": 0, "epoch": epoch}
        )
    assert await j.closed() == (3506, "inappropriate protocol")
    await p.close()


async def test_centrifuge_json_subprotocol_is_echoed(server: Server) -> None:
    """A client offering the centrifuge-json subprotocol gets it back and speaks JSON."""
    a = await WsClient.open(ws_url(server), subprotocols=["centrifuge-json"])
    assert a.ws.subprotocol == "centrifuge-json"
    await a.connect()
    assert isinstance(a.raw_frames[0], str)
    await a.close()


# ---------------------------------------------------------------------- gauges


async def test_gauges_and_presence_return_to_zero_when_everyone_leaves(
    server: Server, client_factory: ClientFactory
) -> None:
    """Once every client is gone: no sessions, connections and subscriptions gauges at 0."""
    clients = [await client_factory.client(server) for _ in range(3)]
    for i, client in enumerate(clients):
        await client.subscribe(CHANNEL)
        await client.subscribe(f"chat:own{i}")
    clients[0].abort()
    await clients[1].call("unsubscribe", {"channel": CHANNEL})
    for client in clients[1:]:
        await client.close()

    async def drained() -> bool:
        text = server.node.metrics.render()[0].decode()
        return (
            not server.node.sessions
            and "hubbub_connections 0.0" in text
            and "hubbub_subscriptions 0.0" in text
        )

    await eventually(drained)
    assert await server.node.presence.presence(CHANNEL) == {}


# ---------------------------------------------------------------------- health


async def test_health_endpoints_on_the_public_port(server: Server) -> None:
    """/healthz and /readyz answer 200 on the public WebSocket port; other paths 404."""
    port = server.websocket.port
    status, body = await http_get(port, "/healthz")
    assert status == 200 and body.strip() == b"ok"
    status, body = await http_get(port, "/readyz")
    assert status == 200 and body.strip() == b"ready"
    status, _ = await http_get(port, "/nowhere")
    assert status == 404
