// Drives real Chromium (Debian's /usr/bin/chromium through playwright-core) through the user's
// path: create an OAuth2 profile in Bellhop's UI, Request Authorization, sign in and consent at
// the authorization server, land on the callback page, run the action, see the `email` device.
// Settings from the environment: BELLHOP_URL (the public base URL), BELLHOP_UI_URL (where the
// person opens the UI), PROVIDER_URL, CLIENT_ID, CLIENT_SECRET,
// CLIENT_AUTH (basic | body), ARTIFACTS (folder for screenshots). Exits non-zero on failure.
import { inChromium } from "./chromium.mjs";

const env = process.env;
await inChromium("target/peer-artifacts", async ({ page, context, shot }) => {
  // The person opens the UI through another name (localhost) than the public base URL: the
  // redirect URL shown must still be the one Bellhop sends, built from the public base URL.
  await page.goto((env.BELLHOP_UI_URL || env.BELLHOP_URL) + "/");
  // The landing page is the Overview; the person goes to Profiles.
  await page.waitForFunction(() => !document.querySelector("#overview").hidden);
  await page.click('nav a[data-tab="profiles"]');
  if (!(await page.isHidden("#editor"))) throw new Error("the empty editor shows on page load");
  const icon = await page.request.get(env.BELLHOP_URL + "/favicon.svg");
  if (icon.status() !== 200) throw new Error(`favicon: ${icon.status()}`);
  await page.click("#new-profile");
  const form = "#editor";
  const fill = (name, value) => page.fill(`${form} [name="${name}"]`, value);
  await fill("name", "discord");
  await fill("url", `${env.PROVIDER_URL}/me`);
  await page.selectOption(`${form} [name="auth_mode"]`, "oauth2");
  await fill("client_id", env.CLIENT_ID);
  await fill("client_secret", env.CLIENT_SECRET);
  await fill("scopes", "openid email offline_access");
  await fill("authorize_url", `${env.PROVIDER_URL}/auth`);
  await fill("token_url", `${env.PROVIDER_URL}/token`);
  await fill("extra_authorize_params", "prompt=consent");
  await page.selectOption(`${form} [name="client_auth"]`, env.CLIENT_AUTH || "basic");
  await fill("root_names", '"email"');
  // A broken value box is refused at its field; the error goes once the field is fixed.
  await fill("values", 'JSON(input,"email") +');
  await page.click("#save");
  await page.waitForSelector(`${form} [name="values"] + .field-error`);
  await fill("values", 'JSON(input,"email")');
  if (await page.$(".field-error")) throw new Error("a fixed field still shows its error");
  const redirect = await page.inputValue("#redirect-url");
  if (redirect !== `${env.BELLHOP_URL}/oauth2/callback`) throw new Error(`redirect URL shown is ${redirect}`);
  await page.click("#save");
  await page.waitForFunction(() => document.querySelector("#editor-message").textContent.includes("Saved"));
  await page.waitForFunction(() => document.querySelector("#auth-status").textContent.includes("never authorized"));
  await shot(page, "1-profile-editor");

  await page.click("#authorize");
  await page.waitForSelector("#username");
  await shot(page, "2-provider-sign-in");
  await page.fill("#username", "ann");
  await page.fill("#password", "correct horse");
  await page.click("#sign-in");
  await page.waitForSelector("#allow");
  await shot(page, "3-provider-consent");
  await page.click("#allow");
  await page.waitForSelector("#outcome");
  await shot(page, "4-callback");
  const outcome = await page.getAttribute("#outcome", "data-outcome");
  const message = await page.textContent("#outcome");
  if (outcome !== "ok") throw new Error(`callback page says: ${message}`);

  await page.click("a.button");
  await page.waitForSelector('tr[data-profile="discord"] a');
  await page.click('tr[data-profile="discord"] a');
  await page.waitForFunction(() => document.querySelector("#auth-status").textContent.startsWith("authorized"));
  // A second tab on the devices page, connected to the live stream before the device exists.
  const live = await context.newPage();
  await live.goto(env.BELLHOP_URL + "/#devices");
  await live.waitForSelector('body[data-live="yes"]');
  // Back to the editor's tab (a background tab's timers and frames are throttled).
  await page.bringToFront();
  await page.click("#run-now");
  await page.waitForFunction(() => document.querySelector("#run-result").textContent.includes("ann@example.com"));
  await shot(page, "5-run-now");
  // Under each device box, what it gives over that response, following what is typed: a
  // value, and a mistake at its column, before anything is saved.
  await page.waitForFunction(() => document.querySelector('#editor output[data-for="values"]').textContent.includes("ann@example.com"));
  await fill("root_names", '"email" &&& Upper(JSON(input,"email") +');
  await page.waitForFunction(() => {
    const parts = [...document.querySelectorAll('#editor output[data-for="root_names"] span')].map((s) => s.textContent);
    return parts.length === 2 && parts[0] === "email" && parts[1].startsWith("column ");
  });
  await fill("root_names", '"email"');
  await page.waitForFunction(() => document.querySelector('#editor output[data-for="root_names"]').textContent === "email");
  // The list shows the last run beside the authorization; times are relative and local.
  await page.waitForFunction(() => {
    const row = document.querySelector('tr[data-profile="discord"]');
    return row && row.textContent.includes("ok") && row.querySelector("time");
  });
  const status = await page.textContent("#auth-status");
  if (!/ago|now|in \d/.test(status) || /\d{4}-\d{2}-\d{2}T/.test(status)) throw new Error(`status shows raw times: ${status}`);
  // The device arrives on the open devices page through server-sent events, without a reload.
  await live.bringToFront();
  await live.waitForFunction(() => {
    const row = document.querySelector('tr[data-device="email"]');
    return row && row.textContent.includes("ann@example.com");
  });
  await shot(live, "6-devices-live");
  // Forget authorization asks first; saying no keeps the tokens.
  await page.bringToFront();
  page.once("dialog", (dialog) => dialog.dismiss());
  await page.click("#forget");
  await page.waitForTimeout(300);
  const kept = await page.textContent("#auth-status");
  if (!kept.startsWith("authorized")) throw new Error(`Forget acted without confirmation: ${kept}`);
});
