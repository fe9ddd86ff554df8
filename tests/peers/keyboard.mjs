// A person who uses no mouse, in real Chromium: from the profile list, create a profile and
// save it; go to Events, create an event that sets a global and save it; run it now — with
// Tab, Shift+Tab, Enter, Space, arrow keys and typing alone. Every control reached shows where
// the focus is (a visible outline). Settings from the environment: BELLHOP_URL, ARTIFACTS.
// Exits non-zero on failure.
import { inChromium } from "./chromium.mjs";

const env = process.env;
await inChromium("target/peer-artifacts/keyboard", async ({ page, shot }) => {
  const focused = (selector) => page.evaluate((s) => Boolean(document.activeElement && document.activeElement.matches(s)), selector);
  // Tab (forward) until the focus is on `selector`; it must get there, and show it.
  const tabTo = async (selector, what) => {
    for (let presses = 0; presses < 120; presses++) {
      await page.keyboard.press("Tab");
      if (await focused(selector)) {
        const outline = await page.evaluate(() => {
          const style = getComputedStyle(document.activeElement);
          return style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
        });
        if (!outline) throw new Error(`${what} takes the focus without showing it`);
        return;
      }
    }
    throw new Error(`${what} cannot be reached with Tab`);
  };
  // A focused select changes with the arrow keys (as a closed list box does on Linux).
  const choose = async (selector, value, what) => {
    for (const key of ["ArrowDown", "ArrowUp"]) {
      for (let presses = 0; presses < 12; presses++) {
        if ((await page.inputValue(selector)) === value) return;
        await page.keyboard.press(key);
      }
    }
    if ((await page.inputValue(selector)) !== value) throw new Error(`${what} cannot be set to ${value} with the arrow keys`);
  };

  await page.goto(`${env.BELLHOP_URL}/#profiles`);
  await page.waitForFunction(() => !document.querySelector("#profile-list").hidden && document.querySelector("#profiles-summary").textContent);
  await tabTo("#new-profile", "New profile");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => location.hash === "#new-profile" && !document.querySelector("#editor").hidden);
  await tabTo('#editor [name="name"]', "the profile's name");
  await page.keyboard.type("keys");
  await tabTo('#editor [name="url"]', "the API URL");
  await page.keyboard.type("http://127.0.0.1:9/keys");
  await tabTo('#editor [name="auth_mode"]', "the authentication mode");
  await choose('#editor [name="auth_mode"]', "none", "the authentication mode");
  await tabTo('#editor [name="root_names"]', "the root device names");
  await page.keyboard.type('"keys"');
  await tabTo('#editor [name="values"]', "the values");
  await page.keyboard.type('JSON(input,"n")');
  await shot(page, "1-profile-by-keys");
  await tabTo("#save", "Save");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelector("#editor-message").textContent.includes("Saved"));
  if ((await page.evaluate(() => location.hash)) !== "#profiles/keys") throw new Error("the saved profile's address is not #profiles/keys");
  // Back to the list with Shift+Tab to the editor's back link: the new profile is listed.
  for (let presses = 0; presses < 200 && !(await focused("#editor-back")); presses++) await page.keyboard.press("Shift+Tab");
  if (!(await focused("#editor-back"))) throw new Error("the back link cannot be reached with Shift+Tab");
  await page.keyboard.press("Enter");
  await page.waitForSelector('tr[data-profile="keys"]');

  // Events, through the navigation bar.
  await tabTo('nav a[data-tab="events"]', "the Events tab");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => !document.querySelector("#events").hidden);
  await tabTo("#new-event", "New event");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => !document.querySelector("#event-editor").hidden);
  const trigger = '#event-editor [data-list="trigger"] .list-item';
  const action = '#event-editor [data-list="action"] .list-item';
  await tabTo('#event-editor [name="name"]', "the event's name");
  await page.keyboard.type("by-keys");
  await tabTo(`${trigger} [name="kind"]`, "the trigger's kind");
  await choose(`${trigger} [name="kind"]`, "every", "the trigger's kind");
  await tabTo(`${trigger} [name="every"]`, "the interval");
  await page.keyboard.type("1h");
  await tabTo(`${action} [name="kind"]`, "the action's kind");
  await choose(`${action} [name="kind"]`, "set_global", "the action's kind");
  await tabTo(`${action} [name="set_global"]`, "the global to set");
  await page.keyboard.type("typed");
  await tabTo(`${action} [name="value"]`, "the value");
  await page.keyboard.type("6 * 7");
  const said = await page.$$eval("#event-editor .list-item .summary", (lines) => lines.map((l) => l.textContent));
  if (said.join(" | ") !== "Every 1h | Set global typed to 6 * 7") throw new Error(`the cards say: ${said.join(" | ")}`);
  await tabTo("#event-save", "Save");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelector("#event-message").textContent.includes("Saved"));
  await tabTo("#event-run", "Run now");
  await page.keyboard.press("Space");
  await page.waitForFunction(() => document.querySelector("#event-runs").textContent.includes("✓"));
  await shot(page, "2-event-by-keys");
});
