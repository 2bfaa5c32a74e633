// Socket.IO benchmark server: the Node socket.io package.
// The same handlers as the Python servers: "echo" acknowledges with its argument,
// "join" joins the room it names then acknowledges, "blast" emits "msg" to the
// room "bench". WebSocket transport only, no compression.
// Usage: node node_sio.js --port P   (socket.io resolved through NODE_PATH)
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[process.argv.indexOf("--port") + 1]);
const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
});

io.on("connection", (socket) => {
  socket.on("echo", (data, ack) => ack(data));
  socket.on("join", (room, ack) => {
    socket.join(room);
    ack();
  });
  socket.on("blast", (data) => {
    io.to("bench").emit("msg", data);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log("node socket.io ready");
});
process.on("SIGTERM", () => process.exit(0));
