// SPDX-License-Identifier: LGPL-2.1-or-later
// framing.js — rtcpeer's framing of data-channel messages larger than the SCTP limit.
//
// rtcpeer sends a message that does not fit (64 KiB pieces) as a text announcement
//   {"pointcast":"fragments","size":S,"count":N}
// followed by exactly N binary messages on the same channel whose bytes, concatenated, are the
// S-byte message. Everything else is an ordinary message and passes through unchanged.

const PREFIX = '{"pointcast":"fragments",';
const ANNOUNCEMENT = /^\{"pointcast":"fragments","size":(\d+),"count":(\d+)\}$/;

export class FramingError extends Error {
  constructor(message) {
    super(message);
    this.name = 'FramingError';
  }
}

/** Parses an announcement; null when `text` is an ordinary text message. */
export function parseAnnouncement(text) {
  if (typeof text !== 'string' || !text.startsWith(PREFIX)) return null;
  const m = ANNOUNCEMENT.exec(text);
  if (!m) return null;
  return { size: Number(m[1]), count: Number(m[2]) };
}

/** Reassembles announced messages, one state per channel label. */
export class Reassembler {
  constructor(maxSize = 256 * 1024 * 1024) {
    this.maxSize = maxSize;
    this.channels = new Map();
  }

  /**
   * Feeds one received message (string or ArrayBuffer). Returns the message to deliver (the
   * same object for ordinary messages, an ArrayBuffer for a reassembled one), or null while
   * pieces are still due. Throws FramingError when the framing is inconsistent; the partial
   * message is dropped and the channel starts afresh.
   */
  push(label, data) {
    const st = this.channels.get(label);
    if (typeof data === 'string') {
      const a = parseAnnouncement(data);
      if (st) {
        this.channels.delete(label);
        throw new FramingError(`fragmented message interrupted after ${st.received} of ${st.count} pieces`);
      }
      if (!a) return data;
      if (a.size > this.maxSize) throw new FramingError(`announced message of ${a.size} bytes exceeds the limit of ${this.maxSize}`);
      if (a.count === 0 || a.count > a.size + 1) throw new FramingError(`announced ${a.count} pieces for ${a.size} bytes`);
      this.channels.set(label, { buf: new Uint8Array(a.size), size: a.size, count: a.count, filled: 0, received: 0 });
      return null;
    }
    if (!st) return data;
    const piece = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (piece.length > st.size - st.filled) {
      this.channels.delete(label);
      throw new FramingError(`pieces exceed the announced ${st.size} bytes`);
    }
    st.buf.set(piece, st.filled);
    st.filled += piece.length;
    st.received++;
    if (st.received < st.count) return null;
    this.channels.delete(label);
    if (st.filled !== st.size) throw new FramingError(`pieces hold ${st.filled} of the announced ${st.size} bytes`);
    return st.buf.buffer;
  }
}
