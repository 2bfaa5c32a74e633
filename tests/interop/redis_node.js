// An official Node `socket.io` node of a Redis-backed cluster, for wsio's mixed-cluster tests.
//
// Usage: node redis_node.js PORT REDIS_PORT MODE
//   MODE "sharded": createShardedAdapter (subscription mode "dynamic", the default)
//   MODE "classic": createAdapter
//
// Every client joins "room" and gets socket.data = {node: "node", n: <its index>}.
// Client events: q(x, ack) acknowledges with x * 100.
// Server-side events from other nodes: ping(x[, ack]) logs {event: "ping", x} and
// acknowledges with "node got <x>".
//
// Commands, one JSON object per stdin line, each answered by one stdout line
// {id, ...} (and any error as {id, error}):
//   {id, cmd: "emit", rooms, exceptRooms, args, binary}  io.to(rooms).except(exceptRooms).emit(...args)
//                                                    (binary: a Buffer of those bytes is appended)
//   {id, cmd: "fetch", rooms}                        -> {sockets: [{id, rooms, data, address, auth, local}]}
//   {id, cmd: "sse", args}                           serverSideEmit without ack
//   {id, cmd: "sseAck", args}                        -> {responses} (serverSideEmitWithAck)
//   {id, cmd: "join", target, rooms}                 io.in(target).socketsJoin(rooms)
//   {id, cmd: "leave", target, rooms}                io.in(target).socketsLeave(rooms)
//   {id, cmd: "disconnect", target}                  io.in(target).disconnectSockets(true)
//   {id, cmd: "call", rooms, timeout}                io.to(rooms).timeout(t).emit("q", 7, cb) -> {responses} or {error, responses}
//   {id, cmd: "count"}                               -> {count} (serverCount)
// Other stdout lines: {event: "listening"}, {event: "connection", id},
// {event: "ping", x}, {event: "disconnect", id, reason}.

"use strict";

const http = require("http");
const { createClient } = require("redis");
const { Server } = require("socket.io");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { out, serveCommands } = require("./json_lines");

const port = Number(process.argv[2]);
const redisPort = Number(process.argv[3]);
const mode = process.argv[4] || "sharded";

async function main() {
  const pub = createClient({ url: `redis://127.0.0.1:${redisPort}` });
  const sub = pub.duplicate();
  pub.on("error", (e) => process.stderr.write(`pub: ${e}\n`));
  sub.on("error", (e) => process.stderr.write(`sub: ${e}\n`));
  await Promise.all([pub.connect(), sub.connect()]);
  const adapter = mode === "sharded" ? createShardedAdapter(pub, sub) : createAdapter(pub, sub);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter, cors: { origin: "*" } });
  let n = 0;

  io.on("connection", (socket) => {
    socket.data = { node: "node", n: n++ };
    socket.join("room");
    socket.on("q", (x, ack) => ack(x * 100));
    socket.on("disconnect", (reason) => out({ event: "disconnect", id: socket.id, reason }));
    out({ event: "connection", id: socket.id });
  });

  io.on("ping", (x, ack) => {
    out({ event: "ping", x });
    if (typeof ack === "function") ack(`node got ${x}`);
  });

  const target = (rooms) => (rooms && rooms.length ? io.in(rooms) : io);

  const commands = {
    async emit(c) {
      let op = io.to(c.rooms || []);
      if (c.exceptRooms && c.exceptRooms.length) op = op.except(c.exceptRooms);
      const args = [...c.args];
      if (c.binary) args.push(Buffer.from(c.binary));
      op.emit(...args);
      return {};
    },
    async fetch(c) {
      const sockets = await target(c.rooms).fetchSockets();
      return {
        sockets: sockets.map((s) => ({
          id: s.id,
          rooms: [...s.rooms].sort(),
          data: s.data,
          address: s.handshake.address,
          auth: s.handshake.auth,
          local: io.of("/").sockets.has(s.id),
        })),
      };
    },
    async sse(c) {
      io.serverSideEmit(...c.args);
      return {};
    },
    async sseAck(c) {
      const responses = await io.serverSideEmitWithAck(...c.args);
      return { responses };
    },
    async join(c) {
      target(c.target).socketsJoin(c.rooms);
      return {};
    },
    async leave(c) {
      target(c.target).socketsLeave(c.rooms);
      return {};
    },
    async disconnect(c) {
      target(c.target).disconnectSockets(true);
      return {};
    },
    async call(c) {
      return await new Promise((resolve) => {
        io.to(c.rooms || [])
          .timeout(c.timeout || 3000)
          .emit("q", 7, (err, responses) => {
            resolve(err ? { error: String(err), responses } : { responses });
          });
      });
    },
    async count() {
      return { count: await io.of("/").adapter.serverCount() };
    },
  };

  serveCommands(commands);

  const stop = () => {
    io.close();
    Promise.allSettled([pub.quit(), sub.quit()]).then(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on("SIGTERM", stop);
  process.stdin.on("end", stop);

  httpServer.listen(port, "127.0.0.1", () => out({ event: "listening", port }));
}

main().catch((e) => {
  process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
