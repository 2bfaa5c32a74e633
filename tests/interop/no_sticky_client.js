// The official socket.io-client against a wsio cluster behind a round-robin nginx.
// argv: URL JSON-config {transports, count, ticks, mode}. Prints JSON lines.
//   mode "numbers": `count` numbered events each way, checked in order.
//   mode "ticks": collect `ticks` numbered room broadcasts (ticks survive a node kill via recovery).
const { io } = require("socket.io-client");
const url = process.argv[2];
const cfg = JSON.parse(process.argv[3] || "{}");
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const s = io(url, {
  transports: cfg.transports || ["polling"],
  reconnectionDelay: 200,
  reconnectionDelayMax: 500,
  timeout: 5000,
});
const srv = [];
const ticks = [];
const acks = [];
let finished = false;

function finish(code) {
  if (finished) return;
  finished = true;
  out({ event: "done", srv, acks, ticks, transport: s.io.engine && s.io.engine.transport.name });
  s.close();
  setTimeout(() => process.exit(code), 50);
}

s.on("connect", async () => {
  out({ event: "connect", id: s.id, recovered: s.recovered, node: await s.timeout(5000).emitWithAck("whoami").catch(() => null) });
  if (cfg.mode === "numbers" && acks.length === 0) {
    s.emit("burst", cfg.count);
    for (let i = 0; i < cfg.count; i++) {
      s.timeout(10000).emit("num", i, (err, n) => {
        acks.push(err ? "timeout" : n);
        if (acks.length === cfg.count && srv.length >= cfg.count) finish(0);
      });
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 10));
    }
  }
});
s.on("srv", (i) => {
  srv.push(i);
  if (acks.length === cfg.count && srv.length >= cfg.count) finish(0);
});
s.on("tick", (i) => {
  if (cfg.mode !== "ticks") return;
  ticks.push(i);
  if (ticks.length === 1) out({ event: "first-tick", i });
  if (ticks.length === cfg.ticks) finish(0);
});
s.on("disconnect", (reason) => out({ event: "disconnect", reason }));
s.io.on("reconnect_attempt", (n) => out({ event: "reconnect_attempt", n }));
setTimeout(() => { out({ event: "timeout" }); finish(1); }, cfg.deadline || 20000);
