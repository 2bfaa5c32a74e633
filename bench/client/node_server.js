// Socket.IO server for the client benchmark: the Node socket.io package.
// "echo" acknowledges with its argument. Compression off.
// Usage: node node_server.js --port P   (socket.io resolved through NODE_PATH)
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[process.argv.indexOf("--port") + 1]);
const httpServer = http.createServer();
const io = new Server(httpServer, {
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
});

io.on("connection", (socket) => {
  socket.on("echo", (data, ack) => ack(data));
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`node socket.io ${require("socket.io/package.json").version} ready`);
});
process.on("SIGTERM", () => process.exit(0));
