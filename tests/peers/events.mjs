// Drives real Chromium through a person's first event: open the Events page, create an event
// whose action sets a device (a mistake first: the problem shows at its field), save it, run
// it now, see the run with its steps, and see the device change live on the Devices page with
// its history chart. Settings from the environment: BELLHOP_URL, DEVICE_REF (a numeric device
// to set), ARTIFACTS (folder for screenshots). Exits non-zero on failure.
import { inChromium } from "./chromium.mjs";

const env = process.env;
await inChromium("target/peer-artifacts/events", async ({ page, shot }) => {
  await page.goto(env.BELLHOP_URL + "/#events");
  await page.waitForSelector('body[data-live="yes"]');
  await page.click("#new-event");
  const editor = "#event-editor";
  await page.fill(`${editor} [name="name"]`, "evening");
  const trigger = `${editor} [data-list="trigger"] .list-item`;
  const action = `${editor} [data-list="action"] .list-item`;
  await page.selectOption(`${trigger} [name="kind"]`, "every");
  await page.fill(`${trigger} [name="every"]`, "soon");
  await page.selectOption(`${action} [name="kind"]`, "set_device");
  await page.fill(`${action} [name="set_device"]`, env.DEVICE_REF);
  await page.fill(`${action} [name="value"]`, "40 + 2");
  // Fields that name something offer what exists: here the device to set, by reference.
  if ((await page.getAttribute(`${action} [name="set_device"]`, "list")) !== "device-refs") throw new Error("the device field offers no devices");
  await page.waitForFunction((ref) => [...document.querySelectorAll("#device-refs option")].some((o) => o.value === ref), env.DEVICE_REF);
  // Each card says what it does in words, as it is being filled in.
  const said = await page.$$eval(`${editor} .list-item .summary`, (lines) => lines.map((l) => l.textContent));
  if (said.join(" | ") !== `Every soon | Set device ${env.DEVICE_REF} to 40 + 2`) throw new Error(`the cards say: ${said.join(" | ")}`);
  await page.click("#event-save");
  // The bad period is shown at its own field, and nothing is saved.
  await page.waitForSelector(`${trigger} [name="every"] + .field-error`);
  await shot(page, "1-event-error");
  await page.fill(`${trigger} [name="every"]`, "1h");
  await page.click("#event-save");
  await page.waitForFunction(() => document.querySelector("#event-message").textContent.includes("Saved"));
  await page.waitForSelector('tr[data-event="evening"]', { state: "attached" }); // in the list behind the editor
  await page.click("#event-run");
  await page.waitForFunction(() => {
    const runs = document.querySelector("#event-runs");
    return runs && runs.textContent.includes("✓ action 1: set device") && runs.textContent.includes("ok");
  });
  await shot(page, "2-event-ran");
  // The list shows the last run.
  await page.waitForFunction(() => document.querySelector('tr[data-event="evening"]').textContent.includes("ok"));
  // The device changed, live, and its history is a chart. The page's first snapshot is read
  // slowly here: the device the event set (already seen on the stream) must not be drawn alone,
  // as if it were all the devices, before the snapshot is in.
  const slowSnapshot = async (route) => { await new Promise((r) => setTimeout(r, 800)); await route.continue(); };
  await page.route("**/api/v1/devices", slowSnapshot);
  await page.click('nav a[data-tab="devices"]');
  await page.waitForFunction((ref) => {
    const row = [...document.querySelectorAll("#device-rows tr")].find((r) => r.firstChild.textContent === ref);
    return row && row.textContent.includes("42");
  }, env.DEVICE_REF);
  // Grouped by root: a thermostat's features under it (`setpoint` came after `attic` did),
  // indented.
  await page.unroute("**/api/v1/devices", slowSnapshot);
  const order = await page.$$eval("#device-rows tr", (rows) => rows.map((r) => r.dataset.device));
  const thermo = order.indexOf("Thermo");
  if (order.slice(thermo, thermo + 5).join(" | ") !== "Thermo | Thermo / temperature | Thermo / mode | Thermo / setpoint | attic") throw new Error(`the devices are shown in the order ${order.join(" | ")}`);
  if (!(await page.$eval('#device-rows tr[data-device="Thermo / setpoint"]', (r) => r.classList.contains("feature")))) throw new Error("a feature's row is not marked as one");
  const row = await page.$$eval("#device-rows tr", (rows, ref) => rows.findIndex((r) => r.firstChild.textContent === ref), env.DEVICE_REF);
  await page.click(`#device-rows tr:nth-child(${row + 1}) a`);
  await page.waitForSelector("#history-chart:not([hidden]) path.line");
  await shot(page, "3-device-history");
  // Two snapshots asked for in turn (the page shown twice), the older answering last: it must
  // not undo a change the stream brought after the newer one.
  let asked = 0;
  const olderLast = async (route) => {
    asked += 1;
    const response = await route.fetch();
    if (asked === 1) await new Promise((r) => setTimeout(r, 1500));
    await route.fulfill({ response });
  };
  await page.route("**/api/v1/devices", olderLast);
  for (const tab of ["overview", "devices", "overview", "devices"]) await page.click(`nav a[data-tab="${tab}"]`);
  for (let waited = 0; asked < 2 && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20));
  // (The attic, not the device the event set: that one keeps the event's value.)
  const attic = await page.$eval('#device-rows tr[data-device="attic"]', (r) => r.dataset.ref);
  const set = await fetch(`${env.BELLHOP_URL}/api/v1/devices/${attic}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ value: 7 }) });
  if (!set.ok) throw new Error(`setting the device: HTTP ${set.status}`);
  const atticShows = (value) => document.querySelector('#device-rows tr[data-device="attic"]')?.children[3].textContent === value;
  await page.waitForFunction(atticShows, "7");
  await new Promise((r) => setTimeout(r, 2000)); // the older snapshot answers meanwhile
  const shown = await page.$eval('#device-rows tr[data-device="attic"]', (r) => r.children[3].textContent);
  if (asked !== 2) throw new Error(`the page asked for ${asked} snapshots, not 2`);
  if (shown !== "7") throw new Error(`an older snapshot undid a newer change: the device shows ${shown}, not 7`);
  await page.unroute("**/api/v1/devices", olderLast);
  // A snapshot that cannot be read (the connection fails) leaves the page following the stream.
  let failed = false;
  const failOnce = async (route) => { if (failed) return route.continue(); failed = true; await route.abort("connectionreset"); };
  await page.route("**/api/v1/devices", failOnce);
  for (const tab of ["overview", "devices"]) await page.click(`nav a[data-tab="${tab}"]`);
  await new Promise((r) => setTimeout(r, 300));
  const again = await fetch(`${env.BELLHOP_URL}/api/v1/devices/${attic}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ value: 8 }) });
  if (!again.ok) throw new Error(`setting the device again: HTTP ${again.status}`);
  await page.waitForFunction(atticShows, "8", { timeout: 5000 }).catch(() => { throw new Error("after a snapshot that failed, the page stopped following the stream"); });
  if (!failed) throw new Error("no snapshot was asked for");
  await page.unroute("**/api/v1/devices", failOnce);
});
