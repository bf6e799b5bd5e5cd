#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes the seed corpora of the daemon's fuzz targets: fuzz/corpus_json (protocol messages,
well-formed and hostile) and fuzz/corpus_ws (WebSocket frames as a client sends them, behind the
control byte fuzz_ws_frames reads first)."""
import json
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n"
messages = {
    "register": {"type": "register", "client_id": "a", "room_id": "r", "client_type": "browser"},
    "register-token": {"type": "register", "client_id": "a", "token": "s3cret"},
    "offer": {"type": "offer", "target_id": "b", "sdp": {"type": "offer", "sdp": SDP}},
    "answer-bare": {"type": "answer", "target_id": "a", "sdp": SDP, "trickle": False},
    "candidate": {"type": "ice_candidate", "target_id": "b",
                  "candidate": {"candidate": "candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host",
                                "sdpMid": "0", "sdpMLineIndex": 0}},
    "candidate-end": {"type": "ice_candidate", "candidate": None},
    "registered": {"type": "registered", "client_id": "a", "room_id": "r", "peers": ["b"],
                   "peer_types": {"b": "gstreamer"}},
    "peer-left": {"type": "peer_left", "client_id": "b"},
    "error": {"type": "error", "code": "bad_json", "message": "x"},
}
raw = {
    "surrogate": '{"type":"register","client_id":"\\udc00x"}',
    "pair": '{"type":"register","client_id":"\\ud83d\\ude00"}',
    "nul-key": '{"type":"offer","target_id":"b","sdp":"v=0","type\\u0000":"peer_left"}',
    "dup": '{"type":"offer","type":"peer_left","client_id":"x"}',
    "single-quotes": "{'type':'register','client_id':'a'}",
    "comment": '{"type":"register",/* c */"client_id":"a"}',
    "deep": '{"type":"register","client_id":"a","x":' + "[" * 40 + "]" * 40 + "}",
    "from-id": '{"type":"offer","target_id":"b","from_id":"z","sdp":"v=0"}',
    "escapes": '{"type":"register","client_id":"caf\\u00e9 \\"q\\" \\\\ \\/","room_id":"r\\n1"}',
}
os.makedirs(os.path.join(here, "corpus_json"), exist_ok=True)
for name, m in messages.items():
    with open(os.path.join(here, "corpus_json", name), "w") as f:
        f.write(json.dumps(m, separators=(",", ":")))
for name, t in raw.items():
    with open(os.path.join(here, "corpus_json", name), "w") as f:
        f.write(t)


def frame(opcode, payload, fin=True, key=b"\x11\x22\x33\x44"):
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


reg = json.dumps(messages["register"]).encode()
frames = {
    "text": frame(1, reg),
    "fragments-ping": frame(1, reg[:10], fin=False) + frame(9, b"hi") + frame(0, reg[10:20], fin=False) + frame(0, reg[20:]),
    "binary": frame(2, b"\x00\x01\x02"),
    "close": frame(8, b"\x03\xe8bye"),
    "pong-then-text": frame(10, b"") + frame(1, "\u00e9\u0000".encode()),
    "bad-utf8": frame(1, b"\xed\xa0\x80"),
    "len16": frame(1, b"x" * 300),
    "unmasked": bytes([0x81, 0x03]) + b"abc",
}
os.makedirs(os.path.join(here, "corpus_ws"), exist_ok=True)
for name, data in frames.items():
    with open(os.path.join(here, "corpus_ws", name), "wb") as f:
        f.write(bytes([0x2f]) + data)  # payload limit 16 + 15 * 64, split at 2 * 7919 mod size
