// SPDX-License-Identifier: LGPL-2.1-or-later
// The browser interop matrix, shared by tests/web/matrix.test.mjs (does each cell work?) and
// bench/web/ttff.mjs (how long to the first frame?). A cell is one browser, one page role, one
// arrival order and one sender:
//
//   chromium|firefox / auto|answer|offer / page-first|sender-first / testsrc|ball|points
//
// page-first: the page is in the room when the sender starts; sender-first: the sender is
// registered (the daemon logged it) before the page connects. The sender is started through
// the daemon's pipeline API as *Start sender* does; the clock starts just before that request.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildRoot, sourceRoot, startServer, stopServer } from './lib.mjs';
import { browserMissing, launchBrowser } from './browsers.mjs';
import { findBallInFrame, litScatterInPage, patchColours } from './pagechecks.mjs';

export const BROWSER_NAMES = ['chromium', 'firefox'];
export const ROLES = ['auto', 'answer', 'offer'];
export const ORDERS = ['page-first', 'sender-first'];
export const SENDERS = {
  testsrc: { pipeline: 'testsrc-sender', mode: 'auto' },
  ball: { pipeline: 'ball-viewer', mode: 'overlay' },
  points: { pipeline: 'points-sender', mode: 'scatter' },
  // testsrc-sender with rtcpeer's video-codec=h264 (x264, constrained baseline): written into the
  // harness's pipelines folder, not a file of pipelines/.
  h264: { pipeline: 'testsrc-h264-sender', from: 'testsrc-sender', props: 'video-codec=h264', mode: 'auto' },
  // testsrc-sender sending an ULPFEC packet with every media packet (RED-wrapped), whatever the
  // loss: the browser must still decode the bars, and (Chromium) count the FEC packets.
  fec: { pipeline: 'testsrc-fec-sender', from: 'testsrc-sender', props: 'fec-percentage=100', mode: 'auto' },
};

export const allCells = () => BROWSER_NAMES.flatMap((b) => ROLES.flatMap((r) => ORDERS.flatMap((o) =>
  Object.keys(SENDERS).map((s) => `${b}/${r}/${o}/${s}`))));

/**
 * The cells a spec selects: "all", or comma/newline separated patterns where `*` matches any
 * part ("firefox/*", "*\/offer/*\/testsrc"); lines from `#` on are comments. Unknown cells throw.
 */
export function selectCells(spec) {
  const all = allCells();
  const pats = String(spec).split('\n').flatMap((l) => l.replace(/#.*/, '').split(',')).map((p) => p.trim()).filter(Boolean);
  if (pats.includes('all')) return all;
  const out = [];
  for (const p of pats) {
    const re = new RegExp(`^${p.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('[^]*')}$`);
    const hit = all.filter((c) => re.test(c));
    if (!hit.length) throw new Error(`no matrix cell matches "${p}" (cells look like ${all[0]})`);
    for (const c of hit) if (!out.includes(c)) out.push(c);
  }
  return out;
}

export const parseCell = (cell) => {
  const [browser, role, order, sender] = cell.split('/');
  return { browser, role, order, sender };
};

const repoPipelines = path.join(sourceRoot, 'pipelines');
const daemonBin = path.join(buildRoot, 'signaling/pointcast-signaling');

/** Why the matrix cannot run here at all, or false. */
export function matrixMissing() {
  if (!existsSync(daemonBin)) return 'the signaling daemon is not built';
  try {
    execFileSync('gst-inspect-1.0', ['rtcpeer'], { stdio: 'ignore', env: process.env, timeout: 30000 });
  } catch {
    return 'rtcpeer is not in the plugin';
  }
  for (const s of Object.values(SENDERS)) {
    if (!existsSync(path.join(repoPipelines, `${s.from || s.pipeline}.pipeline`))) return `pipelines/${s.from || s.pipeline}.pipeline is missing`;
  }
  return false;
}
export { browserMissing };

/**
 * A daemon serving the page and starting senders from a copy of pipelines/, plus one browser
 * instance per browser name (launched when first needed, reused by every cell).
 */
export async function startHarness() {
  const work = mkdtempSync(path.join(tmpdir(), 'pointcast-interop-'));
  const pipelinesDir = path.join(work, 'pipelines');
  mkdirSync(pipelinesDir);
  for (const f of readdirSync(repoPipelines)) if (f.endsWith('.pipeline')) copyFileSync(path.join(repoPipelines, f), path.join(pipelinesDir, f));
  for (const s of Object.values(SENDERS)) {
    if (!s.from) continue;
    const text = readFileSync(path.join(repoPipelines, `${s.from}.pipeline`), 'utf8');
    if (!/^rtcpeer name=rtc\b/m.test(text)) throw new Error(`pipelines/${s.from}.pipeline has no "rtcpeer name=rtc" line`);
    writeFileSync(path.join(pipelinesDir, `${s.pipeline}.pipeline`), text.replace(/^rtcpeer name=rtc\b/m, `rtcpeer name=rtc ${s.props}`));
  }
  execFileSync('ln', ['-s', path.join(sourceRoot, 'data'), path.join(work, 'data')]);
  const server = await startServer(daemonBin, ['--host', '127.0.0.1', '--port', '0',
    '--web-root', path.join(sourceRoot, 'signaling/web'), '--pipelines-dir', pipelinesDir,
    '--max-pipelines', '4', '--log-level', 'INFO'], { ready: /listening on \S+?:(\d+)/i });
  const base = `http://127.0.0.1:${server.port}`;
  const browsers = new Map();
  let seq = 0;
  return {
    base, server, work,
    async browser(name) {
      if (!browsers.has(name)) browsers.set(name, launchBrowser(name, work));
      return browsers.get(name);
    },
    nextId: () => ++seq,
    daemonLog: () => server.log.join(''),
    async close() {
      for (const b of browsers.values()) await (await b).close().catch(() => {});
      await stopServer(server);
      rmSync(work, { recursive: true, force: true });
    },
  };
}

async function api(base, method, p, body) {
  const res = await fetch(new URL(p, base), {
    method, headers: body ? { 'Content-Type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined,
  });
  const j = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${j && j.message}`);
  return j;
}

const stats = (page) => page.evaluate(() => window.pointcast.stats());
const pageLog = (page) => page.evaluate(() => document.getElementById('log').innerText);

async function waitStats(page, pred, timeoutMs, what) {
  const t0 = Date.now();
  for (;;) {
    const s = await stats(page);
    if (pred(s)) return s;
    if (Date.now() - t0 > timeoutMs) {
      const err = new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; page stats ${JSON.stringify(s)}`);
      err.stats = s;
      throw err;
    }
    await sleep(50);
  }
}

// videotestsrc pattern=smpte at full intensity, seven equal columns: the top two thirds and the
// narrow strip under them (as tests/media/test_senders.py checks them in GStreamer).
const BARS_TOP = [[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0], [255, 0, 255], [255, 0, 0], [0, 0, 255]];
const BARS_STRIP = [[0, 0, 255], [0, 0, 0], [255, 0, 255], [0, 0, 0], [0, 255, 255], [0, 0, 0], [255, 255, 255]];

// What the user must see for each sender; throws with the evidence when they would not.
const CHECKS = {
  // The colour bars through RED/ULPFEC: RED negotiated both ways, FEC packets arriving.
  async fec(page) {
    await CHECKS.testsrc(page);
    const seen = await page.evaluate(async () => {
      const out = { codecs: [], fec: [] };
      for (const s of window.pointcast.state.sessions.values()) {
        const sdp = s.pc.currentRemoteDescription?.sdp || '';
        out.codecs.push(...(sdp.match(/a=rtpmap:\d+ (red|ulpfec)\/90000/gi) || []));
        const report = await s.pc.getStats();
        for (const r of report.values())
          if (r.type === 'inbound-rtp' && r.kind === 'video' && 'fecPacketsReceived' in r) out.fec.push(r.fecPacketsReceived);
      }
      return out;
    });
    const names = seen.codecs.map((c) => c.split(' ')[1].split('/')[0].toLowerCase());
    if (!names.includes('red') || !names.includes('ulpfec')) throw new Error(`rtcpeer's description has ${JSON.stringify(seen.codecs)}, want red and ulpfec`);
    // Firefox ESR has no fecPacketsReceived; Chromium must have counted some.
    if (seen.fec.length && !seen.fec.some((n) => n > 0)) throw new Error(`fecPacketsReceived ${JSON.stringify(seen.fec)}`);
  },
  // The colour bars, decoded from H.264 (the codec of the page's inbound video, from getStats).
  async h264(page) {
    await CHECKS.testsrc(page);
    const mimes = await page.evaluate(async () => {
      const out = [];
      for (const s of window.pointcast.state.sessions.values()) {
        const report = await s.pc.getStats();
        for (const r of report.values())
          if (r.type === 'inbound-rtp' && r.kind === 'video' && r.codecId) out.push(report.get(r.codecId)?.mimeType);
      }
      return out;
    });
    if (!mimes.length || mimes.some((m) => String(m).toLowerCase() !== 'video/h264')) throw new Error(`inbound video codecs: ${JSON.stringify(mimes)}, want video/H264`);
  },
  async testsrc(page) {
    const s = await waitStats(page, (x) => x.framesDecoded > 10 && x.videoWidth > 0, 20000, 'decoded video');
    if (s.videoWidth !== 640 || s.videoHeight !== 480) throw new Error(`video is ${s.videoWidth}x${s.videoHeight}, want 640x480`);
    const points = [];
    const want = [];
    for (const [y, row] of [[160, BARS_TOP], [Math.round(480 * 0.71), BARS_STRIP]]) {
      row.forEach((rgb, i) => {
        points.push([Math.round(((i + 0.5) * 640) / 7), y]);
        want.push(rgb);
      });
    }
    const got = await page.evaluate(patchColours, points);
    const bad = got.map((c, i) => [c, want[i], points[i]]).filter(([c, w]) => c.some((v, k) => Math.abs(v - w[k]) > 45));
    if (bad.length) throw new Error(`colour bars wrong: ${bad.map(([c, w, p]) => `at ${p} got ${c} want ${w}`).join('; ')}`);
    await waitStats(page, (x) => x.framesDecoded >= s.framesDecoded + 10, 10000, 'frames advancing');
  },
  async ball(page) {
    const s = await waitStats(page, (x) => x.videoFrames > 10 && x.markMatches > 10, 20000, 'video frames and overlays matched by frame mark');
    if (s.videoWidth !== 640 || s.videoHeight !== 480) throw new Error(`video is ${s.videoWidth}x${s.videoHeight}, want 640x480`);
    if (s.lastLabel !== 'points' || JSON.stringify(s.lastShape) !== '[1,3]') throw new Error(`data ${s.lastLabel} ${s.lastShape}, want points [1,3]`);
    const errors = [];
    for (let k = 0; k < 8 && errors.length < 5; k++) {
      const r = await page.evaluate(findBallInFrame);
      if (r.n > 10 && r.overlay && r.overlay.matchedBy === 'mark' && r.frame === r.overlay.frame) errors.push(Math.hypot(r.x - r.overlay.x, r.y - r.overlay.y));
      await sleep(100);
    }
    errors.sort((a, b) => a - b);
    if (errors.length < 3) throw new Error(`ball and its frame's overlay found together in only ${errors.length} of 8 frames`);
    const median = errors[Math.floor(errors.length / 2)];
    // A 640x480 VP8 picture: 3 px is far below one frame of motion.
    if (!(median < 3)) throw new Error(`overlay off the ball: median ${median.toFixed(2)} px (${errors.map((e) => e.toFixed(1))})`);
  },
  async points(page) {
    const s = await waitStats(page, (x) => x.dataMessages >= 2 && x.pointsDrawn > 0 && x.lastShape, 20000, 'points messages');
    if (JSON.stringify(s.lastShape) !== '[100,3]') throw new Error(`shape ${s.lastShape}, want [100,3]`);
    const lit = await page.evaluate(litScatterInPage);
    if (lit < 100) throw new Error(`scatter has only ${lit} lit pixels`);
    await waitStats(page, (x) => x.dataMessages > s.dataMessages, 5000, 'more points messages');
  },
};

/**
 * Runs one cell; resolves to { cell, ttffMs (first presented video frame, or first data
 * message for points, after the sender start request), afterRegisteredMs (the same after the
 * daemon logged the sender's registration), browserVersion, peer } or throws with
 * the symptom (page stats, page log tail, the daemon's lines about the sender in err.details).
 * check=false: stop at the first frame (the benchmark).
 */
export async function runCell(h, cell, { artifacts = null, check = true, firstTimeoutMs = 20000 } = {}) {
  const { browser: bname, role, order, sender } = parseCell(cell);
  const spec = SENDERS[sender];
  const n = h.nextId();
  const room = `m${n}-${bname}-${role}-${order}-${sender}`;
  const peerId = `${spec.pipeline}-m${n}`;
  const b = await h.browser(bname);
  const page = await b.newPage(`${h.base}/?room=${room}&role=${role}&mode=${spec.mode}`);
  let started = null;
  try {
    await page.waitFor(() => window.pointcast && document.querySelectorAll('#source option').length > 0, null, 15000, 'the page');
    const connectPage = async () => {
      await page.evaluate(() => document.getElementById('connect').click());
      await page.waitFor((r) => window.pointcast.state.signaling === `in room ${r}`, room, 15000, 'the page in its room');
    };
    const startSender = async () => {
      const t0 = Date.now();
      started = await api(h.base, 'POST', `/api/pipelines/${spec.pipeline}/start`, { room, peer_id: peerId });
      return t0;
    };
    // When the sender's registration shows up in the daemon's log (polled every 10 ms): what
    // follows is negotiation, ICE, DTLS and the first frame, without the sender's start-up.
    const registered = new RegExp(`${peerId} \\(\\S+\\) registered in room ${room}\\b`);
    const waitRegistered = async () => {
      const tw = Date.now();
      while (!registered.test(h.daemonLog())) {
        if (Date.now() - tw > 20000) throw new Error(`${peerId} did not register within 20 s`);
        await sleep(10);
      }
      return Date.now();
    };
    let t0;
    let reg;
    if (order === 'page-first') {
      await connectPage();
      t0 = await startSender();
      reg = waitRegistered();
      reg.catch(() => {});
    } else {
      t0 = await startSender();
      reg = waitRegistered();
      await reg;
      await connectPage();
    }
    let first;
    if (sender === 'points') {
      first = (await waitStats(page, (x) => x.firstDataAt, firstTimeoutMs, 'the first points message')).firstDataAt;
    } else {
      first = (await waitStats(page, (x) => x.firstFrameAt, firstTimeoutMs, 'the first video frame')).firstFrameAt;
    }
    if (check) await CHECKS[sender](page);
    const s = await stats(page);
    if (page.errors.length) throw new Error(`script errors in the page: ${page.errors.join('; ')}`);
    const tReg = await reg;
    return { cell, ttffMs: first - t0, afterRegisteredMs: first - tReg, browserVersion: b.version, peer: s.peers.find((p) => p.id === peerId) };
  } catch (e) {
    const s = await stats(page).catch(() => null);
    const log = await pageLog(page).catch(() => '');
    const senderLog = h.daemonLog().split('\n').filter((l) => l.includes(peerId)).slice(-15).join('\n');
    e.details = `page stats: ${JSON.stringify(s)}\npage log (tail):\n${log.slice(-2500)}\ndaemon lines about ${peerId}:\n${senderLog}`;
    if (artifacts) await page.screenshot(path.join(artifacts, `matrix-${cell.replaceAll('/', '-')}.png`)).catch(() => {});
    throw e;
  } finally {
    if (started) await stopSender(h, started.id);
    await page.close().catch(() => {});
  }
}

// Stops the sender and waits until it has exited, so cells do not overlap on the 2 cores.
async function stopSender(h, id) {
  await api(h.base, 'DELETE', `/api/pipelines/${encodeURIComponent(id)}`).catch(() => {});
  const t0 = Date.now();
  while (Date.now() - t0 < 10000) {
    const j = await api(h.base, 'GET', '/api/pipelines').catch(() => null);
    if (!j || !j.running.some((r) => r.id === id && r.state !== 'exited')) return;
    await sleep(100);
  }
}

/** The selection in tests/web/matrix-cells.txt (what `./pointcast test` runs). */
export const defaultCells = () => readFileSync(path.join(sourceRoot, 'tests/web/matrix-cells.txt'), 'utf8');
