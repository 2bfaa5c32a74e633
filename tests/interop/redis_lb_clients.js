// Official socket.io-client clients of a cluster behind a load balancer, for wsio's cluster tests.
//
// Usage: node redis_lb_clients.js URL N TRANSPORTS
//   N clients; client i connects from the loopback address 127.0.0.(i + 2), so that
//   nginx's "hash $remote_addr" spreads them over the nodes. TRANSPORTS is a comma
//   list ("polling", "websocket", "polling,websocket"). Clients reconnect quickly.
//
// Each client joins "chat" on the server side and gets welcome({tag, id}); it
// prints {event: "welcome", client, tag, transport} every time (after a
// reconnection too) and {event: "disconnect", client, reason}.
//
// Commands, one JSON object per stdin line, each answered by one stdout line {id, ...}:
//   {id, cmd: "connected"}        once every client is connected: {tags: [tag of each client]}
//   {id, cmd: "round", name, wait}  every client emits say("<name>:<i>") with an ack; once every
//                                 client has received all N texts (or after `wait` ms, 6000 by
//                                 default): {results: [{client, tag, transport, got: [texts], acked}]}
//   {id, cmd: "ask", client, event}  that client emits `event` with an ack: {answer} or {error}
//   {id, cmd: "traffic", on}      start/stop background say("bg:<k>") every 20 ms from
//                                 connected clients in turn: {sent} when stopped

"use strict";

const http = require("http");
const { io } = require("socket.io-client");
const { out, serveCommands } = require("./json_lines");

const url = process.argv[2];
const count = Number(process.argv[3]);
const transports = (process.argv[4] || "polling,websocket").split(",");

const clients = [];
for (let i = 0; i < count; i++) {
  const localAddress = `127.0.0.${i + 2}`;
  const socket = io(url, {
    transports,
    forceNew: true,
    agent: new http.Agent({ localAddress, keepAlive: true }),
    localAddress,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    randomizationFactor: 0,
    timeout: 3000,
  });
  const state = { socket, tag: null, got: new Set() };
  socket.on("welcome", (w) => {
    state.tag = w.tag;
    out({ event: "welcome", client: i, tag: w.tag, transport: socket.io.engine.transport.name });
  });
  socket.on("said", (text) => state.got.add(text));
  socket.on("disconnect", (reason) => out({ event: "disconnect", client: i, reason }));
  clients.push(state);
}

const ready = (c) => c.socket.connected && c.tag !== null;

function until(predicate, timeout) {
  return new Promise((resolve) => {
    const start = Date.now();
    const check = () => {
      if (predicate() || Date.now() - start > timeout) resolve();
      else setTimeout(check, 20);
    };
    check();
  });
}

let traffic = null;
let sent = 0;

const commands = {
  async connected() {
    await until(() => clients.every(ready), 15000);
    return { tags: clients.map((c) => (ready(c) ? c.tag : null)) };
  },
  async round(c) {
    const texts = clients.map((_, i) => `${c.name}:${i}`);
    const acked = clients.map(() => null);
    clients.forEach((cl, i) =>
      cl.socket.timeout(5000).emit("say", texts[i], (err, tag) => {
        acked[i] = err ? `error: ${err.message}` : tag;
      }),
    );
    const done = () =>
      acked.every((a) => a !== null) && clients.every((cl) => texts.every((t) => cl.got.has(t)));
    await until(done, c.wait || 6000);
    return {
      results: clients.map((cl, i) => ({
        client: i,
        tag: cl.tag,
        transport: cl.socket.io.engine ? cl.socket.io.engine.transport.name : null,
        got: [...cl.got].filter((t) => t.startsWith(`${c.name}:`)).sort(),
        acked: acked[i],
      })),
    };
  },
  async ask(c) {
    try {
      return { answer: await clients[c.client].socket.timeout(5000).emitWithAck(c.event) };
    } catch (e) {
      return { error: String(e.message) };
    }
  },
  async traffic(c) {
    if (c.on && traffic === null) {
      let k = 0;
      traffic = setInterval(() => {
        const cl = clients[k % clients.length];
        k++;
        if (cl.socket.connected) {
          cl.socket.emit("say", `bg:${k}`);
          sent++;
        }
      }, 20);
      return { sent };
    }
    if (!c.on && traffic !== null) {
      clearInterval(traffic);
      traffic = null;
    }
    return { sent };
  },
};

serveCommands(commands);

const stop = () => {
  clients.forEach((c) => c.socket.disconnect());
  setTimeout(() => process.exit(0), 100);
};
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
