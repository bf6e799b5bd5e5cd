// SPDX-License-Identifier: LGPL-2.1-or-later
// signaling/web/negotiation.js: the polite rule and SDP helpers in node, and perfect negotiation
// between two RTCPeerConnections in one page of each real browser (Chromium, Firefox ESR):
// crossing first offers, renegotiation from either side on the live connection, crossing
// re-offers. The signaling between the two is in-page with a delay, so offers really cross.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sourceRoot, startServer, stopServer, buildRoot } from './lib.mjs';
import { browserMissing, launchBrowser } from './browsers.mjs';

const { isPolite, fingerprintOf, connectionOf, mediaOf, directionOf } = await import(path.join(sourceRoot, 'signaling/web/negotiation.js'));
const { selectCells, allCells } = await import('./interop.mjs');

test('polite is the byte-wise smaller UTF-8 client_id, and exactly one of a pair is polite', () => {
  assert.equal(isPolite('browser-abc', 'testsrc-sender-1'), true);
  assert.equal(isPolite('testsrc-sender-1', 'browser-abc'), false);
  assert.equal(isPolite('ball-viewer-1', 'browser-abc'), true);
  assert.equal(isPolite('cam', 'cam1'), true, 'a prefix sorts first');
  assert.equal(isPolite('B', 'a'), true, 'bytes, not case-folded');
  // U+FF5E (EF BD 9E) against U+1F600 (F0 9F 98 80): UTF-16 code units would order them the
  // other way round (0xFF5E > 0xD83D).
  assert.equal(isPolite('\uff5e', '\u{1f600}'), true);
  assert.equal(isPolite('\u{1f600}', '\uff5e'), false);
  for (const [a, b] of [['x', 'y'], ['peer-2', 'peer-10'], ['é', 'e']]) assert.notEqual(isPolite(a, b), isPolite(b, a));
});

test('fingerprint and media kinds of an SDP', () => {
  const sdp = 'v=0\r\na=group:BUNDLE 0 1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-256 AB:CD\r\n' +
    'm=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n';
  assert.equal(fingerprintOf(sdp), 'sha-256 ab:cd');
  assert.equal(fingerprintOf('v=0\r\n'), '');
  // rtcpeer rebuilding a dead path: the same certificate (per process), new ICE credentials.
  const rebuilt = sdp.replace('a=fingerprint', 'a=ice-ufrag:new1\r\na=fingerprint');
  const live = sdp.replace('a=fingerprint', 'a=ice-ufrag:old1\r\na=fingerprint');
  assert.notEqual(connectionOf(rebuilt), connectionOf(live), 'a new ufrag is a new connection');
  assert.equal(connectionOf(live), connectionOf(live.replace('m=audio 9', 'm=audio 0')), 'a renegotiation is not');
  assert.notEqual(connectionOf(live), connectionOf(live.replace('AB:CD', 'AB:CE')));
  assert.deepEqual(mediaOf(sdp), ['video', 'audio'], 'a rejected (port 0) section is not media');
  assert.equal(directionOf(sdp, 'video'), 'sendrecv', 'no attribute: sendrecv');
  assert.equal(directionOf('v=0\r\na=sendrecv\r\nm=video 9 X 120\r\na=inactive\r\nm=audio 9 X 111\r\na=sendonly\r\n', 'video'), 'inactive');
  assert.equal(directionOf(sdp, 'text'), '');
});

test('matrix cell selection', () => {
  assert.equal(allCells().length, 60);
  assert.deepEqual(selectCells('firefox/offer/*/testsrc'), ['firefox/offer/page-first/testsrc', 'firefox/offer/sender-first/testsrc']);
  assert.equal(selectCells('all').length, 60);
  assert.deepEqual(selectCells('# comment\nchromium/auto/page-first/ball # why\n'), ['chromium/auto/page-first/ball']);
  assert.deepEqual(selectCells('# a, b\nfirefox/answer/page-first/ball,chromium/auto/page-first/ball # c, d'),
    ['firefox/answer/page-first/ball', 'chromium/auto/page-first/ball']);
  assert.equal(selectCells(readFileSync(path.join(sourceRoot, 'tests/web/matrix-cells.txt'), 'utf8')).length, 41, 'the default cells: every testsrc/ball/points cell, one H.264 cell and four RED/ULPFEC cells');
  assert.throws(() => selectCells('safari/*'), /no matrix cell matches/);
});

// Runs in the page: two peer connections, each with a Negotiator, signaling through a delayed
// in-page channel. Returns what each side saw.
const twoPeers = async () => {
  const { Negotiator } = await import('/negotiation.js');
  const wait = (pred, what, ms = 15000) => new Promise((resolve, reject) => {
    const t0 = performance.now();
    const tick = () => {
      if (pred()) return resolve();
      if (performance.now() - t0 > ms) return reject(new Error(`timed out: ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
  const canvasTrack = (colour) => {
    const c = document.createElement('canvas');
    c.width = 160;
    c.height = 120;
    const ctx = c.getContext('2d');
    const stream = c.captureStream(15);
    setInterval(() => {
      ctx.fillStyle = colour;
      ctx.fillRect(0, 0, 160, 120);
      ctx.fillStyle = `rgb(${(performance.now() / 4) % 255}, 0, 0)`;
      ctx.fillRect(0, 0, 20, 20);
    }, 60);
    return [stream.getVideoTracks()[0], stream];
  };
  const peers = {};
  const log = [];
  const make = (name, polite, other) => {
    const pc = new RTCPeerConnection();
    const p = { name, pc, tracks: [], channels: [], pcs: new Set([pc]) };
    p.neg = new Negotiator(pc, {
      polite,
      // 40 ms on the wire: long enough for offers made in one task to cross.
      signal: (d) => setTimeout(() => peers[other].neg.description(d).catch((e) => log.push(`${other}: ${e.message}`)), 40),
      log: (t) => log.push(`${name}: ${t}`),
    });
    pc.onicecandidate = (e) => setTimeout(() => peers[other].neg.candidate(e.candidate && e.candidate.toJSON()), 40);
    pc.ontrack = (e) => p.tracks.push(e.track);
    pc.ondatachannel = (e) => p.channels.push(e.channel);
    peers[name] = p;
    return p;
  };
  const polite = make('polite', true, 'impolite');
  const impolite = make('impolite', false, 'polite');
  const connected = () => polite.pc.connectionState === 'connected' && impolite.pc.connectionState === 'connected';
  const stable = () => polite.pc.signalingState === 'stable' && impolite.pc.signalingState === 'stable' &&
    !polite.neg.makingOffer && !impolite.neg.makingOffer;
  const out = {};

  // 1. Both offer at once: the polite side sends video, the impolite side wants to receive one
  // and opens a channel. Offers cross; the polite one rolls back and answers.
  const [t1, s1] = canvasTrack('#0a0');
  polite.pc.addTrack(t1, s1);
  impolite.pc.addTransceiver('video', { direction: 'recvonly' });
  const ch = impolite.pc.createDataChannel('points');
  await wait(() => connected() && stable() && impolite.tracks.length >= 1 && ch.readyState === 'open', 'first connection');
  out.glare = {
    rollbacks: [polite.neg.rollbacks, impolite.neg.rollbacks],
    offers: [polite.neg.offers, impolite.neg.offers],
    answers: [polite.neg.answers, impolite.neg.answers],
    channelAtPolite: polite.channels.map((c) => c.label),
  };

  // 2. Renegotiation from each side, on the same connections: one more track each way.
  const [t2, s2] = canvasTrack('#00a');
  impolite.pc.addTrack(t2, s2);
  await wait(() => stable() && polite.tracks.length >= 1, 'impolite re-offer');
  const [t3, s3] = canvasTrack('#a00');
  polite.pc.addTrack(t3, s3);
  await wait(() => stable() && impolite.tracks.length >= 2, 'polite re-offer');
  out.reneg = { connected: connected(), tracks: [polite.tracks.length, impolite.tracks.length] };

  // 3. Re-offers that cross: both add a track in the same task.
  const [t4, s4] = canvasTrack('#aa0');
  const [t5, s5] = canvasTrack('#0aa');
  polite.pc.addTrack(t4, s4);
  impolite.pc.addTrack(t5, s5);
  await wait(() => stable() && polite.tracks.length >= 2 && impolite.tracks.length >= 3, 'crossing re-offers');
  out.crossing = {
    connected: connected(),
    tracks: [polite.tracks.length, impolite.tracks.length],
    rollbacks: [polite.neg.rollbacks, impolite.neg.rollbacks],
    // The received tracks are live: frames arrive (inbound-rtp stats).
    framesIn: await Promise.all([polite, impolite].map(async (p) => {
      let n = 0;
      (await p.pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') n += r.framesDecoded || 0;
      });
      return n;
    })),
  };
  out.log = log;
  return out;
};

const work = mkdtempSync(path.join(tmpdir(), 'pointcast-neg-'));
let server;
before(async () => {
  server = await startServer(path.join(buildRoot, 'signaling/pointcast-signaling'), ['--host', '127.0.0.1', '--port', '0',
    '--web-root', path.join(sourceRoot, 'signaling/web'), '--log-level', 'INFO'], { ready: /listening on \S+?:(\d+)/i });
});
after(async () => {
  await stopServer(server);
  rmSync(work, { recursive: true, force: true });
});

for (const name of ['chromium', 'firefox']) {
  test(`${name}: crossing offers, renegotiation from both sides and crossing re-offers on live connections`, { skip: browserMissing(name), timeout: 120000 }, async (t) => {
    const b = await launchBrowser(name, work);
    try {
      const page = await b.newPage(`http://127.0.0.1:${server.port}/`);
      const r = await page.evaluate(twoPeers);
      t.diagnostic(`${b.version}: ${JSON.stringify({ ...r, log: undefined })}`);
      assert.deepEqual(r.glare.rollbacks, [1, 0], `the polite side rolled back once (log: ${r.log.join(' | ')})`);
      assert.deepEqual(r.glare.answers, [1, 0], 'the polite side answered the impolite offer');
      assert.deepEqual(r.glare.channelAtPolite, ['points']);
      assert.deepEqual(r.reneg, { connected: true, tracks: [1, 2] });
      assert.equal(r.crossing.connected, true);
      assert.deepEqual(r.crossing.tracks, [2, 3]);
      assert.equal(r.crossing.rollbacks[1], 0, 'the impolite side never rolls back');
      assert.ok(r.crossing.framesIn.every((n) => n > 0), `frames decoded on both sides: ${r.crossing.framesIn}`);
      assert.deepEqual(page.errors, []);
      await page.close();
    } finally {
      await b.close();
    }
  });
}
