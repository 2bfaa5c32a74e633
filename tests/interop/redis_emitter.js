// The npm @socket.io/redis-emitter publishing into a cluster, for wsio's classic-mode tests.
//
// Usage: node redis_emitter.js REDIS_PORT
// It publishes, in order:
//   emitter.to("room").emit("news", "to room", 1)
//   emitter.emit("news", "to all", 2)
//   emitter.except("room").emit("news", "except room", 3)
//   emitter.of("/admin").emit("news", "admin", 4)
//   emitter.in("room").socketsJoin("joined")
//   emitter.to("joined").emit("news", "to joined", 5)
//   emitter.serverSideEmit("ping", "from emitter")
//   emitter.in("kick").disconnectSockets(true)
// then prints {event: "done"} and exits.

"use strict";

const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");

async function main() {
  const client = createClient({ url: `redis://127.0.0.1:${Number(process.argv[2])}` });
  await client.connect();
  const emitter = new Emitter(client);
  emitter.to("room").emit("news", "to room", 1);
  emitter.emit("news", "to all", 2);
  emitter.except("room").emit("news", "except room", 3);
  emitter.of("/admin").emit("news", "admin", 4);
  emitter.in("room").socketsJoin("joined");
  // The join request and the broadcast travel on different channels: give the join a moment.
  await new Promise((r) => setTimeout(r, 200));
  emitter.to("joined").emit("news", "to joined", 5);
  emitter.serverSideEmit("ping", "from emitter");
  emitter.in("kick").disconnectSockets(true);
  await client.ping(); // everything above was sent before this answer
  process.stdout.write(JSON.stringify({ event: "done" }) + "\n");
  await client.quit();
}

setTimeout(() => {
  process.stderr.write("timeout\n");
  process.exit(1);
}, 10000).unref();

main().catch((e) => {
  process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
