// BLF latency in the console: N consoles (one Chromium, a context and a
// session each) watch the dashboard's grid of every extension; a SIP client
// written here registers and unregisters extensions over UDP; each page
// timestamps the tile's change with a MutationObserver. Prints one latency
// (ms, from the 200 OK of the REGISTER to the DOM change) per page and change;
// CHANGES rounds each register and unregister one extension.
//
// Environment: URL, EMAIL, PASSWORD (console user), SIP (host:port of
// edgepbx's UDP listener), DOMAIN, FIRST (first extension number), COUNT
// (extensions), CHANGES, PAGES, PASSWORD_PREFIX (an extension's SIP password
// is PASSWORD_PREFIX + number).

import { chromium } from "../../tests/browser/node_modules/playwright-core/index.mjs";
import dgram from "node:dgram";
import crypto from "node:crypto";

const env = (n, d) => process.env[n] ?? d ?? (() => { throw new Error(`${n} is not set`); })();
const [sipHost, sipPort] = env("SIP").split(":");
const domain = env("DOMAIN");
const first = Number(env("FIRST", "1000"));
const count = Number(env("COUNT", "1000"));
const changes = Number(env("CHANGES", "100"));
const pages = Number(env("PAGES", "20"));
const prefix = env("PASSWORD_PREFIX", "pw-");

const socket = dgram.createSocket("udp4");
await new Promise((r) => socket.bind(0, "127.0.0.1", r));
const local = socket.address();
const waiting = new Map();
socket.on("message", (msg) => {
  const text = msg.toString();
  const callId = /\r\nCall-ID: *([^\r]+)/i.exec(text)?.[1];
  const resolve = waiting.get(callId);
  if (resolve) { waiting.delete(callId); resolve(text); }
});
const md5 = (s) => crypto.createHash("md5").update(s).digest("hex");
let cseq = 1;

function send(text, callId) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { waiting.delete(callId); reject(new Error("no answer")); }, 5000);
    waiting.set(callId, (t) => { clearTimeout(timer); resolve(t); });
    socket.send(Buffer.from(text), Number(sipPort), sipHost);
  });
}

function register(number, expires, callId, auth) {
  const branch = "z9hG4bK" + crypto.randomBytes(6).toString("hex");
  return [
    `REGISTER sip:${domain} SIP/2.0`,
    `Via: SIP/2.0/UDP ${local.address}:${local.port};branch=${branch};rport`,
    "Max-Forwards: 70",
    `From: <sip:${number}@${domain}>;tag=${callId}`,
    `To: <sip:${number}@${domain}>`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq++} REGISTER`,
    `Contact: <sip:${number}@${local.address}:${local.port}>`,
    `Expires: ${expires}`,
    ...(auth ? [auth] : []),
    "Content-Length: 0", "", "",
  ].join("\r\n");
}

/// Registers (expires > 0) or unregisters; resolves at the 200 OK.
async function setOnline(number, expires) {
  const callId = `blf-${number}-${crypto.randomBytes(4).toString("hex")}`;
  const challenge = await send(register(number, expires, callId), callId);
  const md5Line = challenge.split("\r\n").find((l) => /^WWW-Authenticate:.*algorithm=MD5/i.test(l));
  if (!md5Line) throw new Error("no MD5 challenge: " + challenge.split("\r\n")[0]);
  const param = (n) => new RegExp(`${n}="([^"]*)"`).exec(md5Line)?.[1];
  const [realm, nonce, opaque] = [param("realm"), param("nonce"), param("opaque")];
  const cnonce = crypto.randomBytes(8).toString("hex");
  const ha1 = md5(`${number}:${realm}:${prefix}${number}`);
  const ha2 = md5(`REGISTER:sip:${domain}`);
  const response = md5(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`);
  const auth = `Authorization: Digest username="${number}", realm="${realm}", nonce="${nonce}", uri="sip:${domain}", ` +
    `response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="${cnonce}"` + (opaque ? `, opaque="${opaque}"` : "");
  const ok = await send(register(number, expires, callId, auth), callId);
  if (!ok.startsWith("SIP/2.0 200")) throw new Error("REGISTER refused: " + ok.split("\r\n")[0]);
  return Date.now();
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-dev-shm-usage"] });
const consoles = [];
for (let i = 0; i < pages; i++) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(env("URL"));
  await page.fill('[data-testid="login-email"]', env("EMAIL"));
  await page.fill('[data-testid="login-password"]', env("PASSWORD"));
  await page.click('[data-testid="login-submit"]');
  await page.waitForSelector('[data-testid="ext-search"]');
  await page.click('[data-testid="nav-dashboard"]');
  await page.waitForSelector(`[data-testid="blf-${first + count - 1}"]`, { timeout: 60000 });
  await page.evaluate(() => {
    window.__blf = [];
    new MutationObserver((records) => {
      const t = Date.now();
      for (const r of records) {
        const id = r.target.getAttribute && r.target.getAttribute("data-testid");
        if (id && id.startsWith("blf-")) window.__blf.push([id, r.target.getAttribute("data-status"), t]);
      }
    }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["data-status"] });
  });
  consoles.push(page);
}
console.error(`${pages} consoles on the dashboard of ${count} extensions`);

/// Waits for every console to show `status` on the tile of `number`; one
/// latency per console, from `since`.
async function observed(number, status, since) {
  const out = [];
  for (const page of consoles) {
    const t = await page.waitForFunction(([id, want]) => {
      const hit = window.__blf.find(([i, s]) => i === id && s === want);
      return hit ? hit[2] : false;
    }, [`blf-${number}`, status, since], { timeout: 10000, polling: 20 }).then((h) => h.jsonValue());
    out.push(Math.max(0, t - since));
  }
  return out;
}

// Each round flips one tile to online and back (two changes).
const latencies = [];
for (let c = 0; c < changes; c++) {
  const number = first + ((c * 37) % count);
  latencies.push(...await observed(number, "online", await setOnline(number, 60)));
  latencies.push(...await observed(number, "offline", await setOnline(number, 0)));
}
for (const l of latencies) console.log(l);
await browser.close();
socket.close();
