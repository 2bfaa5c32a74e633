"use strict";
// A Node `ws` server for the interop tests: node ws_server.js PORT
//
// The request path is /<variant>/<action>/<id>:
//   variant: plain (no compression), deflate (permessage-deflate, threshold 0),
//            tight (all four permessage-deflate parameters), small (maxPayload 1000)
//   action, run on each message received:
//     echo          send it back
//     close         close with 4001 "node bye"
//     terminate     drop the TCP connection (no Close frame)
//     invalid-utf8  answer with a text frame that is not UTF-8
//     fragments     answer with a text message in two frames
//     ping          send a Ping "node-ping"
//     big           answer with 16 MiB of binary
// Every event is written to stdout as one JSON line tagged with the id.

const http = require("http");
const crypto = require("crypto");
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2]);
const log = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const sha = (data) => crypto.createHash("sha256").update(data).digest("hex");

const big = 64 * 1024 * 1024;
const variants = {
  plain: new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: big }),
  deflate: new WebSocketServer({
    noServer: true,
    perMessageDeflate: { threshold: 0 },
    maxPayload: big,
  }),
  tight: new WebSocketServer({
    noServer: true,
    perMessageDeflate: {
      threshold: 0,
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 10,
      clientMaxWindowBits: 11,
    },
    maxPayload: big,
  }),
  small: new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1000 }),
};

function run(ws, action, id) {
  log({ id, event: "open", extensions: ws.extensions, protocol: ws.protocol });
  ws.on("message", (data, isBinary) => {
    log({ id, event: "message", binary: isBinary, length: data.length, sha: sha(data) });
    switch (action) {
      case "echo":
        ws.send(data, { binary: isBinary });
        break;
      case "close":
        ws.close(4001, "node bye");
        break;
      case "terminate":
        ws.terminate();
        break;
      case "invalid-utf8":
        ws.send(Buffer.from([0x6f, 0x6b, 0xed, 0xa0, 0x80]), { binary: false });
        break;
      case "fragments":
        ws.send("frag", { fin: false });
        ws.send("mént", { fin: true });
        break;
      case "ping":
        ws.ping("node-ping");
        break;
      case "big":
        ws.send(Buffer.alloc(16 * 1024 * 1024, 7));
        break;
      default:
        ws.close(1008, "unknown action");
    }
  });
  ws.on("ping", (data) => log({ id, event: "ping", data: data.toString() }));
  ws.on("pong", (data) => log({ id, event: "pong", data: data.toString() }));
  ws.on("close", (code, reason) => log({ id, event: "close", code, reason: reason.toString() }));
  ws.on("error", (err) => log({ id, event: "error", message: err.message, code: err.code }));
}

const server = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
server.on("upgrade", (req, socket, head) => {
  const [, variant, action, id] = new URL(req.url, "http://localhost").pathname.split("/");
  const wss = variants[variant];
  if (!wss) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => run(ws, action, id));
});
server.listen(port, "127.0.0.1", () => log({ event: "listening", port }));

process.on("SIGTERM", () => {
  for (const wss of Object.values(variants)) for (const ws of wss.clients) ws.terminate();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
});
