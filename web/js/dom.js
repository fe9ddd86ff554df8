// Small DOM helpers shared by every page: elements, times, list rows, problems at fields.
export const $ = (selector) => document.querySelector(selector);
export const text = (value) => document.createTextNode(value == null ? "" : String(value));
export function cell(row, value) {
  const td = document.createElement("td");
  td.append(value instanceof Node ? value : text(value));
  row.append(td);
  return td;
}

// Times: the browser's local time, and how long ago or ahead.
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
export function when(iso) {
  if (!iso) return "";
  const time = new Date(iso);
  if (Number.isNaN(time.getTime())) return iso;
  const seconds = Math.round((time.getTime() - Date.now()) / 1000);
  const [amount, unit] = Math.abs(seconds) < 60 ? [seconds, "second"]
    : Math.abs(seconds) < 3600 ? [Math.round(seconds / 60), "minute"]
    : Math.abs(seconds) < 86400 ? [Math.round(seconds / 3600), "hour"]
    : [Math.round(seconds / 86400), "day"];
  return relative.format(amount, unit);
}
// One formatter for every local time shown (`toLocaleString` builds one per call: slow in a
// burst of updates).
const local = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
export function timeElement(iso) {
  const element = document.createElement("time");
  element.dateTime = iso || "";
  const time = iso ? new Date(iso) : null;
  element.title = time && !Number.isNaN(time.getTime()) ? local.format(time) : "";
  element.textContent = when(iso);
  return element;
}

// List rows: a name that opens its editor (its deep link, `#<tab>/<name>`), the last run's
// outcome, a Run now button.
export function openLink(name, tab, open) {
  const link = document.createElement("a");
  link.href = `#${tab}/${encodeURIComponent(name)}`;
  link.textContent = name;
  // Following the link opens the item (hashchange); a click on the link already followed
  // opens it again.
  link.addEventListener("click", () => { if (location.hash === link.hash) open(); });
  return link;
}
export function lastRun(outcome, startedAt) {
  const last = document.createElement("span");
  if (!outcome) { last.textContent = "never run"; return last; }
  const mark = document.createElement("span");
  mark.className = `badge ${outcome}`;
  mark.textContent = outcome.replace("_", " ");
  last.append(mark, " ", timeElement(startedAt));
  return last;
}
export function runButton(onClick) {
  const run = document.createElement("button");
  run.type = "button";
  run.textContent = "Run now";
  run.addEventListener("click", onClick);
  return run;
}

// Load problems of a folder, each with file, line and key.
export function listProblems(container, diagnostics) {
  container.replaceChildren();
  for (const d of diagnostics || []) {
    const p = document.createElement("p");
    p.className = "problem";
    p.textContent = `${d.file}${d.line ? ":" + d.line : ""}: ${d.key ? d.key + ": " : ""}${d.message}`;
    container.append(p);
  }
}

// A problem shown at its field (or, when no field says it, in `fallback`).
export function noteAt(control, message, fallback) {
  const note = document.createElement("div");
  note.className = "field-error";
  note.textContent = message;
  if (control) { control.classList.add("invalid"); control.after(note); } else { fallback.append(note); }
}
export function clearErrors(scope, message) {
  scope.querySelectorAll(".field-error").forEach((e) => e.remove());
  scope.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
  message.textContent = "";
}
// A field's error goes once the field is changed.
export function clearNotesOnInput(form) {
  form.addEventListener("input", (event) => {
    const input = event.target;
    if (!input.classList || !input.classList.contains("invalid")) return;
    input.classList.remove("invalid");
    const note = input.nextElementSibling;
    if (note && note.classList.contains("field-error")) note.remove();
  });
}

// A page with a list view and an editor view (Profiles, Events): one shown at a time.
// `list`, `editor`, `notice` are the two views and the list's notice line; `message` is the
// editor's own message line.
export function listOrEditor(list, editor, notice, message) {
  const show = (open) => { list.hidden = open; editor.hidden = !open; if (open) notice.hidden = true; };
  return {
    editor: () => show(true),
    list: () => show(false),
    /** The list, saying why an item did not open (the answer of the request that failed). */
    refused: (data) => {
      const why = data.error ? data.error.message : "cannot open";
      message.textContent = why;
      show(false);
      notice.textContent = why;
      notice.hidden = false;
    },
  };
}
// The address names the item as saved (a new one, or one renamed) without reopening it; the
// address kept to go back to follows.
export function nameInAddress(address, state) {
  if (location.hash === address) return;
  history.replaceState(null, "", address);
  state.shownHash = address;
}
