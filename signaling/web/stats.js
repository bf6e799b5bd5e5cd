// SPDX-License-Identifier: LGPL-2.1-or-later
// Live connection statistics of every peer connection of the page, from getStats() once a
// second: bitrate (in and out), frames per second, round-trip time, packet loss and the video
// jitter buffer's delay, each as a small chart (chart.js, served by the daemon from
// web/node_modules; without it the latest figures are still shown as text).
//
// app.js calls watchStats(peerId, pc) for each RTCPeerConnection it creates. The figures are
// also readable as window.pointcastStats.get(peerId) -> { latest, history } (tests, console).

const WINDOW = 60; // seconds kept per chart
const METRICS = [
  { key: 'kbpsIn', label: 'bitrate in', unit: 'kbit/s', color: '#4fc3f7', pair: 'kbpsOut' },
  { key: 'fps', label: 'frames/s', unit: 'fps', color: '#81c784' },
  { key: 'rttMs', label: 'round trip', unit: 'ms', color: '#ffb74d' },
  { key: 'lossPct', label: 'packet loss', unit: '%', color: '#e57373' },
  { key: 'jitterMs', label: 'jitter buffer', unit: 'ms', color: '#ba68c8' },
];

const peers = new Map(); // peer id -> { pc, panel, charts, history, latest, prev, timer }
window.pointcastStats = peers;

function container() {
  let box = document.getElementById('stats');
  if (!box) {
    box = document.createElement('section');
    box.id = 'stats';
    document.body.append(box);
  }
  return box;
}

function makePanel(peer) {
  const panel = document.createElement('div');
  panel.className = 'stats-peer';
  panel.dataset.peer = peer;
  const title = document.createElement('div');
  title.className = 'stats-title';
  title.textContent = peer;
  panel.append(title);
  const charts = {};
  for (const m of METRICS) {
    const cell = document.createElement('div');
    cell.className = 'stats-chart';
    const caption = document.createElement('div');
    caption.className = 'stats-caption';
    caption.dataset.metric = m.key;
    caption.textContent = `${m.label}: -`;
    const canvas = document.createElement('canvas');
    canvas.width = 220;
    canvas.height = 80;
    cell.append(caption, canvas);
    panel.append(cell);
    charts[m.key] = { caption, canvas, chart: null }; // made with the first figures (draw)
  }
  container().append(panel);
  return { panel, charts };
}

function newChart(canvas, m) {
  const datasets = [{ label: m.label, data: [], borderColor: m.color, borderWidth: 1.5, pointRadius: 0, tension: 0.2 }];
  if (m.pair) datasets.push({ label: 'out', data: [], borderColor: '#90a4ae', borderWidth: 1, pointRadius: 0, tension: 0.2 });
  return new window.Chart(canvas, {
    type: 'line',
    data: { labels: [], datasets },
    options: {
      animation: false,
      responsive: false,
      plugins: { legend: { display: false }, tooltip: { enabled: false } },
      scales: {
        x: { display: false },
        y: { beginAtZero: true, ticks: { color: '#8a96a8', font: { size: 9 }, maxTicksLimit: 4 }, grid: { color: '#2a3140' } },
      },
    },
  });
}

// One sample from two consecutive getStats() reports: rates over the time between them.
function sample(report, prev) {
  const now = { t: performance.now(), bytesIn: 0, bytesOut: 0, frames: 0, lost: 0, received: 0, jbDelay: 0, jbCount: 0, rtt: null, fps: null };
  report.forEach((r) => {
    if (r.type === 'transport') {
      now.bytesIn += r.bytesReceived || 0;
      now.bytesOut += r.bytesSent || 0;
    } else if (r.type === 'inbound-rtp') {
      now.lost += Math.max(0, r.packetsLost || 0);
      now.received += r.packetsReceived || 0;
      if (r.kind === 'video') {
        now.frames += r.framesDecoded || 0;
        if (r.framesPerSecond !== undefined) now.fps = (now.fps || 0) + r.framesPerSecond;
        now.jbDelay += r.jitterBufferDelay || 0;
        now.jbCount += r.jitterBufferEmittedCount || 0;
      }
    } else if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded' && r.currentRoundTripTime !== undefined) {
      now.rtt = r.currentRoundTripTime * 1000;
    }
  });
  if (!prev) return { now, values: null };
  const dt = (now.t - prev.t) / 1000;
  const dRecv = now.received - prev.received;
  const dLost = now.lost - prev.lost;
  const dJb = now.jbCount - prev.jbCount;
  const values = {
    kbpsIn: (8 * (now.bytesIn - prev.bytesIn)) / 1000 / dt,
    kbpsOut: (8 * (now.bytesOut - prev.bytesOut)) / 1000 / dt,
    fps: now.fps !== null ? now.fps : (now.frames - prev.frames) / dt,
    rttMs: now.rtt,
    lossPct: dRecv + dLost > 0 ? (100 * Math.max(0, dLost)) / (dRecv + dLost) : 0,
    jitterMs: dJb > 0 ? (1000 * (now.jbDelay - prev.jbDelay)) / dJb : null,
  };
  return { now, values };
}

const fmt = (v) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(1));

function draw(entry, values) {
  for (const m of METRICS) {
    const c = entry.charts[m.key];
    const v = values[m.key];
    c.caption.textContent = `${m.label}: ${fmt(v)} ${m.unit}` + (m.pair ? ` (out ${fmt(values[m.pair])})` : '');
    if (!c.chart && window.Chart) c.chart = newChart(c.canvas, m);
    const { chart } = c;
    if (!chart) continue;
    chart.data.labels.push('');
    chart.data.datasets[0].data.push(v);
    if (m.pair) chart.data.datasets[1].data.push(values[m.pair]);
    if (chart.data.labels.length > WINDOW) {
      chart.data.labels.shift();
      for (const d of chart.data.datasets) d.data.shift();
    }
    chart.update('none');
  }
}

async function poll(peer) {
  const entry = peers.get(peer);
  if (!entry) return;
  const st = entry.pc.connectionState;
  if (st === 'closed' || st === 'failed') {
    entry.panel.classList.add('stats-ended');
    return;
  }
  try {
    const { now, values } = sample(await entry.pc.getStats(), entry.prev);
    entry.prev = now;
    if (values) {
      entry.latest = values;
      entry.history.push(values);
      if (entry.history.length > WINDOW) entry.history.shift();
      draw(entry, values);
    }
  } catch {
    /* closed meanwhile */
  }
  entry.timer = setTimeout(() => poll(peer), 1000);
}

/** Starts the charts of one peer connection (replacing an earlier one of the same peer). */
export function watchStats(peer, pc) {
  const old = peers.get(peer);
  if (old) {
    clearTimeout(old.timer);
    old.panel.remove();
  }
  const entry = { pc, ...makePanel(peer), history: [], latest: null, prev: null, timer: null };
  peers.set(peer, entry);
  // Not now: the connection is being negotiated, and five chart.js charts took 75-90 ms of the
  // page's main thread, on the way to the answer and the first frame. Rates need two samples
  // a second apart anyway.
  entry.timer = setTimeout(() => poll(peer), 1000);
}
