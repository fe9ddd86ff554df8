// The Profiles page: the list (with each OAuth profile's status and last run) and the editor
// (fields from the schema, the provider's notes, every way to authorize, Run now).
import { api } from "./api.js";
import { $, cell, clearErrors, clearNotesOnInput, lastRun, listOrEditor, listProblems, nameInAddress, noteAt, openLink, runButton, when } from "./dom.js";
import { buildFields, readField, syncWhen } from "./schema-form.js";
import { loadRuns } from "./runs.js";
import { providersReady, schemaReady, state } from "./state.js";

/** Reads the profile list. */
export async function loadProfiles() {
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
  showOverview(data.profiles || [], data.diagnostics || []);
}

// Is everything all right? One line over the list: how many profiles, and what needs
// attention (a failed last run, a file that does not load).
function showOverview(profiles, diagnostics) {
  const failed = profiles.filter((p) => p.last_run && !p.last_run.ok && !p.last_run.skipped).length;
  const broken = diagnostics.filter((d) => d.severity === "error").length;
  const parts = [];
  if (failed) parts.push(`${failed} last run${failed === 1 ? "" : "s"} failed`);
  if (broken) parts.push(`${broken} load problem${broken === 1 ? "" : "s"} (below)`);
  const overview = $("#profiles-summary");
  const count = `${profiles.length} profile${profiles.length === 1 ? "" : "s"}`;
  overview.textContent = parts.length ? `${count}: ${parts.join(", ")}.` : `${count}, all well.`;
  overview.classList.toggle("attention", parts.length > 0);
}

// The profile list follows runs and reloads, a burst at a time, while a page that shows it is
// open (showing the page reads it anew).
let refreshTimer = null;
export function refreshProfilesSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    if (!$("#profiles").hidden || !$("#sandbox").hidden) loadProfiles();
    if (!$("#runs").hidden) loadRuns();
  }, 300);
}

export function describeStatus(status) {
  switch (status.state) {
    case "never_authorized": return "never authorized";
    case "authorized": return `authorized ${when(status.authorized_at)}` + (status.authorized_as ? ` as ${status.authorized_as}` : "") + (status.expires_at ? `, token expires ${when(status.expires_at)}` : "") + (status.expiring ? " (refresh due)" : "") + (status.scopes.length ? `, scopes: ${status.scopes.join(" ")}` : "");
    case "needs_reauthorization": return `needs re-authorization: ${status.reason}`;
    case "awaiting_user": return `waiting for the code ${status.user_code} to be entered (until ${when(status.expires_at)})`;
    case "failed": return `not authorized: ${status.reason}`;
    default: return status.state;
  }
}

function profileFields() { return state.schemas.profile.fields; }
function editorValue(key) { const c = $("#editor-fields").querySelector(`[name="${key}"]`); return c ? c.value : ""; }
function chosenProvider() { return state.providers.find((p) => p.id === editorValue("provider")); }
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
  for (const field of profileFields().filter((f) => f.provider_fills)) {
    const control = $("#editor-fields").querySelector(`[name="${field.key}"]`);
    if (!control) continue;
    if (control.dataset.placeholder === undefined) control.dataset.placeholder = control.placeholder;
    control.placeholder = provider && provider[field.key] ? `${provider[field.key]} (the provider's)` : control.dataset.placeholder;
  }
}
// With a provider chosen, what it already gives (endpoints, grant, how the client
// authenticates, PKCE, extra parameters) waits behind "Advanced"; what only the person can give
// (client ID, secret, scopes) and the redirect URL to copy stay in view.
const ADVANCED_WITH_PROVIDER = ["grant", "authorize_url", "token_url", "device_authorization_url", "issuer", "revocation_url", "introspection_url", "client_auth", "pkce", "extra_authorize_params", "header_template", "legacy_callback"];
// Where each field moved behind "Advanced" came from (a marker left in its place).
const advancedHomes = new Map();
function moveBehindAdvanced(part, key) {
  if (advancedHomes.has(key)) return;
  const home = document.createComment(key);
  part.before(home);
  advancedHomes.set(key, home);
  $("#advanced-fields").append(part);
}
function moveHome(part, key) {
  const home = advancedHomes.get(key);
  if (!home) return;
  home.replaceWith(part);
  advancedHomes.delete(key);
}

// Shows only what applies: a listening profile has no request to send, no authorization to
// request and nothing to run now; a profile not saved yet has nothing to authorize or run; the
// values a chosen provider fills stay behind "Advanced" (unless one is written already).
function syncApplicable() {
  const element = $("#editor");
  const part = (key) => element.querySelector(`.field[data-key="${key}"]`);
  // What the person chose the profile to be: only that mode's fields are shown.
  const listening = element.elements.mode.value === "listens";
  for (const key of ["method", "url"]) part(key)?.classList.toggle("not-applicable", listening);
  part("listen")?.classList.toggle("not-applicable", !listening);
  const saved = state.editing !== null;
  const authorizing = element.elements.auth_mode.value === "oauth2" || state.readOnly.includes("auth");
  $("#run-now").classList.toggle("not-applicable", listening || !saved);
  $("#authorize").classList.toggle("not-applicable", listening || !saved || !authorizing);
  $("#forget").classList.toggle("not-applicable", !saved || !authorizing);
  const provider = chosenProvider();
  $("#provider-advanced").hidden = !provider;
  for (const key of ADVANCED_WITH_PROVIDER) {
    const wrapper = part(key);
    if (!wrapper) continue;
    const control = element.elements[key];
    const written = control && control.type !== "checkbox" && control.tagName !== "SELECT" && control.value.trim();
    if (provider && !written) moveBehindAdvanced(wrapper, key);
    else moveHome(wrapper, key);
  }
  // Discovery fills endpoints from an issuer: with a provider, it is an advanced tool too.
  if (provider) $("#advanced-fields").append($("#discover-row"));
  else $("#provider-docs").after($("#discover-row"));
}

const view = listOrEditor($("#profile-list"), $("#editor"), $("#profile-notice"), $("#editor-message"));
/** The list view (`#profiles`): the editor closes. */
export function showProfileList() {
  state.editing = null;
  view.list();
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
  if (!state.editing) { $("#editor-message").textContent = "Save the profile first."; return null; }
  const { ok, data } = await api("POST", `/profiles/${encodeURIComponent(state.editing)}/authorization`, body);
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

// The editor's own widgets (kept aside: rebuilding the fields would take them away).
const editorExtras = [$("#auth-extras"), $("#devices-extras")];
function fillForm(form) {
  const element = $("#editor");
  // The fields are built anew: the ones kept behind "Advanced" belong to the old form.
  $("#advanced-fields").replaceChildren();
  advancedHomes.clear();
  const groups = buildFields($("#editor-fields"), profileFields(), form);
  // The editor's own widgets go into the fieldsets they belong to.
  for (const extra of editorExtras) {
    const group = groups.get(extra.dataset.group);
    if (group) group.append(extra);
  }
  state.readOnly = form.read_only || [];
  const readOnly = state.readOnly;
  element.elements.auth_mode.disabled = readOnly.includes("auth");
  $("#auth-read-only").hidden = !readOnly.includes("auth");
  $("#devices-read-only").hidden = !readOnly.includes("devices");
  // Under each device box, what it gives (filled by previewBoxes).
  for (const key of PREVIEWED) {
    const output = document.createElement("output");
    output.className = "preview";
    output.dataset.for = key;
    output.setAttribute("aria-live", "polite");
    element.elements[key].closest(".field").append(output);
    element.elements[key].addEventListener("input", previewSoon);
  }
  for (const box of ["root_names", "feature_names", "values", "strings"]) element.elements[box].readOnly = readOnly.includes("devices");
  element.elements.auth_mode.addEventListener("change", () => { syncWhen(element); syncApplicable(); });
  element.elements.legacy_callback.addEventListener("change", () => { state.legacyChanged = true; showRedirect(null); });
  element.elements.provider.addEventListener("change", () => { showProviderDocs(); syncApplicable(); });
  element.elements.grant.addEventListener("change", showProviderDocs);
  // The mode follows the file: a listening path makes a listening profile.
  element.elements.mode.value = (form.listen || "").trim() ? "listens" : "calls";
  $("#provider-advanced").open = false;
  showProviderDocs();
  showDevice(null);
  syncWhen(element);
  syncApplicable();
}

// The redirect URL Bellhop will send: built by the server from its public base URL.
function showRedirect(fromServer) {
  const legacy = $("#editor").elements.legacy_callback.checked;
  const urls = state.callbackUrls;
  const fallback = urls ? (legacy ? urls.legacy : urls.standard) : "";
  $("#redirect-url").value = fromServer && !state.legacyChanged ? fromServer : fallback;
}

export async function openProfile(name) {
  await schemaReady();
  await providersReady();
  clearEditorErrors();
  const { ok, data } = await api("GET", `/profiles/${encodeURIComponent(name)}/form`);
  if (!ok) {
    state.editing = null;
    view.refused(data);
    return;
  }
  state.editing = name;
  fillForm(data.form);
  $("#editor-title").textContent = `Profile ${name}`;
  state.legacyChanged = false;
  showRedirect(data.redirect_uri);
  $("#auth-status").textContent = data.status ? describeStatus(data.status) : "–";
  showDevice(data.status);
  view.editor();
  $("#run-result").hidden = true;
  state.unsaved.delete("profile");
  previewBoxes();
}

// What each box gives over the profile's last response, element by element, under the box,
// following what is typed (a profile that never ran has no response: nothing is evaluated).
const PREVIEWED = ["root_names", "feature_names", "values", "strings"];
let previewTimer = null;
function previewSoon() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(previewBoxes, 400);
}
async function previewBoxes() {
  const name = state.editing;
  const outputs = PREVIEWED.map((key) => $("#editor").querySelector(`output[data-for="${key}"]`));
  const clear = () => outputs.forEach((output) => { if (output) output.replaceChildren(); });
  if (!name) { $("#preview").textContent = "save and run the profile to see what its boxes give"; clear(); return; }
  const elements = $("#editor").elements;
  const body = Object.fromEntries(PREVIEWED.map((key) => [key, elements[key].value]));
  const { ok, data } = await api("POST", `/profiles/${encodeURIComponent(name)}/preview`, body);
  if (state.editing !== name) return;
  if (!ok || !data.ran) {
    $("#preview").textContent = ok ? "run the profile to see what its values give" : (data.error ? data.error.message : "–");
    clear();
    return;
  }
  $("#preview").textContent = "under each box";
  PREVIEWED.forEach((key, i) => {
    const output = outputs[i];
    if (!output) return;
    output.replaceChildren(...(data.boxes[key] || []).map((element) => {
      const part = document.createElement("span");
      part.className = element.error ? "problem" : "value";
      part.textContent = element.error ? `column ${element.column}: ${element.error}` : (element.text === "" ? "(empty)" : element.text);
      return part;
    }));
  });
}

function clearEditorErrors() { clearErrors($("#editor"), $("#editor-message")); }

// Diagnostics name TOML keys; the schema says which field edits each.
function showErrors(diagnostics) {
  const fields = profileFields();
  for (const d of diagnostics) {
    const field = fields.find((f) => f.toml_key === d.key || f.key === d.key)
      || fields.find((f) => f.key === d.key.split(".").pop());
    const input = field ? $("#editor").elements[field.key] : null;
    noteAt(input, (d.column ? `column ${d.column}: ` : "") + d.message, $("#editor-message"));
  }
}

async function save(event) {
  event.preventDefault();
  clearEditorErrors();
  const element = $("#editor");
  const form = {};
  for (const field of profileFields()) form[field.key] = readField(element.elements[field.key], field);
  form.pkce = element.elements.pkce.checked;
  form.legacy_callback = element.elements.legacy_callback.checked;
  form.name = form.name.trim();
  if (!form.name) { showErrors([{ key: "name", message: "a profile needs a name" }]); return; }
  // Saving an open profile under another name renames it.
  const path = state.editing || form.name;
  const { ok, data } = await api("PUT", `/profiles/${encodeURIComponent(path)}`, form);
  if (ok) {
    state.unsaved.delete("profile");
    await loadProfiles();
    await openProfile(form.name);
    nameInAddress(`#profiles/${encodeURIComponent(form.name)}`, state);
    $("#editor-message").textContent = "Saved.";
  } else {
    $("#editor-message").textContent = data.error ? data.error.message : "not saved";
    showErrors((data.error && data.error.diagnostics) || []);
  }
}

export async function runProfile(name, button) {
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
  if (state.editing === name) {
    previewBoxes();
    refreshEditorStatus(name);
  }
  loadProfiles();
}

// The editor's authorization status after something may have changed it (a run refreshes).
export async function refreshEditorStatus(name) {
  const { ok, data } = await api("GET", `/profiles/${encodeURIComponent(name)}/authorization`);
  if (ok && state.editing === name) {
    $("#auth-status").textContent = describeStatus(data.status);
    showDevice(data.status);
  }
}

/** An empty editor for a new profile (`#new-profile`); `uiReady` resolves once the server's UI
 * settings are read. */
export async function newProfile(uiReady) {
  await uiReady;
  await schemaReady();
  await providersReady();
  state.editing = null;
  clearEditorErrors();
  fillForm({ method: "GET", auth_mode: "oauth2", client_auth: "basic", pkce: true });
  $("#editor-title").textContent = "New profile";
  state.legacyChanged = false;
  showRedirect(null);
  $("#auth-status").textContent = "save the profile first";
  $("#run-result").hidden = true;
  view.editor();
  state.unsaved.delete("profile");
}

/** Wires the editor's buttons. */
export function setUpProfiles() {
  $("#editor").addEventListener("submit", save);
  for (const radio of $("#profile-mode").querySelectorAll("input")) {
    radio.addEventListener("change", () => {
      const listen = $("#editor").elements.listen;
      // A profile that calls out has no listening path; one that listens is asked for it.
      if (radio.value === "calls") listen.value = "";
      syncApplicable();
      if (radio.value === "listens") listen.focus();
    });
  }
  clearNotesOnInput($("#editor"));
  // A change to a field of the profile (the view's own boxes, which have no name, are not one).
  for (const kind of ["input", "change"]) $("#editor").addEventListener(kind, (e) => { if (e.target.name) state.unsaved.add("profile"); });
  $("#new-profile").addEventListener("click", () => { location.hash = "#new-profile"; });
  $("#copy-redirect").addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText($("#redirect-url").value));
  $("#authorize").addEventListener("click", async () => {
    const editing = state.editing;
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
    for (const field of profileFields().filter((f) => f.discoverable)) {
      const control = $("#editor-fields").querySelector(`[name="${field.key}"]`);
      if (control && data[field.key]) { control.value = data[field.key]; filled.push(field.key); }
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
    const editing = state.editing;
    if (!editing) return;
    if (!confirm(`Forget the authorization of “${editing}”? Its tokens are wiped; runs fail until it is authorized again.`)) return;
    const { ok, data } = await api("DELETE", `/profiles/${encodeURIComponent(editing)}/authorization`);
    $("#auth-status").textContent = ok ? describeStatus(data.status) : (data.error ? data.error.message : "failed");
    loadProfiles();
  });
  $("#run-now").addEventListener("click", () => state.editing && runProfile(state.editing, $("#run-now")));
}
