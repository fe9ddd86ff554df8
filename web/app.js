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

// Forms are built from the server's schema (GET /api/v1/schema): one description of every
// field — its kind, help, choices and when it applies — for the profile and event editors.
let schemas = null;
const schemaReady = api("GET", "/schema").then(({ ok, data }) => { if (ok) schemas = data; });

// One field: a label with its control (named after the field's key), and its help.
function fieldElement(field, value) {
  const wrapper = document.createElement("div");
  wrapper.className = "field";
  wrapper.dataset.key = field.key;
  if (field.when) { wrapper.dataset.whenField = field.when[0]; wrapper.dataset.whenValues = field.when[1].join(" "); }
  const label = document.createElement("label");
  let control;
  if (field.kind === "boolean") {
    label.className = "inline";
    control = document.createElement("input");
    control.type = "checkbox";
    control.name = field.key;
    label.append(control, text(" " + field.label));
  } else {
    if (field.kind === "select") {
      control = document.createElement("select");
      for (const [choice, shown] of field.choices || []) {
        const option = new Option(shown.replace(/ \(file\)$/, " (edit in the file)"), choice);
        option.disabled = shown.endsWith(" (file)");
        control.append(option);
      }
    } else if (field.kind === "long_text" || field.kind === "lines") {
      control = document.createElement("textarea");
      control.rows = 2;
    } else {
      control = document.createElement("input");
      if (field.kind === "secret") { control.type = "password"; control.autocomplete = "off"; }
      if (field.kind === "number") control.inputMode = "decimal";
    }
    if (field.kind === "expression" || field.kind === "lines") { control.spellcheck = false; control.classList.add("code"); }
    control.name = field.key;
    if (field.placeholder) control.placeholder = field.placeholder;
    label.append(text(field.label + " "), control);
  }
  wrapper.append(label);
  if (field.help) { const help = document.createElement("p"); help.className = "hint"; help.textContent = field.help; wrapper.append(help); }
  setField(wrapper, field, value);
  return wrapper;
}

function setField(wrapper, field, value) {
  const control = wrapper.querySelector(`[name="${field.key}"]`);
  control.dataset.original = JSON.stringify(value ?? null);
  if (field.kind === "boolean") control.checked = value === true || (value == null && control.dataset.default === "true");
  else if (field.kind === "lines") control.value = Array.isArray(value) ? value.join("\n") : (value ?? "");
  else control.value = value ?? (field.kind === "select" && field.choices && field.choices.length ? field.choices[0][0] : "");
}

// A field's value as the server takes it; a checkbox left at its default where the file says
// nothing stays unsaid (so saving an unchanged form writes nothing).
function readField(control, field) {
  if (field.kind === "boolean") {
    const original = JSON.parse(control.dataset.original || "null");
    const fallback = control.dataset.default === "true";
    return original === null && control.checked === fallback ? null : control.checked;
  }
  if (field.kind === "lines") return control.value.split("\n").map((l) => l.trim()).filter(Boolean);
  return control.value;
}

// Fields grouped into fieldsets (in schema order).
function buildFields(container, fields, values, defaults = {}) {
  container.replaceChildren();
  const groups = new Map();
  for (const field of fields) {
    if (!groups.has(field.group)) {
      const set = document.createElement("fieldset");
      set.dataset.group = field.group;
      const legend = document.createElement("legend");
      legend.textContent = field.group;
      set.append(legend);
      groups.set(field.group, set);
      container.append(set);
    }
    const element = fieldElement(field, values[field.key]);
    const control = element.querySelector(`[name="${field.key}"]`);
    if (field.key in defaults) { control.dataset.default = String(defaults[field.key]); setField(element, field, values[field.key]); }
    groups.get(field.group).append(element);
  }
  return groups;
}

// Shows the fields that apply: those whose `when` names the value of another field in scope.
function syncWhen(scope) {
  scope.querySelectorAll("[data-when-field]").forEach((part) => {
    const holder = part.closest(".list-item") || scope;
    const control = holder.querySelector(`[name="${part.dataset.whenField}"]`);
    part.hidden = !control || !part.dataset.whenValues.split(" ").includes(control.value);
  });
}

// A problem shown at its field (or, when no field says it, in `fallback`).
function noteAt(control, message, fallback) {
  const note = document.createElement("div");
  note.className = "field-error";
  note.textContent = message;
  if (control) { control.classList.add("invalid"); control.after(note); } else { fallback.append(note); }
}

// List rows: a name that opens its editor, the last run's outcome, a Run now button.
function openLink(name, tab, open) {
  const link = document.createElement("a");
  link.href = "#" + tab;
  link.textContent = name;
  link.addEventListener("click", open);
  return link;
}
function lastRun(outcome, startedAt) {
  const last = document.createElement("span");
  if (!outcome) { last.textContent = "never run"; return last; }
  const mark = document.createElement("span");
  mark.className = `badge ${outcome}`;
  mark.textContent = outcome.replace("_", " ");
  last.append(mark, " ", timeElement(startedAt));
  return last;
}
function runButton(onClick) {
  const run = document.createElement("button");
  run.type = "button";
  run.textContent = "Run now";
  run.addEventListener("click", onClick);
  return run;
}

// Tabs
function showTab(name) {
  document.querySelectorAll(".tab").forEach((tab) => { tab.hidden = tab.id !== name; });
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.tab === name));
  if (name === "runs") loadRuns();
  if (name === "devices") loadDevices();
  if (name === "events") loadEvents();
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
    cell(row, openLink(profile.name, "profiles", () => openProfile(profile.name)));
    cell(row, profile.listen ? `listens at ${profile.listen}${profile.listen_token ? " (token)" : ""}` : profile.method + " " + profile.url);
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = profile.auth_mode === "oauth2" ? "…" : profile.auth_mode;
    cell(row, badge);
    if (profile.auth_mode === "oauth2") statusBadge(profile.name, badge);
    const last = profile.last_run;
    cell(row, lastRun(last && (last.skipped ? "skipped" : (last.ok ? "ok" : "failed")), last && last.started_at));
    const run = runButton(() => runProfile(profile.name, run));
    cell(row, run);
    rows.append(row);
    select.append(new Option(profile.name, profile.name));
  }
  listProblems($("#load-problems"), data.diagnostics);
}

// Load problems of a folder, each with file, line and key.
function listProblems(container, diagnostics) {
  container.replaceChildren();
  for (const d of diagnostics || []) {
    const p = document.createElement("p");
    p.className = "problem";
    p.textContent = `${d.file}${d.line ? ":" + d.line : ""}: ${d.key ? d.key + ": " : ""}${d.message}`;
    container.append(p);
  }
}

function describeStatus(status) {
  switch (status.state) {
    case "never_authorized": return "never authorized";
    case "authorized": return `authorized ${when(status.authorized_at)}` + (status.authorized_as ? ` as ${status.authorized_as}` : "") + (status.expires_at ? `, token expires ${when(status.expires_at)}` : "") + (status.expiring ? " (refresh due)" : "") + (status.scopes.length ? `, scopes: ${status.scopes.join(" ")}` : "");
    case "needs_reauthorization": return `needs re-authorization: ${status.reason}`;
    case "awaiting_user": return `waiting for the code ${status.user_code} to be entered (until ${when(status.expires_at)})`;
    case "failed": return `not authorized: ${status.reason}`;
    default: return status.state;
  }
}

// The provider definitions (GET /api/v1/providers): their grants and notes.
let providers = [];
api("GET", "/providers").then(({ ok, data }) => { if (ok) providers = data.providers; });
function editorValue(key) { const c = $("#editor-fields").querySelector(`[name="${key}"]`); return c ? c.value : ""; }
function chosenProvider() { return providers.find((p) => p.id === editorValue("provider")); }
function chosenGrant() {
  const grant = editorValue("grant");
  if (grant) return grant;
  const provider = chosenProvider();
  return provider && provider.grants.length ? provider.grants[0] : "authorization_code";
}
function showProviderDocs() {
  // The redirect URL matters only to the grants that come back through the browser.
  const grant = chosenGrant();
  const redirect = $("#redirect-url").closest("label");
  redirect.hidden = redirect.nextElementSibling.hidden = !(grant === "authorization_code" || grant === "implicit");
  const provider = chosenProvider();
  const docs = $("#provider-docs");
  docs.hidden = !provider;
  if (provider) docs.textContent = `${provider.name}: grants ${provider.grants.join(", ")}. ${provider.docs || ""}`;
  // An empty field takes the provider's value: show it as the placeholder.
  for (const key of ["scopes", "authorize_url", "token_url", "device_authorization_url", "revocation_url"]) {
    const control = $("#editor-fields").querySelector(`[name="${key}"]`);
    if (!control) continue;
    if (control.dataset.placeholder === undefined) control.dataset.placeholder = control.placeholder;
    control.placeholder = provider && provider[key] ? `${provider[key]} (the provider's)` : control.dataset.placeholder;
  }
}
function showDevice(status) {
  const waiting = status && status.state === "awaiting_user";
  $("#device-panel").hidden = !waiting;
  if (!waiting) return;
  const link = $("#device-link");
  link.href = status.verification_uri_complete || status.verification_uri;
  link.textContent = status.verification_uri;
  $("#device-code").textContent = status.user_code;
}
async function authorizationAction(body) {
  if (!editing) { $("#editor-message").textContent = "Save the profile first."; return null; }
  const { ok, data } = await api("POST", `/profiles/${encodeURIComponent(editing)}/authorization`, body);
  if (!ok) { $("#auth-status").textContent = data.error ? data.error.message : "failed"; return null; }
  if (data.status) $("#auth-status").textContent = describeStatus(data.status);
  return data;
}

async function statusBadge(name, badge) {
  const { ok, data } = await api("GET", `/profiles/${encodeURIComponent(name)}/authorization`);
  if (!ok) return;
  badge.textContent = describeStatus(data.status);
  badge.classList.add(data.status.state);
}

let callbackUrls = null;
let readOnly = [];
const profileDefaults = { pkce: true, legacy_callback: false };
// The editor's own widgets (kept here: rebuilding the fields would take them away).
const editorExtras = [$("#auth-extras"), $("#devices-extras")];
function profileField(key) { return schemas.profile.fields.find((f) => f.key === key); }
function fillForm(form) {
  const element = $("#editor");
  const groups = buildFields($("#editor-fields"), schemas.profile.fields, form, profileDefaults);
  // The editor's own widgets go into the fieldsets they belong to.
  for (const extra of editorExtras) {
    const group = groups.get(extra.dataset.group);
    if (group) group.append(extra);
  }
  readOnly = form.read_only || [];
  element.elements.auth_mode.disabled = readOnly.includes("auth");
  $("#auth-read-only").hidden = !readOnly.includes("auth");
  $("#devices-read-only").hidden = !readOnly.includes("devices");
  for (const box of ["root_names", "feature_names", "values", "strings"]) element.elements[box].readOnly = readOnly.includes("devices");
  element.elements.auth_mode.addEventListener("change", syncAuthMode);
  element.elements.legacy_callback.addEventListener("change", () => { editingDirty.legacy = true; showRedirect(null); });
  element.elements.provider.addEventListener("change", showProviderDocs);
  element.elements.grant.addEventListener("change", showProviderDocs);
  showProviderDocs();
  showDevice(null);
  syncAuthMode();
}

// Only the fields of the chosen authentication mode are shown.
function syncAuthMode() {
  syncWhen($("#editor"));
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
  await schemaReady;
  clearErrors();
  const { ok, data } = await api("GET", `/profiles/${encodeURIComponent(name)}/form`);
  if (!ok) { $("#editor-message").textContent = data.error ? data.error.message : "cannot open"; return; }
  editing = name;
  fillForm(data.form);
  $("#editor-title").textContent = `Profile ${name}`;
  editingDirty.legacy = false;
  showRedirect(data.redirect_uri);
  $("#auth-status").textContent = data.status ? describeStatus(data.status) : "–";
  showDevice(data.status);
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

function clearErrors(scope = $("#editor"), message = $("#editor-message")) {
  scope.querySelectorAll(".field-error").forEach((e) => e.remove());
  scope.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
  message.textContent = "";
}

// Diagnostics name TOML keys; the schema says which field edits each.
function showErrors(diagnostics) {
  for (const d of diagnostics) {
    const field = schemas.profile.fields.find((f) => f.toml_key === d.key || f.key === d.key)
      || schemas.profile.fields.find((f) => f.key === d.key.split(".").pop());
    const input = field ? $("#editor").elements[field.key] : null;
    noteAt(input, (d.column ? `column ${d.column}: ` : "") + d.message, $("#editor-message"));
  }
}

$("#editor").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const element = $("#editor");
  const form = {};
  for (const field of schemas.profile.fields) form[field.key] = readField(element.elements[field.key], field);
  form.pkce = element.elements.pkce.checked;
  form.legacy_callback = element.elements.legacy_callback.checked;
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
// A field's error goes once the field is changed.
function clearNotesOnInput(form) {
  form.addEventListener("input", (event) => {
    const input = event.target;
    if (!input.classList || !input.classList.contains("invalid")) return;
    input.classList.remove("invalid");
    const note = input.nextElementSibling;
    if (note && note.classList.contains("field-error")) note.remove();
  });
}
clearNotesOnInput($("#editor"));
$("#new-profile").addEventListener("click", async () => {
  await uiReady;
  await schemaReady;
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
$("#authorize").addEventListener("click", async () => {
  if (!editing) { $("#editor-message").textContent = "Save the profile first."; return; }
  const grant = chosenGrant();
  if (grant === "device_code") {
    const data = await authorizationAction({ action: "device" });
    if (data) { refreshEditorStatus(editing); }
  } else if (grant === "client_credentials" || grant === "password") {
    await authorizationAction({ action: "token" });
    loadProfiles();
  } else {
    location.href = "/oauth2/start?profile=" + encodeURIComponent(editing);
  }
});
$("#discover").addEventListener("click", async () => {
  const { ok, data } = await api("POST", "/discover", { issuer: editorValue("issuer") });
  if (!ok) { $("#discover-result").textContent = data.error ? data.error.message : "failed"; return; }
  const filled = [];
  for (const key of ["authorize_url", "token_url", "device_authorization_url", "revocation_url", "introspection_url"]) {
    const control = $("#editor-fields").querySelector(`[name="${key}"]`);
    if (control && data[key]) { control.value = data[key]; filled.push(key); }
  }
  $("#discover-result").textContent = `Filled ${filled.length} endpoints from ${data.issuer}; save to keep them.`;
});
$("#finish-pasted").addEventListener("click", async () => {
  if (await authorizationAction({ action: "redirect", url: $("#pasted-url").value })) $("#pasted-url").value = "";
});
$("#exchange-code").addEventListener("click", async () => {
  if (await authorizationAction({ action: "code", code: $("#grant-code").value })) $("#grant-code").value = "";
});
$("#introspect").addEventListener("click", async () => {
  const data = await authorizationAction({ action: "introspect" });
  if (data && data.introspection) {
    const i = data.introspection;
    $("#editor-message").textContent = i.active ? `The provider says the token is active${i.scope ? " (" + i.scope + ")" : ""}${i.exp ? ", until " + when(new Date(i.exp * 1000).toISOString()) : ""}.` : "The provider says the token is no longer active.";
  }
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
  if (ok && editing === name) {
    $("#auth-status").textContent = describeStatus(data.status);
    showDevice(data.status);
  }
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
    const name = document.createElement("a");
    name.href = "#devices";
    name.textContent = row.dataset.device;
    name.title = "history";
    name.addEventListener("click", () => showHistory(d));
        const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary";
    remove.textContent = "Delete";
    remove.addEventListener("click", async () => {
      if (!confirm(`Delete device ${d.ref} (${row.dataset.device}) and its history? A run of its profile may create it again, with a new reference.`)) return;
      await api("DELETE", `/devices/${d.ref}`);
    });
    cell(row, d.ref); cell(row, d.profile); cell(row, name); cell(row, value); cell(row, d.string); cell(row, timeElement(d.changed_at)); cell(row, remove);
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
stream.addEventListener("device_removed", (event) => {
  devices.delete(JSON.parse(event.data).ref);
  renderDevices();
});
stream.addEventListener("device", (event) => {
  const d = JSON.parse(event.data);
  devices.set(d.ref, d);
  renderDevices();
  // The open history follows (its store commits within the commit window).
  if (historyOf === d.ref && !$("#devices").hidden) setTimeout(() => showHistory(d), 200);
});
stream.addEventListener("run", refreshProfilesSoon);
stream.addEventListener("profiles", refreshProfilesSoon);
stream.addEventListener("authorization", (event) => {
  const { profile } = JSON.parse(event.data);
  if (editing === profile) refreshEditorStatus(profile);
  refreshProfilesSoon();
});
stream.addEventListener("resync", () => { loadDevices(); refreshProfilesSoon(); if (!$("#events").hidden) loadEvents(); });
let refreshEventsTimer = null;
stream.addEventListener("event", (event) => {
  const { event: name } = JSON.parse(event.data);
  clearTimeout(refreshEventsTimer);
  refreshEventsTimer = setTimeout(() => {
    if (!$("#events").hidden) loadEvents();
    if (editingEvent === name) loadEventRuns(name);
  }, 300);
});

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

// Events
let editingEvent = null;
const eventDefaults = { enabled: true };
async function loadEvents() {
  const { data } = await api("GET", "/events");
  $("#event-zone").textContent = data.time_zone ? `Schedules run in ${data.time_zone}.` : "";
  const rows = $("#event-rows");
  rows.replaceChildren();
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
  remove.addEventListener("click", () => item.remove());
  item.append(remove);
  kind.addEventListener("change", () => syncWhen(item));
  syncWhen(item);
  return item;
}

function buildEventForm(form) {
  const container = $("#event-fields");
  buildFields(container, schemas.event.fields, form, eventDefaults);
  for (const list of schemas.event.lists) {
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
    add.addEventListener("click", () => items.append(listItem(list, {})));
    set.append(legend, items, add);
    container.append(set);
  }
}

function readEventForm() {
  const container = $("#event-fields");
  const form = {};
  for (const field of schemas.event.fields) form[field.key] = readField(container.querySelector(`[name="${field.key}"]`), field);
  form.name = String(form.name || "").trim();
  for (const list of schemas.event.lists) {
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

async function openEvent(name) {
  await schemaReady;
  clearErrors($("#event-editor"), $("#event-message"));
  const { ok, data } = await api("GET", `/events/${encodeURIComponent(name)}/form`);
  if (!ok) { $("#event-message").textContent = data.error ? data.error.message : "cannot open"; return; }
  editingEvent = name;
  buildEventForm(data.form);
  $("#event-title").textContent = `Event ${name}`;
  $("#event-editor").hidden = false;
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
    const steps = document.createElement("ul");
    steps.className = "steps";
    for (const step of run.steps) {
      const li = document.createElement("li");
      li.className = step.ok ? "ok" : "failed";
      li.textContent = `${step.ok ? "✓" : "✗"} ${step.step}${step.message ? ` — ${step.message}` : ""} (${step.duration_ms} ms)`;
      steps.append(li);
    }
    cell(row, steps);
    rows.append(row);
  }
}

async function runEvent(name) {
  const { ok, data } = await api("POST", `/events/${encodeURIComponent(name)}/run`, {});
  if (editingEvent === name) {
    $("#event-message").textContent = ok ? `Ran: ${data.outcome.replace("_", " ")}` : (data.error ? data.error.message : "failed");
    loadEventRuns(name);
  }
  loadEvents();
}

$("#event-editor").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors($("#event-editor"), $("#event-message"));
  const form = readEventForm();
  if (!form.name) { showEventErrors([{ key: "name", message: "an event needs a name" }]); return; }
  const path = editingEvent || form.name;
  const { ok, data } = await api("PUT", `/events/${encodeURIComponent(path)}`, form);
  if (ok) {
    await loadEvents();
    await openEvent(data.saved);
    $("#event-message").textContent = data.outcome === "unchanged" ? "Nothing changed." : "Saved.";
  } else {
    $("#event-message").textContent = data.error ? data.error.message : "not saved";
    showEventErrors((data.error && data.error.diagnostics) || []);
  }
});
clearNotesOnInput($("#event-editor"));
$("#event-run").addEventListener("click", () => editingEvent && runEvent(editingEvent));
$("#new-event").addEventListener("click", async () => {
  await schemaReady;
  editingEvent = null;
  clearErrors($("#event-editor"), $("#event-message"));
  buildEventForm({ trigger: [{ kind: "every", every: "1m" }], action: [{ kind: "set_global" }] });
  $("#event-title").textContent = "New event";
  $("#event-webhook").hidden = true;
  $("#event-runs").replaceChildren();
  $("#event-editor").hidden = false;
});

// A device's history: a chart of its values (numeric devices) and the list of changes.
const SVG = "http://www.w3.org/2000/svg";
let historyOf = null;
async function showHistory(device) {
  historyOf = device.ref;
  const { ok, data } = await api("GET", `/devices/${device.ref}/history?limit=500`);
  if (!ok) return;
  $("#device-history").hidden = false;
  $("#history-title").textContent = `History of ${device.feature ? `${device.name} / ${device.feature}` : device.name}`;
  const points = data.points || [];
  const rows = $("#history-rows");
  rows.replaceChildren();
  for (const p of [...points].reverse().slice(0, 50)) {
    const row = document.createElement("tr");
    cell(row, timeElement(new Date(p.at_ms).toISOString())); cell(row, p.value); cell(row, p.string);
    rows.append(row);
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
  for (const [value, at] of [[v1, y(v1)], [v0, y(v0)]]) {
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", 2); label.setAttribute("y", at + 4);
    label.textContent = String(value);
    chart.append(label);
  }
}

// An adapter in trouble (an unreachable MQTT broker) is said at the top of every page.
async function loadAdapterHealth() {
  const { data } = await api("GET", "/health");
  const troubled = Object.entries(data.adapters || {}).filter(([, health]) => !health.ok);
  const banner = $("#adapter-problems");
  banner.hidden = troubled.length === 0;
  banner.textContent = troubled.map(([name, health]) => `${name.toUpperCase()}: ${health.detail} (since ${new Date(health.since).toLocaleString()})`).join(" · ");
}
loadAdapterHealth();
setInterval(loadAdapterHealth, 15000);

const uiReady = loadUiSettings();
loadProfiles();
loadDevices();
showTab(location.hash.slice(1) || "profiles");
