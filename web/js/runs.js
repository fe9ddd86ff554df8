// The Runs page (the recent runs) and the expression sandbox.
import { api } from "./api.js";
import { $, cell, text, timeElement } from "./dom.js";

export async function loadRuns() {
  const { data } = await api("GET", "/runs?limit=100");
  const rows = $("#run-rows");
  rows.replaceChildren();
  for (const r of data.runs || []) {
    const row = document.createElement("tr");
    cell(row, timeElement(r.started_at)); cell(row, r.profile); cell(row, r.skipped ? "skipped" : (r.ok ? "ok" : "failed"));
    cell(row, r.errors.map((e) => `${e.stage}: ${e.message}`).join("\n"));
    rows.append(row);
  }
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
