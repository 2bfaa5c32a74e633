"use strict";
// A Node `ws` client for the interop tests: node ws_client.js URL SCENARIO [OPTIONS_JSON]
//
// OPTIONS_JSON holds the `ws` client options (perMessageDeflate, ...) and
// `size`, the size of the large message. Scenarios:
//   echo          text, binary, a fragmented text, a compressible text, `size`
//                 (default 16 MiB) random bytes, a Ping; then close(4000, "done")
//   wait-close    send "hi" and wait for the server to close
//   too-big       send `size` bytes and wait for the server to close
//   invalid-utf8  send a text frame that is not UTF-8 and wait for the close
//   abort         send "hi", wait for the answer, drop the TCP connection
// Every event is one JSON line on stdout; exit status 0 unless something
// unexpected happened (error event, timeout).

const crypto = require("crypto");
const WebSocket = require("ws");

const [url, scenario, optionsJson] = process.argv.slice(2);
const options = optionsJson ? JSON.parse(optionsJson) : {};
const size = options.size || 0;
delete options.size;

const log = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const sha = (data) => crypto.createHash("sha256").update(data).digest("hex");

const guard = setTimeout(() => {
  log({ event: "timeout" });
  process.exit(1);
}, 15000);

const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024, ...options });
let failed = false;

ws.on("open", () => {
  log({ event: "open", extensions: ws.extensions, protocol: ws.protocol });
  switch (scenario) {
    case "echo": {
      ws.send("hello wsio");
      ws.send(Buffer.from([0, 1, 2, 255]));
      ws.send("frag", { fin: false });
      ws.send("mént", { fin: true });
      ws.send("compressible ".repeat(10000));
      const blob = crypto.randomBytes(size || 16 * 1024 * 1024);
      log({ event: "sent-big", sha: sha(blob) });
      ws.send(blob);
      ws.ping("are you there");
      break;
    }
    case "wait-close":
    case "abort":
      ws.send("hi");
      break;
    case "too-big":
      ws.send(Buffer.alloc(size, 1));
      break;
    case "invalid-utf8":
      ws.send(Buffer.from([0x68, 0x69, 0xc0, 0xaf]), { binary: false });
      break;
    default:
      log({ event: "unknown scenario" });
      process.exit(1);
  }
});

let received = 0;
ws.on("message", (data, isBinary) => {
  received += 1;
  const entry = { event: "message", binary: isBinary, length: data.length };
  if (data.length <= 200) entry.data = isBinary ? [...data] : data.toString();
  else entry.sha = sha(data);
  log(entry);
  if (scenario === "echo" && received === 5) ws.close(4000, "done");
  if (scenario === "abort") ws.terminate();
});
ws.on("ping", (data) => log({ event: "ping", data: data.toString() }));
ws.on("pong", (data) => log({ event: "pong", data: data.toString() }));
ws.on("unexpected-response", (req, res) => {
  log({ event: "unexpected-response", status: res.statusCode });
  failed = true;
  req.destroy();
});
ws.on("error", (err) => {
  log({ event: "error", message: err.message, code: err.code });
  failed = true;
});
ws.on("close", (code, reason) => {
  log({ event: "close", code, reason: reason.toString() });
  clearTimeout(guard);
  process.exitCode = failed ? 1 : 0;
});
