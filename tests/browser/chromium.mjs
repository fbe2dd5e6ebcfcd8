// Debian's Chromium, headless, for the end-to-end tests: kept to loopback
// (no background networking, no name resolves but localhost), with the
// flags a test adds.

import { chromium } from "playwright-core";

export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
      ...extraArgs,
    ],
  });
}

// What a page that makes calls needs: a fake microphone granted without
// asking, loopback candidates (the tests' only network), and audio that
// plays without a click.
export const phoneFlags = [
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection",
  "--autoplay-policy=no-user-gesture-required",
];
