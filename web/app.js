// Bellhop's web UI: plain JavaScript over the REST API (/api/v1) and its event stream.
"use strict";

const $ = (selector) => document.querySelector(selector);
const api = async (method, path, body) => {
  const options = { method, headers: { "accept": "application/json" } };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch("/api/v1" + path, options);
  const data = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, data };
};
const text = (value) => document.createTextNode(value == null ? "" : String(value));
const cell = (row, value) => { const td = document.createElement("td"); td.append(value instanceof Node ? value : text(value)); row.append(td); return td; };

// Times: the browser's local time, and how long ago or ahead.
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
function when(iso) {
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
function timeElement(iso) {
  const element = document.createElement("time");
  element.dateTime = iso || "";
  element.title = iso ? new Date(iso).toLocaleString() : "";
  element.textContent = when(iso);
  return element;
}

// Tabs
function showTab(name) {
  document.querySelectorAll(".tab").forEach((tab) => { tab.hidden = tab.id !== name; });
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.tab === name));
  if (name === "runs") loadRuns();
  if (name === "devices") loadDevices();
}
window.addEventListener("hashchange", () => showTab(location.hash.slice(1) || "profiles"));

// Profiles
let editing = null;
async function loadProfiles() {
  const { data } = await api("GET", "/profiles");
  const rows = $("#profile-rows");
  rows.replaceChildren();
  const select = $("#sandbox-profile");
  select.replaceChildren(new Option("(use the input above)", ""));
  for (const profile of data.profiles || []) {
    const row = document.createElement("tr");
    row.dataset.profile = profile.name;
    const link = document.createElement("a");
    link.href = "#profiles";
    link.textContent = profile.name;
    link.addEventListener("click", () => openProfile(profile.name));
    cell(row, link);
    cell(row, profile.listen ? `listens at ${profile.listen}${profile.listen_token ? " (token)" : ""}` : profile.method + " " + profile.url);
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = profile.auth_mode === "oauth2" ? "…" : profile.auth_mode;
    cell(row, badge);
    if (profile.auth_mode === "oauth2") statusBadge(profile.name, badge);
    const last = document.createElement("span");
    if (profile.last_run) {
      const outcome = profile.last_run.skipped ? "skipped" : (profile.last_run.ok ? "ok" : "failed");
      const mark = document.createElement("span");
      mark.className = `badge ${outcome}`;
      mark.textContent = outcome;
      last.append(mark, " ", timeElement(profile.last_run.started_at));
    } else {
      last.textContent = "never run";
    }
    cell(row, last);
    const run = document.createElement("button");
    run.type = "button";
    run.textContent = "Run now";
    run.addEventListener("click", () => runProfile(profile.name, run));
    cell(row, run);
    rows.append(row);
    select.append(new Option(profile.name, profile.name));
  }
  const problems = $("#load-problems");
  problems.replaceChildren();
  for (const d of data.diagnostics || []) {
    const p = document.createElement("p");
    p.className = "problem";
    p.textContent = `${d.file}${d.line ? ":" + d.line : ""}: ${d.key ? d.key + ": " : ""}${d.message}`;
    problems.append(p);
  }
}

function describeStatus(status) {
  switch (status.state) {
    case "never_authorized": return "never authorized";
    case "authorized": return `authorized ${when(status.authorized_at)}` + (status.expires_at ? `, token expires ${when(status.expires_at)}` : "") + (status.expiring ? " (refresh due)" : "") + (status.scopes.length ? `, scopes: ${status.scopes.join(" ")}` : "");
    case "needs_reauthorization": return `needs re-authorization: ${status.reason}`;
    default: return status.state;
  }
}

async function statusBadge(name, badge) {
  const { ok, data } = await api("GET", `/profiles/${encodeURIComponent(name)}/authorization`);
  if (!ok) return;
  badge.textContent = describeStatus(data.status);
  badge.classList.add(data.status.state);
}

const formFields = ["name", "description", "method", "url", "auth_mode", "token", "client_id", "client_secret", "scopes", "authorize_url", "token_url", "extra_authorize_params", "client_auth", "header_template", "root_names", "feature_names", "values", "strings"];

let callbackUrls = null;
let readOnly = [];
function fillForm(form) {
  const element = $("#editor");
  for (const field of formFields) element.elements[field].value = form[field] ?? "";
  element.elements.pkce.checked = form.pkce !== false;
  element.elements.legacy_callback.checked = form.legacy_callback === true;
  readOnly = form.read_only || [];
  element.elements.auth_mode.disabled = readOnly.includes("auth");
  $("#auth-read-only").hidden = !readOnly.includes("auth");
  $("#devices-read-only").hidden = !readOnly.includes("devices");
  for (const box of ["root_names", "feature_names", "values", "strings"]) element.elements[box].readOnly = readOnly.includes("devices");
  syncAuthMode();
}

// Only the fields of the chosen authentication mode are shown.
function syncAuthMode() {
  const mode = $("#editor").elements.auth_mode.value;
  document.querySelectorAll("[data-when]").forEach((part) => { part.hidden = part.dataset.when !== mode; });
}

// The redirect URL Bellhop will send: built by the server from its public base URL.
function showRedirect(fromServer) {
  const legacy = $("#editor").elements.legacy_callback.checked;
  const fallback = callbackUrls ? (legacy ? callbackUrls.legacy : callbackUrls.standard) : "";
  $("#redirect-url").value = fromServer && !editingDirty.legacy ? fromServer : fallback;
}
const editingDirty = { legacy: false };
async function loadUiSettings() {
  const { ok, data } = await api("GET", "/ui");
  if (!ok) return;
  callbackUrls = data.callback_urls;
  $("#sign-out").hidden = !data.sign_in;
}

async function openProfile(name) {
  clearErrors();
  const { ok, data } = await api("GET", `/profiles/${encodeURIComponent(name)}/form`);
  if (!ok) { $("#editor-message").textContent = data.error ? data.error.message : "cannot open"; return; }
  editing = name;
  fillForm(data.form);
  $("#editor-title").textContent = `Profile ${name}`;
  editingDirty.legacy = false;
  showRedirect(data.redirect_uri);
  $("#auth-status").textContent = data.status ? describeStatus(data.status) : "–";
  $("#editor").hidden = false;
  $("#run-result").hidden = true;
  preview(name);
}

async function preview(name) {
  const values = $("#editor").elements.values.value.split("&&")[0].trim();
  if (!values) return;
  const { ok, data } = await api("POST", "/eval", { expression: values, profile: name });
  $("#preview").textContent = ok ? data.text : (data.error ? data.error.message : "–");
}

function clearErrors() {
  document.querySelectorAll(".field-error").forEach((e) => e.remove());
  document.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
  $("#editor-message").textContent = "";
}

// Diagnostics name TOML keys; the form's fields are their last part.
function showErrors(diagnostics) {
  for (const d of diagnostics) {
    const field = d.key.split(".").pop();
    const input = $("#editor").elements[field];
    const note = document.createElement("div");
    note.className = "field-error";
    note.textContent = (d.column ? `column ${d.column}: ` : "") + d.message;
    if (input) { input.classList.add("invalid"); input.after(note); } else { $("#editor-message").append(note); }
  }
}

$("#editor").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const element = $("#editor");
  const form = { pkce: element.elements.pkce.checked, legacy_callback: element.elements.legacy_callback.checked };
  for (const field of formFields) form[field] = element.elements[field].value;
  form.name = form.name.trim();
  if (!form.name) { showErrors([{ key: "name", message: "a profile needs a name" }]); return; }
  // Saving an open profile under another name renames it.
  const path = editing || form.name;
  const { ok, data } = await api("PUT", `/profiles/${encodeURIComponent(path)}`, form);
  if (ok) {
    $("#editor-message").textContent = "Saved.";
    await loadProfiles();
    await openProfile(form.name);
    $("#editor-message").textContent = "Saved.";
  } else {
    $("#editor-message").textContent = data.error ? data.error.message : "not saved";
    showErrors((data.error && data.error.diagnostics) || []);
  }
});
$("#editor").elements.auth_mode.addEventListener("change", syncAuthMode);
$("#editor").elements.legacy_callback.addEventListener("change", () => { editingDirty.legacy = true; showRedirect(null); });
// A field's error goes once the field is changed.
$("#editor").addEventListener("input", (event) => {
  const input = event.target;
  if (!input.classList || !input.classList.contains("invalid")) return;
  input.classList.remove("invalid");
  const note = input.nextElementSibling;
  if (note && note.classList.contains("field-error")) note.remove();
});
$("#new-profile").addEventListener("click", async () => {
  await uiReady;
  editing = null;
  clearErrors();
  fillForm({ method: "GET", auth_mode: "oauth2", client_auth: "basic", pkce: true });
  $("#editor-title").textContent = "New profile";
  editingDirty.legacy = false;
  showRedirect(null);
  $("#auth-status").textContent = "save the profile first";
  $("#editor").hidden = false;
});
$("#copy-redirect").addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText($("#redirect-url").value));
$("#authorize").addEventListener("click", () => {
  if (!editing) { $("#editor-message").textContent = "Save the profile first."; return; }
  location.href = "/oauth2/start?profile=" + encodeURIComponent(editing);
});
$("#forget").addEventListener("click", async () => {
  if (!editing) return;
  if (!confirm(`Forget the authorization of “${editing}”? Its tokens are wiped; runs fail until it is authorized again.`)) return;
  const { ok, data } = await api("DELETE", `/profiles/${encodeURIComponent(editing)}/authorization`);
  $("#auth-status").textContent = ok ? describeStatus(data.status) : (data.error ? data.error.message : "failed");
  loadProfiles();
});
$("#run-now").addEventListener("click", () => editing && runProfile(editing, $("#run-now")));

async function runProfile(name, button) {
  button.disabled = true;
  const { data } = await api("POST", "/actions/run", { profile: name, text: "" });
  button.disabled = false;
  const out = $("#run-result");
  if (data.error) { out.textContent = data.error.message; }
  else {
    const lines = [`${data.ok ? "ok" : "failed"} in ${data.duration_ms} ms`];
    for (const e of data.exchanges) lines.push(`${e.method} ${e.url} → ${e.status ?? "no answer"}`);
    for (const c of data.changes) lines.push(`${c.kind}: ${c.device.key.root}${c.device.key.feature ? " / " + c.device.key.feature : ""} = ${c.device.string || c.device.value}`);
    for (const e of data.errors) lines.push(`error (${e.stage}): ${e.message}`);
    out.textContent = lines.join("\n");
  }
  out.hidden = false;
  if (editing === name) {
    preview(name);
    refreshEditorStatus(name);
  }
  loadProfiles();
}

// The editor's authorization status after something may have changed it (a run refreshes).
async function refreshEditorStatus(name) {
  const { ok, data } = await api("GET", `/profiles/${encodeURIComponent(name)}/authorization`);
  if (ok && editing === name) $("#auth-status").textContent = describeStatus(data.status);
}

// Devices, live
const devices = new Map();
function renderDevices() {
  const rows = $("#device-rows");
  rows.replaceChildren();
  for (const d of [...devices.values()].sort((a, b) => a.ref - b.ref)) {
    const row = document.createElement("tr");
    row.dataset.device = d.feature ? `${d.name} / ${d.feature}` : d.name;
    // A device that holds text shows no numeric value beside it.
    const value = d.string && d.value === 0 ? "" : d.value;
    cell(row, d.ref); cell(row, d.profile); cell(row, row.dataset.device); cell(row, value); cell(row, d.string); cell(row, timeElement(d.changed_at));
    rows.append(row);
  }
}
async function loadDevices() {
  const { data } = await api("GET", "/devices");
  devices.clear();
  for (const d of data.devices || []) devices.set(d.ref, d);
  renderDevices();
}
// What happens in the hub, live. After a gap (`resync`), everything shown is read again.
let refreshSoon = null;
function refreshProfilesSoon() {
  clearTimeout(refreshSoon);
  refreshSoon = setTimeout(() => { loadProfiles(); if (!$("#runs").hidden) loadRuns(); }, 300);
}
const stream = new EventSource("/api/v1/stream");
stream.addEventListener("open", () => { document.body.dataset.live = "yes"; });
stream.addEventListener("device", (event) => { const d = JSON.parse(event.data); devices.set(d.ref, d); renderDevices(); });
stream.addEventListener("run", refreshProfilesSoon);
stream.addEventListener("profiles", refreshProfilesSoon);
stream.addEventListener("authorization", (event) => {
  const { profile } = JSON.parse(event.data);
  if (editing === profile) refreshEditorStatus(profile);
  refreshProfilesSoon();
});
stream.addEventListener("resync", () => { loadDevices(); refreshProfilesSoon(); });

// Sandbox
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

// Runs
async function loadRuns() {
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

const uiReady = loadUiSettings();
loadProfiles();
loadDevices();
showTab(location.hash.slice(1) || "profiles");
