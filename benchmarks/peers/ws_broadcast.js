// A minimal broadcast server on Node's `ws`: the same plain protocol as
// picows_broadcast.py (S<channel> → OK; P<channel>\n<payload> → M<channel>\n<payload>
// to every subscriber, one frame each; E<payload> → echoed). No compression.
//
//   NODE_PATH=/tmp/hubbub-bench-node/node_modules node benchmarks/peers/ws_broadcast.js --port 8200
"use strict";

const { WebSocketServer } = require("ws");

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

const host = option("--host", "127.0.0.1");
const port = Number(option("--port", "8200"));
const hub = new Map(); // channel → Set of sockets

const server = new WebSocketServer({ host, port, perMessageDeflate: false, clientTracking: false });

server.on("connection", (socket) => {
  const channels = [];
  socket.on("message", (data) => {
    const op = data[0];
    if (op === 0x50) { // P
      const nl = data.indexOf(10);
      const channel = data.toString("latin1", 1, nl);
      const subscribers = hub.get(channel);
      if (!subscribers) return;
      const out = Buffer.from(data);
      out[0] = 0x4d; // M
      for (const subscriber of subscribers) subscriber.send(out, { binary: false });
    } else if (op === 0x45) { // E
      socket.send(data, { binary: false });
    } else if (op === 0x53) { // S
      const channel = data.toString("latin1", 1);
      let subscribers = hub.get(channel);
      if (!subscribers) hub.set(channel, (subscribers = new Set()));
      subscribers.add(socket);
      channels.push(channel);
      socket.send("OK");
    }
  });
  socket.on("close", () => {
    for (const channel of channels) {
      const subscribers = hub.get(channel);
      if (!subscribers) continue;
      subscribers.delete(socket);
      if (subscribers.size === 0) hub.delete(channel);
    }
  });
});

server.on("listening", () => console.log(`node ws broadcast on ws://${host}:${port}/`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
