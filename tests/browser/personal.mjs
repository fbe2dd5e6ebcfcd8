// Drives the console in headless Chromium for tests/tests/console_personal.rs:
// an administrator makes a console user of extension 101, who logs in and
// sees and changes only their own extension.
//
// Environment: EDGEPBX_URL, EDGEPBX_EMAIL, EDGEPBX_PASSWORD (a tenant
// administrator), USER_EMAIL, USER_PASSWORD (the extension user to add),
// ARTIFACTS (a directory for screenshots).
// Protocol: one line per step on stdout (`STEP <name> [detail]`); any
// failure prints `FAIL <message>` and exits 1.

import { launch } from "./chromium.mjs";
import path from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const url = env("EDGEPBX_URL");
const artifacts = env("ARTIFACTS");
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

async function main() {
  const browser = await launch();
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
    await byId(page, "field-dnd").check();
    await byId(page, "ext-save").click();
    await byId(page, "notice-banner").getByText("Extension 101 saved.").waitFor({ timeout: 10000 });
    await shot(page, "02-extension-user-sets-dnd");
    step("dnd-saved");

    // Another address shows their own extension all the same.
    await page.goto(`${url}#/extensions`);
    await page.goto(`${url}#/extensions/100/aliases`);
    await byId(page, "ext-title").getByText("101").waitFor({ timeout: 10000 });
    step("kept-to-own", await byId(page, "ext-title").innerText());

    if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join("; ")}`);
    step("done");
  } catch (e) {
    await shot(page, "99-failure").catch(() => {});
    console.log(`FAIL ${String(e && e.stack ? e.stack : e).replace(/\n/g, " | ")}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

await main();
