// The Events page: the list (triggers, next firing, last run) and the editor (fields and the
// trigger/action lists from the schema; each run with its steps).
import { api } from "./api.js";
import { $, cell, clearErrors, clearNotesOnInput, lastRun, listOrEditor, listProblems, nameInAddress, noteAt, openLink, runButton, text, timeElement } from "./dom.js";
import { buildFields, fieldElement, readField, syncWhen } from "./schema-form.js";
import { stepList } from "./runs.js";
import { schemaReady, state } from "./state.js";

// The list comes a page at a time (the server's cursor is the last name of a page).
let nextPage = null;
export async function loadEvents() { await loadEventPage(null); }
async function loadEventPage(after) {
  const { data } = await api("GET", "/events" + (after ? `?after=${encodeURIComponent(after)}` : ""));
  $("#event-zone").textContent = data.time_zone ? `Schedules run in ${data.time_zone}.` : "";
  const rows = $("#event-rows");
  if (!after) rows.replaceChildren();
  nextPage = data.next || null;
  $("#event-more").hidden = !nextPage;
  for (const event of data.events || []) {
    const row = document.createElement("tr");
    row.dataset.event = event.name;
    cell(row, openLink(event.name, "events", () => openEvent(event.name)));
    cell(row, (event.triggers || []).join("; ") + (event.enabled ? "" : " (disabled)"));
    cell(row, event.next_at ? timeElement(event.next_at) : "");
    cell(row, lastRun(event.last_run && event.last_run.outcome, event.last_run && event.last_run.started_at));
    const run = runButton(() => runEvent(event.name));
    cell(row, run);
    rows.append(row);
  }
  listProblems($("#event-problems"), data.diagnostics);
}

// The list and the open event follow finished runs, a burst at a time.
let refreshTimer = null;
export function eventFinished(name) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    if (!$("#events").hidden) loadEvents();
    if (state.editingEvent === name) loadEventRuns(name);
  }, 300);
}

// One trigger or action: its kind, the fields of that kind, and a Remove button.
function listItem(list, values) {
  const item = document.createElement("div");
  item.className = "list-item";
  const kind = document.createElement("select");
  kind.name = "kind";
  for (const [value, label] of list.kinds) kind.append(new Option(label, value));
  kind.value = values.kind || list.kinds[0][0];
  const kindLabel = document.createElement("label");
  kindLabel.append(text("Kind "), kind);
  item.append(kindLabel);
  for (const field of list.fields) item.append(fieldElement(field, values[field.key]));
  if (list.key === "trigger" && values.device != null && values.device !== "") item.dataset.deviceRef = values.device;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "secondary";
  remove.textContent = "Remove";
  remove.addEventListener("click", () => { item.remove(); state.unsaved.add("event"); });
  item.append(remove);
  kind.addEventListener("change", () => syncWhen(item));
  syncWhen(item);
  // Fields that name a profile, an event, a global or a device offer the ones that exist.
  for (const [key, list] of Object.entries(PICKERS)) item.querySelector(`[name="${key}"]`)?.setAttribute("list", list);
  // A line a person reads ("When hall / temperature crosses above 25"), kept up to date.
  const summary = document.createElement("p");
  summary.className = "summary";
  item.prepend(summary);
  const say = () => { summary.textContent = summarize(list.key, item); };
  item.addEventListener("input", say);
  item.addEventListener("change", say);
  say();
  return item;
}

/** The datalist each naming field offers. */
const PICKERS = { input: "profile-names", run: "profile-names", profile: "profile-names", error: "profile-names", event: "event-names", global: "global-names", set_global: "global-names", set_device: "device-refs" };

/** Fills the pickers with what exists now. */
async function fillPickers() {
  const [profiles, events, globals, devices] = await Promise.all([api("GET", "/profiles"), api("GET", "/events?limit=1000"), api("GET", "/globals"), api("GET", "/devices")]);
  const fill = (id, entries) => $(`#${id}`).replaceChildren(...entries.map(([value, label]) => { const o = document.createElement("option"); o.value = value; if (label) o.label = label; return o; }));
  fill("profile-names", (profiles.data.profiles || []).map((p) => [p.name]));
  fill("event-names", (events.data.events || []).map((e) => [e.name]));
  fill("global-names", (globals.data.globals || []).map((g) => [g.name]));
  fill("device-refs", (devices.data.devices || []).map((d) => [String(d.ref), `${d.profile}: ${d.feature ? `${d.name} / ${d.feature}` : d.name}`]));
}

const COMPARED = { "=": "is", "!=": "is not", "<": "is below", "<=": "is at most", ">": "is above", ">=": "is at least" };
const CROSSES = { "=": "becomes", "!=": "stops being", "<": "drops below", "<=": "drops to", ">": "crosses above", ">=": "reaches" };

/** One trigger or action in words, from its fields as they are now. */
function summarize(list, item) {
  const v = (name) => { const c = item.querySelector(`[name="${name}"]`); return c ? (c.type === "checkbox" ? c.checked : c.value.trim()) : ""; };
  const or = (value, placeholder) => value || placeholder;
  const to = () => v("value") ? `to ${v("value")}` : v("string") ? `to “${v("string")}”` : "";
  if (list === "trigger") {
    switch (v("kind")) {
      case "every": return `Every ${or(v("every"), "…")}`;
      case "cron": return `On the schedule ${or(v("cron"), "…")}`;
      case "startup": return "When Bellhop starts";
      case "webhook": return "When its webhook URL is called";
      case "global": return `When global ${or(v("global"), "…")} changes`;
      case "error": return `When profile ${or(v("error"), "…")} fails${v("class") ? ` (${v("class").replace("_", " ")})` : ""}`;
      case "input": {
        const matcher = v("expression") ? `makes ${v("expression")} true` : v("text") ? `holds “${v("text")}”` : v("onoff") ? `says ${v("onoff")}` : v("compare") && v("to") !== "" ? `has a number that ${COMPARED[v("compare")]} ${v("to")}` : "comes";
        return `When ${or(v("input"), "a profile")}'s input ${matcher}`;
      }
      case "device": {
        const device = [or(v("profile"), "…"), or(v("root"), "…"), v("feature")].filter(Boolean).join(" / ");
        const comparison = v("compare") && v("to") !== "" ? `${(v("crossing") ? CROSSES : COMPARED)[v("compare")]} ${v("to")}` : "changes";
        return `When ${device} ${comparison}`;
      }
      default: return "";
    }
  }
  switch (v("kind")) {
    case "run": return `Run profile ${or(v("run"), "…")}${v("text") ? ` with “${v("text")}”` : ""}`;
    case "set_device": return `Set device ${or(v("set_device"), "…")} ${to()}`.trim();
    case "set_global": return `Set global ${or(v("set_global"), "…")} ${to()}`.trim();
    case "wait": return `Wait ${or(v("wait"), "…")}`;
    case "event": return `Run event ${or(v("event"), "…")}`;
    default: return "";
  }
}

function buildEventForm(form) {
  const container = $("#event-fields");
  buildFields(container, state.schemas.event.fields, form);
  for (const list of state.schemas.event.lists) {
    const set = document.createElement("fieldset");
    set.dataset.list = list.key;
    const legend = document.createElement("legend");
    legend.textContent = list.label;
    const items = document.createElement("div");
    items.className = "items";
    for (const values of form[list.key] || []) items.append(listItem(list, values));
    const add = document.createElement("button");
    add.type = "button";
    add.className = "secondary";
    add.id = `add-${list.key}`;
    add.textContent = list.key === "trigger" ? "Add a trigger" : "Add an action";
    add.addEventListener("click", () => { items.append(listItem(list, {})); state.unsaved.add("event"); });
    set.append(legend, items, add);
    container.append(set);
  }
}

function readEventForm() {
  const container = $("#event-fields");
  const form = {};
  for (const field of state.schemas.event.fields) form[field.key] = readField(container.querySelector(`[name="${field.key}"]`), field);
  form.name = String(form.name || "").trim();
  for (const list of state.schemas.event.lists) {
    form[list.key] = [...container.querySelectorAll(`[data-list="${list.key}"] .list-item`)].map((item) => {
      const values = { kind: item.querySelector('[name="kind"]').value };
      for (const field of list.fields) {
        const part = item.querySelector(`.field[data-key="${field.key}"]`);
        if (part && !part.hidden) values[field.key] = readField(part.querySelector(`[name="${field.key}"]`), field);
      }
      if (item.dataset.deviceRef) values.device = item.dataset.deviceRef;
      return values;
    });
  }
  return form;
}

// Problems name keys such as `trigger[1].every` or `retrigger`.
function showEventErrors(diagnostics) {
  for (const d of diagnostics) {
    const message = (d.column ? `column ${d.column}: ` : "") + d.message;
    const inList = /^(trigger|action)\[(\d+)\](?:\.(\w+))?/.exec(d.key || "");
    let control = null;
    if (inList) {
      const item = $("#event-fields").querySelectorAll(`[data-list="${inList[1]}"] .list-item`)[Number(inList[2])];
      if (item) control = item.querySelector(`[name="${inList[3] || "kind"}"]`) || item.querySelector('[name="kind"]');
    } else if (d.key) {
      control = $("#event-fields").querySelector(`[name="${d.key.split(".")[0]}"]`);
    }
    noteAt(control, message, $("#event-message"));
  }
}

function clearEventErrors() { clearErrors($("#event-editor"), $("#event-message")); }

const view = listOrEditor($("#event-list"), $("#event-editor"), $("#event-notice"), $("#event-message"));
/** The list view (`#events`): the editor closes. */
export function showEventList() {
  state.editingEvent = null;
  view.list();
}

export async function openEvent(name) {
  await schemaReady();
  clearEventErrors();
  const { ok, data } = await api("GET", `/events/${encodeURIComponent(name)}/form`);
  if (!ok) {
    state.editingEvent = null;
    view.refused(data);
    return;
  }
  state.editingEvent = name;
  fillPickers();
  buildEventForm(data.form);
  $("#event-title").textContent = `Event ${name}`;
  view.editor();
  state.unsaved.delete("event");
  const detail = await api("GET", `/events/${encodeURIComponent(name)}`);
  const webhook = detail.ok && detail.data.webhook_url;
  $("#event-webhook").hidden = !webhook;
  $("#event-webhook").textContent = webhook ? `Webhook URL (keep it secret): ${webhook}` : "";
  loadEventRuns(name);
}

async function loadEventRuns(name) {
  const { data } = await api("GET", `/events/${encodeURIComponent(name)}/runs?limit=20`);
  const rows = $("#event-runs");
  rows.replaceChildren();
  for (const run of data.runs || []) {
    const row = document.createElement("tr");
    cell(row, timeElement(run.started_at));
    cell(row, run.trigger + (run.late_ms != null ? ` (${run.late_ms} ms late)` : ""));
    const mark = document.createElement("span");
    mark.className = `badge ${run.outcome}`;
    mark.textContent = run.outcome.replace("_", " ") + (run.reason ? `: ${run.reason}` : "");
    cell(row, mark);
    cell(row, stepList(run.steps));
    rows.append(row);
  }
}

async function runEvent(name) {
  const { ok, data } = await api("POST", `/events/${encodeURIComponent(name)}/run`, {});
  if (state.editingEvent === name) {
    $("#event-message").textContent = ok ? `Ran: ${data.outcome.replace("_", " ")}` : (data.error ? data.error.message : "failed");
    loadEventRuns(name);
  }
  loadEvents();
}

async function save(event) {
  event.preventDefault();
  clearEventErrors();
  const form = readEventForm();
  if (!form.name) { showEventErrors([{ key: "name", message: "an event needs a name" }]); return; }
  const path = state.editingEvent || form.name;
  const { ok, data } = await api("PUT", `/events/${encodeURIComponent(path)}`, form);
  if (ok) {
    state.unsaved.delete("event");
    await loadEvents();
    await openEvent(data.saved);
    nameInAddress(`#events/${encodeURIComponent(data.saved)}`, state);
    $("#event-message").textContent = data.outcome === "unchanged" ? "Nothing changed." : "Saved.";
  } else {
    $("#event-message").textContent = data.error ? data.error.message : "not saved";
    showEventErrors((data.error && data.error.diagnostics) || []);
  }
}

export function setUpEvents() {
  $("#event-more").addEventListener("click", () => nextPage && loadEventPage(nextPage));
  $("#event-editor").addEventListener("submit", save);
  clearNotesOnInput($("#event-editor"));
  for (const kind of ["input", "change"]) $("#event-editor").addEventListener(kind, (e) => { if (e.target.name) state.unsaved.add("event"); });
  $("#event-run").addEventListener("click", () => state.editingEvent && runEvent(state.editingEvent));
  $("#new-event").addEventListener("click", () => { location.hash = "#new-event"; });
}

/** An empty editor for a new event (`#new-event`). */
export async function newEvent() {
  await schemaReady();
  state.editingEvent = null;
  fillPickers();
  clearEventErrors();
  buildEventForm({ trigger: [{ kind: "every", every: "1m" }], action: [{ kind: "set_global" }] });
  $("#event-title").textContent = "New event";
  $("#event-webhook").hidden = true;
  $("#event-runs").replaceChildren();
  view.editor();
  state.unsaved.delete("event");
}
