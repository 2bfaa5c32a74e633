// An official Node `socket.io` server for wsio's Socket.IO client tests.
//
// Usage: node sio_node_server.js PORT ['{"recovery": true, ...}']
//
// Options (JSON, all optional):
//   tag: "a"              a name for this server process, logged with every line
//   recovery: true        connectionStateRecovery (60 s window, middlewares skipped)
//   msgpack: true         the socket.io-msgpack-parser parser
//   pingInterval, pingTimeout, transports   passed to the server
//   lbCookie: "lb=a"      set this cookie on the handshake response, as a
//                         cookie-based sticky load balancer would
//
// Namespaces "/" and "/admin" have the handlers below; "/private" refuses,
// from a middleware, every client whose auth has no token "secret", with
// data {code: 401, hint: "token"}. Every socket joins the room "room".
//
// Events the server handles (args are the client's):
//   echo(...args, ack)       acknowledges with the same arguments
//   record(...args[, ack])   logs {event: "recv", args}; acknowledges with none
//   flaky(n, ack)            logs {event: "flaky", n}; acknowledges n, but not
//                            the first time it sees n (the ack is "lost")
//   ask(name, ...args)       emits name(...args) to the client with an ack and a
//                            5 s timeout, then emits "answer" with the ack's
//                            arguments as one array (or {error})
//   burst(n)                 emits "seq"(i) for i in 0..n-1
//   drop(n, delay)           closes the client's connection, then after delay
//                            ms emits "missed"(i) for i in 0..n-1 to "room"
//   kick()                   disconnects the socket from its namespace
// On connection the server emits "welcome"({nsp, tag, recovered}).
//
// One JSON object per line goes to stdout: listening, connection, recv,
// flaky, disconnect, request (method, url, cookie of every HTTP request).

"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2]);
const options = process.argv[3] ? JSON.parse(process.argv[3]) : {};
const tag = options.tag || "node";

function log(obj) {
  process.stdout.write(JSON.stringify({ tag, ...obj }) + "\n");
}

const httpServer = http.createServer();

const serverOptions = {
  serveClient: false,
  pingInterval: options.pingInterval || 25000,
  pingTimeout: options.pingTimeout || 20000,
};
if (options.transports) serverOptions.transports = options.transports;
if (options.recovery) {
  serverOptions.connectionStateRecovery = {
    maxDisconnectionDuration: 60000,
    skipMiddlewares: true,
  };
}
if (options.msgpack) serverOptions.parser = require("socket.io-msgpack-parser");

const io = new Server(httpServer, serverOptions);
// After the server attached (it takes over the existing "request" listeners).
for (const kind of ["request", "upgrade"]) {
  httpServer.prependListener(kind, (req) => {
    log({ event: "request", kind, url: req.url, cookie: req.headers.cookie || null });
  });
}

if (options.lbCookie) {
  io.engine.on("initial_headers", (headers) => {
    headers["set-cookie"] = [`${options.lbCookie}; Path=/`];
  });
}

const flakySeen = new Set();

function setup(nsp) {
  nsp.on("connection", (socket) => {
    log({
      event: "connection",
      nsp: nsp.name,
      id: socket.id,
      engine: socket.conn.id,
      recovered: socket.recovered,
      auth: socket.handshake.auth,
      transport: socket.conn.transport.name,
    });
    socket.join("room");
    socket.emit("welcome", { nsp: nsp.name, tag, recovered: socket.recovered });

    socket.on("echo", (...args) => {
      const ack = args.pop();
      if (typeof ack === "function") ack(...args);
    });
    socket.on("record", (...args) => {
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
      log({ event: "recv", nsp: nsp.name, id: socket.id, args });
      if (ack) ack();
    });
    socket.on("flaky", (n, ack) => {
      log({ event: "flaky", n });
      if (flakySeen.has(n)) {
        ack(n);
      } else {
        flakySeen.add(n);
      }
    });
    socket.on("ask", (name, ...args) => {
      socket.timeout(5000).emit(name, ...args, (err, ...answer) => {
        socket.emit("answer", err ? { error: err.message } : answer);
      });
    });
    socket.on("burst", (n) => {
      for (let i = 0; i < n; i++) socket.emit("seq", i);
    });
    socket.on("drop", (n, delay) => {
      socket.conn.close();
      setTimeout(() => {
        for (let i = 0; i < n; i++) nsp.to("room").emit("missed", i);
      }, delay);
    });
    socket.on("kick", () => socket.disconnect());
    socket.on("disconnect", (reason) => {
      log({ event: "disconnect", nsp: nsp.name, id: socket.id, reason });
    });
  });
}

setup(io.of("/"));
setup(io.of("/admin"));

const priv = io.of("/private");
priv.use((socket, next) => {
  const auth = socket.handshake.auth || {};
  if (auth.token === "secret") return next();
  const err = new Error("not authorized");
  err.data = { code: 401, hint: "token" };
  next(err);
});
setup(priv);

httpServer.listen(port, "127.0.0.1", () => {
  log({ event: "listening", port });
});
process.on("SIGTERM", () => process.exit(0));
