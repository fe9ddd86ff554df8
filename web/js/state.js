// The UI's one state object: what the server told (schema, providers, callback URLs) and what
// the person has open. Modules read and write it here; none keeps its own module-level state.
import { api } from "./api.js";

export const state = {
  /** The forms' schema (GET /api/v1/schema). */
  schemas: null,
  /** The provider definitions (GET /api/v1/providers). */
  providers: [],
  /** The server's redirect URIs: { standard, legacy }. */
  callbackUrls: null,
  /** The profile open in the editor (null: a new one). */
  editing: null,
  /** Parts of the open profile the form cannot edit. */
  readOnly: [],
  /** The person changed the legacy-callback box since opening the profile. */
  legacyChanged: false,
  /** The event open in the editor (null: a new one). */
  editingEvent: null,
  /** The devices shown, by reference. */
  devices: new Map(),
  /** The device whose history is open. */
  historyOf: null,
  /** The global whose history is open (when no device's is). */
  globalHistoryOf: null,
  /** The address shown (kept to go back to when leaving unsaved changes is refused). */
  shownHash: "",
  /** The open editors with changes not saved yet: "profile", "event". */
  unsaved: new Set(),
};

// Read once, when an editor first needs them (not on every page load).
let schemaReading = null;
let providersReading = null;
/** The forms' schema, read on first use. */
export function schemaReady() {
  schemaReading ??= api("GET", "/schema").then(({ ok, data }) => { if (ok) state.schemas = data; });
  return schemaReading;
}
/** The provider definitions, read on first use. */
export function providersReady() {
  providersReading ??= api("GET", "/providers").then(({ ok, data }) => { if (ok) state.providers = data.providers; });
  return providersReading;
}
