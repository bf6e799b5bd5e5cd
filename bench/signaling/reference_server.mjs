// SPDX-License-Identifier: LGPL-2.1-or-later
/* Reference room-protocol signaling server in Node with `ws` (bench/signaling/node_modules, from
 * package.json), the protocol of reference_server.py. With --batch, what one turn of the event
 * loop sends to a socket leaves in one write (the socket corked until setImmediate), the usual way
 * to make `ws` fast under load; without it every message is its own write, as `ws` does.
 *
 * Usage: node reference_server.mjs [--host 127.0.0.1] [--port 0] [--batch]
 * Prints "listening on PORT" on stdout. */
import { WebSocketServer } from "ws";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const host = arg("--host", "127.0.0.1");
const port = Number(arg("--port", "0"));
const batch = process.argv.includes("--batch");

const rooms = new Map(); // room -> Map(client_id -> {ws, type})
const corked = new Set();

function send(ws, text) {
  if (batch && !corked.has(ws)) {
    corked.add(ws);
    ws._socket.cork();
    if (corked.size === 1)
      setImmediate(() => {
        for (const w of corked) w._socket.uncork();
        corked.clear();
      });
  }
  ws.send(text);
}
const error = (code, message) => JSON.stringify({ type: "error", code, message });

const wss = new WebSocketServer({ host, port, path: "/ws", maxPayload: 1 << 20, backlog: 1024 });
wss.on("connection", (ws) => {
  let me = null, room = null;
  ws.on("message", (raw, isBinary) => {
    let msg;
    try {
      msg = JSON.parse(isBinary ? raw : raw.toString());
    } catch (e) {
      return send(ws, error("bad_json", String(e.message)));
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg))
      return send(ws, error("not_object", "a message must be a JSON object"));
    const type = msg.type;
    if (type === "register") {
      const cid = msg.client_id, rid = msg.room_id ?? "default";
      if (typeof cid !== "string" || !cid) return send(ws, error("missing_field", "client_id"));
      if (me !== null) return send(ws, error("already_registered", me));
      let members = rooms.get(rid);
      if (!members) rooms.set(rid, (members = new Map()));
      if (members.has(cid)) return send(ws, error("duplicate_client_id", cid));
      const ctype = msg.client_type ?? "unknown";
      const peers = [...members.keys()];
      const peerTypes = Object.fromEntries(peers.map((p) => [p, members.get(p).type]));
      send(ws, JSON.stringify({ type: "registered", client_id: cid, room_id: rid, peers, peer_types: peerTypes }));
      const joined = JSON.stringify({ type: "peer_joined", client_id: cid, client_type: ctype });
      for (const m of members.values()) send(m.ws, joined);
      members.set(cid, { ws, type: ctype });
      me = cid;
      room = rid;
    } else if (type === "offer" || type === "answer" || type === "ice_candidate") {
      if (me === null) return send(ws, error("not_registered", "register first"));
      msg.from_id = me;
      const members = rooms.get(room);
      const target = msg.target_id;
      if (target === undefined || target === null) {
        const out = JSON.stringify(msg);
        for (const [cid, m] of members) if (cid !== me) send(m.ws, out);
      } else if (members.has(target)) {
        send(members.get(target).ws, JSON.stringify(msg));
      } else {
        send(ws, error("unknown_target", String(target)));
      }
    } else {
      send(ws, error("unknown_type", String(type)));
    }
  });
  ws.on("close", () => {
    corked.delete(ws);
    if (me === null) return;
    const members = rooms.get(room);
    if (!members) return;
    members.delete(me);
    const left = JSON.stringify({ type: "peer_left", client_id: me });
    for (const m of members.values()) send(m.ws, left);
    if (members.size === 0) rooms.delete(room);
  });
  ws.on("error", () => {});
});
wss.on("listening", () => console.log(`listening on ${wss.address().port}`));
process.on("SIGTERM", () => process.exit(0));
