// SPDX-License-Identifier: LGPL-2.1-or-later
// pointcast web viewer: start a sender through the daemon's pipeline API, join its room on the
// signaling WebSocket, receive its video and data channel, and draw the points live.
//
// Page URL parameters: token (the daemon's --token), room, source (pipeline to preselect, listed
// or not), signaling (ws:// or wss:// URL of the room server; default: this daemon's /ws),
// role (auto, offer, answer), mode (auto, overlay, scatter), connect=1 (connect on load).
import { parseNpy, toFloat64, NpyError } from './npy.js';
import { Reassembler } from './framing.js';
import { markLayout, readMark } from './mark.js';
import { watchStats } from './stats.js';
import { Negotiator, directionOf, isPolite, mediaOf } from './negotiation.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
// ?stun=stun:HOST:PORT (repeatable): STUN servers, for a page behind a NAT. ?turn=turn:HOST:PORT
// or turns:... (repeatable, browser form, e.g. ?transport=tcp percent-encoded) with turn-username
// and turn-credential: TURN servers, for a page behind a NAT that only a relay gets through.
const iceServers = [
  ...params.getAll('stun').map((urls) => ({ urls })),
  ...params.getAll('turn').map((urls) => ({
    urls, username: params.get('turn-username') || '', credential: params.get('turn-credential') || '',
  })),
];

// Names shown for the pipelines every pointcast install has; others are listed by file name.
// The first file of each entry that exists is used (ball-viewer sends the ball's position with
// the video; ball-sender is the tracking loop's sender, which waits for detections instead).
const KNOWN_SOURCES = [
  [['testsrc-sender'], 'test pattern'],
  [['ball-viewer', 'ball-sender'], 'ball'],
  [['camera-sender'], 'camera'],
  [['file-sender'], 'file'],
];

/* ------------------------------------------------------------------------------------------- */
/* State exposed for tests and for the curious (window.pointcast). */

const state = {
  clientId: `browser-${Math.random().toString(36).slice(2, 10)}`,
  signaling: 'idle',
  sessions: new Map(), // remote peer id -> Session
  activeVideoPeer: null,
  sender: null, // { id, name, room, state }
  videoFrames: 0, // frames presented (requestVideoFrameCallback)
  firstFrameAt: null, // Date.now() when the first frame was presented (time-to-first-frame)
  framesDecoded: 0, // frames the decoder produced (inbound-rtp stats of the shown peer)
  dataMessages: 0,
  firstDataAt: null, // Date.now() when the first data message arrived
  dataErrors: 0,
  lastShape: null,
  lastLabel: null,
  pointsDrawn: 0,
  overlayDraws: 0,
  lastOverlay: null, // { frame, x, y, canvasX, canvasY, at, matchedBy: 'mark' | 'arrival' }
  markMatches: 0, // overlay drawings matched to the frame's own mark
  lastMark: null,
  errors: [],
};
window.pointcast = {
  state,
  stats() {
    const v = $('video');
    return {
      signaling: state.signaling,
      peers: [...state.sessions.entries()].map(([id, s]) => ({
        id, state: s.pc.connectionState, media: s.remoteMedia, polite: s.neg.polite,
        offers: s.neg.offers, answers: s.neg.answers, rollbacks: s.neg.rollbacks,
        remoteVideo: s.pc.remoteDescription ? directionOf(s.pc.remoteDescription.sdp, 'video') : '',
      })),
      videoWidth: v.videoWidth,
      videoHeight: v.videoHeight,
      videoFrames: state.videoFrames,
      firstFrameAt: state.firstFrameAt,
      framesDecoded: state.framesDecoded,
      currentTime: v.currentTime,
      dataMessages: state.dataMessages,
      firstDataAt: state.firstDataAt,
      dataErrors: state.dataErrors,
      lastShape: state.lastShape,
      lastLabel: state.lastLabel,
      pointsDrawn: state.pointsDrawn,
      overlayDraws: state.overlayDraws,
      lastOverlay: state.lastOverlay,
      markMatches: state.markMatches,
      lastMark: state.lastMark,
      sender: state.sender,
      clientId: state.clientId,
    };
  },
};

/* ------------------------------------------------------------------------------------------- */
/* Log */

const MAX_LOG_LINES = 600;
function log(text, cls = '') {
  const box = $('log');
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  const line = document.createElement('div');
  if (cls) line.className = cls;
  const t = document.createElement('span');
  t.className = 'time';
  t.textContent = `${new Date().toLocaleTimeString()} `;
  line.append(t, document.createTextNode(text));
  box.append(line);
  while (box.childElementCount > MAX_LOG_LINES) box.firstElementChild.remove();
  if (atBottom) box.scrollTop = box.scrollHeight;
}
const warn = (t) => log(t, 'warn');
function showError(text) {
  state.errors.push(text);
  log(text, 'error');
  const e = $('error');
  e.textContent = text;
  e.hidden = false;
}
function clearError() {
  $('error').hidden = true;
}

function setPill(id, label, text, kind) {
  const el = $(id);
  el.textContent = `${label}: ${text}`;
  el.dataset.state = kind;
}

/* ------------------------------------------------------------------------------------------- */
/* Pipeline API (HTTP on the page's origin) */

function apiUrl(path, extra = {}) {
  const u = new URL(path, location.href);
  if (token) u.searchParams.set('token', token);
  for (const [k, v] of Object.entries(extra)) u.searchParams.set(k, v);
  return u;
}

async function api(method, path, body) {
  const res = await fetch(apiUrl(path), {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  let json = null;
  try {
    json = await res.json();
  } catch {
    /* a non-JSON reply: reported below by status */
  }
  if (!res.ok) {
    const why = json && json.message ? json.message : res.statusText || 'request failed';
    const err = new Error(`${method} ${path}: ${res.status} ${why}`);
    err.status = res.status;
    throw err;
  }
  return json;
}

const room = () => $('room').value.trim() || 'default';

async function loadPipelines() {
  const select = $('source');
  const keep = select.value || params.get('source') || '';
  let listed = [];
  let running = [];
  try {
    const j = await api('GET', '/api/pipelines');
    listed = j.pipelines;
    running = j.running || [];
  } catch (e) {
    if (e.status === 401) {
      showError(token ? 'the daemon refused the token in the page address' : 'the daemon requires a token: open this page as …/?token=YOUR_TOKEN');
    } else {
      warn(`cannot list pipelines: ${e.message}`);
    }
  }
  const names = new Map(listed.map((p) => [p.name, p.description]));
  select.replaceChildren();
  const add = (value, text, available, title) => {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = available ? text : `${text} (not installed)`;
    o.disabled = !available;
    if (title) o.title = title;
    select.append(o);
  };
  const shown = new Set();
  for (const [files, label] of KNOWN_SOURCES) {
    const name = files.find((f) => names.has(f)) || files[0];
    shown.add(name);
    add(name, label, names.has(name), names.get(name));
  }
  for (const p of listed) if (!shown.has(p.name)) add(p.name, p.name, true, p.description);
  if (keep && ![...select.options].some((o) => o.value === keep)) add(keep, `${keep} (not listed)`, true);
  const wanted = [...select.options].find((o) => o.value === keep && !o.disabled) ||
    [...select.options].find((o) => !o.disabled);
  if (wanted) select.value = wanted.value;
  // A sender already running in this room (page reloaded): offer to stop it.
  const mine = running.find((r) => r.room === room() && r.state !== 'exited');
  if (mine && !state.sender) setSender({ id: mine.id, name: mine.name, room: mine.room, state: 'running' });
}

function setSender(s) {
  state.sender = s;
  const kind = !s ? 'idle' : s.state === 'running' ? 'ok' : s.state === 'ended' ? 'bad' : 'busy';
  setPill('sender-status', 'sender', s ? `${s.name} ${s.state}` : 'none', kind);
  $('stop').disabled = !s || s.state === 'ended';
  updateMode();
}

async function startSender() {
  clearError();
  const name = $('source').value;
  if (!name) return showError('no source selected');
  $('start').disabled = true;
  try {
    const r = await api('POST', `/api/pipelines/${encodeURIComponent(name)}/start`, { room: room() });
    log(`started sender ${r.name} as ${r.id} (pid ${r.pid}) in room ${r.room}`);
    setSender({ id: r.id, name: r.name, room: r.room, state: 'running' });
    if (state.signaling === 'idle' || state.signaling === 'closed') connect();
  } catch (e) {
    showError(`could not start ${name}: ${e.message}`);
  } finally {
    $('start').disabled = false;
  }
}

async function stopSender() {
  const s = state.sender;
  if (!s) return;
  $('stop').disabled = true;
  try {
    await api('DELETE', `/api/pipelines/${encodeURIComponent(s.id)}`);
    log(`stopping sender ${s.id}`);
    // Its exit event may already have arrived while the DELETE was answered.
    if (state.sender && state.sender.id === s.id && state.sender.state === 'running') setSender({ ...s, state: 'stopping' });
  } catch (e) {
    showError(`could not stop ${s.id}: ${e.message}`);
    if (e.status === 404) setSender({ ...s, state: 'ended' });
  }
}

// Child-process events (pipeline_started / pipeline_log / pipeline_exited) of this room.
let events = null;
function openEvents() {
  if (events) events.close();
  events = new EventSource(apiUrl('/api/events', { room: room() }));
  events.onmessage = (m) => {
    let e;
    try {
      e = JSON.parse(m.data);
    } catch {
      return;
    }
    if (e.type === 'pipeline_log') {
      log(`[${e.id}] ${e.line}`, e.stream === 'stderr' ? 'child warn' : 'child');
    } else if (e.type === 'pipeline_started') {
      const p = e.pipeline;
      if (!state.sender || state.sender.id !== p.id) log(`sender ${p.id} is running in room ${p.room}`);
      if (!state.sender || state.sender.state === 'ended') setSender({ id: p.id, name: p.name, room: p.room, state: 'running' });
    } else if (e.type === 'pipeline_exited') {
      const how = e.requested ? 'stopped' : 'ended by itself';
      (e.requested ? log : warn)(`sender ${e.id} ended (${how}): ${e.exit}`);
      if (state.sender && state.sender.id === e.id) setSender({ ...state.sender, state: 'ended', exit: e.exit });
    }
  };
  events.onerror = () => {
    /* EventSource reconnects by itself (retry: 2 s); the WebSocket status tells the story. */
  };
}

/* ------------------------------------------------------------------------------------------- */
/* Signaling (room protocol on /ws) */

let ws = null;
let wantConnected = false;
let reconnectDelay = 500;
let reconnectTimer = null;

function signalingUrl() {
  const given = params.get('signaling');
  const u = new URL(given || '/ws', location.href);
  if (!given) u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString(); // the token goes in the register message, never in a URL
}

function setSignaling(s, kind) {
  state.signaling = s;
  setPill('signaling-status', 'signaling', s, kind);
}

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  else warn(`not connected; dropped ${msg.type}`);
}

function connect() {
  wantConnected = true;
  clearTimeout(reconnectTimer);
  $('connect').disabled = true;
  $('disconnect').disabled = false;
  if (ws && ws.readyState <= WebSocket.OPEN) return;
  const url = signalingUrl();
  setSignaling('connecting', 'busy');
  const sock = new WebSocket(url);
  ws = sock;
  sock.onopen = () => {
    if (ws !== sock) return;
    reconnectDelay = 500;
    setSignaling('registering', 'busy');
    const reg = { type: 'register', client_id: state.clientId, room_id: room(), client_type: 'browser' };
    if (token) reg.token = token;
    sock.send(JSON.stringify(reg));
  };
  sock.onmessage = (m) => {
    if (ws !== sock) return;
    let msg;
    try {
      msg = JSON.parse(m.data);
    } catch {
      return warn('signaling sent something that is not JSON');
    }
    onSignal(msg).catch((e) => showError(`signaling: ${e.message}`));
  };
  sock.onclose = (ev) => {
    if (ws !== sock) return;
    ws = null;
    // Established peer connections keep flowing; only signaling is gone.
    if (!wantConnected) {
      setSignaling('closed', 'idle');
      return;
    }
    setSignaling(`reconnecting (${ev.code || 'lost'})`, 'bad');
    reconnectTimer = setTimeout(connect, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, 4000);
  };
}

function disconnect() {
  wantConnected = false;
  clearTimeout(reconnectTimer);
  for (const id of [...state.sessions.keys()]) closeSession(id, 'disconnected');
  if (ws) ws.close(1000, 'bye');
  ws = null;
  setSignaling('closed', 'idle');
  $('connect').disabled = false;
  $('disconnect').disabled = true;
}

const isSender = (type) => type !== 'browser';

async function onSignal(msg) {
  switch (msg.type) {
    case 'registered': {
      setSignaling(`in room ${msg.room_id}`, 'ok');
      log(`registered as ${msg.client_id} in room ${msg.room_id}; peers: ${(msg.peers || []).join(', ') || 'none'}`);
      const types = msg.peer_types || {};
      for (const p of msg.peers || []) {
        const id = typeof p === 'string' ? p : p.client_id;
        if (isSender(types[id] || 'unknown') && !state.sessions.has(id)) expectPeer(id, types[id] || 'unknown', false);
      }
      break;
    }
    case 'peer_joined':
      log(`peer ${msg.client_id} (${msg.client_type}) joined`);
      if (isSender(msg.client_type)) expectPeer(msg.client_id, msg.client_type, true);
      break;
    case 'peer_left':
      log(`peer ${msg.client_id} left`);
      closeSession(msg.client_id, 'left the room');
      break;
    case 'offer':
      await onOffer(msg.from_id, normSdp(msg.sdp, 'offer'));
      break;
    case 'answer': {
      const s = state.sessions.get(msg.from_id);
      if (!s) return warn(`answer from unknown peer ${msg.from_id}`);
      const desc = normSdp(msg.sdp, 'answer');
      if ((await s.neg.description(desc)) !== 'applied') return;
      s.remoteMedia = mediaOf(desc.sdp);
      log(`answer from ${msg.from_id} applied`);
      break;
    }
    case 'ice_candidate': {
      const s = state.sessions.get(msg.from_id);
      if (s) await s.neg.candidate(msg.candidate);
      break;
    }
    case 'error':
      showError(`signaling error ${msg.code}: ${msg.message}`);
      if (msg.code === 'duplicate_client_id' && ws) {
        // Our old connection is still known to the daemon (a quick reconnect): join as someone new.
        state.clientId = `browser-${Math.random().toString(36).slice(2, 10)}`;
        ws.close(4000, 'new id');
      }
      break;
    default:
      break;
  }
}

const normSdp = (sdp, type) => (typeof sdp === 'string' ? { type, sdp } : sdp);

// A sender is in the room. The role only says who offers first (either side may offer later):
// offer: we do; answer: it does; auto: as rtcpeer's role=auto, whoever was in the room first
// offers to the newcomer, so we offer to a sender that joins after us and to one that says it
// only answers (client_type answerer or receiver), and wait for the others' offer. No timers.
const ANSWER_ONLY_TYPES = new Set(['answerer', 'receiver']);
function expectPeer(id, type, joinedAfterUs) {
  const role = $('role').value;
  const weOffer = role === 'offer' || (role === 'auto' && (joinedAfterUs || ANSWER_ONLY_TYPES.has(type)));
  if (!weOffer) return log(`waiting for ${id} to offer`);
  makeOffer(id);
}

/* ------------------------------------------------------------------------------------------- */
/* Peer connections */

class Session {
  constructor(peer) {
    this.peer = peer;
    this.pc = new RTCPeerConnection({ iceServers });
    watchStats(peer, this.pc); // live getStats() charts (stats.js)
    this.remoteMedia = [];
    this.neg = new Negotiator(this.pc, {
      polite: isPolite(state.clientId, peer),
      signal: (desc) => {
        send({ type: desc.type, target_id: peer, sdp: desc });
        if (desc.type === 'offer') log(`offer sent to ${peer}`);
      },
      log: (t) => log(`peer ${peer}: ${t}`),
      warn: (t) => warn(`peer ${peer}: ${t}`),
    });
    this.reassembler = new Reassembler();
    this.pc.onicecandidate = (e) => {
      const c = e.candidate;
      send({
        type: 'ice_candidate',
        target_id: peer,
        candidate: c ? { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } : { candidate: '', sdpMid: '0', sdpMLineIndex: 0 },
      });
    };
    this.pc.onconnectionstatechange = () => {
      const st = this.pc.connectionState;
      log(`peer ${peer}: ${st}`);
      updatePeerPill();
      if (st === 'failed') showError(`connection to ${peer} failed`);
    };
    this.pc.ontrack = (e) => {
      log(`peer ${peer}: ${e.track.kind} track`);
      if (e.track.kind !== 'video') return;
      const stream = e.streams[0] || new MediaStream([e.track]);
      state.activeVideoPeer = peer;
      const v = $('video');
      v.srcObject = stream;
      v.play().catch(() => {});
    };
    this.pc.ondatachannel = (e) => this.attachChannel(e.channel);
  }

  attachChannel(ch) {
    ch.binaryType = 'arraybuffer';
    ch.onopen = () => log(`peer ${this.peer}: data channel "${ch.label}" open`);
    ch.onclose = () => log(`peer ${this.peer}: data channel "${ch.label}" closed`);
    ch.onmessage = (e) => this.onData(ch.label, e.data);
  }

  onData(label, data) {
    let whole;
    try {
      whole = this.reassembler.push(label, data);
    } catch (e) {
      state.dataErrors++;
      return warn(`data on "${label}": ${e.message}`);
    }
    if (whole === null) return; // a fragment; the rest is on its way
    onMessage(label, whole);
  }

  close() {
    this.pc.close();
  }
}

function updatePeerPill() {
  const all = [...state.sessions.values()].map((s) => s.pc.connectionState);
  if (!all.length) return setPill('peer-status', 'peer', 'none', 'idle');
  const st = all.includes('connected') ? 'connected' : all[all.length - 1];
  setPill('peer-status', 'peer', st, st === 'connected' ? 'ok' : st === 'failed' ? 'bad' : 'busy');
}

function closeSession(id, why) {
  const s = state.sessions.get(id);
  if (!s) return;
  s.close();
  state.sessions.delete(id);
  log(`session with ${id} closed (${why})`);
  if (state.activeVideoPeer === id) {
    state.activeVideoPeer = null;
    $('video').srcObject = null;
  }
  updatePeerPill();
}

function newSession(id) {
  closeSession(id, 'replaced');
  const s = new Session(id);
  state.sessions.set(id, s);
  updatePeerPill();
  return s;
}

// An offer goes to the live connection with its sender (a renegotiation, or glare resolved by
// perfect negotiation); a new connection only for a new peer or one that restarted its own.
async function onOffer(from, desc) {
  let s = state.sessions.get(from);
  // Glare before anything was ever negotiated, and we are polite: answer on a fresh connection
  // instead of rolling back (Chromium cannot answer after rolling back an offer that carried a
  // data channel: "Failed to start SCTP transport"); the unanswered one had nothing to keep.
  const firstGlare = s && s.neg.polite && !s.neg.negotiated &&
    (s.neg.makingOffer || s.pc.signalingState === 'have-local-offer');
  if (firstGlare) log(`offers crossed before the first negotiation: answering ${from} on a new connection`);
  if (!s || firstGlare || s.neg.isRestart(desc)) s = newSession(from);
  const media = mediaOf(desc.sdp);
  log(`${s.neg.negotiated ? 're-offer' : 'offer'} from ${from} (${media.join(', ') || 'no media'})`);
  if (!media.includes('video')) warn(`the offer from ${from} has no video`);
  if ((await s.neg.description(desc)) === 'applied') s.remoteMedia = media;
}

// We offer first: receive-only video and a "points" channel; the offer itself is made by the
// negotiator when the browser asks for one (negotiationneeded).
function makeOffer(id) {
  const s = state.sessions.get(id) || newSession(id);
  if (s.pc.getTransceivers().length) return; // already negotiating with it
  s.pc.addTransceiver('video', { direction: 'recvonly' });
  s.attachChannel(s.pc.createDataChannel('points'));
}

/* ------------------------------------------------------------------------------------------- */
/* Data: .npy arrays (points) or JSON/text */

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
let lastDataLog = 0;

function onMessage(label, data) {
  if (!state.dataMessages++) state.firstDataAt = Date.now();
  state.lastLabel = label;
  if (typeof data === 'string') {
    try {
      const j = JSON.parse(data);
      const pts = jsonPoints(j);
      if (pts) return onArray(label, pts);
    } catch {
      /* plain text */
    }
    if (performance.now() - lastDataLog > 1000) {
      lastDataLog = performance.now();
      log(`"${label}": ${data.slice(0, 200)}`);
    }
    return;
  }
  const bytes = new Uint8Array(data);
  if (!NPY_MAGIC.every((b, k) => bytes[k] === b)) {
    state.dataErrors++;
    if (performance.now() - lastDataLog > 1000) {
      lastDataLog = performance.now();
      warn(`"${label}": ${bytes.length} bytes that are not an .npy array`);
    }
    return;
  }
  let arr;
  try {
    arr = parseNpy(bytes);
  } catch (e) {
    state.dataErrors++;
    return warn(`"${label}": ${e instanceof NpyError ? e.message : e}`);
  }
  onArray(label, { rows: arr.rows, cols: arr.cols, shape: arr.shape, values: toFloat64(arr), dtype: arr.descr });
}

// {"frame":..,"x":..,"y":..} or [[...], ...] as sent by some senders.
function jsonPoints(j) {
  if (Array.isArray(j) && j.every((r) => Array.isArray(r))) {
    const cols = j.length ? j[0].length : 3;
    return { rows: j.length, cols, shape: [j.length, cols], values: Float64Array.from(j.flat()), dtype: 'json' };
  }
  if (j && typeof j === 'object' && 'x' in j && 'y' in j) {
    return { rows: 1, cols: 3, shape: [1, 3], values: Float64Array.of(j.frame ?? -1, j.x, j.y), dtype: 'json' };
  }
  return null;
}

const dataLog = []; // recent arrays with their arrival time, for matching to video frames
const byFrame = new Map(); // frame number -> the [frame, x, y] array sent for it (ball senders)
let latestCloud = null;
let pointsInfoAt = 0;

function onArray(label, a) {
  state.lastShape = a.shape;
  const now = performance.now();
  dataLog.push({ at: now, a });
  while (dataLog.length > 240 || (dataLog.length && now - dataLog[0].at > 4000)) dataLog.shift();
  latestCloud = a;
  if (a.cols >= 3 && a.rows >= 1 && a.rows <= 16) {
    byFrame.set(a.values[0], a);
    if (byFrame.size > 1200) byFrame.delete(byFrame.keys().next().value);
  }
  if (now - pointsInfoAt > 250) {
    pointsInfoAt = now;
    $('points-info').textContent = `"${label}" #${state.dataMessages} shape (${a.shape.join(', ')}) ${a.dtype}`;
  }
  if (currentMode() === 'overlay' && !videoFrameCallbacks) drawOverlay(a);
}

/* ------------------------------------------------------------------------------------------- */
/* Drawing */

function currentMode() {
  const m = $('mode').value;
  if (m !== 'auto') return m;
  const name = (state.sender && state.sender.name) || $('source').value || '';
  if (/ball/.test(name)) return 'overlay';
  if (latestCloud && latestCloud.cols === 3 && latestCloud.rows <= 4 && $('video').videoWidth) {
    // [frame, x, y] rows next to a video: a detector or the ball's true position.
    const v = latestCloud.values;
    if (Number.isInteger(v[0]) && v[1] >= 0 && v[2] >= 0) return 'overlay';
  }
  return 'scatter';
}

function updateMode() {
  const overlay = currentMode() === 'overlay';
  $('overlay').hidden = !overlay;
}

// Video pixel coordinates -> overlay canvas coordinates (object-fit: contain letterboxing).
function videoToCanvas(x, y, canvas) {
  const v = $('video');
  const vw = v.videoWidth;
  const vh = v.videoHeight;
  const cw = canvas.width;
  const ch = canvas.height;
  const scale = Math.min(cw / vw, ch / vh);
  return [(cw - vw * scale) / 2 + x * scale, (ch - vh * scale) / 2 + y * scale, scale];
}

function fitCanvas(canvas) {
  const r = canvas.getBoundingClientRect();
  const w = Math.max(1, Math.round(r.width * devicePixelRatio));
  const h = Math.max(1, Math.round(r.height * devicePixelRatio));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
}

function drawOverlay(a, how = 'arrival') {
  const canvas = $('overlay');
  fitCanvas(canvas);
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const v = $('video');
  if (!a || !v.videoWidth || a.cols < 3) return;
  ctx.lineWidth = 2 * devicePixelRatio;
  ctx.strokeStyle = '#00ff88';
  ctx.fillStyle = '#00ff88';
  ctx.font = `${12 * devicePixelRatio}px ui-monospace, monospace`;
  for (let r = 0; r < a.rows; r++) {
    const frame = a.values[r * a.cols];
    // balldetect repeat=N appends the previous frames' rows after the buffer's own: draw its own.
    if (frame !== a.values[0]) break;
    const x = a.values[r * a.cols + 1];
    const y = a.values[r * a.cols + 2];
    const [cx, cy] = videoToCanvas(x, y, canvas);
    const k = 14 * devicePixelRatio;
    ctx.beginPath();
    ctx.arc(cx, cy, k * 0.6, 0, 2 * Math.PI);
    ctx.moveTo(cx - k, cy);
    ctx.lineTo(cx + k, cy);
    ctx.moveTo(cx, cy - k);
    ctx.lineTo(cx, cy + k);
    ctx.stroke();
    ctx.fillText(`#${frame} (${x.toFixed(1)}, ${y.toFixed(1)})`, cx + k, cy - k);
    state.lastOverlay = { frame, x, y, canvasX: cx, canvasY: cy, at: performance.now(), matchedBy: how };
  }
  state.overlayDraws++;
  state.pointsDrawn += a.rows;
}

// On every decoded video frame, draw the data that arrived closest to when that frame arrived:
// sender and data travel the same path, so this keeps the mark on the frame it belongs to even
// though video waits in a jitter buffer and data does not.
let videoFrameCallbacks = false;
let fpsWindow = [];
function onVideoFrame(now, meta) {
  if (!state.videoFrames++) state.firstFrameAt = Date.now();
  fpsWindow.push(now);
  while (fpsWindow.length && now - fpsWindow[0] > 1000) fpsWindow.shift();
  const v = $('video');
  $('video-info').textContent = `${v.videoWidth}x${v.videoHeight} · ${fpsWindow.length} fps · ${state.framesDecoded} decoded`;
  if (currentMode() === 'overlay') {
    // Best: the frame number ballsrc drew into the picture, matched to the data sent for it.
    const f = frameMark(v);
    const exact = f !== null ? byFrame.get(f) : undefined;
    if (exact) {
      state.markMatches++;
      drawOverlay(exact, 'mark');
    } else {
      const when = meta && meta.receiveTime ? meta.receiveTime : now;
      let best = null;
      for (const d of dataLog) if (!best || Math.abs(d.at - when) < Math.abs(best.at - when)) best = d;
      drawOverlay(best ? best.a : null, 'arrival');
    }
  }
  v.requestVideoFrameCallback(onVideoFrame);
}

// The frame number in the band at the top of the current video frame, or null.
let markCanvas = null;
let markMisses = 0;
function frameMark(v) {
  const L = markLayout(v.videoWidth);
  // Frames that never carried a mark stop being searched after a while (cheap for other videos).
  if (!L || markMisses > 300) return null;
  if (!markCanvas) markCanvas = document.createElement('canvas');
  if (markCanvas.width !== v.videoWidth || markCanvas.height !== L.height) {
    markCanvas.width = v.videoWidth;
    markCanvas.height = L.height;
  }
  const ctx = markCanvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(v, 0, 0, v.videoWidth, L.height, 0, 0, v.videoWidth, L.height);
  const f = readMark(ctx.getImageData(0, 0, v.videoWidth, L.height).data, v.videoWidth);
  if (f === null) {
    if (state.markMatches === 0) markMisses++;
  } else {
    markMisses = 0;
    state.lastMark = f;
  }
  return f;
}

// A rotating orthographic view of an (N, 3) cloud, coloured by depth, drawn pixel by pixel so
// that hundreds of thousands of points stay cheap.
let angle = 0;
let bounds = null;
function drawScatter() {
  const canvas = $('scatter');
  const ctx = canvas.getContext('2d');
  const W = canvas.width;
  const H = canvas.height;
  const a = latestCloud;
  angle += 0.01;
  const img = ctx.createImageData(W, H);
  const px = new Uint32Array(img.data.buffer);
  px.fill(0xff000000);
  if (a && a.rows > 0 && currentMode() === 'scatter') {
    const { values: v, cols } = a;
    const c3 = Math.min(cols, 3);
    // Bounds follow the data, smoothed so the view does not jump every message.
    let lo = [Infinity, Infinity, Infinity];
    let hi = [-Infinity, -Infinity, -Infinity];
    const step = Math.max(1, Math.floor(a.rows / 5000));
    for (let r = 0; r < a.rows; r += step) {
      for (let k = 0; k < c3; k++) {
        const x = v[r * cols + k];
        if (Number.isFinite(x)) {
          if (x < lo[k]) lo[k] = x;
          if (x > hi[k]) hi[k] = x;
        }
      }
    }
    for (let k = c3; k < 3; k++) lo[k] = hi[k] = 0;
    if (!bounds) bounds = { lo, hi };
    for (let k = 0; k < 3; k++) {
      if (!Number.isFinite(lo[k])) continue;
      bounds.lo[k] += (lo[k] - bounds.lo[k]) * 0.2;
      bounds.hi[k] += (hi[k] - bounds.hi[k]) * 0.2;
    }
    const mid = [0, 1, 2].map((k) => (bounds.lo[k] + bounds.hi[k]) / 2);
    const span = Math.max(1e-9, ...[0, 1, 2].map((k) => bounds.hi[k] - bounds.lo[k]));
    const s = (0.8 * Math.min(W, H)) / span;
    const ca = Math.cos(angle);
    const sa = Math.sin(angle);
    const tilt = 0.35;
    const ct = Math.cos(tilt);
    const st = Math.sin(tilt);
    let drawn = 0;
    for (let r = 0; r < a.rows; r++) {
      const x = v[r * cols] - mid[0];
      const y = c3 > 1 ? v[r * cols + 1] - mid[1] : 0;
      const z = c3 > 2 ? v[r * cols + 2] - mid[2] : 0;
      const xr = x * ca + z * sa;
      const zr = -x * sa + z * ca;
      const yr = y * ct - zr * st;
      const depth = y * st + zr * ct;
      const sx = Math.round(W / 2 + xr * s);
      const sy = Math.round(H / 2 - yr * s);
      if (sx < 0 || sy < 0 || sx >= W - 1 || sy >= H - 1) continue;
      const t = Math.max(0, Math.min(1, 0.5 + (depth * s) / Math.min(W, H)));
      const red = Math.round(80 + 175 * t);
      const green = Math.round(180 - 60 * t);
      const blue = Math.round(255 - 175 * t);
      const col = 0xff000000 | (blue << 16) | (green << 8) | red;
      const o = sy * W + sx;
      px[o] = col;
      px[o + 1] = col;
      px[o + W] = col;
      px[o + W + 1] = col;
      drawn++;
    }
    state.pointsDrawn += drawn;
    state.scatterDrawn = drawn;
  }
  ctx.putImageData(img, 0, 0);
  requestAnimationFrame(drawScatter);
}

// Decoder progress of the peer whose video is shown (the page's info line and the tests use it).
async function pollVideoStats() {
  const s = state.activeVideoPeer && state.sessions.get(state.activeVideoPeer);
  if (s) {
    try {
      const report = await s.pc.getStats();
      report.forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video' && r.framesDecoded !== undefined) state.framesDecoded = r.framesDecoded;
      });
    } catch {
      /* the connection went away meanwhile */
    }
  }
  setTimeout(pollVideoStats, 500);
}

/* ------------------------------------------------------------------------------------------- */
/* Wiring */

function init() {
  if (params.get('room')) $('room').value = params.get('room');
  if (params.get('role')) $('role').value = params.get('role');
  if (params.get('mode')) $('mode').value = params.get('mode');
  $('start').onclick = startSender;
  $('stop').onclick = stopSender;
  $('connect').onclick = connect;
  $('disconnect').onclick = disconnect;
  $('clear-log').onclick = () => $('log').replaceChildren();
  $('mode').onchange = updateMode;
  $('source').onchange = updateMode;
  $('room').onchange = () => {
    openEvents();
    if (ws) {
      // Rejoin under the new room.
      disconnect();
      connect();
    }
  };
  const v = $('video');
  v.onresize = () => log(`video ${v.videoWidth}x${v.videoHeight}`);
  if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
    videoFrameCallbacks = true;
    v.requestVideoFrameCallback(onVideoFrame);
  } else {
    warn('this browser has no requestVideoFrameCallback; the overlay follows data arrival');
  }
  requestAnimationFrame(drawScatter);
  pollVideoStats();
  openEvents();
  loadPipelines().then(updateMode);
  if (params.get('connect') === '1') connect();
  log(`viewer ready; room "${room()}", signaling ${signalingUrl()}`);
}

init();
