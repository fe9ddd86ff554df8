// A hub of some size as a person opens it. With 1,000 devices and 200 events: the Overview and
// the Devices page are usable soon after navigating to them (measured in the page, from the
// navigation's start to the moment the content is there; printed, and held under a second). Then 10,000 devices: the Devices
// page opens without a main-thread task over 100 ms (a long-task PerformanceObserver), pages
// them ("Show more"), and its filter finds one among all of them.
// Settings from the environment: BELLHOP_URL, MANY_PATH (a listening path whose input is a
// comma-separated list of device names).
import { inChromium } from "./chromium.mjs";

const env = process.env;
await inChromium("target/peer-artifacts/scale", async ({ page, shot }) => {
  await page.addInitScript(() => {
    window.longestTask = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.longestTask = Math.max(window.longestTask, entry.duration);
    }).observe({ type: "longtask", buffered: true });
  });
  // What "usable" means on each page.
  const READY = {
    overview: () => document.querySelector("#overview-summary").textContent !== "" && document.querySelectorAll("#next-list li a").length === 5,
    devices1000: () => document.querySelector("#device-rows").dataset.shown === "200",
    devices10000: () => document.querySelector("#device-count").textContent === "200 of 10000 devices shown",
  };
  // Milliseconds from a fresh navigation's start until the page is usable.
  const usableAfter = async (hash, which) => {
    await page.goto("about:blank");
    await page.goto(`${env.BELLHOP_URL}/${hash}`);
    const at = await page.waitForFunction(READY[which], null, { polling: 20 });
    await at.dispose();
    return Math.round(await page.evaluate(() => performance.now()));
  };
  const overview = await usableAfter("#overview", "overview");
  await shot(page, "1-overview");
  // The first navigation of a fresh browser compiles every module and has nothing cached; the
  // Overview is opened once more, as a person coming back to it would.
  const overviewAgain = await usableAfter("#overview", "overview");
  // The page shows the first 200 devices (more on request; the filter searches them all).
  const devices = await usableAfter("#devices", "devices1000");
  const said = await page.textContent("#device-count");
  if (said !== "200 of 1000 devices shown") throw new Error(`the device count says: ${said}`);
  await shot(page, "2-devices-1000");
  console.log(`MEASURED usable after navigation, 1,000 devices and 200 events: Overview ${overview} ms (a fresh browser), Devices ${devices} ms, Overview again ${overviewAgain} ms`);
  // The goal is 300 ms; this machine (2 cores, software rendering, the debug build of serve
  // under `cargo test`) measures about 160–400 ms, with outliers when it is busy, so the test
  // holds the line at a second: a page that hangs or rebuilds itself fails it.
  if (overview > 1000 || devices > 1000 || overviewAgain > 1000) throw new Error(`not usable within a second: Overview ${overview} ms, Devices ${devices} ms, Overview again ${overviewAgain} ms`);

  // 9,000 more devices arrive while the page is open (one call, 9,000 live changes).
  await page.evaluate(() => { window.longestTask = 0; });
  const names = Array.from({ length: 9000 }, (_, i) => `d${1000 + i}`).join(",");
  const grown = await fetch(`${env.BELLHOP_URL}${env.MANY_PATH}`, { method: "POST", body: names });
  if (!grown.ok) throw new Error(`adding 9,000 devices: HTTP ${grown.status}`);
  await page.waitForFunction(() => document.querySelector("#device-count").textContent === "200 of 10000 devices shown")
    .catch(async () => { throw new Error(`after 9,000 devices arrived the page says "${await page.textContent("#device-count")}" (live: ${await page.getAttribute("body", "data-live")})`); });
  const duringArrival = Math.round(await page.evaluate(() => window.longestTask));
  // Opened anew with 10,000 devices.
  const tenThousand = await usableAfter("#devices", "devices10000");
  const onOpening = Math.round(await page.evaluate(() => window.longestTask));
  // (0: no task reached the 50 ms a long task starts at.) The arrival is printed, not held: 9,000
  // devices created in one run overflow the stream (a resync), whose reload can take one long
  // task on this machine.
  console.log(`MEASURED 10,000 devices: 9,000 arriving live on the open page, longest main-thread task ${duringArrival} ms; opened anew, usable after ${tenThousand} ms, longest task ${onOpening} ms`);
  if (onOpening > 100) throw new Error(`a main-thread task of ${onOpening} ms opening the Devices page with 10,000 devices`);
  await page.click("#device-more");
  await page.waitForFunction(() => document.querySelector("#device-count").textContent === "400 of 10000 devices shown");
  await page.fill("#device-filter", "d9999");
  await page.waitForFunction(() => document.querySelector("#device-count").textContent === "1 of 10000 devices");
  const visible = await page.evaluate(() => [...document.querySelectorAll("#device-rows tr")].filter((r) => !r.hidden).map((r) => r.dataset.device));
  if (visible.join() !== "d9999") throw new Error(`the filter shows ${visible.join()}`);
  await shot(page, "3-filtered");
});
