// What happens in the hub, live (GET /api/v1/stream, server-sent events). Every (re)connection
// starts from a snapshot: what changed while the stream was away is read again, so nothing is
// lost in a gap; a `resync` (the stream fell behind) does the same.
import { $ } from "./dom.js";
import { deviceChanged, deviceRemoved, globalChanged, loadDevices } from "./devices.js";
import { eventFinished, loadEvents } from "./events.js";
import { activity, loadOverview } from "./overview.js";
import { refreshEditorStatus, refreshProfilesSoon } from "./profiles.js";
import { state } from "./state.js";

// What the open page shows is read anew (a page opened later reads its own when shown).
function resync() {
  if (!$("#devices").hidden) loadDevices();
  refreshProfilesSoon();
  if (!$("#events").hidden) loadEvents();
  if (!$("#overview").hidden) loadOverview();
}

/** Connects the live stream; `firstOpen` resolves once it is open (or could not open): the
 * page reads its first snapshot then, so nothing changed before the stream listened is missed
 * and nothing is read twice. Later (re)connections read the open page again. */
export function connect() {
  const stream = new EventSource("/api/v1/stream");
  let opened = false;
  let settle;
  const firstOpen = new Promise((resolve) => { settle = resolve; });
  stream.addEventListener("open", () => {
    document.body.dataset.live = "yes";
    if (opened) resync();
    opened = true;
    settle();
  });
  stream.addEventListener("error", () => { document.body.dataset.live = "no"; settle(); });
  stream.addEventListener("device", (event) => deviceChanged(JSON.parse(event.data)));
  stream.addEventListener("device_removed", (event) => deviceRemoved(JSON.parse(event.data).ref));
  stream.addEventListener("global", (event) => globalChanged(JSON.parse(event.data)));
  stream.addEventListener("run", (event) => { activity("run", JSON.parse(event.data)); refreshProfilesSoon(); });
  stream.addEventListener("profiles", refreshProfilesSoon);
  stream.addEventListener("authorization", (event) => {
    const { profile } = JSON.parse(event.data);
    activity("authorization", { profile });
    if (state.editing === profile) refreshEditorStatus(profile);
    refreshProfilesSoon();
  });
  stream.addEventListener("resync", resync);
  stream.addEventListener("event", (event) => {
    const data = JSON.parse(event.data);
    activity("event", data);
    eventFinished(data.event);
  });
  return { stream, firstOpen };
}
