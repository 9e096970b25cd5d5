// dback live view: one WebSocket to this page's own server, speaking the
// d-back protocol (see PROTOCOL.md). Every untrusted string goes through
// textContent; nothing from the wire is ever parsed as HTML.

const STATUSES = ["online", "idle", "dnd", "offline"];
const STATUS_TEXT = { online: "online", idle: "idle", dnd: "do not disturb", offline: "offline" };
const COLOR = /^#[0-9a-f]{6}$/i;
const byName = new Intl.Collator(undefined, { sensitivity: "base", numeric: true });
const FEED_MAX = 100;
const SPEAK_MS = 2500;
const BACKOFF_BASE_MS = 400;
const BACKOFF_CAP_MS = 5000;

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

// The socket lives where the page lives: same host, same path, ws/wss to match.
const pageBase = new URL(".", location.href);
pageBase.search = pageBase.hash = "";
const base = new URL(pageBase);
base.protocol = location.protocol === "https:" ? "wss:" : "ws:";
const SOCKET_URL = base.pathname === "/" ? `${base.protocol}//${base.host}` : base.href;

/** Discord id → public server entry. */
let servers = new Map();
/** The server we are joined to: { discordId, id, name } or null. */
let joined = null;
/** Joins asked for and not answered yet, oldest first: { id, push, fallback }. */
let pending = [];
/** uid → { user, card }. */
const members = new Map();
/** Arrival times of recent messages, for messages/minute. */
let msgTimes = [];

let ws = null;
let attempt = 0;
let retryTimer = 0;

function wanted() {
  const s = new URLSearchParams(location.search).get("s");
  return s && s.trim() ? s.trim() : "default";
}

// ---- connection ------------------------------------------------------------

function setConn(state, text) {
  $("conn").dataset.state = state;
  $("conn-text").textContent = text;
  document.body.classList.toggle("stale", state !== "open");
}

function connect() {
  clearTimeout(retryTimer);
  retryTimer = 0;
  setConn("connecting", "Connecting…");
  let sock;
  try {
    sock = new WebSocket(SOCKET_URL);
  } catch {
    return scheduleReconnect();
  }
  ws = sock;
  sock.addEventListener("open", () => {
    if (ws === sock) setConn("open", "Connected");
  });
  sock.addEventListener("message", (e) => {
    if (ws !== sock || typeof e.data !== "string") return;
    let frame;
    try {
      frame = JSON.parse(e.data);
    } catch {
      return;
    }
    if (frame && typeof frame === "object") handle(frame);
  });
  sock.addEventListener("close", () => {
    if (ws !== sock) return;
    ws = null;
    pending = [];
    // The address always names the server shown, so the next server-list rejoins it.
    joined = null;
    renderServers();
    scheduleReconnect();
  });
}

// Exponential backoff with "equal jitter": half the step fixed, half random.
function scheduleReconnect() {
  const step = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  attempt = Math.min(attempt + 1, 16);
  const delay = Math.round(step / 2 + Math.random() * (step / 2));
  setConn("reconnecting", `Disconnected, retrying in ${(delay / 1000).toFixed(1)} s`);
  retryTimer = setTimeout(connect, delay);
}

addEventListener("online", () => {
  if (retryTimer) connect();
});

// Offline, a join waits for the next server-list, which joins what the address names.
function join(id, { push = false, fallback = false } = {}) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  pending.push({ id, push, fallback });
  ws.send(JSON.stringify({ type: "connect", data: { server: id } }));
}

// ---- frames ----------------------------------------------------------------

function handle(frame) {
  const data = frame.data && typeof frame.data === "object" ? frame.data : {};
  switch (frame.type) {
    case "server-list":
      return onServerList(data);
    case "server-join":
      return onJoin(data);
    case "presence":
      if (joined && frame.server === joined.discordId) onPresence(data);
      return;
    case "message":
      if (joined && frame.server === joined.discordId) onMessage(data);
      return;
    case "error":
      return onError(String(data.message ?? "Unknown error"));
  }
}

function onServerList(data) {
  servers = new Map();
  for (const [discordId, s] of Object.entries(data)) {
    if (s && typeof s.id === "string") servers.set(discordId, s);
  }
  renderServers();
  // A first visit joins what the address asks for; a reconnect rejoins where we were.
  join(wanted());
}

function entryFor(requested) {
  for (const [discordId, s] of servers) {
    if (requested === "default" ? s.default : s.id === requested) return { discordId, ...s };
  }
  return null;
}

function onJoin(data) {
  const requested = String(data.request?.server ?? "default");
  // Answers come in order; match by id in case the server answered out of turn.
  const i = Math.max(0, pending.findIndex((p) => p.id === requested));
  const req = pending.splice(i, 1)[0];
  attempt = 0; // a healthy session: the next outage starts with a short backoff
  const entry = entryFor(requested);
  joined = {
    discordId: entry?.discordId ?? "",
    id: entry?.id ?? requested,
    name: String(data.serverName ?? entry?.name ?? requested),
  };
  if (!req?.fallback) hideError();
  members.clear();
  $("members").replaceChildren();
  $("feed").replaceChildren();
  msgTimes = [];
  const users = Object.values(data.users && typeof data.users === "object" ? data.users : {})
    .filter((u) => u && typeof u.uid === "string")
    .sort((a, b) => byName.compare(String(a.username), String(b.username)));
  for (const u of users) addMember(u, true);
  $("server-name").textContent = joined.name;
  $("server-name").dataset.server = joined.id;
  document.title = `${joined.name} · dback live view`;
  renderServers();
  renderCounts();
  updateAddress(entry, req);
}

function updateAddress(entry, req) {
  const url = new URL(location.href);
  const current = url.searchParams.get("s");
  if (current === joined.id) return;
  // A plain first visit to the default server keeps its clean address.
  if (current === null && entry?.default && !req?.push) return;
  url.searchParams.set("s", joined.id);
  if (req?.push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

function onError(message) {
  showError(message);
  const failed = pending.shift();
  // Like the d-zone client: not joined anywhere yet, so fall back to the default server.
  if (failed && !joined && failed.id !== "default") join("default", { fallback: true });
  renderServers();
}

function onPresence(d) {
  if (typeof d.uid !== "string") return;
  const m = members.get(d.uid);
  if (d.delete === true) {
    if (m) {
      m.card.remove();
      members.delete(d.uid);
    }
  } else if (m) {
    if (typeof d.username === "string") m.user.username = d.username;
    if (typeof d.roleColor === "string") m.user.roleColor = d.roleColor;
    if (STATUSES.includes(d.status)) m.user.status = d.status;
    paintCard(m);
  } else if (typeof d.username === "string") {
    addMember(d);
  }
  renderCounts();
}

function onMessage(d) {
  if (typeof d.uid !== "string") return;
  const text = String(d.message ?? "");
  const m = members.get(d.uid);
  const now = new Date();
  const li = el("li", "msg");
  li.dataset.uid = d.uid;
  const time = el("time", "when", now.toLocaleTimeString([], { hour12: false }));
  time.dateTime = now.toISOString();
  const who = el("span", "who", m ? m.user.username : d.uid);
  if (m && COLOR.test(m.user.roleColor)) who.style.color = m.user.roleColor;
  li.append(time, who, el("span", "text", text));
  const feed = $("feed");
  feed.prepend(li);
  while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
  $("feed-empty").hidden = true;
  msgTimes.push(now.getTime());
  renderRate();
  if (m) speak(m, text);
}

// ---- members ---------------------------------------------------------------

function addMember(u, inOrder = false) {
  const user = {
    uid: u.uid,
    username: String(u.username ?? u.uid),
    status: STATUSES.includes(u.status) ? u.status : "offline",
    roleColor: typeof u.roleColor === "string" ? u.roleColor : "#ffffff",
  };
  const card = el("li", "card");
  card.dataset.uid = user.uid;
  const avatar = el("span", "avatar");
  avatar.setAttribute("aria-hidden", "true");
  avatar.append(el("span", "initial"), el("i", "dot"));
  const info = el("span", "info");
  info.append(el("span", "name"), el("span", "status"));
  card.append(avatar, info, el("span", "said"));
  const m = { user, card, timer: 0 };
  paintCard(m);
  // Keep the grid alphabetical; later status changes do not move cards around.
  let before = null;
  if (!inOrder) {
    for (const c of $("members").children) {
      const other = members.get(c.dataset.uid)?.user.username ?? "";
      if (byName.compare(other, user.username) > 0) {
        before = c;
        break;
      }
    }
  }
  $("members").insertBefore(card, before);
  members.set(user.uid, m);
}

function paintCard({ user, card }) {
  card.dataset.status = user.status;
  card.title = `${user.username} (${STATUS_TEXT[user.status]})`;
  if (COLOR.test(user.roleColor)) card.style.setProperty("--role", user.roleColor);
  card.querySelector(".initial").textContent = [...user.username][0]?.toUpperCase() ?? "?";
  card.querySelector(".dot").dataset.status = user.status;
  card.querySelector(".name").textContent = user.username;
  card.querySelector(".status").textContent = STATUS_TEXT[user.status];
}

function speak(m, text) {
  m.card.querySelector(".said").textContent = text;
  m.card.classList.add("speaking");
  clearTimeout(m.timer);
  m.timer = setTimeout(() => m.card.classList.remove("speaking"), SPEAK_MS);
}

// ---- rendering -------------------------------------------------------------

function renderServers() {
  const list = $("servers");
  list.replaceChildren();
  for (const [discordId, s] of servers) {
    const b = el("button", "server");
    b.type = "button";
    b.disabled = !ws || ws.readyState !== WebSocket.OPEN;
    b.dataset.server = s.id;
    b.dataset.discordId = discordId;
    b.append(el("span", "server-name", String(s.name)));
    if (s.default) b.append(el("span", "tag", "default"));
    if (s.passworded) {
      b.dataset.passworded = "true";
      const lock = el("span", "lock");
      lock.title = "Needs Discord login";
      lock.setAttribute("role", "img");
      lock.setAttribute("aria-label", "locked: needs Discord login");
      b.append(lock);
    }
    if (joined && joined.id === s.id) b.setAttribute("aria-current", "true");
    if (pending.some((p) => p.id === s.id)) b.dataset.pending = "true";
    b.addEventListener("click", () => {
      if (joined && joined.id === s.id) return;
      hideError();
      join(s.id, { push: true });
      renderServers();
    });
    const li = el("li");
    li.append(b);
    list.append(li);
  }
}

function renderCounts() {
  const n = { online: 0, idle: 0, dnd: 0, offline: 0 };
  for (const { user } of members.values()) n[user.status]++;
  for (const s of STATUSES) {
    document.querySelector(`[data-count="${s}"] b`).textContent = String(n[s]);
  }
  document.querySelector('[data-count="total"] b').textContent = String(members.size);
  $("members-empty").hidden = members.size > 0;
  $("feed-empty").hidden = $("feed").children.length > 0;
}

function renderRate() {
  const since = Date.now() - 60_000;
  msgTimes = msgTimes.filter((t) => t > since);
  document.querySelector('[data-count="mpm"] b').textContent = String(msgTimes.length);
}

function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}

function hideError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

// ---- start -----------------------------------------------------------------

$("socket-url").textContent = SOCKET_URL;
$("error-close").addEventListener("click", hideError);
$("copy").addEventListener("click", async () => {
  const text = $("socket-param").textContent;
  try {
    await navigator.clipboard.writeText(text);
    $("copy").textContent = "Copied";
  } catch {
    getSelection()?.selectAllChildren($("socket-param"));
    $("copy").textContent = "Press Ctrl+C";
  }
  setTimeout(() => ($("copy").textContent = "Copy"), 2000);
});
addEventListener("popstate", () => {
  const id = wanted();
  if (
    !joined || (id !== joined.id && !(id === "default" && entryFor("default")?.id === joined.id))
  ) {
    hideError();
    join(id);
  }
});
setInterval(renderRate, 1000);

fetch(new URL("api/version", pageBase))
  .then((r) => (r.ok ? r.json() : null))
  .then((v) => {
    if (v && typeof v.version === "string") $("version").textContent = `v${v.version}`;
  })
  .catch(() => {});

connect();
