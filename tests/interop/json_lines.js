// JSON lines over standard I/O for the interop scripts that a test drives with commands.

"use strict";

const readline = require("readline");

// Print one JSON object as a line on stdout.
function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// Read commands, one JSON object {id, cmd, ...} per stdin line; answer each with one
// stdout line {id, ...(await commands[cmd](command))}, or {id, error} if it throws.
function serveCommands(commands) {
  readline.createInterface({ input: process.stdin }).on("line", async (line) => {
    if (!line.trim()) return;
    const c = JSON.parse(line);
    try {
      out({ id: c.id, ...(await commands[c.cmd](c)) });
    } catch (e) {
      out({ id: c.id, error: String(e && e.message ? e.message : e) });
    }
  });
}

module.exports = { out, serveCommands };
