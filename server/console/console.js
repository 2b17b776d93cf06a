// The ringrelay console: a small hand-written page, no framework, no build
// step. Every value from the API is rendered with textContent, never as
// markup. The token lives in sessionStorage and travels only in the
// Authorization header; streams are read with fetch() (EventSource cannot
// send that header). Paths are relative to the page, so that the console
// also works behind a proxy that adds a path prefix.
"use strict";

// Errors the page hits end up here, so that browser tests can read them.
window.__consoleErrors = [];
window.addEventListener("error", (e) => window.__consoleErrors.push(String(e.message)));
const consoleError = console.error.bind(console);
console.error = (...args) => {
  window.__consoleErrors.push(args.map(String).join(" "));
  consoleError(...args);
};
window.addEventListener("unhandledrejection", (e) =>
  window.__consoleErrors.push("unhandled rejection: " + String(e.reason)));

const $ = (id) => document.getElementById(id);
const STORAGE_KEY = "ringrelay.console";

/** Makes an element with text content (never markup). */
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function button(label, onClick, className) {
  const b = el("button", label, className);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

/** Who is calling: the provider's name for the caller when it gave one,
 * with the number; the number alone; or a withheld caller. */
function callerLabel(data) {
  const number = data.caller || "Withheld number";
  return data.caller_name ? data.caller_name + " (" + number + ")" : number;
}

const VERIFICATION = {
  verified: "verified",
  partial: "partially verified",
  failed: "failed verification",
};

/** The caller's STIR/SHAKEN verdict as a badge, or nothing for none. */
function verificationBadge(verification) {
  const label = VERIFICATION[verification];
  if (!label) return "";
  const badge = el("span", label, "badge " + verification);
  badge.title = "STIR/SHAKEN: the caller's number is " + label;
  return badge;
}

function timeOf(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleTimeString();
}

let auth = null; // {token, destination?, subscriber?} once signed in
let streamAbort = null;

function headers(extra) {
  return Object.assign({ Authorization: "Bearer " + auth.token }, extra || {});
}

async function api(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let json = null;
  const text = await response.text();
  if (text) {
    try { json = JSON.parse(text); } catch (_) { json = null; }
  }
  return { status: response.status, json, text };
}

// ---- Server-Sent Events over fetch() -------------------------------------

/**
 * Reads an SSE stream and calls onEvent(type, data) per event. Resolves when
 * the stream ends; rejects when it cannot be read. Answers other than 200
 * resolve with {status} and no events. position.last is the id of the last
 * event read, sent back as Last-Event-ID so that a reconnect first gets
 * what was published meanwhile (on any instance).
 */
async function readEvents(path, signal, onOpen, onEvent, position) {
  const extra = { Accept: "text/event-stream" };
  if (position.last) extra["Last-Event-ID"] = position.last;
  const response = await fetch(path, { headers: headers(extra), signal });
  if (response.status !== 200 || !response.body) return { status: response.status };
  onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let type = "";
  let data = [];
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        // As EventSource does: the id counts even with empty data (the
        // position a stream opens at), which dispatches nothing.
        if (id !== null) position.last = id;
        const text = data.join("\n");
        if (text !== "") onEvent(type || "message", text);
        type = "";
        data = [];
        id = null;
        continue;
      }
      if (line.startsWith(":")) continue; // a keep-alive or other comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? "" : line.slice(colon + 1);
      if (val.startsWith(" ")) val = val.slice(1);
      if (field === "event") type = val;
      else if (field === "data") data.push(val);
      else if (field === "id") id = val;
    }
  }
  return { status: 200 };
}

/** Keeps a stream open: reconnects after it ends, backing off up to 10 s. */
function keepStreaming(path, status, onEvent, onRefused) {
  const controller = new AbortController();
  const position = { last: null };
  let delay = 1000;
  const loop = async () => {
    while (!controller.signal.aborted) {
      try {
        const result = await readEvents(path, controller.signal, () => {
          delay = 1000;
          status("Live: connected.");
        }, onEvent, position);
        if (result.status !== 200 && onRefused(result.status)) return;
      } catch (err) {
        if (controller.signal.aborted) return;
      }
      status("Live: reconnecting…");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  };
  loop();
  return controller;
}

function parseEvent(text) {
  try { return JSON.parse(text); } catch (_) { return null; }
}

// ---- Readiness -------------------------------------------------------------

async function checkReadiness() {
  let text;
  try {
    const response = await fetch("readyz");
    text = response.ok ? "Readiness: ready" : "Readiness: not ready (" + response.status + ")";
  } catch (_) {
    text = "Readiness: unreachable";
  }
  $("readiness").textContent = text;
}

// ---- Sign-in ---------------------------------------------------------------

/**
 * Signs in with the token alone: GET /v1/me says whose it is (the admin's,
 * a destination's or a device's), so no other route is probed.
 */
async function signIn(token, remember) {
  $("signin-error").textContent = "";
  auth = { token };
  let me;
  try {
    me = await api("GET", "v1/me");
  } catch (_) {
    me = { status: 0, json: null };
  }
  const refuse = (message) => {
    auth = null;
    sessionStorage.removeItem(STORAGE_KEY);
    show("signin-view");
    $("signin-error").textContent = message;
  };
  if (me.status !== 200 || !me.json) {
    refuse(me.status === 401
      ? "This token is not valid."
      : (me.json && me.json.message) || "The service did not answer (" + me.status + ").");
    return;
  }
  if (me.json.role === "device") {
    refuse("This is the phone's device token: sign in with a destination token or the admin token.");
    return;
  }
  if (remember) sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ token }));
  if (me.json.role === "destination") {
    auth.destination = me.json.destination_id;
    auth.subscriber = me.json.subscriber;
    startDestination();
  } else {
    startAdmin();
  }
}

function show(view) {
  for (const id of ["signin-view", "destination-view", "admin-view"]) $(id).hidden = id !== view;
  $("sign-out").hidden = view === "signin-view";
}

function signOut() {
  if (streamAbort) streamAbort.abort();
  streamAbort = null;
  auth = null;
  sessionStorage.removeItem(STORAGE_KEY);
  location.reload();
}

// ---- Destination view ----------------------------------------------------

const calls = new Map(); // session id -> {data, node, outcome, decided}
let audio = null;

function ringSound() {
  try {
    audio = audio || new AudioContext();
    const now = audio.currentTime;
    for (const [start, freq] of [[0, 880], [0.25, 660], [0.5, 880]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.15, now + start);
      gain.gain.exponentialRampToValueAtTime(0.001, now + start + 0.2);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + start);
      osc.stop(now + start + 0.2);
    }
  } catch (_) {
    // No audio output: the call still shows.
  }
}

function notifyCall(data) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  try {
    const n = new Notification("Incoming call", {
      body: (data.caller || "Withheld number") + " → " + data.subscriber,
      tag: data.session_id,
    });
    n.onclick = () => window.focus();
  } catch (_) {
    // Some browsers only show notifications from a service worker.
  }
}

function refreshEmpty() {
  $("no-calls").hidden = calls.size > 0;
}

function addRecent(data, outcome) {
  const li = el("li");
  li.append(el("strong", callerLabel(data)), " ", verificationBadge(data.caller_verification), " ",
    el("span", "to " + data.subscriber + " at " + timeOf(data.timestamp || data.received_at), "meta"), " — ",
    el("span", outcome, "outcome"));
  $("recent").prepend(li);
  while ($("recent").children.length > 20) $("recent").lastChild.remove();
}

function endCall(sessionId, outcome, ending) {
  const call = calls.get(sessionId);
  if (!call) return;
  // The forwarded call's provider names the caller: its events say so.
  if (ending && ending.caller_name) call.data.caller_name = ending.caller_name;
  if (ending && ending.caller_verification) call.data.caller_verification = ending.caller_verification;
  calls.delete(sessionId);
  call.node.remove();
  addRecent(call.data, call.outcome ? call.outcome + ", then " + outcome : outcome);
  refreshEmpty();
}

/** The capability URL's path and query, posted to this origin. */
function samePath(url) {
  try {
    const u = new URL(url, location.href);
    return u.pathname + u.search;
  } catch (_) {
    return null;
  }
}

async function decide(sessionId, which) {
  const call = calls.get(sessionId);
  if (!call || call.decided) return;
  call.decided = true;
  for (const b of call.node.querySelectorAll("button")) b.disabled = true;
  const outcomeNode = call.node.querySelector(".outcome");
  outcomeNode.textContent = which === "accept" ? "Accepting…" : "Declining…";
  const path = samePath(which === "accept" ? call.data.accept_url : call.data.decline_url);
  let outcome;
  try {
    if (!path) throw new Error("no capability URL");
    const response = await fetch(path, { method: "POST" });
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (response.ok) outcome = which === "accept" ? "accepted" : "declined";
    else outcome = (body && body.error) || "failed (" + response.status + ")";
  } catch (_) {
    outcome = "failed (network)";
  }
  call.outcome = outcome;
  outcomeNode.textContent = outcome;
  if (outcome !== "accepted") {
    // Nothing more will happen here: keep the outcome among recent calls.
    calls.delete(sessionId);
    call.node.remove();
    addRecent(call.data, outcome);
    refreshEmpty();
  }
}

function onRinging(data, timestamp) {
  if (calls.has(data.session_id)) return;
  data.received_at = timestamp || new Date().toISOString();
  const li = el("li", null, "call");
  li.dataset.session = data.session_id;
  li.append(
    el("span", data.caller || "Withheld number", "caller"),
    el("span", "to " + data.subscriber + " · " + timeOf(data.received_at), "meta"),
  );
  const accept = button("Accept", () => decide(data.session_id, "accept"), "accept");
  const decline = button("Decline", () => decide(data.session_id, "decline"), "decline");
  li.append(accept, decline, el("span", "", "outcome"));
  li.setAttribute("aria-label", "Call from " + (data.caller || "a withheld number"));
  calls.set(data.session_id, { data, node: li, outcome: null, decided: false });
  $("calls").append(li);
  refreshEmpty();
  ringSound();
  notifyCall(data);
  // An offer nobody took in time goes by itself. Both times are the
  // server's, so the browser's clock does not matter.
  const left = Date.parse(data.expires_at) - Date.parse(data.received_at);
  if (left > 0) {
    setTimeout(() => {
      const call = calls.get(data.session_id);
      if (call && !call.decided) endCall(data.session_id, "not answered in time");
    }, left + 1000);
  }
}

/** The subscriber's latest sessions, where the server lists them. */
async function loadHistory() {
  const r = await api("GET", "v1/sessions?limit=10");
  if (r.status !== 200 || !r.json) return; // no list route: live calls only
  for (const s of (r.json.sessions || []).slice().reverse()) {
    if (calls.has(s.id)) continue;
    addRecent({
      caller: s.caller, caller_name: s.caller_name, caller_verification: s.caller_verification,
      subscriber: s.subscriber, timestamp: s.timeline && s.timeline.reported_at,
    }, s.state);
  }
}

const ENDINGS = {
  "call.taken": (d) => "taken by " + d.destination_id,
  "call.cancelled": (d) => "cancelled (" + d.reason + ")",
  "call.connected": (d) => "connected" + (d.destination_id ? " to " + d.destination_id : ""),
  "call.missed": (d) => "missed (" + d.reason + ")",
  "call.voicemail": () => "voicemail",
};

function onDestinationEvent(type, text) {
  const event = parseEvent(text);
  if (!event || !event.data) return;
  if (type === "call.ringing") onRinging(event.data, event.timestamp);
  else if (ENDINGS[type]) endCall(event.data.session_id, ENDINGS[type](event.data), event.data);
}

function startDestination() {
  show("destination-view");
  $("destination-title").textContent = "Incoming calls for " + auth.destination;
  if ("Notification" in window && Notification.permission === "default") {
    $("allow-notifications").hidden = false;
  }
  showPushButton();
  refreshEmpty();
  let historyLoaded = false;
  const path = "v1/destinations/" + encodeURIComponent(auth.destination) + "/events";
  const onStatus = (s) => {
    $("stream-status").textContent = s;
    if (s === "Live: connected." && !historyLoaded) {
      historyLoaded = true;
      loadHistory();
    }
  };
  streamAbort = keepStreaming(path, onStatus, onDestinationEvent, (status) => {
    const why = {
      401: "This token is not valid.",
      403: "This token belongs to another destination.",
      404: "No such destination.",
    }[status];
    if (why) {
      if (streamAbort) streamAbort.abort();
      sessionStorage.removeItem(STORAGE_KEY);
      auth = null;
      show("signin-view");
      $("signin-error").textContent = why;
      return true;
    }
    $("stream-status").textContent = "Live: refused (" + status + "), retrying…";
    return false;
  });
}

// ---- Notifications with the console closed (Web Push) -----------------------

const PUSH_KEY = "ringrelay.push"; // localStorage: {destination, id} once subscribed
const PUSH_ON = "Stop notifying me when the console is closed";
const PUSH_OFF = "Notify me when the console is closed";

function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

/** A base64url string's bytes (the server's VAPID key). */
function base64urlBytes(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function pushState() {
  try {
    const saved = JSON.parse(localStorage.getItem(PUSH_KEY) || "null");
    return saved && saved.destination === auth.destination ? saved : null;
  } catch (_) {
    return null;
  }
}

function showPushButton() {
  const button = $("background-notifications");
  button.hidden = !pushSupported();
  button.textContent = pushState() ? PUSH_ON : PUSH_OFF;
  button.setAttribute("aria-pressed", String(Boolean(pushState())));
}

/**
 * Registers the service worker, subscribes this browser with the server's
 * key and registers the subscription for this destination: calls then show
 * as notifications (with Accept and Decline) with no console tab open.
 */
async function notifyWhenClosed() {
  const status = (text) => { $("push-status").textContent = text; };
  status("Turning on…");
  try {
    if ((await Notification.requestPermission()) !== "granted") {
      status("Notifications are blocked for this page: allow them in the browser's site settings.");
      return;
    }
    const registration = await navigator.serviceWorker.register("console/sw.js");
    const key = await api("GET", "v1/push/key");
    if (key.status !== 200 || !key.json) {
      status(key.status === 503
        ? "This service has no Web Push set up (VAPID_PRIVATE_KEY)."
        : "Could not read the service's push key (" + key.status + ").");
      return;
    }
    await navigator.serviceWorker.ready;
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: base64urlBytes(key.json.public_key),
    });
    const path = "v1/destinations/" + encodeURIComponent(auth.destination) + "/push-subscriptions";
    const stored = await api("POST", path, subscription.toJSON());
    if (stored.status !== 201 || !stored.json) {
      status((stored.json && stored.json.message) || "The service refused the subscription (" + stored.status + ").");
      return;
    }
    localStorage.setItem(PUSH_KEY, JSON.stringify({ destination: auth.destination, id: stored.json.id }));
    status("On: calls show as notifications with the console closed.");
  } catch (err) {
    // No push service reachable (offline, or a browser without one).
    status("This browser could not subscribe to push messages (" + (err && err.name) + ").");
  }
  showPushButton();
}

async function stopNotifyingWhenClosed() {
  const saved = pushState();
  localStorage.removeItem(PUSH_KEY);
  if (saved) {
    await api("DELETE", "v1/destinations/" + encodeURIComponent(auth.destination) +
      "/push-subscriptions/" + encodeURIComponent(saved.id));
  }
  try {
    const registration = await navigator.serviceWorker.getRegistration("console/");
    const subscription = registration && (await registration.pushManager.getSubscription());
    if (subscription) await subscription.unsubscribe();
  } catch (_) {
    // Nothing subscribed here: the server no longer pushes anyway.
  }
  $("push-status").textContent = "Off.";
  showPushButton();
}

// ---- Admin view -----------------------------------------------------------

let nextCursor = null;
const FIELDS = ["number", "forwarding_number", "mode", "strategy", "ring_timeout_secs", "pick_timeout_secs", "destinations"];

/** The codes the subscriber dials once (as the API's forwarding_codes). */
function forwardingCodes(n) {
  const gsm = (s) => ({ activate: "**" + s + "*" + n + "#", deactivate: "##" + s + "#" });
  const codes = { gsm: { busy: gsm("67"), no_reply: gsm("61"), unreachable: gsm("62"), all_conditional: gsm("004") } };
  if (/^\+1\d{10}$/.test(n)) codes.cdma = { busy_no_answer: { activate: "*71" + n.slice(2), deactivate: "*73" } };
  return codes;
}

function copyButton(text, what) {
  const b = button("Copy", async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied";
    } catch (_) {
      b.textContent = "Copy failed";
    }
    setTimeout(() => { b.textContent = "Copy"; }, 1500);
  });
  b.setAttribute("aria-label", "Copy " + what);
  return b;
}

function showCodes(number, codes) {
  $("codes-panel").hidden = false;
  $("codes-for").textContent = "For " + number + ": dial the activate code once on the phone.";
  const body = $("codes").querySelector("tbody");
  body.replaceChildren();
  for (const [network, conditions] of Object.entries(codes)) {
    for (const [condition, code] of Object.entries(conditions)) {
      const tr = el("tr");
      tr.append(el("td", network), el("td", condition));
      for (const which of ["activate", "deactivate"]) {
        const td = el("td");
        td.append(el("code", code[which]), " ", copyButton(code[which], network + " " + condition + " " + which + " code"));
        tr.append(td);
      }
      body.append(tr);
    }
  }
}

function subscriberRow(s) {
  const tr = el("tr");
  tr.append(el("td", s.number), el("td", s.forwarding_number), el("td", s.mode),
    el("td", (s.destinations || []).map((d) => d.id).join(", ")));
  const td = el("td");
  const edit = button("Edit", () => fillForm(s));
  edit.setAttribute("aria-label", "Edit " + s.number);
  const codes = button("Codes", () => showCodes(s.number, forwardingCodes(s.forwarding_number)));
  codes.setAttribute("aria-label", "Forwarding codes of " + s.number);
  td.append(edit, " ", codes);
  tr.append(td);
  return tr;
}

async function loadSubscribers(more) {
  const body = $("subscribers").querySelector("tbody");
  const query = "v1/subscribers?limit=50" + (more && nextCursor ? "&cursor=" + encodeURIComponent(nextCursor) : "");
  const r = await api("GET", query);
  if (r.status === 404) {
    $("subscribers-notice").textContent =
      "This server has no subscriber list (GET /v1/subscribers): give a number and press Load.";
    $("more-subscribers").hidden = true;
    return;
  }
  if (r.status !== 200 || !r.json) {
    $("subscribers-notice").textContent = "Could not list subscribers (" + r.status + ").";
    return;
  }
  $("subscribers-notice").textContent = "";
  if (!more) body.replaceChildren();
  for (const s of r.json.subscribers || []) body.append(subscriberRow(s));
  nextCursor = r.json.next_cursor || null;
  $("more-subscribers").hidden = !nextCursor;
}

function clearFieldErrors() {
  for (const f of FIELDS.concat(["extra"])) {
    $("err-" + f).textContent = "";
    const input = $("sub-" + f);
    if (input) input.removeAttribute("aria-invalid");
  }
  $("form-error").textContent = "";
  $("form-status").textContent = "";
}

function fieldError(field, message) {
  // A field of the form, or one of "More fields (JSON)".
  const at = FIELDS.includes(field) ? field : "extra";
  $("err-" + at).textContent = message;
  $("sub-" + at).setAttribute("aria-invalid", "true");
  $("sub-" + at).focus();
}

function fillForm(s) {
  clearFieldErrors();
  $("sub-number").value = s.number || "";
  $("sub-forwarding_number").value = s.forwarding_number || "";
  $("sub-mode").value = s.mode || "auto";
  $("sub-strategy").value = s.strategy || "sequential";
  $("sub-ring_timeout_secs").value = s.ring_timeout_secs || 20;
  $("sub-pick_timeout_secs").value = s.pick_timeout_secs || 15;
  $("sub-destinations").value = JSON.stringify(s.destinations || [], null, 2);
  const extra = Object.assign({}, s);
  for (const f of FIELDS) delete extra[f];
  $("sub-extra").value = JSON.stringify(extra, null, 2);
  $("sub-number").focus();
}

function newSubscriber() {
  fillForm({ destinations: [{ id: "desk", kind: "phone", address: "+12025550201" }] });
  $("saved").hidden = true;
}

function readJsonField(field) {
  try {
    return JSON.parse($("sub-" + field).value);
  } catch (err) {
    $("err-" + field).textContent = "is not valid JSON: " + err.message;
    $("sub-" + field).setAttribute("aria-invalid", "true");
    $("sub-" + field).focus();
    return undefined;
  }
}

async function saveSubscriber(event) {
  event.preventDefault();
  clearFieldErrors();
  const number = $("sub-number").value.trim();
  if (!number) {
    fieldError("number", "number: is required");
    return;
  }
  const destinations = readJsonField("destinations");
  const extra = readJsonField("extra");
  if (destinations === undefined || extra === undefined) return;
  const body = Object.assign({}, extra, {
    forwarding_number: $("sub-forwarding_number").value.trim(),
    mode: $("sub-mode").value,
    strategy: $("sub-strategy").value,
    ring_timeout_secs: Number($("sub-ring_timeout_secs").value),
    pick_timeout_secs: Number($("sub-pick_timeout_secs").value),
    destinations,
  });
  const rotate = $("sub-rotate").checked ? "?rotate_tokens=true" : "";
  const r = await api("PUT", "v1/subscribers/" + encodeURIComponent(number) + rotate, body);
  if (r.status === 200 || r.status === 201) {
    $("form-status").textContent = r.status === 201 ? "Created " + r.json.subscriber.number + "." : "Saved " + r.json.subscriber.number + ".";
    showTokens(r.json);
    showCodes(r.json.subscriber.number, r.json.forwarding_codes);
    loadSubscribers(false);
    return;
  }
  const message = (r.json && r.json.message) || "failed (" + r.status + ")";
  if (r.status === 422) {
    // The message starts with the field's path: "destinations[1].address: …".
    const path = message.split(":")[0];
    fieldError(path.split(/[.[]/)[0], message);
  } else {
    $("form-error").textContent = message;
  }
}

function showTokens(answer) {
  const dl = $("tokens");
  dl.replaceChildren();
  const add = (name, token) => {
    const dd = el("dd");
    dd.append(el("code", token), " ", copyButton(token, name));
    dl.append(el("dt", name), dd);
  };
  if (answer.device_token) add("Device token", answer.device_token);
  for (const [id, token] of Object.entries(answer.destination_tokens || {})) add("Token of " + id, token);
  $("saved").hidden = dl.children.length === 0;
}

async function loadSubscriber() {
  clearFieldErrors();
  const number = $("sub-number").value.trim();
  if (!number) {
    fieldError("number", "number: is required");
    return;
  }
  const r = await api("GET", "v1/subscribers/" + encodeURIComponent(number));
  if (r.status === 200 && r.json) {
    fillForm(r.json);
    showCodes(r.json.number, forwardingCodes(r.json.forwarding_number));
    $("form-status").textContent = "Loaded " + r.json.number + ".";
  } else if (r.status === 404) {
    fieldError("number", "number: no such subscriber");
  } else {
    fieldError("number", (r.json && r.json.message) || "failed (" + r.status + ")");
  }
}

async function deleteSubscriber() {
  clearFieldErrors();
  const number = $("sub-number").value.trim();
  if (!number) {
    fieldError("number", "number: is required");
    return;
  }
  if (!window.confirm("Delete " + number + "? Its open calls are cancelled.")) return;
  const r = await api("DELETE", "v1/subscribers/" + encodeURIComponent(number));
  if (r.status === 204) {
    $("form-status").textContent = "Deleted " + number + ".";
    loadSubscribers(false);
  } else if (r.status === 422) {
    fieldError("number", (r.json && r.json.message) || "invalid");
  } else {
    $("form-error").textContent = (r.json && r.json.message) || "failed (" + r.status + ")";
  }
}

const sessions = new Map(); // id -> li

function renderSession(s) {
  let li = sessions.get(s.id);
  if (!li) {
    li = el("li");
    li.dataset.session = s.id;
    sessions.set(s.id, li);
    $("sessions").prepend(li);
    while ($("sessions").children.length > 50) {
      const last = $("sessions").lastChild;
      sessions.delete(last.dataset.session);
      last.remove();
    }
  }
  const open = li.querySelector(".timeline") !== null && !li.querySelector(".timeline").hidden;
  li.replaceChildren();
  li.append(el("span", callerLabel(s)), " ", verificationBadge(s.caller_verification), " → ",
    el("span", s.subscriber), " ", el("span", s.state, "state"), " ", el("span", s.id, "meta"), " ");
  const dl = el("dl", null, "timeline");
  for (const [k, v] of Object.entries(s.timeline || {})) {
    if (v) dl.append(el("dt", k), el("dd", v));
  }
  for (const leg of s.legs || []) dl.append(el("dt", "leg " + leg.destination_id), el("dd", leg.status));
  dl.hidden = !open;
  const toggle = button(open ? "Hide timeline" : "Timeline", () => {
    dl.hidden = !dl.hidden;
    toggle.textContent = dl.hidden ? "Timeline" : "Hide timeline";
    toggle.setAttribute("aria-expanded", String(!dl.hidden));
  });
  toggle.setAttribute("aria-expanded", String(open));
  li.append(toggle, dl);
}

async function refreshSession(id) {
  const r = await api("GET", "v1/sessions/" + encodeURIComponent(id));
  if (r.status === 200 && r.json) renderSession(r.json);
}

async function startSessions() {
  const r = await api("GET", "v1/sessions?limit=20");
  if (r.status === 200 && r.json) {
    for (const s of (r.json.sessions || []).slice().reverse()) renderSession(s);
  }
  $("sessions-notice").textContent = "Live: connecting…";
  streamAbort = keepStreaming("v1/events", (s) => { $("sessions-notice").textContent = s === "Live: connected." ? "" : s; },
    (type, text) => {
      const event = parseEvent(text);
      if (event && event.data && event.data.session_id) refreshSession(event.data.session_id);
    },
    (status) => {
      if (status === 404) {
        $("sessions-notice").textContent =
          "This server has no admin event stream (GET /v1/events): live sessions are not shown.";
        return true;
      }
      return false;
    });
}

function startAdmin() {
  show("admin-view");
  loadSubscribers(false);
  startSessions();
  setInterval(checkReadiness, 15000);
}

// ---- Wiring -----------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  checkReadiness();
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) {
      $("signin-error").textContent = "Give a token.";
      return;
    }
    // A user gesture: the ring sound may start later.
    try { audio = audio || new AudioContext(); } catch (_) { audio = null; }
    $("token").value = "";
    signIn(token, true);
  });
  $("sign-out").addEventListener("click", signOut);
  $("allow-notifications").addEventListener("click", async () => {
    await Notification.requestPermission();
    $("allow-notifications").hidden = Notification.permission !== "default";
  });
  $("background-notifications").addEventListener("click", () =>
    (pushState() ? stopNotifyingWhenClosed() : notifyWhenClosed()));
  $("refresh-subscribers").addEventListener("click", () => loadSubscribers(false));
  $("more-subscribers").addEventListener("click", () => loadSubscribers(true));
  $("new-subscriber").addEventListener("click", newSubscriber);
  $("subscriber-form").addEventListener("submit", saveSubscriber);
  $("delete-subscriber").addEventListener("click", deleteSubscriber);
  $("load-subscriber").addEventListener("click", loadSubscriber);
  const saved = sessionStorage.getItem(STORAGE_KEY);
  if (saved) {
    try {
      const s = JSON.parse(saved);
      if (s && s.token) signIn(s.token, false);
    } catch (_) {
      sessionStorage.removeItem(STORAGE_KEY);
    }
  }
});
