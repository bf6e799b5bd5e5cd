// SPDX-License-Identifier: LGPL-2.1-or-later
// The browsers the web tests drive, behind one small interface: Debian's Chromium through
// playwright-core (CDP) and Debian's Firefox ESR through puppeteer-core over WebDriver BiDi.
// Neither downloads a browser. Each launch gets a fresh profile in `profileRoot`.
//
//   const b = await launchBrowser('firefox', dir);  b.version
//   const page = await b.newPage(url);  await page.evaluate(fn, arg);  page.errors
//   await page.waitFor(fn, arg, timeoutMs, what);  await page.screenshot(file);  await page.close()
//   await b.close()
import { existsSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const require = createRequire(import.meta.url);
const optional = (name) => {
  try {
    return require(name);
  } catch {
    return null;
  }
};

export const BROWSERS = {
  chromium: {
    executable: process.env.POINTCAST_CHROMIUM || '/usr/bin/chromium',
    driver: 'playwright-core',
  },
  firefox: {
    executable: process.env.POINTCAST_FIREFOX || '/usr/bin/firefox-esr',
    driver: 'puppeteer-core',
  },
};

/** Why `name` cannot run here, or false. */
export function browserMissing(name) {
  const b = BROWSERS[name];
  if (!b) return `unknown browser ${name}`;
  if (!optional(b.driver)) return `${b.driver} is not installed (./pointcast setup installs it)`;
  if (!existsSync(b.executable)) return `no ${b.executable}`;
  return false;
}

// Chromium: plain host candidates (no mDNS names) including loopback, so a GStreamer peer on
// this machine reaches the page over 127.0.0.1.
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns', '--allow-loopback-in-peer-connection',
  '--ignore-certificate-errors'];

// Firefox: the same for ICE (loopback candidates, real addresses instead of mDNS names), muted
// autoplay without a gesture, and nothing that phones home.
const FIREFOX_PREFS = {
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.autoplay.default': 0,
  'media.autoplay.block-webaudio': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'app.update.enabled': false,
  'browser.shell.checkDefaultBrowser': false,
};

export async function launchBrowser(name, profileRoot) {
  const missing = browserMissing(name);
  if (missing) throw new Error(missing);
  const profile = mkdtempSync(path.join(profileRoot, `${name}-profile-`));
  if (name === 'chromium') {
    const { chromium } = require('playwright-core');
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: BROWSERS.chromium.executable, headless: true, args: CHROMIUM_ARGS,
      viewport: { width: 1200, height: 900 },
    });
    const probe = await ctx.newPage();
    const version = await probe.evaluate(() => navigator.userAgent.match(/Chrome\/[\d.]+/)[0]);
    await probe.close();
    return {
      name, version,
      newPage: async (url) => openPage(await ctx.newPage(), url),
      close: () => ctx.close(),
    };
  }
  const puppeteer = require('puppeteer-core');
  const browser = await puppeteer.launch({
    browser: 'firefox', protocol: 'webDriverBiDi', executablePath: BROWSERS.firefox.executable,
    headless: true, userDataDir: profile, extraPrefsFirefox: FIREFOX_PREFS,
    defaultViewport: { width: 1200, height: 900 },
  });
  const version = await browser.version();
  return {
    name, version,
    newPage: async (url) => openPage(await browser.newPage(), url),
    close: () => browser.close(),
  };
}

// A playwright or puppeteer page (their evaluate, screenshot, close and page events are called
// alike) behind the interface above, with its errors collected, once it has loaded url.
async function openPage(p, url) {
  const page = {
    raw: p,
    errors: [],
    evaluate: (fn, arg) => p.evaluate(fn, arg),
    screenshot: (file) => p.screenshot({ path: file }),
    close: () => p.close(),
    /** Polls `fn(arg)` in the page until it returns something truthy; returns that. */
    async waitFor(fn, arg, timeoutMs, what) {
      const t0 = Date.now();
      for (;;) {
        const v = await p.evaluate(fn, arg);
        if (v) return v;
        if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await sleep(50);
      }
    },
  };
  p.on('pageerror', (e) => page.errors.push(String(e)));
  p.on('console', (m) => m.type() === 'error' && page.errors.push(`console: ${m.text()}`));
  await p.goto(url);
  return page;
}
