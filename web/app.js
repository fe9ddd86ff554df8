// Bellhop's web UI: plain JavaScript modules over the REST API (/api/v1) and its event stream.
// This entry wires the pages together: tabs, the adapters' banner, the live stream.
import { api } from "./js/api.js";
import { $ } from "./js/dom.js";
import { loadDevices, openDevice, openGlobal } from "./js/devices.js";
import { loadEvents, newEvent, openEvent, setUpEvents, showEventList } from "./js/events.js";
import { connect } from "./js/live.js";
import { loadProfiles, newProfile, openProfile, setUpProfiles, showProfileList } from "./js/profiles.js";
import { loadOverview } from "./js/overview.js";
import { loadRuns, setUpRuns, setUpSandbox } from "./js/runs.js";
import { state } from "./js/state.js";

const TABS = ["overview", "profiles", "events", "devices", "sandbox", "runs"];

function showTab(name) {
  document.querySelectorAll(".tab").forEach((tab) => { tab.hidden = tab.id !== name; });
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.tab === name));
  if (name === "overview") loadOverview();
  if (name === "profiles" || name === "sandbox") loadProfiles();
  if (name === "devices") loadDevices();
  if (name === "events") loadEvents();
}

// Deep links: `#profiles/<name>`, `#events/<name>`, `#devices/<ref>` open that item,
// `#new-profile` and `#new-event` empty editors, `#globals/<name>` a global's history, `#runs/<profile>` that profile's runs; anything
// unknown falls back to the Overview.
function route() {
  if (location.hash === "#new-profile") { showTab("profiles"); newProfile(uiReady); return; }
  if (location.hash === "#new-event") { showTab("events"); newEvent(); return; }
  const [hashTab, ...rest] = location.hash.slice(1).split("/");
  // A global's history is on the Devices page.
  const tab = hashTab === "globals" ? "devices" : hashTab;
  const name = TABS.includes(tab) ? tab : "overview";
  showTab(name);
  let item = "";
  try { item = decodeURIComponent(rest.join("/")); } catch { item = ""; }
  if (name === "runs") {
    // `#runs/<profile or event:name>[/<ref>@<ms>]` (names hold no slash).
    let [shown, change] = ["", ""];
    try { [shown, change] = [decodeURIComponent(rest[0] || ""), rest[1] || ""]; } catch { shown = ""; }
    loadRuns(shown, change);
    return;
  }
  if (name === "profiles" && !item) showProfileList();
  if (name === "events" && !item) showEventList();
  if (!item) return;
  if (name === "profiles") openProfile(item);
  else if (name === "events") openEvent(item);
  else if (name === "devices" && hashTab === "globals") openGlobal(item);
  else if (name === "devices" && /^\d+$/.test(item)) openDevice(Number(item));
}
// Leaving an editor with changes not saved asks first: moving inside the page (a link, the
// back button) and leaving it (another address, closing the tab) alike.
state.shownHash = location.hash;
function unsavedWhat() {
  return [...state.unsaved].map((kind) => (kind === "profile" ? `profile ${state.editing ?? "(new)"}` : `event ${state.editingEvent ?? "(new)"}`)).join(" and ");
}
window.addEventListener("hashchange", () => {
  if (state.unsaved.size && !confirm(`Leave without saving your changes to ${unsavedWhat()}?`)) {
    history.replaceState(null, "", state.shownHash || location.pathname);
    return;
  }
  state.unsaved.clear();
  state.shownHash = location.hash;
  route();
});
window.addEventListener("beforeunload", (event) => {
  if (state.unsaved.size) event.preventDefault();
});

async function loadUiSettings() {
  const { ok, data } = await api("GET", "/ui");
  if (!ok) return;
  state.callbackUrls = data.callback_urls;
  $("#sign-out").hidden = !data.sign_in;
}

// An adapter in trouble (an unreachable MQTT broker) is said at the top of every page.
async function loadAdapterHealth() {
  const { data } = await api("GET", "/health");
  const troubled = Object.entries(data.adapters || {}).filter(([, health]) => !health.ok);
  const banner = $("#adapter-problems");
  banner.hidden = troubled.length === 0;
  banner.textContent = troubled.map(([name, health]) => `${name.toUpperCase()}: ${health.detail} (since ${new Date(health.since).toLocaleString()})`).join(" · ");
}

const uiReady = loadUiSettings();
setUpProfiles();
setUpEvents();
setUpSandbox();
setUpRuns();
loadAdapterHealth();
setInterval(loadAdapterHealth, 15000);
// The first page is read once the live stream listens (a second at most without it).
const { firstOpen } = connect();
Promise.race([firstOpen, new Promise((resolve) => setTimeout(resolve, 1000))]).then(route);
