// Drives the edgepbx console in headless Chromium (Debian's /usr/bin/chromium
// through playwright-core) for tests/tests/console.rs, which starts the
// server, registers the SIP device and checks the results through the API.
//
// Environment: EDGEPBX_URL, EDGEPBX_EMAIL, EDGEPBX_PASSWORD (a tenant
// administrator), EDGEPBX_READER_EMAIL, EDGEPBX_READER_PASSWORD (a read-only
// user of the same tenant), ARTIFACTS (a directory for screenshots and the
// downloaded export), BAD_CSV, GOOD_CSV, GREETING_WAV (a WAV file to
// upload as a greeting).
// Protocol: one line per step on stdout (`STEP <name> [detail]`); after
// `STEP awaiting-device` it waits for a line on stdin (the device is
// registered). Any failure prints `FAIL <message>` and exits 1.

import { launch } from "./chromium.mjs";
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import path from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const url = env("EDGEPBX_URL");
const artifacts = env("ARTIFACTS");
const lines = createInterface({ input: process.stdin });
const stdinLines = lines[Symbol.asyncIterator]();
const step = (name, detail = "") => console.log(`STEP ${name}${detail ? " " + detail : ""}`);
const byId = (page, id) => page.locator(`[data-testid="${id}"]`);

async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

async function main() {
  const browser = await launch();
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  try {
    // Log in.
    await page.goto(url);
    await byId(page, "login-email").fill(env("EDGEPBX_EMAIL"));
    await byId(page, "login-password").fill(env("EDGEPBX_PASSWORD"));
    await shot(page, "01-login");
    await byId(page, "login-submit").click();
    await byId(page, "ext-search").waitFor({ timeout: 15000 });
    step("logged-in");

    // Create an extension with the form; the password is shown once.
    await byId(page, "new-ext-toggle").click();
    await byId(page, "new-ext-number").fill("500");
    await byId(page, "new-ext-name").fill("Browser Test");
    await byId(page, "new-ext-submit").click();
    const password = (await byId(page, "new-ext-password").textContent({ timeout: 10000 })).trim();
    step("created", password);

    // Find it by search: the other extension disappears from the list.
    await byId(page, "ext-search").fill("Browser");
    await byId(page, "ext-search").press("Enter");
    await byId(page, "ext-row-501").waitFor({ state: "detached", timeout: 10000 });
    await byId(page, "ext-row-500").waitFor({ timeout: 10000 });
    await shot(page, "02-search");
    step("found");

    // The test registers a device; the dot turns green without a reload.
    const dot = page.locator('[data-testid="status-500"]');
    const before = await dot.getAttribute("data-status");
    step("awaiting-device", before);
    await stdinLines.next();
    const started = Date.now();
    await page.locator('[data-testid="status-500"][data-status="online"]').waitFor({ timeout: 10000 });
    step("online", String(Date.now() - started));
    await shot(page, "03-online");

    // The live BLF grid shows it too.
    await byId(page, "nav-dashboard").click();
    await page.locator('[data-testid="blf-500"][data-status="online"]').waitFor({ timeout: 10000 });
    await shot(page, "04-dashboard");
    step("dashboard");

    // Import with one bad row: the dry run shows it, the commit is refused.
    await byId(page, "nav-import-export").click();
    await byId(page, "import-file").setInputFiles(env("BAD_CSV"));
    await byId(page, "import-dry-run").click();
    await page.locator('[data-testid="import-outcome"][data-state="done"]').waitFor({ timeout: 30000 });
    const dryErrors = (await byId(page, "import-errors").innerText()).replace(/\s+/g, " ");
    step("dry-run", dryErrors);
    await byId(page, "import-commit").click();
    await page.locator('[data-testid="import-outcome"]', { hasText: "Nothing was changed" }).waitFor({ timeout: 30000 });
    await shot(page, "05-import-refused");
    step("commit-refused");

    // Fixed, it imports, with a progress bar that ends full.
    await byId(page, "import-file").setInputFiles(env("GOOD_CSV"));
    await byId(page, "import-commit").click();
    await page.locator('[data-testid="import-outcome"]', { hasText: "created" }).waitFor({ timeout: 60000 });
    const progress = byId(page, "import-progress");
    step(
      "imported",
      `${await progress.getAttribute("data-processed")}/${await progress.getAttribute("data-total")} ` +
        (await byId(page, "import-outcome").innerText()),
    );
    await shot(page, "06-imported");

    // Export everything; the test compares the file with the API's export.
    const [download] = await Promise.all([
      page.waitForEvent("download", { timeout: 15000 }),
      byId(page, "export-all").click(),
    ]);
    const exported = path.join(artifacts, "export.csv");
    await download.saveAs(exported);
    step("exported", exported);

    // The extension's tabs: a bad forwarding target is refused next to its
    // field; a good one is saved; the devices tab lists the phone.
    await page.goto(`${url}#/extensions/500/forwarding`);
    const busy = byId(page, "field-forwarding.busy");
    // Somebody changes the extension through the API while the page shows
    // it: saving the page's version is refused rather than overwriting.
    await busy.waitFor({ timeout: 10000 });
    step("awaiting-change");
    await stdinLines.next();
    await busy.fill("voicemail");
    await byId(page, "ext-save").click();
    await byId(page, "error-banner").getByText("Someone changed this extension").waitFor({ timeout: 10000 });
    step("stale-refused");
    await page.reload();
    await busy.waitFor({ timeout: 10000 });
    await busy.fill("not a number");
    await byId(page, "ext-save").click();
    await page.locator('.field-error[data-field="forwarding.busy"]').waitFor({ timeout: 10000 });
    await busy.fill("voicemail");
    await byId(page, "ext-save").click();
    await page.locator('.field-error[data-field="forwarding.busy"]').waitFor({ state: "detached", timeout: 10000 });
    // The errors go as the save starts; the notice comes when it is done.
    await byId(page, "notice-banner").getByText("Extension 500 saved.").waitFor({ timeout: 10000 });
    await shot(page, "07-forwarding");
    step("forwarding-saved");
    await byId(page, "tab-devices").click();
    await byId(page, "devices-table").locator("tbody tr").first().waitFor({ timeout: 10000 });
    await byId(page, "tab-reliability").click();
    await byId(page, "reliability-timeline").waitFor({ timeout: 10000 });
    await shot(page, "08-reliability");
    step("tabs");

    // The voicemail tab: a greeting uploaded as a WAV file is kept and
    // can be played in the page.
    await byId(page, "tab-voicemail").click();
    const nameRow = byId(page, "greeting-name");
    await nameRow.waitFor({ timeout: 10000 });
    await byId(page, "voicemail-empty").waitFor({ timeout: 10000 });
    await nameRow.locator('input[type="file"]').setInputFiles(env("GREETING_WAV"));
    await nameRow.getByRole("button", { name: "Upload" }).click();
    await nameRow.getByText("recorded").waitFor({ timeout: 10000 });
    await nameRow.locator("audio").waitFor({ state: "attached", timeout: 10000 });
    await shot(page, "09-voicemail");
    step("greeting");

    // A ring group, a contact, a tried decision, an API key.
    await byId(page, "nav-groups").click();
    await byId(page, "group-new").click();
    await byId(page, "group-number").fill("600");
    await byId(page, "group-name").fill("Sales");
    await byId(page, "group-members").fill("500, 501");
    await byId(page, "group-save").click();
    await byId(page, "group-row-600").waitFor({ timeout: 10000 });
    step("group");
    // The same race for a group: the form's version is refused once
    // somebody changed the group through the API.
    await byId(page, "group-edit-600").click();
    await byId(page, "group-name").waitFor({ timeout: 10000 });
    step("group-awaiting-change");
    await stdinLines.next();
    await byId(page, "group-name").fill("Sales team");
    await byId(page, "group-save").click();
    await byId(page, "error-banner").getByText("Someone changed group 600").waitFor({ timeout: 10000 });
    step("group-stale-refused");
    await byId(page, "nav-contacts").click();
    await byId(page, "contact-new").click();
    await byId(page, "contact-name").fill("Acme Plumbing");
    await byId(page, "contact-number").fill("+15550199");
    await byId(page, "contact-save").click();
    await byId(page, "contacts-table").getByText("Acme Plumbing").waitFor({ timeout: 10000 });
    step("contact");
    await byId(page, "nav-policies").click();
    await byId(page, "policy-try-caller").fill("501");
    await byId(page, "policy-try-dialled").fill("600");
    await byId(page, "policy-try-submit").click();
    const decision = await byId(page, "policy-try-result").innerText({ timeout: 15000 });
    await shot(page, "09-policy-try");
    step("policy-try", decision.replace(/\s+/g, " "));
    await byId(page, "nav-api-keys").click();
    await byId(page, "apikey-name").fill("deploy");
    await byId(page, "apikey-create").click();
    const newKey = (await byId(page, "apikey-key").textContent({ timeout: 10000 })).trim();
    await shot(page, "10-api-key");
    step("api-key", newKey);

    // Desk phones: a provisioning password (shown once); a phone for
    // extension 501, refused first for want of a vendor (its MAC address's
    // maker is unknown), then added, edited and listed on the Phones page
    // and on the extension's Devices tab. No phone is registered, so a
    // resync tells nobody.
    await byId(page, "nav-phones").click();
    await byId(page, "prov-configured").waitFor({ timeout: 10000 });
    if ((await byId(page, "prov-configured").getAttribute("data-configured")) === "true") {
      page.once("dialog", (d) => d.accept());
    }
    await byId(page, "prov-new-password").click();
    const provPassword = (await byId(page, "prov-password").textContent({ timeout: 10000 })).trim();
    await page.locator('[data-testid="prov-configured"][data-configured="true"]').waitFor({ timeout: 10000 });
    const provUrl = (await byId(page, "prov-url").textContent()).trim();
    if (!provPassword || !provUrl.startsWith("https://") || !provUrl.endsWith("/prov/ACME/")) {
      throw new Error(`provisioning panel: ${provUrl} ${provPassword ? "(password shown)" : "(no password)"}`);
    }
    step("provisioning", provUrl);
    await byId(page, "phone-new").click();
    await byId(page, "field-mac").fill("02:00:00:00:00:01");
    await byId(page, "field-extension").fill("501");
    await byId(page, "phone-save").click();
    await page.locator('.field-error[data-field="vendor"]').waitFor({ timeout: 10000 });
    await byId(page, "field-mac").fill("80:5E:C0:12:34:56");
    await byId(page, "field-model").fill("T46U");
    await byId(page, "field-blf_keys").fill("500=Browser, 600");
    await byId(page, "field-label").fill("Front desk");
    await byId(page, "phone-save").click();
    const phoneRow = byId(page, "phone-row-805ec0123456");
    await phoneRow.getByText("Front desk").waitFor({ timeout: 10000 });
    await byId(page, "phone-edit-805ec0123456").click();
    await byId(page, "field-label").fill("Reception");
    await byId(page, "phone-save").click();
    await phoneRow.getByText("Reception").waitFor({ timeout: 10000 });
    const stored = await page.evaluate(async () => (await fetch("/api/v1/devices/805ec0123456")).json());
    const keys = JSON.stringify(stored.blf_keys);
    if (stored.vendor !== "yealink" || stored.extension !== "501" || keys !== '[{"number":"500","label":"Browser"},{"number":"600","label":""}]') {
      throw new Error(`the phone as stored: ${JSON.stringify(stored)}`);
    }
    const resynced = async (button, path) => {
      await Promise.all([
        page.waitForResponse((r) => r.request().method() === "POST" && r.url().includes(path), { timeout: 10000 }),
        byId(page, button).click(),
      ]);
      return (await byId(page, "phones-status").innerText({ timeout: 10000 })).trim();
    };
    const resyncAll = await resynced("phones-resync-all", "/api/v1/devices/resync");
    await shot(page, "13-phones");
    await page.goto(`${url}#/extensions/501/devices`);
    await phoneRow.waitFor({ timeout: 10000 });
    const resyncOne = await resynced("phone-resync-805ec0123456", "/api/v1/devices/805ec0123456/resync");
    for (const status of [resyncAll, resyncOne]) {
      if (!status.includes("0 of 1 phone notified")) throw new Error(`resync status: ${status}`);
    }
    step("phone", `${(await phoneRow.innerText()).replace(/\s+/g, " ")} | ${resyncAll}`);

    // Phones by CSV, uploaded as the extensions' CSV is. An unknown column
    // is named; a file with one wrong row (an unknown extension) is
    // checked, the row's error shown, Import not offered and nothing
    // written; a good file is checked, imported and listed; the export has
    // the phone.
    await byId(page, "nav-phones").click();
    const csvFile = (name, text) => ({ name, mimeType: "text/csv", buffer: Buffer.from(text) });
    const phonesHeader = "mac,vendor,model,extension,line,blf_keys,label\n";
    const goodPhone = "00:0B:82:00:00:07,,GXP2170,501,,500=Browser;600,Hall\n";
    const importFile = byId(page, "phones-import-file");
    const checkButton = byId(page, "phones-import-check");
    const phonesOutcome = byId(page, "phones-import-outcome");
    await importFile.setInputFiles(csvFile("colour.csv", "mac,extension,colour\n00:0B:82:00:00:07,501,red\n"));
    await checkButton.click();
    await page.locator('.field-error[data-field="colour"]').waitFor({ timeout: 10000 });
    await importFile.setInputFiles(
      csvFile("phones-bad.csv", phonesHeader + goodPhone + "00:0B:82:00:00:08,grandstream,,999,,,Store\n"),
    );
    await checkButton.click();
    await page.locator('[data-testid="phones-import-outcome"][data-dry-run="true"]').waitFor({ timeout: 10000 });
    const phoneErrors = (await byId(page, "phones-import-errors").innerText()).replace(/\s+/g, " ");
    if (!phoneErrors.includes("3 extension no extension 999") || !(await byId(page, "phones-import-commit").isDisabled())) {
      throw new Error(`the bad phones file: ${await phonesOutcome.innerText()} | ${phoneErrors}`);
    }
    await shot(page, "15-phones-check");
    const listed = await page.evaluate(async () => (await (await fetch("/api/v1/devices")).json()).map((d) => d.mac));
    if (JSON.stringify(listed) !== '["805ec0123456"]') throw new Error(`a check wrote phones: ${listed}`);
    for (const mac of ["000b82000007", "000b82000008"]) {
      if (await byId(page, `phone-row-${mac}`).count()) throw new Error(`a checked phone is listed: ${mac}`);
    }
    await importFile.setInputFiles(csvFile("phones.csv", phonesHeader + goodPhone));
    await phonesOutcome.waitFor({ state: "detached", timeout: 10000 });
    await checkButton.click();
    await page.locator('[data-testid="phones-import-outcome"][data-dry-run="true"]').waitFor({ timeout: 10000 });
    const phonesChecked = await phonesOutcome.innerText();
    await byId(page, "phones-import-commit").click();
    await page.locator('[data-testid="phones-import-outcome"][data-committed="true"]').waitFor({ timeout: 10000 });
    const phonesImported = await phonesOutcome.innerText();
    await byId(page, "phone-row-000b82000007").getByText("Hall").waitFor({ timeout: 10000 });
    await shot(page, "16-phones-imported");
    const [phonesDownload] = await Promise.all([
      page.waitForEvent("download", { timeout: 15000 }),
      byId(page, "phones-export").click(),
    ]);
    const phonesExported = path.join(artifacts, "phones.csv");
    await phonesDownload.saveAs(phonesExported);
    const phonesCsv = await readFile(phonesExported, "utf8");
    if (!phonesCsv.includes("\n000b82000007,grandstream,GXP2170,501,1,500=Browser;600,Hall\n")) {
      throw new Error(`the phones export: ${phonesCsv}`);
    }
    step("phones-csv", `${phonesChecked} | ${phonesImported}`);

    // A read-only user sees the same pages without the controls that
    // change something, and the extension's settings disabled.
    const reader = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    reader.on("pageerror", (e) => consoleErrors.push(String(e)));
    await reader.goto(url);
    await byId(reader, "login-email").fill(env("EDGEPBX_READER_EMAIL"));
    await byId(reader, "login-password").fill(env("EDGEPBX_READER_PASSWORD"));
    await byId(reader, "login-submit").click();
    await byId(reader, "ext-row-500").waitFor({ timeout: 15000 });
    const offered = [];
    const absent = async (id) => {
      if (await byId(reader, id).isVisible()) offered.push(id);
    };
    const present = async (id) => byId(reader, id).waitFor({ timeout: 10000 });
    for (const id of ["new-ext-toggle", "ext-copy-500", "ext-reset-500", "ext-delete-500"]) await absent(id);
    await byId(reader, "ext-select-500").check();
    await present("bulk-export");
    for (const id of ["bulk-delete", "bulk-voicemail-on", "bulk-voicemail-off"]) await absent(id);
    await shot(reader, "11-read-only-extensions");
    await reader.goto(`${url}#/extensions/500/forwarding`);
    await present("field-forwarding.busy");
    for (const id of ["field-forwarding.busy", "ext-save"]) {
      if (!(await byId(reader, id).isDisabled())) offered.push(id);
    }
    await byId(reader, "nav-groups").click();
    await present("group-row-600");
    for (const id of ["group-new", "group-edit-600", "group-delete-600"]) await absent(id);
    await byId(reader, "nav-contacts").click();
    await byId(reader, "contacts-table").getByText("Acme Plumbing").waitFor({ timeout: 10000 });
    await absent("contact-new");
    await byId(reader, "nav-import-export").click();
    await present("export-all");
    await absent("import-card");
    await byId(reader, "nav-policies").click();
    await present("policies-table");
    for (const id of ["policy-upload", "policy-try-form", "policy-deactivate"]) await absent(id);
    await byId(reader, "nav-phones").click();
    await present("phone-row-805ec0123456");
    await present("prov-url");
    await present("phones-export");
    for (const id of ["phone-new", "phones-resync-all", "prov-new-password", "phones-import"]) await absent(id);
    for (const action of ["resync", "edit", "delete"]) await absent(`phone-${action}-805ec0123456`);
    await shot(reader, "14-read-only-phones");
    await byId(reader, "nav-api-keys").click();
    await byId(reader, "apikeys-table").locator("tbody tr").first().waitFor({ timeout: 10000 });
    await absent("apikey-create");
    for (const revoke of await reader.locator('[data-testid^="apikey-revoke-"]').all()) {
      if (await revoke.isVisible()) offered.push("apikey-revoke");
    }
    await shot(reader, "12-read-only-api-keys");
    step("read-only", offered.length ? `offered ${offered.join(", ")}` : "offered nothing that writes");

    // The phone is deleted (after a confirmation).
    await byId(page, "nav-phones").click();
    await phoneRow.waitFor({ timeout: 10000 });
    page.once("dialog", (d) => d.accept());
    await byId(page, "phone-delete-805ec0123456").click();
    await phoneRow.waitFor({ state: "detached", timeout: 10000 });
    step("phone-deleted");

    if (consoleErrors.length) throw new Error(`page errors: ${consoleErrors.join("; ")}`);
    step("done");
  } catch (e) {
    await shot(page, "99-failure").catch(() => {});
    console.log(`FAIL ${String(e && e.stack ? e.stack : e).replace(/\n/g, " | ")}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
    lines.close();
  }
}

await main();
