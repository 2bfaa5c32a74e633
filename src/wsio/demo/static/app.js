// The wsio demo chat page: plain JavaScript on the official socket.io-client.
"use strict";

(() => {
  const MAX_IMAGE = 1000000;
  const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
  const TYPING_SEND_EVERY = 2000; // ms between "typing" events while typing
  const TYPING_IDLE = 3000; // ms without a key before "stopped typing"
  const TYPING_SHOWN = 5000; // ms a received "typing" stays shown
  const ACK_TIMEOUT = 10000;

  const $ = (id) => document.getElementById(id);

  const state = {
    socket: null,
    nick: null,
    rooms: new Map(), // name -> room (see newRoom)
    active: null,
    everConnected: false,
    outbox: [], // sends made while disconnected: [kind, payload, bytes, local]
    typingSentAt: 0,
    typingTimer: null,
    notices: 0,
  };

  function order(room) {
    // By the server's time; messages still on their way stay last, in the order written.
    const key = (m) => (m.status === "sending" ? Infinity : m.ts);
    room.messages.sort((a, b) => {
      const x = key(a);
      const y = key(b);
      return x === y ? 0 : x < y ? -1 : 1;
    });
  }

  function newRoom(name) {
    return { name, messages: [], ids: new Set(), members: [], typing: new Map(), unread: 0 };
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clock(ts) {
    return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function showError(id, text) {
    const node = $(id);
    node.textContent = text || "";
  }

  // -- connection ---------------------------------------------------------------

  function setConnection(name, statusText) {
    document.body.dataset.connection = name;
    const status = $("status");
    status.textContent = statusText;
    status.className = "status " + name;
  }

  function showBanner(text) {
    const banner = $("banner");
    banner.textContent = text;
    banner.hidden = false;
  }

  function hideBanner() {
    $("banner").hidden = true;
  }

  function connect(nick) {
    if (typeof io !== "function") {
      $("missing").hidden = false;
      return;
    }
    state.nick = nick;
    const socket = io({ auth: { nick } }); // same origin, polling then WebSocket
    state.socket = socket;

    socket.on("connect", async () => {
      setConnection("connected", "online");
      hideBanner();
      document.body.dataset.recovered = String(socket.recovered);
      if (!state.everConnected) {
        state.everConnected = true;
        $("login").hidden = true;
        $("chat").hidden = false;
        $("me").textContent = nick;
        try { sessionStorage.setItem("wsio-demo-nick", nick); } catch (e) { /* private mode */ }
        await joinRoom("general", true);
      } else if (!socket.recovered) {
        // A new session (the server restarted, or was away too long): join again.
        await Promise.all([...state.rooms.keys()].map((name) => joinRoom(name, false)));
      }
      flushOutbox();
    });

    socket.on("connect_error", (err) => {
      if (!socket.active) {
        // Refused by the server (the nickname): back to the form.
        showError("login-error", err.message);
        $("login").hidden = false;
        $("chat").hidden = true;
        state.socket = null;
        state.everConnected = false;
        state.rooms.clear();
        setConnection("none", "offline");
        return;
      }
      if (state.everConnected) showBanner("Cannot reach the server. Retrying\u2026");
    });

    socket.on("disconnect", (reason) => {
      setConnection("disconnected", "offline");
      if (reason === "io client disconnect") return;
      if (reason === "io server disconnect") {
        showBanner("The server closed this connection. Reload the page to come back.");
      } else {
        showBanner("Connection lost (" + reason + "). Reconnecting\u2026");
      }
    });

    socket.io.on("reconnect_attempt", (attempt) => {
      showBanner("Connection lost. Reconnecting (attempt " + attempt + ")\u2026");
    });

    socket.on("message", (message) => addMessage(message));
    socket.on("presence", ({ room: name, members }) => {
      const room = state.rooms.get(name);
      if (!room) return;
      room.members = members;
      if (name === state.active) renderMembers();
    });
    socket.on("typing", ({ room: name, nick: who, typing }) => {
      const room = state.rooms.get(name);
      if (!room || who === state.nick) return;
      clearTimeout(room.typing.get(who));
      if (typing) {
        room.typing.set(who, setTimeout(() => {
          room.typing.delete(who);
          renderTyping();
        }, TYPING_SHOWN));
      } else {
        room.typing.delete(who);
      }
      if (name === state.active) renderTyping();
    });
    socket.on("notice", ({ room: name, text }) => {
      const room = state.rooms.get(name);
      if (!room) return;
      state.notices += 1;
      room.messages.push({ id: "notice-" + state.notices, kind: "notice", text, ts: Date.now() });
      if (name === state.active) renderMessages();
    });
  }

  function call(event, ...args) {
    // Emit with an acknowledgement; resolves with the answer, rejects on timeout.
    return state.socket.timeout(ACK_TIMEOUT).emitWithAck(event, ...args);
  }

  // -- rooms --------------------------------------------------------------------

  async function joinRoom(name, activate) {
    let answer;
    try {
      answer = await call("join", name);
    } catch (err) {
      showError("chat-error", "Could not join " + name + ": " + err.message);
      return;
    }
    if (answer.error) {
      showError("chat-error", answer.error);
      return;
    }
    let room = state.rooms.get(answer.room);
    if (!room) {
      room = newRoom(answer.room);
      state.rooms.set(answer.room, room);
    }
    for (const message of answer.history) {
      if (!room.ids.has(message.id)) {
        room.ids.add(message.id);
        room.messages.push(message);
      }
    }
    order(room);
    room.members = answer.members;
    if (activate || !state.active) setActive(answer.room);
    else renderRooms();
  }

  async function leaveRoom(name) {
    if (state.socket && state.socket.connected) {
      try { await call("leave", name); } catch (err) { /* gone anyway */ }
    }
    state.rooms.delete(name);
    if (state.active === name) {
      const next = state.rooms.keys().next();
      state.active = null;
      if (!next.done) setActive(next.value);
      else renderAll();
    } else {
      renderRooms();
    }
  }

  function setActive(name) {
    state.active = name;
    const room = state.rooms.get(name);
    if (room) room.unread = 0;
    showError("chat-error", "");
    renderAll();
    $("text").focus();
  }

  // -- messages -----------------------------------------------------------------

  function addMessage(message) {
    const room = state.rooms.get(message.room);
    if (!room || room.ids.has(message.id)) return;
    room.ids.add(message.id);
    room.messages.push(message);
    order(room);
    room.typing.delete(message.nick);
    if (message.room === state.active) {
      renderMessages();
      renderTyping();
    } else {
      room.unread += 1;
      renderRooms();
    }
  }

  function send(kind, payload, bytes) {
    const room = state.rooms.get(payload.room);
    if (!room) return null;
    const local = {
      id: null, kind, nick: state.nick, ts: Date.now(), mine: true, status: "sending",
      text: payload.text, mime: payload.mime, image: bytes,
    };
    room.messages.push(local);
    if (payload.room === state.active) renderMessages();
    if (state.socket && state.socket.connected) deliver(kind, payload, bytes, local);
    else state.outbox.push([kind, payload, bytes, local]);
    return local;
  }

  async function deliver(kind, payload, bytes, local) {
    // kind "text" goes out as the "message" event, "image" as "image" (with its bytes).
    const args = kind === "image" ? [payload, bytes] : [payload];
    let answer;
    try {
      answer = await call(kind === "image" ? "image" : "message", ...args);
    } catch (err) {
      answer = { error: "not delivered (no answer from the server)" };
    }
    if (answer.error) {
      local.status = "failed";
      local.error = answer.error;
    } else {
      local.status = "delivered";
      local.id = answer.id;
      local.ts = answer.ts;
      const room = state.rooms.get(payload.room);
      if (room) {
        room.ids.add(answer.id);
        order(room);
      }
    }
    if (payload.room === state.active) renderMessages();
  }

  function flushOutbox() {
    const pending = state.outbox;
    state.outbox = [];
    for (const [kind, payload, bytes, local] of pending) deliver(kind, payload, bytes, local);
  }

  function sendText(text) {
    if (!state.active || !text.trim()) return null;
    stopTyping();
    return send("text", { room: state.active, text });
  }

  function sendImage(buffer, mime) {
    if (!state.active) return null;
    if (!IMAGE_TYPES.includes(mime)) {
      showError("chat-error", "PNG, JPEG, GIF or WebP images only");
      return null;
    }
    if (buffer.byteLength > MAX_IMAGE) {
      showError("chat-error", "That image is larger than 1 MB");
      return null;
    }
    return send("image", { room: state.active, mime }, buffer);
  }

  // -- typing -------------------------------------------------------------------

  function typed() {
    if (!state.active || !state.socket || !state.socket.connected) return;
    const now = Date.now();
    if (now - state.typingSentAt > TYPING_SEND_EVERY) {
      state.typingSentAt = now;
      state.socket.emit("typing", { room: state.active, typing: true });
    }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(stopTyping, TYPING_IDLE);
  }

  function stopTyping() {
    clearTimeout(state.typingTimer);
    state.typingTimer = null;
    if (state.typingSentAt && state.active && state.socket && state.socket.connected) {
      state.socket.emit("typing", { room: state.active, typing: false });
    }
    state.typingSentAt = 0;
  }

  // -- rendering ----------------------------------------------------------------

  function renderAll() {
    renderRooms();
    renderMembers();
    renderMessages();
    renderTyping();
    $("room-title").textContent = state.active ? "# " + state.active : "Join a room";
  }

  function renderRooms() {
    const list = $("rooms");
    list.replaceChildren();
    for (const room of state.rooms.values()) {
      const item = el("li", room.name === state.active ? "active" : "");
      item.dataset.room = room.name;
      const open = el("button", "room", "# " + room.name);
      open.type = "button";
      open.addEventListener("click", () => setActive(room.name));
      item.append(open);
      if (room.unread) item.append(el("span", "unread", String(room.unread)));
      const leave = el("button", "leave", "\u00d7");
      leave.type = "button";
      leave.title = "Leave " + room.name;
      leave.addEventListener("click", () => leaveRoom(room.name));
      item.append(leave);
      list.append(item);
    }
  }

  function renderMembers() {
    const list = $("members");
    list.replaceChildren();
    const room = state.rooms.get(state.active);
    if (!room) return;
    for (const nick of room.members) {
      const item = el("li", nick === state.nick ? "me" : "", nick);
      list.append(item);
    }
  }

  function imageUrl(message) {
    if (!message.url) message.url = URL.createObjectURL(new Blob([message.image], { type: message.mime }));
    return message.url;
  }

  function renderMessage(message) {
    if (message.kind === "notice") {
      return el("li", "notice", message.text);
    }
    const item = el("li", "msg" + (message.mine ? " mine" : ""));
    if (message.id) item.dataset.id = message.id;
    item.dataset.kind = message.kind;
    const meta = el("div", "meta");
    meta.append(el("span", "who", message.nick), el("time", "when", clock(message.ts)));
    item.append(meta);
    if (message.kind === "image") {
      const img = el("img", "picture");
      img.alt = "image from " + message.nick;
      img.src = imageUrl(message);
      item.append(img);
    } else {
      item.append(el("div", "text", message.text));
    }
    if (message.mine) {
      const marks = { sending: "sending\u2026", delivered: "\u2713 delivered", failed: "\u26a0 " + (message.error || "failed") };
      const mark = el("span", "mark " + message.status, marks[message.status]);
      mark.title = message.status === "delivered" ? "acknowledged by the server" : "";
      item.append(mark);
    }
    return item;
  }

  function renderMessages() {
    const list = $("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.replaceChildren();
    const room = state.rooms.get(state.active);
    if (!room) return;
    for (const message of room.messages) list.append(renderMessage(message));
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function renderTyping() {
    const room = state.rooms.get(state.active);
    const who = room ? [...room.typing.keys()] : [];
    let text = "";
    if (who.length === 1) text = who[0] + " is typing\u2026";
    else if (who.length === 2) text = who[0] + " and " + who[1] + " are typing\u2026";
    else if (who.length > 2) text = "Several people are typing\u2026";
    $("typing").textContent = text;
  }

  // -- wiring -------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    if (typeof io !== "function") $("missing").hidden = false;
    try {
      const saved = sessionStorage.getItem("wsio-demo-nick");
      if (saved) $("nick").value = saved;
    } catch (e) { /* private mode */ }

    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const nick = $("nick").value.trim();
      if (!nick) return;
      showError("login-error", "");
      if (state.socket) state.socket.disconnect();
      connect(nick);
    });

    $("join-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const name = $("room-name").value.trim();
      if (!name) return;
      $("room-name").value = "";
      if (state.rooms.has(name)) setActive(name);
      else joinRoom(name, true);
    });

    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = $("text");
      if (sendText(input.value)) input.value = "";
    });

    $("text").addEventListener("input", typed);

    $("image-input").addEventListener("change", async (event) => {
      const file = event.target.files[0];
      event.target.value = "";
      if (!file) return;
      sendImage(await file.arrayBuffer(), file.type);
    });
  });

  // For scripted use (the end-to-end tests drive the page through these).
  window.wsioDemo = { state, sendText, sendImage, joinRoom, leaveRoom, setActive };
})();
