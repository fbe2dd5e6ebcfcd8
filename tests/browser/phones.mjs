// Browser phones for the end-to-end tests: JsSIP (npm, bundled here with
// esbuild) in pages of headless Chromium (Debian's /usr/bin/chromium through
// playwright-core), with fake microphones. tests/src/browser.rs drives it.
//
// Protocol: one JSON command per line on stdin, one JSON line per event on
// stdout, each naming the phone it concerns. Commands:
//   {"cmd":"open","name":N,"origin":URL}       a page of URL's origin (fetched)
//   {"cmd":"socket","name":N,"ws":URL}         a bare WebSocket: "socket" open|refused
//   {"cmd":"ua","name":N,"ws":URL,"uri":SIP-URI,"password":P}
//   {"cmd":"call","name":N,"target":SIP-URI}
//   {"cmd":"answer"|"hangup"|"hold"|"unhold","name":N}
//   {"cmd":"dtmf","name":N,"tones":"123","transport":"INFO"|"RFC2833"}
//   {"cmd":"stats","name":N}                   "stats" with inbound RTP and audio level
//   {"cmd":"eval","name":N,"js":EXPR}          "eval" with the value
//   {"cmd":"close","name":N}                   the page (and its socket) goes away
//   {"cmd":"exit"}
// Events: "ready" at start; then "registered" (contact), "registrationFailed"
// (cause, status), "unregistered", "disconnected", "session" (originator),
// "progress", "accepted", "confirmed", "ended" (cause), "failed" (cause),
// "dtmf" (tone, by), "info" (body), "hold"/"unhold", "error" (message).

import { launch, phoneFlags } from "./chromium.mjs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const jssip = esbuild.buildSync({
  entryPoints: [path.join(here, "node_modules/jssip/lib/JsSIP.js")],
  bundle: true,
  format: "iife",
  globalName: "JsSIP",
  write: false,
  minify: true,
}).outputFiles[0].text;

const emit = (event) => console.log(JSON.stringify(event));

// Runs in the page: one JsSIP user agent and its current session.
const inPage = () => {
  window.phone = {};
  window.startUa = ({ ws, uri, password }) => {
    const socket = new JsSIP.WebSocketInterface(ws);
    const ua = new JsSIP.UA({
      sockets: [socket],
      uri,
      password,
      register: true,
      session_timers: true,
      connection_recovery_min_interval: 2,
      connection_recovery_max_interval: 30,
    });
    window.phone.ua = ua;
    ua.on("registered", (e) => report({ event: "registered", contact: e.response.getHeader("Contact") }));
    ua.on("registrationFailed", (e) =>
      report({ event: "registrationFailed", cause: e.cause, status: e.response ? e.response.status_code : null }),
    );
    ua.on("unregistered", () => report({ event: "unregistered" }));
    ua.on("disconnected", (e) => report({ event: "disconnected", code: e.code || null }));
    ua.on("newRTCSession", ({ originator, session }) => {
      window.phone.session = session;
      report({ event: "session", originator });
      // The remote audio is played, as a phone page would: Chromium
      // measures its level only for a track that is played out.
      const play = (pc) =>
        pc.addEventListener("track", (ev) => {
          const audio = new Audio();
          audio.srcObject = ev.streams[0] || new MediaStream([ev.track]);
          audio.play().catch((e) => report({ event: "error", message: "play: " + e }));
          window.phone.audio = audio;
        });
      if (session.connection) play(session.connection);
      session.on("peerconnection", (e) => play(e.peerconnection));
      session.on("progress", (e) => report({ event: "progress", status: e.response ? e.response.status_code : null }));
      session.on("accepted", () => report({ event: "accepted" }));
      session.on("confirmed", () => report({ event: "confirmed" }));
      session.on("ended", (e) => report({ event: "ended", cause: e.cause, originator: e.originator }));
      session.on("failed", (e) => report({ event: "failed", cause: e.cause, originator: e.originator }));
      session.on("newDTMF", (e) => report({ event: "dtmf", tone: e.dtmf.tone, by: e.originator }));
      session.on("newInfo", (e) => report({ event: "info", body: e.info.body, by: e.originator }));
      session.on("hold", (e) => report({ event: "hold", by: e.originator }));
      session.on("unhold", (e) => report({ event: "unhold", by: e.originator }));
    });
    ua.start();
  };
  const media = { mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: [] } };
  window.call = (target) => window.phone.ua.call(target, media);
  window.answer = () => window.phone.session.answer(media);
  window.hangup = () => window.phone.session.terminate();
  // JsSIP refuses (silently) a new offer while the last one is settling:
  // wait until it would take one.
  const settled = async () => {
    for (let i = 0; i < 50 && !window.phone.session.isReadyToReOffer(); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  window.hold = async () => {
    await settled();
    window.phone.session.hold();
  };
  window.unhold = async () => {
    await settled();
    window.phone.session.unhold();
  };
  window.dtmf = (tones, transportType) => window.phone.session.sendDTMF(tones, { transportType });
  window.stats = async () => {
    const pc = window.phone.session && window.phone.session.connection;
    if (!pc) return null;
    const out = { packetsReceived: 0, packetsSent: 0, audioLevel: 0, totalAudioEnergy: 0 };
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        out.packetsReceived += s.packetsReceived || 0;
        out.audioLevel = Math.max(out.audioLevel, s.audioLevel || 0);
        out.totalAudioEnergy += s.totalAudioEnergy || 0;
      }
      if (s.type === "outbound-rtp" && s.kind === "audio") out.packetsSent += s.packetsSent || 0;
    });
    return out;
  };
  window.trySocket = (url) =>
    new Promise((resolve) => {
      const ws = new WebSocket(url, "sip");
      ws.onopen = () => {
        resolve("open");
        ws.close();
      };
      ws.onerror = () => resolve("refused");
    });
};

async function main() {
  const browser = await launch(phoneFlags);
  const pages = new Map();
  const page = (name) => {
    const p = pages.get(name);
    if (!p) throw new Error(`no page ${name}`);
    return p;
  };
  const lines = createInterface({ input: process.stdin });
  emit({ event: "ready" });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const command = JSON.parse(line);
    const { cmd, name } = command;
    try {
      switch (cmd) {
        case "open": {
          // A page of the origin asked for (its Origin header is what the
          // server checks); its own Content-Security-Policy is set aside so
          // that JsSIP can be added and the server's check is what refuses.
          // (The tests' HTTPS certificates are self-signed.)
          const context = await browser.newContext({ bypassCSP: true, ignoreHTTPSErrors: true });
          const p = await context.newPage();
          const url = new URL("/browser-phone", command.origin).href;
          await p.exposeFunction("report", (event) => emit({ name, ...event }));
          p.on("pageerror", (e) => emit({ name, event: "error", message: String(e) }));
          await p.goto(url);
          await p.addScriptTag({ content: jssip });
          await p.evaluate(inPage);
          pages.set(name, p);
          emit({ name, event: "opened" });
          break;
        }
        case "socket":
          emit({ name, event: "socket", result: await page(name).evaluate((u) => window.trySocket(u), command.ws) });
          break;
        case "ua":
          await page(name).evaluate((c) => window.startUa(c), command);
          break;
        case "call":
          await page(name).evaluate((t) => {
            window.call(t);
          }, command.target);
          break;
        case "answer":
        case "hangup":
        case "hold":
        case "unhold":
          await page(name).evaluate(async (c) => {
            await window[c]();
          }, cmd);
          break;
        case "dtmf":
          await page(name).evaluate(({ tones, transport }) => window.dtmf(tones, transport || "INFO"), command);
          break;
        case "stats":
          emit({ name, event: "stats", stats: await page(name).evaluate(() => window.stats()) });
          break;
        case "eval":
          emit({ name, event: "eval", value: await page(name).evaluate(command.js) });
          break;
        case "close":
          await page(name).context().close();
          pages.delete(name);
          emit({ name, event: "closed" });
          break;
        case "exit":
          await browser.close();
          return;
        default:
          throw new Error(`unknown command ${cmd}`);
      }
    } catch (e) {
      emit({ name, event: "error", message: String(e && e.message ? e.message : e) });
    }
  }
  await browser.close();
}

main().catch((e) => {
  emit({ event: "fatal", message: String(e && e.stack ? e.stack : e) });
  process.exit(1);
});
