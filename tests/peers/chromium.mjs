// Runs a person's path in real Chromium (Debian's /usr/bin/chromium through playwright-core,
// headless, without background networking): `journey({ page, context, shot })` gets a fresh page
// with a 20 s timeout. Prints "BROWSER OK", or "BROWSER FAILED: …" with a screenshot of the
// failure in ARTIFACTS (or the given folder), and sets a non-zero exit code.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";

export async function inChromium(defaultArtifacts, journey) {
  const artifacts = process.env.ARTIFACTS || defaultArtifacts;
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
  // The whole page; the window is made as tall as the page for it, so a bar that sticks to the
  // bottom of the window shows at the bottom of the picture.
  const shot = async (page, name) => {
    const size = page.viewportSize();
    const height = await page.evaluate(() => document.documentElement.scrollHeight).catch(() => 0);
    const taller = size && height > size.height;
    if (taller) await page.setViewportSize({ width: size.width, height: Math.min(height, 16000) });
    await page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });
    if (taller) await page.setViewportSize(size);
  };
  let page;
  try {
    const context = await browser.newContext();
    page = await context.newPage();
    page.setDefaultTimeout(20000);
    await journey({ page, context, shot });
    console.log("BROWSER OK");
  } catch (error) {
    if (page) await shot(page, "failure").catch(() => {});
    console.error(`BROWSER FAILED: ${error.message}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

// axe-core's serious and critical violations on the page as it is now, one line each. axe is
// evaluated through the driver (the page's Content-Security-Policy forbids inline scripts).
const axeSource = readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
export async function seriousViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(axeSource);
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}${v.nodes.length > 3 ? ` (+${v.nodes.length - 3})` : ""}`);
}
