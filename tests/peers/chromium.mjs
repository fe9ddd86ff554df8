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
  const shot = (page, name) => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });
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
