// Connection state recovery scenarios for the official socket.io-client.
// argv: URL JSON-config. Prints one JSON object per line.
//   config: { transports, total, closeAt, closeOnConnect, dropPingsAt, dropPingsFor,
//             reconnectionDelay, deliberateAt, startArgs }
const { io } = require("socket.io-client");
const { Socket: EngineSocket } = require("engine.io-client");

const url = process.argv[2];
const cfg = JSON.parse(process.argv[3] || "{}");
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

let dropPings = false;
const origOnPacket = EngineSocket.prototype._onPacket;
EngineSocket.prototype._onPacket = function (packet) {
  if (dropPings && packet.type === "ping") return; // play dead: no pong
  return origOnPacket.call(this, packet);
};
const origOnClose = EngineSocket.prototype._onClose;
EngineSocket.prototype._onClose = function (reason, description) {
  // While playing dead, let the server be the one that notices.
  if (dropPings && reason === "ping timeout") return;
  return origOnClose.call(this, reason, description);
};

const s = io(url, {
  transports: cfg.transports || ["websocket"],
  reconnectionDelay: cfg.reconnectionDelay || 50,
  reconnectionDelayMax: cfg.reconnectionDelay || 100,
  randomizationFactor: 0,
  timeout: 3000,
});
const ticks = [];
let connects = 0;
let acted = false;

function finish(code) {
  out({ event: "done", ticks });
  s.close();
  setTimeout(() => process.exit(code), 20);
}

s.on("connect", () => {
  connects += 1;
  out({ event: "connect", recovered: s.recovered, id: s.id, n: connects });
  if (connects === 1) {
    if (cfg.closeOnConnect) {
      s.emit("start", ...(cfg.startArgs || []));
      setTimeout(() => s.io.engine.close(), 10);
    } else {
      s.emit("start", ...(cfg.startArgs || []));
    }
  }
});
s.on("disconnect", (reason) => { dropPings = false; out({ event: "disconnect", reason }); });
s.on("tick", (i, offset) => {
  ticks.push(i);
  if (!acted && cfg.closeAt !== undefined && i === cfg.closeAt) {
    acted = true;
    s.io.engine.close();
  }
  if (!acted && cfg.dropPingsAt !== undefined && i === cfg.dropPingsAt) {
    acted = true;
    dropPings = true;
    setTimeout(() => { dropPings = false; }, cfg.dropPingsFor || 1000);
  }
  if (!acted && cfg.deliberateAt !== undefined && i === cfg.deliberateAt) {
    acted = true;
    s.disconnect();
    setTimeout(() => s.connect(), 100);
  }
  if (i === cfg.total - 1) finish(0);
});
s.on("connect_error", (e) => out({ event: "connect_error", message: e.message }));
setTimeout(() => { out({ event: "timeout" }); finish(1); }, cfg.deadline || 8000);
