// The console's service worker: hears a destination's events by Web Push
// while no console tab is open. A ringing call shows as a notification with
// Accept and Decline, which post the call's capability URL (its path, to
// this origin) without opening a tab; the call's end closes it. A
// voicemail's transcription shows as a notification of its own. Every value
// is text: notifications render none as markup.
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

/** Events that end an offer: its notification goes. */
const ENDINGS = ["call.cancelled", "call.taken", "call.connected", "call.missed", "call.voicemail"];

/** `event.waitUntil(work)` when the browser sent the event; `work` either way. */
function extend(event, work) {
  if (event.isTrusted) event.waitUntil(work);
  return work;
}

self.addEventListener("push", (event) => {
  let message = null;
  try {
    message = event.data ? event.data.json() : null;
  } catch (_) {
    message = null;
  }
  if (!message || !message.data) return;
  extend(event, onEvent(message));
});

async function onEvent(message) {
  const data = message.data;
  if (message.type === "call.ringing") {
    await self.registration.showNotification("Incoming call", {
      body: (data.caller || "Withheld number") + " → " + data.subscriber,
      tag: data.session_id,
      requireInteraction: true,
      renotify: true,
      data: { session_id: data.session_id, accept_url: data.accept_url, decline_url: data.decline_url },
      actions: [
        { action: "accept", title: "Accept" },
        { action: "decline", title: "Decline" },
      ],
    });
    return;
  }
  if (ENDINGS.includes(message.type)) {
    const shown = await self.registration.getNotifications({ tag: data.session_id });
    for (const notification of shown) notification.close();
    return;
  }
  // A voicemail's transcription: what the caller said, readable at once.
  if (message.type === "call.voicemail_transcribed" && data.text) {
    const who = data.caller_name || data.caller || "a withheld number";
    await self.registration.showNotification("Voicemail from " + who, {
      body: data.text,
      tag: data.session_id,
    });
  }
}

/** The path and query of a capability URL, posted to this origin. */
function samePath(url) {
  try {
    const u = new URL(url, self.location.origin);
    return u.pathname + u.search;
  } catch (_) {
    return null;
  }
}

const OUTCOMES = {
  200: (action) => (action === "accept" ? "Accepted" : "Declined"),
  409: () => "Already taken",
  410: () => "The call is over",
};

async function answer(data, action) {
  const path = samePath(action === "accept" ? data.accept_url : data.decline_url);
  if (!path) return;
  let status = 0;
  try {
    status = (await fetch(path, { method: "POST" })).status;
  } catch (_) {
    status = 0;
  }
  const outcome = OUTCOMES[status] ? OUTCOMES[status](action) : "Could not answer (" + status + ")";
  // Say what came of it, in place of the offer (same tag).
  await self.registration.showNotification(outcome, { tag: data.session_id, body: "" });
}

self.addEventListener("notificationclick", (event) => {
  const notification = event.notification;
  const data = notification.data || {};
  notification.close();
  if (event.action === "accept" || event.action === "decline") {
    extend(event, answer(data, event.action));
    return;
  }
  // The notification itself: open the console (or bring it forward).
  extend(event, (async () => {
    const open = await self.clients.matchAll({ type: "window" });
    if (open.length) return open[0].focus();
    return self.clients.openWindow(new URL("../console", self.location.href).href);
  })());
});
