// The Overview, the landing page: is everything all right? The device store's and every
// adapter's health, the profiles and events that need attention (a profile to authorize again,
// a failed last run, a file that does not load), the next scheduled firings, and what just
// happened in the hub (runs, event runs, authorization changes) as the live stream tells it.
import { api } from "./api.js";
import { $, timeElement } from "./dom.js";
import { describeStatus } from "./profiles.js";

const ACTIVITY_KEPT = 20;
const NEXT_SHOWN = 5;

// A list item: a link to what it is about (its deep link) and what to say of it.
function item(label, hash, ...rest) {
  const li = document.createElement("li");
  if (hash) {
    const link = document.createElement("a");
    link.href = hash;
    link.textContent = label;
    li.append(link);
  } else {
    li.append(label);
  }
  li.append(...rest);
  return li;
}

function fill(list, items, empty) {
  list.replaceChildren(...items);
  if (!items.length) {
    const none = document.createElement("li");
    none.className = "hint";
    none.textContent = empty;
    list.append(none);
  }
}

function healthItems(health) {
  const items = [];
  const store = health.store;
  if (store) {
    const problem = store.failing ? `failing: ${store.failing} (${store.pending} writes waiting)` : "";
    const li = item("Device store", "", `: ${problem || "every change committed"}`);
    if (problem) li.className = "problem";
    if (store.dropped_records) li.append(`; ${store.dropped_records} run records dropped while it failed`);
    items.push(li);
  }
  for (const [name, adapter] of Object.entries(health.adapters || {})) {
    const li = item(name.toUpperCase(), "", `: ${adapter.ok ? "connected" : adapter.detail}`, adapter.since ? " since " : "", adapter.since ? timeElement(adapter.since) : "");
    if (!adapter.ok) li.className = "problem";
    items.push(li);
  }
  return items;
}

async function profileAttention(profiles, diagnostics) {
  const items = [];
  for (const problem of diagnostics.filter((d) => d.severity === "error")) {
    const li = item(problem.file.split("/").pop(), "#profiles", ` does not load: ${problem.message}`);
    li.className = "problem";
    items.push(li);
  }
  const oauth = profiles.filter((p) => p.auth_mode === "oauth2");
  const statuses = await Promise.all(oauth.map((p) => api("GET", `/profiles/${encodeURIComponent(p.name)}/authorization`)));
  oauth.forEach((profile, i) => {
    const { ok, data } = statuses[i];
    if (!ok || ["authorized", "awaiting_user"].includes(data.status.state)) return;
    const li = item(profile.name, `#profiles/${encodeURIComponent(profile.name)}`, `: ${describeStatus(data.status)}`);
    if (data.status.state !== "never_authorized") li.className = "problem";
    items.push(li);
  });
  for (const profile of profiles) {
    const last = profile.last_run;
    if (!last || last.ok || last.skipped) continue;
    const li = item(profile.name, `#profiles/${encodeURIComponent(profile.name)}`, ": the last run failed ", timeElement(last.started_at));
    li.className = "problem";
    items.push(li);
  }
  return items;
}

function eventAttention(events) {
  return events
    .filter((e) => e.last_run && e.last_run.outcome === "failed")
    .map((e) => {
      const li = item(e.name, `#events/${encodeURIComponent(e.name)}`, ": failed ", timeElement(e.last_run.started_at));
      li.className = "problem";
      return li;
    });
}

function nextFirings(events) {
  return events
    .filter((e) => e.next_at && e.enabled)
    .sort((a, b) => a.next_at.localeCompare(b.next_at))
    .slice(0, NEXT_SHOWN)
    .map((e) => item(e.name, `#events/${encodeURIComponent(e.name)}`, " ", timeElement(e.next_at)));
}

export async function loadOverview() {
  const [health, profiles, events] = await Promise.all([api("GET", "/health"), api("GET", "/profiles"), api("GET", "/events")]);
  const healthList = healthItems(health.data || {});
  fill($("#health-list"), healthList, "Nothing to report.");
  const attention = [
    ...(await profileAttention(profiles.data.profiles || [], profiles.data.diagnostics || [])),
    ...eventAttention(events.data.events || []),
  ];
  fill($("#attention-list"), attention, "Nothing needs attention.");
  fill($("#next-list"), nextFirings(events.data.events || []), "No schedule is due.");
  const troubled = attention.filter((li) => li.className === "problem").length + healthList.filter((li) => li.className === "problem").length;
  const summary = $("#overview-summary");
  summary.textContent = troubled
    ? `${troubled} thing${troubled === 1 ? "" : "s"} need${troubled === 1 ? "s" : ""} attention.`
    : attention.length ? "All is well; some profiles are not authorized yet." : "All is well.";
  summary.classList.toggle("attention", troubled > 0);
  drawFeed();
}

// What the live stream told, newest first, the last ACTIVITY_KEPT of it. Kept as data; the list
// is drawn (at most every 100 ms) only while the Overview is shown, so a burst of runs on
// another page costs no DOM work.
const feed = [];
let drawTimer = null;
export function activity(kind, data) {
  if (!["run", "event", "authorization"].includes(kind)) return;
  feed.unshift({ kind, data, at: new Date() });
  feed.length = Math.min(feed.length, ACTIVITY_KEPT);
  if ($("#overview").hidden) return;
  if (drawTimer === null) drawTimer = setTimeout(drawFeed, 100);
  // What needs attention may have changed with it.
  const failed = (kind === "run" && !data.ok && !data.skipped) || (kind === "event" && data.outcome === "failed");
  if (kind === "authorization" || failed) refreshSoon();
}

function feedEntry({ kind, data, at }) {
  let entry;
  if (kind === "run") {
    const outcome = data.skipped ? "skipped" : data.ok ? "ok" : "failed";
    entry = item(data.profile, `#profiles/${encodeURIComponent(data.profile)}`, ` ran: ${outcome}`);
    if (outcome === "failed") entry.className = "problem";
  } else if (kind === "event") {
    entry = item(data.event, `#events/${encodeURIComponent(data.event)}`, ` (${data.trigger}): ${data.outcome.replace("_", " ")}`);
    if (data.outcome === "failed") entry.className = "problem";
  } else {
    entry = item(data.profile, `#profiles/${encodeURIComponent(data.profile)}`, ": its authorization changed");
  }
  entry.prepend(timeElement(at.toISOString()), " ");
  return entry;
}

function drawFeed() {
  drawTimer = null;
  if (!feed.length) return;
  $("#activity-list").replaceChildren(...feed.map(feedEntry));
}

let refreshTimer = null;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(loadOverview, 500);
}
