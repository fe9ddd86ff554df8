// The Runs page (the recent runs) and the expression sandbox.
import { api } from "./api.js";
import { $, cell, text, timeElement } from "./dom.js";

// The Runs page: the newest 100 runs, of one profile (`#runs/<profile>`) or all, failed ones
// only if asked; each opens to its exchanges, device changes and errors.
export async function loadRuns(profile) {
  const select = $("#runs-profile");
  if (select.options.length === 1) {
    const { ok, data } = await api("GET", "/profiles");
    if (ok) for (const p of data.profiles || []) select.append(new Option(p.name, p.name));
  }
  if (profile !== undefined) {
    if (![...select.options].some((o) => o.value === profile)) select.append(new Option(profile, profile));
    select.value = profile;
  }
  const chosen = select.value;
  const { data } = await api("GET", `/runs?limit=100${chosen ? `&profile=${encodeURIComponent(chosen)}` : ""}`);
  const onlyFailed = $("#runs-failed").checked;
  const rows = $("#run-rows");
  rows.replaceChildren();
  for (const r of data.runs || []) {
    const outcome = r.skipped ? "skipped" : (r.ok ? "ok" : "failed");
    if (onlyFailed && outcome !== "failed") continue;
    const row = document.createElement("tr");
    row.dataset.outcome = outcome;
    cell(row, timeElement(r.started_at));
    const link = document.createElement("a");
    link.href = `#profiles/${encodeURIComponent(r.profile)}`;
    link.textContent = r.profile;
    cell(row, link);
    const mark = document.createElement("span");
    mark.className = `badge ${outcome}`;
    mark.textContent = outcome;
    cell(row, mark);
    cell(row, runDetails(r));
    rows.append(row);
  }
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
