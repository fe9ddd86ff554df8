// The Runs page (the recent runs) and the expression sandbox.
import { api } from "./api.js";
import { $, cell, text, timeElement } from "./dom.js";

// The Runs page: the newest 100 runs of every profile, of one profile (`#runs/<profile>`) or of
// one event (`#runs/event:<name>`; a profile name holds no colon), failed ones only if asked;
// each opens to its steps. `#runs/<profile>/<ref>@<ms>` finds the run that changed device
// <ref> at <ms> (the device page links there) and opens it.
const EVENT = "event:";
export async function loadRuns(chosen, change) {
  // Reloaded as runs arrive: the change asked for stays marked.
  if (change === undefined) change = location.hash.startsWith("#runs/") ? (location.hash.split("/")[2] || "") : "";
  const select = $("#runs-profile");
  if (select.options.length === 1) {
    const [profiles, events] = await Promise.all([api("GET", "/profiles"), api("GET", "/events")]);
    const group = (label, names, prefix) => {
      const optgroup = document.createElement("optgroup");
      optgroup.label = label;
      for (const name of names) optgroup.append(new Option(name, prefix + name));
      select.append(optgroup);
    };
    if (select.options.length === 1) {
      group("Profiles", profiles.ok ? (profiles.data.profiles || []).map((p) => p.name) : [], "");
      group("Events", events.ok ? (events.data.events || []).map((e) => e.name) : [], EVENT);
    }
  }
  if (chosen !== undefined) {
    if (![...select.options].some((o) => o.value === chosen)) select.append(new Option(chosen.startsWith(EVENT) ? chosen.slice(EVENT.length) : chosen, chosen));
    select.value = chosen;
  }
  const shown = select.value;
  const onlyFailed = $("#runs-failed").checked;
  const rows = $("#run-rows");
  const found = $("#runs-found");
  found.hidden = true;
  if (shown.startsWith(EVENT)) {
    const name = shown.slice(EVENT.length);
    const { data } = await api("GET", `/events/${encodeURIComponent(name)}/runs?limit=100`);
    rows.replaceChildren(...(data.runs || []).filter((r) => !onlyFailed || r.outcome === "failed").map(eventRunRow));
    return;
  }
  const { data } = await api("GET", `/runs?limit=100${shown ? `&profile=${encodeURIComponent(shown)}` : ""}`);
  rows.replaceChildren();
  const [ref, at] = (change || "").split("@").map(Number);
  let made = null;
  for (const r of data.runs || []) {
    const outcome = r.skipped ? "skipped" : (r.ok ? "ok" : "failed");
    const makes = change && r.changes.some((c) => c.device.reference === ref && c.device.changed_at_ms === at);
    if (onlyFailed && outcome !== "failed" && !makes) continue;
    const row = document.createElement("tr");
    row.dataset.outcome = outcome;
    cell(row, timeElement(r.started_at));
    cell(row, itemLink("profiles", r.profile));
    cell(row, badge(outcome));
    const details = runDetails(r);
    cell(row, details);
    if (makes && !made) { made = row; details.open = true; row.classList.add("highlight"); }
    rows.append(row);
  }
  if (change) {
    found.hidden = false;
    found.textContent = made ? "The run that made this change is marked below."
      : "No run kept here made this change: it was set by hand or by an event, or its run is older than the runs kept.";
    if (made) made.scrollIntoView({ block: "center" });
  }
}

function itemLink(tab, name) {
  const link = document.createElement("a");
  link.href = `#${tab}/${encodeURIComponent(name)}`;
  link.textContent = name;
  return link;
}
function badge(outcome) {
  const mark = document.createElement("span");
  mark.className = `badge ${outcome}`;
  mark.textContent = outcome.replace("_", " ");
  return mark;
}

// An event's run: what fired it, its outcome, and each step.
export function eventRunRow(run) {
  const row = document.createElement("tr");
  row.dataset.outcome = run.outcome;
  cell(row, timeElement(run.started_at));
  cell(row, itemLink("events", run.event));
  const outcome = badge(run.outcome);
  if (run.reason) outcome.textContent += `: ${run.reason}`;
  cell(row, outcome);
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  const failed = run.steps.find((step) => !step.ok);
  summary.textContent = failed ? `${failed.step}: ${failed.message || "failed"}`
    : `${run.trigger}${run.late_ms != null ? ` (${run.late_ms} ms late)` : ""}, ${run.steps.length} step${run.steps.length === 1 ? "" : "s"} in ${run.duration_ms} ms`;
  details.append(summary, stepList(run.steps));
  cell(row, details);
  return row;
}
/** An event run's steps, each with its outcome and time. */
export function stepList(steps) {
  const list = document.createElement("ul");
  list.className = "steps";
  for (const step of steps) {
    const li = document.createElement("li");
    li.className = step.ok ? "ok" : "failed";
    li.textContent = `${step.ok ? "✓" : "✗"} ${step.step}${step.message ? ` — ${step.message}` : ""} (${step.duration_ms} ms)`;
    list.append(li);
  }
  return list;
}

// A run, opened: its first error (or what it did) as the summary, every step inside.
function runDetails(r) {
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = r.errors.length ? `${r.errors[0].stage}: ${r.errors[0].message}`
    : `${r.changes.length} device change${r.changes.length === 1 ? "" : "s"} in ${r.duration_ms} ms`;
  const steps = document.createElement("ul");
  steps.className = "steps";
  const step = (line, failed = false) => { const li = document.createElement("li"); li.textContent = line; if (failed) li.className = "failed"; steps.append(li); };
  for (const e of r.exchanges) step(`${e.method} ${e.url} → ${e.status ?? "no answer"} (${e.duration_ms} ms, ${e.response_bytes} bytes)`);
  for (const c of r.changes) step(`${c.kind}: ${c.device.key.root}${c.device.key.feature ? " / " + c.device.key.feature : ""} = ${c.device.string || c.device.value}`);
  for (const e of r.errors) step(`${e.stage}: ${e.message}`, true);
  details.append(summary, steps);
  return details;
}

/** Wires the Runs page's filters. */
export function setUpRuns() {
  $("#runs-profile").addEventListener("change", () => { location.hash = $("#runs-profile").value ? `#runs/${encodeURIComponent($("#runs-profile").value)}` : "#runs"; });
  $("#runs-failed").addEventListener("change", () => loadRuns());
}

// The sandbox: an expression over a text or a profile's last response; a problem is marked
// where it is in the expression.
export function setUpSandbox() {
  $("#sandbox-run").addEventListener("click", async () => {
    const expression = $("#sandbox-expression").value;
    const profile = $("#sandbox-profile").value;
    const body = profile ? { expression, profile } : { expression, input: $("#sandbox-input").value };
    const { ok, data } = await api("POST", "/eval", body);
    const source = $("#sandbox-source");
    source.replaceChildren(text(expression));
    if (ok) { $("#sandbox-result").textContent = `${data.text}\n(${data.type})`; return; }
    const error = data.error || { message: "failed" };
    $("#sandbox-result").textContent = error.message + (error.column ? ` (column ${error.column})` : "");
    if (error.span) {
      const bytes = new TextEncoder().encode(expression);
      const decode = (a, b) => new TextDecoder().decode(bytes.slice(a, b));
      const end = Math.max(error.span.end, error.span.start + 1);
      const mark = document.createElement("mark");
      mark.textContent = decode(error.span.start, end) || " ";
      source.replaceChildren(text(decode(0, error.span.start)), mark, text(decode(end, bytes.length)));
    }
  });
}
