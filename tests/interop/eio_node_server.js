// An official Node `engine.io` server for wsio's Engine.IO client tests.
//
// Usage: node eio_node_server.js PORT ['{"pingInterval": 300, ...}']
//
// The JSON options go to `new engine.Server(...)`, except these extra keys:
//   lbCookie: "name=value"   also set this cookie on the handshake response,
//                            as a cookie-based sticky load balancer would.
//
// Every message a client sends is echoed back (text as text, binary as
// binary), except text commands starting with "!":
//   !freeze            stop sending pings (and stop expecting pongs)
//   !close             close the session from the server side
//   !stream N MS       send "s0" .. "s<N-1>", one every MS ms (0: back to back),
//                      then "!streamed"
//   !received          answer "!received <JSON list of the numbered messages
//                      n<i> received so far, as integers>"
//   !cookies           answer "!cookies <JSON list of {transport, method, cookie}
//                      of every HTTP request seen for this session>"
//   !transport         answer "!transport <current transport name>"
// One JSON object per line goes to stdout for every event (listening,
// connection, upgrade, close, request).

"use strict";

const http = require("http");
const engine = require("engine.io");

const port = Number(process.argv[2]);
const options = process.argv[3] ? JSON.parse(process.argv[3]) : {};
const lbCookie = options.lbCookie;
delete options.lbCookie;

function log(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const httpServer = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const server = new engine.Server(options);
server.attach(httpServer);

const requests = new Map(); // sid -> [{transport, method, cookie}]

function record(req) {
  const url = new URL(req.url, "http://localhost");
  const sid = url.searchParams.get("sid") || "handshake";
  const entry = {
    transport: url.searchParams.get("transport"),
    method: req.method,
    cookie: req.headers.cookie || null,
  };
  if (!requests.has(sid)) requests.set(sid, []);
  requests.get(sid).push(entry);
  log({ event: "request", sid, ...entry });
}

server.on("initial_headers", (headers) => {
  if (lbCookie) {
    const existing = headers["Set-Cookie"];
    const list = Array.isArray(existing) ? existing : existing ? [existing] : [];
    list.push(`${lbCookie}; Path=/`);
    headers["Set-Cookie"] = list;
  }
});
server.on("headers", (headers, req) => record(req));

server.on("connection", (socket) => {
  const received = [];
  log({ event: "connection", sid: socket.id, transport: socket.transport.name });
  socket.on("upgrade", (transport) => {
    log({ event: "upgrade", sid: socket.id, transport: transport.name });
  });
  socket.on("close", (reason) => {
    log({ event: "close", sid: socket.id, reason });
  });
  socket.on("message", (data) => {
    if (typeof data !== "string" || !data.startsWith("!")) {
      if (typeof data === "string" && /^n\d+$/.test(data)) {
        received.push(Number(data.slice(1)));
        return;
      }
      socket.send(data);
      return;
    }
    const [command, ...args] = data.split(" ");
    switch (command) {
      case "!freeze":
        clearTimeout(socket.pingIntervalTimer);
        clearTimeout(socket.pingTimeoutTimer);
        socket.schedulePing = () => {};
        socket.resetPingTimeout = () => {};
        socket.pingTimeoutTimer = null;
        log({ event: "frozen", sid: socket.id });
        break;
      case "!close":
        socket.close();
        break;
      case "!stream": {
        const count = Number(args[0]);
        const every = Number(args[1] || 0);
        let i = 0;
        const next = () => {
          if (socket.readyState !== "open") return;
          if (every === 0) {
            while (i < count) socket.send("s" + i++);
          } else if (i < count) {
            socket.send("s" + i++);
            setTimeout(next, every);
            return;
          }
          socket.send("!streamed");
        };
        next();
        break;
      }
      case "!received":
        socket.send("!received " + JSON.stringify(received));
        break;
      case "!cookies":
        socket.send("!cookies " + JSON.stringify(requests.get(socket.id) || []));
        break;
      case "!transport":
        socket.send("!transport " + socket.transport.name);
        break;
      default:
        socket.send("!unknown " + command);
    }
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  log({ event: "listening", port });
});

function shutdown() {
  server.close();
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
