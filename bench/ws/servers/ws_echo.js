// Echo server on the Node `ws` package, for the benchmark.
// Compression off, 64 MiB message limit. Usage: node ws_echo.js PORT
"use strict";
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2]);
const wss = new WebSocketServer({
  host: "127.0.0.1",
  port,
  perMessageDeflate: false,
  maxPayload: 64 * 1024 * 1024,
});
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on("error", () => {});
});
process.on("SIGTERM", () => process.exit(0));
