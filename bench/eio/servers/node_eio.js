// Engine.IO benchmark server: the Node engine.io package.
// The "message" handler sends every message back to its socket. Polling and
// WebSocket transports with upgrades (the defaults), no HTTP or WebSocket
// compression.
// Usage: node node_eio.js --port P   (engine.io resolved through NODE_PATH)
"use strict";

const http = require("http");
const engine = require("engine.io");

const port = Number(process.argv[process.argv.indexOf("--port") + 1]);
const httpServer = http.createServer();
const server = engine.attach(httpServer, { httpCompression: false, perMessageDeflate: false });

server.on("connection", (socket) => {
  socket.on("message", (data) => socket.send(data));
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log("node engine.io ready");
});
process.on("SIGTERM", () => process.exit(0));
