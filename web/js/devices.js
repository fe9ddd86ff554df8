// The Devices page: a row per device, kept by its reference. The list starts from a snapshot
// (GET /api/v1/devices) and then follows the live stream: a change updates its row in place,
// a burst of changes is applied together every 50 ms, never by rebuilding the table. The page
// holds at most a few hundred rows (more on request); its filter searches every device.
import { api } from "./api.js";
import { $, cell, timeElement } from "./dom.js";
import { state } from "./state.js";

/** Rows by device reference. */
const rows = new Map();
/** Changes waiting for the next frame, by reference (`null`: removed). */
const pending = new Map();
let flushTimer = null;

const label = (d) => (d.feature ? `${d.name} / ${d.feature}` : d.name);

function newRow(d) {
  const row = document.createElement("tr");
  row.dataset.ref = d.ref;
  row.dataset.device = label(d);
  // A feature's row sits under its root's, indented.
  if (d.feature) row.classList.add("feature");
  const cells = [];
  for (let i = 0; i < 7; i++) { const td = document.createElement("td"); row.append(td); cells.push(td); }
  const name = document.createElement("a");
  name.href = `#devices/${d.ref}`;
  name.title = "history";
  name.addEventListener("click", () => { if (location.hash === name.hash) showHistory(state.devices.get(d.ref) || d); });
  cells[2].append(name);
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "secondary";
  remove.textContent = "Delete";
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete device ${d.ref} (${row.dataset.device}) and its history? A run of its profile may create it again, with a new reference.`)) return;
    await api("DELETE", `/devices/${d.ref}`);
  });
  cells[6].append(remove);
  fillRow(row, d);
  return row;
}

// Writes a device's state into its row's cells.
function fillRow(row, d) {
  const cells = row.children;
  row.dataset.device = label(d);
  cells[0].textContent = d.ref;
  cells[1].textContent = d.profile;
  cells[2].firstChild.textContent = label(d);
  // A root that only groups features, or a device that holds text, shows no number; a number
  // shows its unit.
  cells[3].textContent = d.grouping || (d.string && d.value === 0) ? "" : `${d.value}${d.unit ? " " + d.unit : ""}`;
  cells[4].textContent = d.string;
  cells[5].replaceChildren(timeElement(d.changed_at));
}

// Globals: a row each, by name, kept like the devices'.
const globalRows = new Map();
function fillGlobal(row, g) {
  const cells = row.children;
  cells[0].firstChild.textContent = g.name;
  cells[1].textContent = g.string && g.value === 0 ? "" : g.value;
  cells[2].textContent = g.string;
  cells[3].replaceChildren(timeElement(g.changed_at));
}
function globalRow(g) {
  const row = document.createElement("tr");
  row.dataset.global = g.name;
  for (let i = 0; i < 4; i++) row.append(document.createElement("td"));
  // The name opens its history (`#globals/<name>`).
  const name = document.createElement("a");
  name.href = `#globals/${encodeURIComponent(g.name)}`;
  name.title = "history";
  name.addEventListener("click", () => { if (location.hash === name.hash) openGlobal(g.name); });
  row.firstChild.append(name);
  fillGlobal(row, g);
  return row;
}
/** Globals changed while their snapshot is read (applied on top of it, in order); `null`
 * before a snapshot is first asked for: the stream's changes are not drawn until then. Only the
 * newest snapshot asked for counts. */
let globalsWaiting = null;
let globalsRead = false;
let globalsAsked = 0;
async function loadGlobals() {
  globalsWaiting = [];
  const asked = ++globalsAsked;
  const { ok, data } = await api("GET", "/globals").catch(() => ({ ok: false, data: {} }));
  if (asked !== globalsAsked) return; // a newer snapshot is on its way
  const waiting = globalsWaiting || [];
  globalsWaiting = null;
  if (!ok) { if (globalsRead) for (const g of waiting) globalChanged(g); return; }
  globalsRead = true;
  globalRows.clear();
  const fresh = (data.globals || []).map((g) => { const row = globalRow(g); globalRows.set(g.name, row); return row; });
  $("#global-rows").replaceChildren(...fresh);
  // The names offered where a global is named (here and in the event editor).
  $("#global-names").replaceChildren(...(data.globals || []).map((g) => { const o = document.createElement("option"); o.value = g.name; return o; }));
  for (const g of waiting) globalChanged(g);
}
/** A global changed (from the live stream). */
export function globalChanged(g) {
  // The open history follows (its store commits within the commit window).
  if (state.globalHistoryOf === g.name && !$("#devices").hidden) setTimeout(() => openGlobal(g.name), 200);
  if (globalsWaiting) { globalsWaiting.push(g); return; }
  if (!globalsRead) return;
  const row = globalRows.get(g.name);
  if (row) { fillGlobal(row, g); return; }
  const created = globalRow(g);
  globalRows.set(g.name, created);
  const body = $("#global-rows");
  const after = [...body.children].find((r) => r.dataset.global > g.name);
  if (after) after.before(created); else body.append(created);
}

/** How many device rows the page holds at most until asked for more: 10,000 rows in a table
 * take a second of layout; the filter searches every device, not only the rows shown. */
const PAGE = 200;
let limit = PAGE;

/** Whether a device snapshot was ever read: until then the stream's changes are not drawn (a
 * page that drew them first would show a few devices as if they were all). After, changes are
 * drawn as they come, also while another snapshot is read, so the page never waits on one. */
let everLoaded = false;
/** The newest snapshot asked for: only its answer counts (an older one answering last would
 * undo changes received since). */
let snapshotAsked = 0;
/** Changes received since the newest snapshot was asked for (`null`: none is being read): they
 * are applied again on top of it, the newest of each device winning. */
let sinceAsked = null;

/** Shows the devices (and globals) as they are now: a snapshot replaces everything shown. */
export async function loadDevices(attempt = 1) {
  if (attempt === 1) loadGlobals();
  const asked = ++snapshotAsked;
  sinceAsked = new Map();
  // (A failed connection is an answer that is not ok.)
  const { ok, data } = await api("GET", "/devices").catch(() => ({ ok: false, data: {} }));
  if (asked !== snapshotAsked) return; // a newer snapshot is on its way
  const since = sinceAsked;
  sinceAsked = null;
  if (!ok) {
    // What was shown stays and follows the stream; never shown: nothing to follow yet. A
    // snapshot that could not be read (a connection closed under load) is asked for again,
    // a few times, later each time: a resync's gap is only closed by one.
    if (!everLoaded) pending.clear();
    if (attempt < 5) setTimeout(() => { if (asked === snapshotAsked && !$("#devices").hidden) loadDevices(attempt + 1); }, 300 * attempt);
    return;
  }
  everLoaded = true;
  // Changes waiting for the next flush came before the snapshot (it has them) or after it
  // was asked for (`since` has them).
  pending.clear();
  state.devices.clear();
  for (const d of data.devices || []) state.devices.set(d.ref, d);
  for (const [ref, d] of since) { if (d === null) state.devices.delete(ref); else state.devices.set(ref, d); }
  // Rows are kept only for devices still there; their cells are filled anew when shown.
  for (const ref of rows.keys()) if (!state.devices.has(ref)) rows.delete(ref);
  render();
}

// The filter box: devices whose reference, profile or name contain every word typed.
function filterWords() { return $("#device-filter").value.toLowerCase().split(/\s+/).filter(Boolean); }
function matches(d, words) {
  const text = `${d.ref} ${d.profile} ${label(d)}`.toLowerCase();
  return words.every((w) => text.includes(w));
}

// Grouped by root: a root device's row, then its features' rows (indented), roots in reference
// order. A feature sorts by its root's reference (its own when its root is not known).
function rootRefs() {
  const roots = new Map();
  for (const d of state.devices.values()) if (!d.feature) roots.set(`${d.profile}\u0000${d.name}`, d.ref);
  return roots;
}
function orderKey(d, roots) {
  return [roots.get(`${d.profile}\u0000${d.name}`) ?? d.ref, d.feature ? 1 : 0, d.ref];
}
function before(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}

/** The devices that pass the filter, grouped by root, and how many there are. */
function selection() {
  const words = filterWords();
  const roots = rootRefs();
  const chosen = [...state.devices.values()].filter((d) => matches(d, words))
    .map((d) => ({ d, key: orderKey(d, roots) }))
    .sort((a, b) => (before(a.key, b.key) ? -1 : before(b.key, a.key) ? 1 : 0))
    .map(({ d }) => d);
  return { words, chosen };
}

/** Shows the first `limit` devices of the selection (rows reused, by reference). */
function render() {
  const { words, chosen } = selection();
  const shown = chosen.slice(0, limit).map((d) => {
    let row = rows.get(d.ref);
    if (row) fillRow(row, d); else { row = newRow(d); rows.set(d.ref, row); }
    return row;
  });
  const body = $("#device-rows");
  body.replaceChildren(...shown);
  body.dataset.shown = String(shown.length);
  countShown(words, chosen.length);
  $("#device-more").hidden = chosen.length <= shown.length;
}

/** Whether a device not shown yet belongs on the page as it is: the page has room, or its
 * reference comes before the last one shown (and it passes the filter). */
function belongsShown(d, roots) {
  const body = $("#device-rows");
  if (!matches(d, filterWords())) return false;
  if (body.children.length < limit) return true;
  const last = state.devices.get(Number(body.lastElementChild?.dataset.ref));
  if (!last) return true;
  return before(orderKey(d, roots), orderKey(last, roots));
}
let filterTimer = null;
$("#device-filter").addEventListener("input", () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => { limit = PAGE; render(); }, 120);
});
$("#device-more").addEventListener("click", () => { limit += PAGE; render(); });

function flush() {
  flushTimer = null;
  if (!everLoaded) return; // the first snapshot brings them
  let reshow = false;
  let arrivedOffPage = false;
  let roots = null;
  for (const [ref, d] of pending) {
    const row = rows.get(ref);
    if (d === null) {
      state.devices.delete(ref);
      if (row) { row.remove(); rows.delete(ref); }
      continue;
    }
    const known = state.devices.has(ref);
    state.devices.set(ref, d);
    if (row && row.isConnected) fillRow(row, d);
    // (The roots are read once a flush: a burst may bring thousands of new devices.)
    else if (!known && belongsShown(d, roots ??= rootRefs())) reshow = true; // a new device on the page: render places it
    else if (!known) arrivedOffPage = true;
    // The open history follows (its store commits within the commit window).
    if (state.historyOf === ref && !$("#devices").hidden) setTimeout(() => showHistory(d), 200);
  }
  pending.clear();
  if (reshow) render();
  else if (arrivedOffPage) { $("#device-more").hidden = false; countShown(); }
}

// Says how many devices are shown, of how many.
function countShown(words = filterWords(), matching = null) {
  const shown = $("#device-rows").children.length;
  const total = state.devices.size;
  const count = $("#device-count");
  if (words.length) count.textContent = matching === shown ? `${matching} of ${total} devices` : `${shown} of ${matching ?? "the"} matching, ${total} devices shown`;
  else count.textContent = shown < total ? `${shown} of ${total} devices shown` : "";
}

function schedule() {
  if (flushTimer === null) flushTimer = setTimeout(flush, 50);
}

/** A device changed (from the live stream). */
export function deviceChanged(d) { changed(d.ref, d); }
/** A device was deleted (from the live stream). */
export function deviceRemoved(ref) { changed(ref, null); }
function changed(ref, d) {
  sinceAsked?.set(ref, d);
  if (everLoaded || sinceAsked) { pending.set(ref, d); schedule(); }
}

/** Opens a device's history by its reference (a deep link), once the devices are read. */
export async function openDevice(ref) {
  if (!state.devices.has(ref)) await loadDevices();
  const device = state.devices.get(ref);
  if (device) showHistory(device);
}

// A device's history: a chart of its values (numeric devices) and the list of changes.
const SVG = "http://www.w3.org/2000/svg";
/** The history's time range in ms (0: all that is kept). */
let range = 0;
for (const button of document.querySelectorAll("#device-history [data-range]")) {
  button.addEventListener("click", () => {
    range = Number(button.dataset.range);
    for (const other of document.querySelectorAll("#device-history [data-range]")) other.setAttribute("aria-pressed", String(other === button));
    const device = state.devices.get(state.historyOf);
    if (device) showHistory(device);
    else if (state.globalHistoryOf !== null) openGlobal(state.globalHistoryOf);
  });
}
// Setting a global from the page (a new name makes a new global); the list follows live.
$("#global-set").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const name = form.elements.name.value.trim();
  const body = {};
  if (form.elements.value.value !== "") body.value = Number(form.elements.value.value);
  if (form.elements.string.value !== "") body.string = form.elements.string.value;
  if (!name || !Object.keys(body).length) { $("#global-set-result").textContent = "Give a name and a value or a text."; return; }
  const { ok, data } = await api("PUT", `/globals/${encodeURIComponent(name)}`, body);
  $("#global-set-result").textContent = ok ? "Set." : (data.error ? data.error.message : "not set");
});

// Setting the open device from the page: a number, a text, or both.
$("#device-set").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = {};
  if (form.elements.value.value !== "") body.value = Number(form.elements.value.value);
  if (form.elements.string.value !== "") body.string = form.elements.string.value;
  if (!Object.keys(body).length) { $("#device-set-result").textContent = "Give a value or a text."; return; }
  const { ok, data } = await api("PUT", `/devices/${state.historyOf}`, body);
  $("#device-set-result").textContent = ok ? "Set." : (data.error ? data.error.message : "not set");
});

/** Opens a global's history (a deep link, `#globals/<name>`). */
export async function openGlobal(name) {
  await showHistory(null, name);
  $("#device-history").scrollIntoView({ block: "nearest" });
}

// The open history: a device's, or (with `device` null) the global `global`'s.
async function showHistory(device, global = null) {
  state.historyOf = device ? device.ref : null;
  state.globalHistoryOf = device ? null : global;
  const since = range ? `&since=${Date.now() - range}` : "";
  const address = device ? `/devices/${device.ref}/history` : `/globals/${encodeURIComponent(global)}/history`;
  const { ok, data } = await api("GET", `${address}?limit=500${since}`);
  if (!ok) return;
  $("#device-history").hidden = false;
  $("#device-set").hidden = !device;
  $("#history-title").textContent = device ? `History of ${label(device)}` : `History of the global ${global}`;
  const points = data.points || [];
  const rowsBody = $("#history-rows");
  rowsBody.replaceChildren();
  for (const p of [...points].reverse().slice(0, 50)) {
    const row = document.createElement("tr");
    cell(row, timeElement(new Date(p.at_ms).toISOString())); cell(row, p.value); cell(row, p.string);
    // The run that made a device's change, found among the runs kept (a change set by hand
    // has none); a global is set by events and by hand, not by runs.
    if (device) {
      const made = document.createElement("a");
      made.href = `#runs/${encodeURIComponent(device.profile)}/${device.ref}@${p.at_ms}`;
      made.textContent = "its run";
      cell(row, made);
    } else cell(row, "");
    rowsBody.append(row);
  }
  const chart = $("#history-chart");
  chart.replaceChildren();
  const numeric = points.filter((p) => Number.isFinite(p.value));
  // (An SVG element has no `hidden` property: the attribute is set.)
  const flat = numeric.length < 2 || numeric.every((p) => p.value === numeric[0].value && p.string);
  chart.toggleAttribute("hidden", flat);
  if (flat) return;
  const [width, height, pad] = [600, 180, 28];
  const times = numeric.map((p) => p.at_ms), values = numeric.map((p) => p.value);
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  const [v0, v1] = [Math.min(...values), Math.max(...values)];
  const x = (t) => pad + (t1 === t0 ? 0 : (t - t0) / (t1 - t0)) * (width - 2 * pad);
  const y = (v) => height - pad - (v1 === v0 ? 0.5 : (v - v0) / (v1 - v0)) * (height - 2 * pad);
  // A device holds its value until the next change: steps, not slopes.
  let path = `M${x(times[0])},${y(values[0])}`;
  for (let i = 1; i < numeric.length; i++) path += ` H${x(times[i])} V${y(values[i])}`;
  const line = document.createElementNS(SVG, "path");
  line.setAttribute("d", path);
  line.setAttribute("class", "line");
  chart.append(line);
  const addText = (x, y, text, anchor) => {
    const element = document.createElementNS(SVG, "text");
    element.setAttribute("x", x); element.setAttribute("y", y);
    if (anchor) element.setAttribute("text-anchor", anchor);
    element.textContent = text;
    chart.append(element);
    return element;
  };
  for (const [value, at] of [[v1, y(v1)], [v0, y(v0)]]) addText(2, at + 4, String(value));
  // Hovering a change says its value and time (a title, as the browser shows it).
  const local = (t) => new Date(t).toLocaleString();
  numeric.forEach((p, i) => {
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("cx", x(times[i])); dot.setAttribute("cy", y(values[i])); dot.setAttribute("r", 4);
    dot.setAttribute("class", "point");
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${p.value}${device?.unit ? " " + device.unit : ""} at ${local(p.at_ms)}`;
    dot.append(title);
    chart.append(dot);
  });
  // The time axis: when the first and the last change shown happened (local time).
  const axis = document.createElementNS(SVG, "line");
  axis.setAttribute("x1", pad); axis.setAttribute("x2", width - pad);
  axis.setAttribute("y1", height - pad + 4); axis.setAttribute("y2", height - pad + 4);
  axis.setAttribute("class", "axis");
  chart.append(axis);
  const stamp = (t) => new Date(t).toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
  addText(pad, height - 6, stamp(t0)).setAttribute("class", "time");
  addText(width - pad, height - 6, stamp(t1), "end").setAttribute("class", "time");
}
