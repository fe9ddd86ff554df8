// A burst of device changes on an open Devices page, in real Chromium: 10,000 changes (100
// devices, each changed 100 times) arrive through the live stream while a PerformanceObserver
// watches the main thread. No task may take over 100 ms, and the page ends on the final
// values. Settings from the environment: BELLHOP_URL, BURST_PATH (a listening path whose body
// sets the devices).
import { inChromium } from "./chromium.mjs";

const env = process.env;
const DEVICES = 100;
const ROUNDS = 100;
await inChromium("target/peer-artifacts/burst", async ({ page, shot }) => {
  // A burst, measured; twice at most: a shared 2-core machine can stall Chromium once (disk
  // writeback after another peer, say), but a page that makes long tasks makes them every time.
  const measured = [];
  for (let attempt = 1; attempt <= 2; attempt++) {
    const longest = await burst(page, shot, attempt);
    measured.push(longest);
    console.log(`MEASURED burst ${attempt}: longest main-thread task ${Math.round(longest)} ms`);
    if (longest <= 100) return;
  }
  throw new Error(`a main-thread task took ${measured.map(Math.round).join(" ms, then ")} ms during the bursts`);
});

// One burst of DEVICES × ROUNDS changes on a freshly opened Devices page; the longest task seen.
async function burst(page, shot, attempt) {
  await page.goto("about:blank");
  await page.goto(`${env.BELLHOP_URL}/#devices`);
  await page.waitForSelector('body[data-live="yes"]');
  await page.evaluate(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => { for (const e of list.getEntries()) window.longTasks.push(e.duration); })
      .observe({ type: "longtask" });
  });
  const base = attempt * 1000;
  const body = (round) => JSON.stringify({ rooms: Array.from({ length: DEVICES }, (_, i) => ({ name: `d${i}`, v: base + round })) });
  // Ten callers at a time, each round after the one before it (the last round is the final value).
  for (let round = 1; round <= ROUNDS; round += 10) {
    const calls = [];
    for (let r = round; r < round + 10 && r <= ROUNDS; r++) {
      calls.push(fetch(`${env.BELLHOP_URL}${env.BURST_PATH}`, { method: "POST", body: body(r) }).then((a) => { if (!a.ok) throw new Error(`round ${r}: HTTP ${a.status}`); }));
    }
    await Promise.all(calls);
  }
  const last = await fetch(`${env.BELLHOP_URL}${env.BURST_PATH}`, { method: "POST", body: body(ROUNDS + 1) });
  if (!last.ok) throw new Error(`final round: HTTP ${last.status}`);
  const final = String(base + ROUNDS + 1);
  await page.waitForFunction(([count, value]) => {
    const rows = [...document.querySelectorAll("#device-rows tr")].filter((r) => /^d\d+$/.test(r.dataset.device));
    return rows.length === count && rows.every((r) => r.children[3].textContent === value);
  }, [DEVICES, final], { timeout: 30000 });
  // Read before the screenshot (taking one is a long task of its own).
  const tasks = await page.evaluate(() => window.longTasks);
  await shot(page, `burst-final-${attempt}`);
  return Math.max(0, ...tasks);
}
