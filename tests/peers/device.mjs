// The device flow (RFC 8628) as a person lives it, in real Chromium: in Bellhop's UI, open the
// profile and press Request Authorization; the page shows a code and a link. Open the link,
// confirm the code, sign in and allow at the authorization server; back in Bellhop the profile
// turns authorized on its own (no redirect ever reaches Bellhop). Then check the token at the
// provider and run the action.
// Settings from the environment: BELLHOP_URL, PROFILE, ARTIFACTS. Exits non-zero on failure.
import { inChromium } from "./chromium.mjs";

const env = process.env;
await inChromium("target/peer-artifacts/device", async ({ page, context, shot }) => {
  await page.goto(env.BELLHOP_URL + "/#profiles");
  await page.waitForSelector(`tr[data-profile="${env.PROFILE}"] a`);
  await page.click(`tr[data-profile="${env.PROFILE}"] a`);
  await page.waitForFunction(() => document.querySelector("#auth-status").textContent.includes("never authorized"));
  await page.click("#authorize");
  await page.waitForSelector("#device-panel:not([hidden])");
  const code = (await page.textContent("#device-code")).trim();
  const link = await page.getAttribute("#device-link", "href");
  const shown = await page.textContent("#device-link");
  if (!code || !link || !shown.includes("/device")) throw new Error(`device panel shows code ${code}, link ${link}`);
  await shot(page, "1-code-shown");

  // On "another device": the verification page, with the code already in its address.
  const phone = await context.newPage();
  await phone.goto(link);
  await phone.waitForSelector("#confirm");
  const confirming = (await phone.textContent("#user-code")).replace(/[^A-Z0-9]/gi, "");
  if (confirming !== code.replace(/[^A-Z0-9]/gi, "")) throw new Error(`the provider confirms ${confirming}, Bellhop showed ${code}`);
  await phone.click("#confirm");
  await phone.waitForSelector("#username");
  await phone.fill("#username", "ann");
  await phone.fill("#password", "correct horse");
  await phone.click("#sign-in");
  await phone.waitForSelector("#allow");
  await phone.click("#allow");
  await phone.waitForSelector("#done");
  await shot(phone, "2-provider-done");

  // Back to Bellhop's tab (a background tab's timers and frames are throttled). Bellhop polls
  // the token endpoint and tells the page through its live stream.
  await page.bringToFront();
  await page.waitForFunction(() => document.querySelector("#auth-status").textContent.startsWith("authorized"), null, { timeout: 30000 });
  if (!(await page.isHidden("#device-panel"))) throw new Error("the code still shows after authorization");
  await shot(page, "3-authorized");
  await page.click("#other-ways summary");
  await page.click("#introspect");
  await page.waitForFunction(() => document.querySelector("#editor-message").textContent.includes("token is active"));
  await page.click("#run-now");
  await page.waitForFunction(() => document.querySelector("#run-result").textContent.includes("ann@example.com"));
  await shot(page, "4-run");
});
