// Drives the console in headless Chromium for tests/tests/console_personal.rs:
// an administrator makes a console user of extension 101, who logs in, sees
// and changes only their own extension, and uses the console's web phone:
// calls desk phone 100, hears it, sends a key, holds, hangs up, then
// answers a call.
//
// Environment: EDGEPBX_URL, EDGEPBX_EMAIL, EDGEPBX_PASSWORD (a tenant
// administrator), USER_EMAIL, USER_PASSWORD (the extension user to add),
// ARTIFACTS (a directory for screenshots).
// Protocol: one line per step on stdout (`STEP <name> [detail]`); after
// the steps `heard`, `key-sent`, `hung-up` and `answered` it waits for a
// line on stdin (the test checked the desk phone, or made it call). Any failure prints `FAIL <message>`
// and exits 1.

import { launch, phoneFlags } from "./chromium.mjs";
import { createInterface } from "node:readline";
import path from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const url = env("EDGEPBX_URL");
const artifacts = env("ARTIFACTS");
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const goOn = async () => {
  if ((await lines.next()).done) throw new Error("the test went away");
};
const step = (name, detail = "") => console.log(`STEP ${name}${detail ? " " + detail : ""}`);
const byId = (page, id) => page.locator(`[data-testid="${id}"]`);
const shot = (page, name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });

async function logIn(page, email, password) {
  await page.goto(url);
  await byId(page, "login-email").fill(email);
  await byId(page, "login-password").fill(password);
  await byId(page, "login-submit").click();
  await byId(page, "nav-logout").waitFor({ timeout: 15000 });
}

// Waits until the web phone has heard the other side: RTP packets and
// energy above silence, as its own statistics line shows them.
async function hears(page) {
  const stats = byId(page, "phone-stats");
  const deadline = Date.now() + 20000;
  for (;;) {
    const packets = Number(await stats.getAttribute("data-packets"));
    const energy = Number(await stats.getAttribute("data-energy"));
    if (packets > 50 && energy > 0) return `packets=${packets} energy=${energy}`;
    if (Date.now() > deadline) throw new Error(`heard nothing: ${await stats.innerText()}`);
    await page.waitForTimeout(250);
  }
}

const callState = (page, state) =>
  page.locator(`[data-testid="phone-state"][data-state="${state}"]`).waitFor({ timeout: 30000 });

async function main() {
  const browser = await launch(phoneFlags);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  try {
    // The administrator adds the person behind 101 on its General tab.
    await logIn(page, env("EDGEPBX_EMAIL"), env("EDGEPBX_PASSWORD"));
    await page.goto(`${url}#/extensions/101/general`);
    await byId(page, "extension-user-email").fill(env("USER_EMAIL"));
    await byId(page, "extension-user-password").fill(env("USER_PASSWORD"));
    await byId(page, "extension-user-add").click();
    await byId(page, `extension-user-${env("USER_EMAIL")}`).waitFor({ timeout: 10000 });
    await shot(page, "01-administrator-adds-an-extension-user");
    step("user-added");
    await byId(page, "nav-logout").click();
    await byId(page, "login-email").waitFor({ timeout: 10000 });

    // They log in: one page, their extension, with what they may change.
    await logIn(page, env("USER_EMAIL"), env("USER_PASSWORD"));
    await byId(page, "ext-title").getByText("101").waitFor({ timeout: 10000 });
    const nav = await page.locator("header nav a").allInnerTexts();
    const tabs = await page.locator("nav.tabs a").allInnerTexts();
    const adminFields = [];
    for (const id of ["field-name", "ext-password-reveal", "field-allowed_destinations", "extension-users"]) {
      if (await byId(page, id).count()) adminFields.push(id);
    }
    step("own-page", `nav=${nav.join("|")} tabs=${tabs.join("|")} admin-fields=${adminFields.join("|") || "none"}`);
    await byId(page, "field-away").check();
    await byId(page, "ext-save").click();
    await byId(page, "notice-banner").getByText("Extension 101 saved.").waitFor({ timeout: 10000 });
    await shot(page, "02-extension-user-sets-away");
    step("away-saved");

    // Another address shows their own extension all the same.
    await page.goto(`${url}#/extensions`);
    await page.goto(`${url}#/extensions/100/aliases`);
    await byId(page, "ext-title").getByText("101").waitFor({ timeout: 10000 });
    step("kept-to-own", await byId(page, "ext-title").innerText());

    // The web phone registers as 101 and calls the desk phone, 100.
    await byId(page, "nav-phone").click();
    await page.locator('[data-testid="phone-registration"][data-registered="true"]').waitFor({ timeout: 20000 });
    step("phone-registered", await byId(page, "phone-registration").innerText());
    await byId(page, "phone-target").fill("100");
    await byId(page, "phone-call").click();
    await callState(page, "up");
    const heard = await hears(page);
    await shot(page, "03-web-phone-in-call");
    step("heard", heard);
    await goOn();
    await byId(page, "phone-key-5").click();
    step("key-sent");
    await goOn();
    await byId(page, "phone-hold").click();
    await byId(page, "phone-state").getByText("On hold").waitFor({ timeout: 10000 });
    await byId(page, "phone-hold").click();
    await byId(page, "phone-state").getByText("In call with").waitFor({ timeout: 10000 });
    step("held-and-resumed");
    await byId(page, "phone-hangup").click();
    await callState(page, "idle");
    step("hung-up", await byId(page, "phone-state").innerText());
    await goOn();

    // A call to 101 rings in the page and is answered there.
    await callState(page, "incoming");
    await shot(page, "04-web-phone-ringing");
    step("ringing", await byId(page, "phone-state").innerText());
    await byId(page, "phone-answer").click();
    await callState(page, "up");
    step("answered", await hears(page));
    await goOn();
    await byId(page, "phone-hangup").click();
    await callState(page, "idle");

    if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join("; ")}`);
    step("done");
  } catch (e) {
    await shot(page, "99-failure").catch(() => {});
    console.log(`FAIL ${String(e && e.stack ? e.stack : e).replace(/\n/g, " | ")}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
    process.stdin.destroy();
  }
}

await main();
