// SPDX-License-Identifier: LGPL-2.1-or-later
// negotiation.js — "perfect negotiation" (W3C webrtc-pc, section 10.7) for one peer connection.
//
// Either side may offer at any time. Of a pair, the peer whose client_id is byte-wise smaller
// (UTF-8) is polite — the same rule rtcpeer uses (README, "rtcpeer", negotiation). When offers
// cross (glare) the impolite side ignores the incoming offer and the polite side rolls its own
// back (setLocalDescription({type: 'rollback'})) and answers. A later offer on the same
// connection is a renegotiation and is applied to it; only an offer with another DTLS
// fingerprint or ICE ufrag (the remote made a new connection) or one for a failed connection
// needs a new RTCPeerConnection, which the caller makes (see `isRestart`). No timers anywhere.

const utf8 = new TextEncoder();

/** True when `selfId` is the polite side towards `remoteId` (its UTF-8 bytes sort first). */
export function isPolite(selfId, remoteId) {
  const a = utf8.encode(selfId);
  const b = utf8.encode(remoteId);
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k++) if (a[k] !== b[k]) return a[k] < b[k];
  return a.length < b.length;
}

/** The first a=fingerprint value of an SDP (session or media level), '' when there is none. */
export function fingerprintOf(sdp) {
  const m = /^a=fingerprint:(.+?)\s*$/im.exec(String(sdp || ''));
  return m ? m[1].toLowerCase() : '';
}

/**
 * What tells a new connection of the remote from a renegotiation of the live one: its DTLS
 * fingerprint and first a=ice-ufrag. rtcpeer's certificate is per process, so a connection it
 * rebuilt (its path died: docs/rtcpeer.md "Lost path") has the old fingerprint and a new ufrag; the
 * senders this page talks to (rtcpeer, aiortc) never restart ICE on a live connection.
 */
export function connectionOf(sdp) {
  const u = /^a=ice-ufrag:(.+?)\s*$/im.exec(String(sdp || ''));
  return `${fingerprintOf(sdp)} ${u ? u[1] : ''}`;
}

/** Kinds of the m= sections of an SDP that are not rejected ("video", "audio", "application"). */
export const mediaOf = (sdp) => [...String(sdp || '').matchAll(/^m=(\w+) [1-9]/gm)].map((m) => m[1]);

/** a= direction of the first m=KIND section ("sendonly", "inactive", ...), '' when none. */
export function directionOf(sdp, kind) {
  const sections = String(sdp || '').split(/^(?=m=)/m);
  const m = sections.find((x) => x.startsWith(`m=${kind} `));
  const d = m && /^a=(sendrecv|sendonly|recvonly|inactive)\s*$/m.exec(m);
  return d ? d[1] : m ? 'sendrecv' : '';
}

export class Negotiator {
  /**
   * pc: the RTCPeerConnection; polite: see isPolite; signal(description): sends our offer or
   * answer ({type, sdp}); log(text) / warn(text): progress for the page's log.
   */
  constructor(pc, { polite, signal, log = () => {}, warn = log }) {
    this.pc = pc;
    this.polite = polite;
    this.signal = signal;
    this.log = log;
    this.warn = warn;
    this.makingOffer = false; // between negotiationneeded and our offer being applied
    this.ignoreOffer = false; // impolite side ignored a crossing offer (and drops its candidates)
    this.pendingCandidates = []; // remote candidates that came before any remote description
    this.negotiated = false; // one offer/answer exchange completed on this connection
    this.queue = Promise.resolve(); // remote descriptions and candidates, applied in order
    this.offers = 0; // offers sent, answers sent, rollbacks done (for the log and the tests)
    this.answers = 0;
    this.rollbacks = 0;
    pc.onnegotiationneeded = () => this.offer();
    pc.onsignalingstatechange = () => {
      if (pc.signalingState === 'stable' && pc.remoteDescription && pc.localDescription) this.negotiated = true;
    };
  }

  // Our offer: whenever the browser says the connection needs one (a transceiver or the first
  // data channel added, or one more after an exchange that left something out).
  async offer() {
    const pc = this.pc;
    if (pc.signalingState === 'closed') return;
    try {
      this.makingOffer = true;
      await pc.setLocalDescription();
      // A crossing offer may have rolled ours back meanwhile: then there is nothing to send.
      if (pc.signalingState !== 'have-local-offer' || !pc.localDescription || pc.localDescription.type !== 'offer') return;
      this.offers++;
      this.signal({ type: 'offer', sdp: pc.localDescription.sdp });
    } catch (e) {
      if (pc.signalingState !== 'closed') this.warn(`could not make an offer: ${e.message}`);
    } finally {
      this.makingOffer = false;
    }
  }

  /** Would this remote offer start a new connection (another identity, or ours is dead)? */
  isRestart(desc) {
    const pc = this.pc;
    if (desc.type !== 'offer') return false;
    if (pc.connectionState === 'failed' || pc.connectionState === 'closed') return true;
    const current = pc.currentRemoteDescription || pc.remoteDescription;
    return this.negotiated && current ? connectionOf(current.sdp) !== connectionOf(desc.sdp) : false;
  }

  /** A remote offer or answer; resolves once it is applied (or ignored). */
  description(desc) {
    return this.enqueue(() => this.applyDescription(desc));
  }

  /** A remote ICE candidate (null or an empty candidate: end of candidates). */
  candidate(c) {
    return this.enqueue(() => this.applyCandidate(c && c.candidate ? c : null));
  }

  enqueue(fn) {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => {});
    return run;
  }

  async applyDescription(desc) {
    const pc = this.pc;
    if (pc.signalingState === 'closed') return 'closed';
    if (desc.type === 'answer' && pc.signalingState !== 'have-local-offer') {
      // The answer to an offer we rolled back: the exchange it belonged to is gone.
      this.warn(`ignored an answer in state ${pc.signalingState}`);
      return 'ignored';
    }
    const collision = desc.type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) {
      this.log('offers crossed: ours stands (impolite side), theirs is ignored');
      return 'ignored';
    }
    if (collision) {
      // Polite: withdraw ours. Once it is applied that is an explicit rollback; an offer still
      // being made is rolled back by setRemoteDescription itself (it is queued after ours).
      this.rollbacks++;
      this.log('offers crossed: ours is rolled back (polite side), theirs is answered');
      if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
    }
    await pc.setRemoteDescription(desc);
    await this.flushCandidates();
    if (desc.type === 'offer') {
      await pc.setLocalDescription();
      this.answers++;
      this.signal({ type: 'answer', sdp: pc.localDescription.sdp });
    }
    return 'applied';
  }

  async applyCandidate(c) {
    const pc = this.pc;
    if (pc.signalingState === 'closed') return;
    if (!pc.remoteDescription) {
      if (!this.ignoreOffer) this.pendingCandidates.push(c);
      return;
    }
    try {
      await pc.addIceCandidate(c || undefined);
    } catch (e) {
      // Candidates of an offer we ignored cannot be added; anything else is worth a line.
      if (!this.ignoreOffer) this.warn(`candidate not added: ${e.message}`);
    }
  }

  async flushCandidates() {
    const list = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const c of list) await this.applyCandidate(c);
  }
}
