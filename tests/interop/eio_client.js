// The official engine.io-client against a wsio Engine.IO server.
//
// usage: node eio_client.js URL OPTIONS_JSON SCENARIO [PARAMS_JSON]
// Prints one JSON object per line: the client's events, then a "result".
// Scenarios (the server echoes every message, see the Python side):
//   echo    send params.messages, wait for the echoes; with params.then set to
//           "upgrade" or "upgradeError", wait for that event and send them again
//   big     send a text and a binary message of params.text / params.binary
//           bytes, compare the echoes
//   stream  ask the server for params.n numbered messages ("s<i>"), send
//           params.n numbered messages ("c<i>") meanwhile, one every
//           params.interval ms; report the order both arrived in
//   silent  never answer the server's pings; report how the session ends
"use strict";

const crypto = require("crypto");
const { Socket } = require("engine.io-client");

const [url, optionsJson, scenario, paramsJson] = process.argv.slice(2);
const options = JSON.parse(optionsJson || "{}");
const params = JSON.parse(paramsJson || "{}");
const started = Date.now();

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function describe(data) {
  // engine.io-parser hands an empty message ("4") over as undefined
  if (data === undefined) data = "";
  if (typeof data === "string") {
    return data.length > 200
      ? { kind: "text", length: data.length, sha256: sha(data) }
      : { kind: "text", data };
  }
  const buf = Buffer.from(data);
  return buf.length > 200
    ? { kind: "binary", length: buf.length, sha256: sha(buf) }
    : { kind: "binary", hex: buf.toString("hex") };
}

function sha(data) {
  return crypto.createHash("sha256").update(data).digest("hex");
}

function decode(spec) {
  return spec.hex !== undefined ? Buffer.from(spec.hex, "hex") : spec.text;
}

const guard = setTimeout(() => {
  out({ event: "timeout", ms: Date.now() - started });
  process.exit(2);
}, params.timeout || 15000);

const socket = new Socket(url, options);
let finished = false;

function finish(result, close = true) {
  if (finished) return;
  finished = true;
  out({ event: "result", transport: socket.transport && socket.transport.name, ...result });
  if (close) socket.close();
  setTimeout(() => {
    clearTimeout(guard);
    process.exit(0);
  }, 50);
}

socket.on("open", () => out({ event: "open", transport: socket.transport.name, sid: socket.id }));
socket.on("upgrade", (transport) => out({ event: "upgrade", transport: transport.name }));
socket.on("upgradeError", (err) => out({ event: "upgradeError", message: String(err.message) }));
socket.on("error", (err) => out({ event: "error", message: String((err && err.message) || err) }));
socket.on("close", (reason) => {
  out({ event: "close", reason, ms: Date.now() - started });
  if (scenario === "silent") finish({ reason, ms: Date.now() - started }, false);
  else if (!finished) {
    clearTimeout(guard);
    process.exit(1);
  }
});

function waitUpgrade(then) {
  if (socket.transport.name === "websocket") then();
  else socket.once("upgrade", () => then());
}

const scenarios = {
  echo() {
    const messages = params.messages.map(decode);
    const rounds = params.then ? 2 : 1;
    const received = [];
    let round = 0;
    let probeFailed = false;
    socket.on("upgradeError", () => (probeFailed = true));
    const sendRound = () => messages.forEach((m) => socket.send(m));
    const waitThen = (next) => {
      if (params.then === "upgrade") waitUpgrade(next);
      else if (probeFailed) next();
      else socket.once("upgradeError", () => next());
    };
    socket.on("message", (data) => {
      received.push(describe(data));
      if (received.length === messages.length * (round + 1)) {
        round += 1;
        if (round === rounds) finish({ received });
        else waitThen(sendRound);
      }
    });
    socket.on("open", sendRound);
  },

  big() {
    const text = "x".repeat(params.text);
    const binary = Buffer.alloc(params.binary);
    for (let i = 0; i < binary.length; i++) binary[i] = (i * 7) & 0xff;
    const got = {};
    socket.on("message", (data) => {
      if (typeof data === "string") got.text = data === text;
      else got.binary = Buffer.compare(Buffer.from(data), binary) === 0;
      if ("text" in got && "binary" in got) finish(got);
    });
    const go = () => {
      socket.send(text);
      socket.send(binary);
    };
    socket.on("open", () => (params.afterUpgrade ? waitUpgrade(go) : go()));
  },

  stream() {
    const n = params.n;
    const fromServer = [];
    const echoed = [];
    let sent = 0;
    let atUpgrade = null;
    socket.on("upgrade", () => {
      atUpgrade = { sent, fromServer: fromServer.length, echoed: echoed.length };
    });
    socket.on("message", (data) => {
      if (data[0] === "s") fromServer.push(Number(data.slice(1)));
      else if (data[0] === "c") echoed.push(Number(data.slice(1)));
      if (fromServer.length >= n && echoed.length >= n) {
        // let anything duplicated arrive before reporting
        setTimeout(() => finish({ fromServer, echoed, atUpgrade }), 100);
      }
    });
    socket.on("open", () => {
      socket.send(`stream ${n} ${params.interval}`);
      const timer = setInterval(() => {
        socket.send(`c${sent}`);
        sent += 1;
        if (sent === n) clearInterval(timer);
      }, params.interval);
    });
  },

  silent() {
    const send = socket._sendPacket.bind(socket);
    socket._sendPacket = (type, ...rest) => {
      if (type === "pong") {
        out({ event: "pong-dropped", ms: Date.now() - started });
        return;
      }
      send(type, ...rest);
    };
  },
};

if (!scenarios[scenario]) {
  out({ event: "error", message: `unknown scenario ${scenario}` });
  process.exit(3);
}
scenarios[scenario]();
