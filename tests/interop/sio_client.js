// The official socket.io-client (Node) against a wsio Socket.IO server.
//
// usage: node sio_client.js <url> <polling|websocket|upgrade> <json|msgpack>
//
// Runs one scenario with many checks against the server that
// tests/interop/test_socketio_interop.py sets up, and prints one JSON object
// per line: {"check": <name>, "value": <what was observed>}. The Python test
// asserts on those values (and on what the server saw). Exits 0 when the
// scenario ran to its end, 1 on an unexpected error or after the time guard.
"use strict";

const { io } = require("socket.io-client");

const [url, mode, parserName] = process.argv.slice(2);
const out = (check, value) => process.stdout.write(JSON.stringify({ check, value }) + "\n");

const guard = setTimeout(() => {
  out("guard", "scenario timed out");
  process.exit(1);
}, 25000);

const baseOptions = { reconnection: false, timeout: 4000, forceNew: true };
if (mode === "polling") baseOptions.transports = ["polling"];
else if (mode === "websocket") baseOptions.transports = ["websocket"];
else if (mode !== "upgrade") throw new Error(`unknown mode ${mode}`);
if (parserName === "msgpack") baseOptions.parser = require("socket.io-msgpack-parser");

const sockets = [];
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function open(nsp, extra = {}) {
  const socket = io(url + nsp, { ...baseOptions, ...extra });
  sockets.push(socket);
  return socket;
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(err));
  });
}

function refused(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => reject(new Error("connected but should have been refused")));
    socket.once("connect_error", (err) =>
      resolve({ message: err.message, data: err.data === undefined ? null : err.data, active: socket.active }),
    );
  });
}

// emit with a callback; resolves with the array of acknowledgement arguments
function ackArgs(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(4000).emit(event, ...args, (err, ...answer) => (err ? reject(err) : resolve(answer)));
  });
}

// bytes as a hex string, for JSON output
function hex(value) {
  if (value instanceof ArrayBuffer) value = new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return "hex:" + Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex");
  if (Array.isArray(value)) return value.map(hex);
  if (value && typeof value === "object") {
    const copy = {};
    for (const [k, v] of Object.entries(value)) copy[k] = hex(v);
    return copy;
  }
  return value;
}

function waitFor(socket, event) {
  return new Promise((resolve) => socket.once(event, (...args) => resolve(args)));
}

async function main() {
  // -- connect: the CONNECT reply comes before what the connect handler emitted
  const a = open("/", { auth: { token: "ok", name: "A", rooms: ["ra"] } });
  const packets = [];
  a.io.on("packet", (p) => packets.push([p.type, p.nsp, Array.isArray(p.data) ? p.data[0] : null]));
  const welcome = waitFor(a, "welcome");
  await connected(a);
  const [welcomeId, welcomeAuth, welcomeRooms] = await welcome;
  out("connect", {
    id: a.id,
    engineId: a.io.engine.id,
    welcomeId,
    welcomeAuth,
    welcomeRooms,
    packets: packets.slice(0, 3),
    recovered: a.recovered,
  });

  // -- namespaces
  const admin = open("/admin");
  const adminAuth = waitFor(admin, "auth");
  await connected(admin);
  out("admin_auth", (await adminAuth)[0]);
  out("admin_where", await ackArgs(admin, "where"));
  const dyn = open("/dyn-42");
  await connected(dyn);
  out("dynamic", await ackArgs(dyn, "where"));
  out("invalid_namespace", await refused(open("/nope")));
  out("refused", await refused(open("/", { auth: { token: "bad" } })));
  out("middleware_refused", await refused(open("/", { auth: { token: "ok", mw: "deny" } })));
  out("admin_middleware_refused", await refused(open("/admin", { auth: { admin: "no" } })));

  // -- acknowledgements, client -> server
  out("ack_none", await ackArgs(a, "none"));
  out("ack_one", await ackArgs(a, "one", { x: [1, null, "y"] }));
  out("ack_several", await ackArgs(a, "several", 1, "two", { three: 3 }));
  out("ack_promise", await a.timeout(4000).emitWithAck("one", "p"));
  out("catch_all", await ackArgs(a, "no such handler", 5));
  out("handler_error", await ackArgs(a, "fail"));

  // -- acknowledgements, server -> client (the client answers with 0, 1 and 3 arguments)
  a.on("q0", (cb) => cb());
  a.on("q1", (x, cb) => cb(x + 1));
  a.on("q3", (cb) => cb(1, "b", [3]));
  a.on("question", (text, cb) => setTimeout(() => cb("because " + text), 50));
  out("server_calls", await ackArgs(a, "server_calls"));
  out("server_call_timeout", await ackArgs(a, "server_call_timeout"));
  // a handler awaiting socket.call() on its own socket, with later events queued behind it
  const asked = ackArgs(a, "ask_back", "why");
  const after = ackArgs(a, "one", "after");
  out("ask_back", [await asked, await after]);

  // -- order of events of one socket
  for (let i = 0; i < 50; i++) a.emit("seq", i);
  out("order", await ackArgs(a, "seq_done"));

  // -- binary, nested, both directions
  const bin = await ackArgs(a, "binary", {
    raw: Buffer.from([1, 2, 3]),
    nested: [Buffer.from("xyz"), { deep: new Uint8Array([255, 0]) }],
    text: "t",
  });
  out("binary_ack", hex(bin));
  const binEvent = waitFor(a, "bin_event");
  a.emit("send_binary");
  out("binary_event", hex(await binEvent));

  // -- rooms, except, broadcast acks
  const b = open("/", { auth: { token: "ok", name: "B", rooms: ["r1", "r2"] } });
  const c = open("/", { auth: { token: "ok", name: "C", rooms: ["r2"] } });
  await Promise.all([connected(b), connected(c)]);
  const inbox = { a: [], b: [], c: [] };
  for (const [name, s] of [["a", a], ["b", b], ["c", c]]) {
    s.on("msg", (...args) => inbox[name].push(hex(args)));
  }
  // Each step ends with an acknowledged "mark": the server emits "marked" to
  // everyone, so what each client received before that is complete.
  async function step(label, trigger) {
    await trigger();
    const marks = [a, b, c].map((s) => waitFor(s, "marked"));
    await ackArgs(a, "mark");
    await Promise.all(marks);
    out("rooms_" + label, { a: inbox.a.splice(0), b: inbox.b.splice(0), c: inbox.c.splice(0) });
  }
  await step("to_r1", () => ackArgs(a, "to_room", ["r1"], "hello r1"));
  await step("to_r1_r2", () => ackArgs(b, "to_room", ["r1", "r2"], "from b"));
  await step("broadcast", () => ackArgs(c, "broadcast", "from c"));
  await step("server_except", () => ackArgs(a, "server_to_except", ["r2"], ["r1"], "r2 not r1"));
  await step("join_then_to", async () => {
    await ackArgs(a, "join", "r1");
    await ackArgs(b, "to_room", ["r1"], "b to r1");
  });
  await step("volatile", () => ackArgs(c, "volatile", "vol"));
  b.on("survey", (q, cb) => cb("b says " + q));
  c.on("survey", (q, cb) => {
    if (q === "all") cb("c says all");
  });
  out("broadcast_ack_all", await ackArgs(a, "survey", ["r2"], "all", 2));
  out("broadcast_ack_partial", await ackArgs(a, "survey", ["r2"], "some", 0.4));
  out("fetch_sockets", await ackArgs(a, "fetch", ["r2"]));

  // -- disconnect reasons (the server records them by socket id)
  const ids = {};
  const clientReasons = {};
  async function leave(label, how, extra = {}) {
    const s = open("/", { auth: { token: "ok", name: label }, ...extra });
    await connected(s);
    ids[label] = s.id;
    const gone = waitFor(s, "disconnect");
    await how(s);
    clientReasons[label] = (await gone)[0];
  }
  await leave("client", (s) => s.disconnect());
  await leave("server", (s) => s.emit("kick"));
  await leave("transport", (s) => s.io.engine.close());
  await leave("parse", (s) => s.io.engine.send(parserName === "msgpack" ? "not msgpack" : "2[oops"));
  await leave("ping", (s) => {
    // stop answering the server's pings
    const engine = s.io.engine;
    const send = engine._sendPacket.bind(engine);
    engine._sendPacket = (type, ...rest) => (type === "pong" ? undefined : send(type, ...rest));
  });
  out("disconnects", { ids, clientReasons });

  // the first connection is still fine after all that
  out("still_up", await ackArgs(a, "one", "up"));
  out("transport", a.io.engine.transport.name);
  for (const s of sockets) s.disconnect();
}

main().then(
  () => {
    clearTimeout(guard);
    out("done", true);
    setTimeout(() => process.exit(0), 50);
  },
  (err) => {
    out("error", String((err && err.stack) || err));
    process.exit(1);
  },
);
