// SPDX-License-Identifier: LGPL-2.1-or-later
#include "wsframe.h"

#include "protocol.h"

#include <cstring>

namespace pointcast::signaling {

namespace {
void unmask(char *p, std::size_t n, const unsigned char key[4])
{
  std::uint64_t k8;
  unsigned char kb[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
  std::memcpy(&k8, kb, 8);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t v;
    std::memcpy(&v, p + i, 8);
    v ^= k8;
    std::memcpy(p + i, &v, 8);
  }
  for (; i < n; i++) p[i] ^= key[i & 3];
}

bool error(WsDecoder::Event &ev, std::uint16_t code, const char *why)
{
  ev = {WsDecoder::Kind::Error, {}, code, why};
  return true;
}
} // namespace

bool WsDecoder::next(std::string &buf, std::size_t &off, Event &ev)
{
  for (;;) {
    if (off > buf.size()) return error(ev, 1011, "decoder offset past the buffer");
    std::size_t avail = buf.size() - off;
    if (avail < 2) return false;
    auto *p = reinterpret_cast<unsigned char *>(buf.data() + off);
    bool fin = p[0] & 0x80;
    int opcode = p[0] & 0x0f;
    if (p[0] & 0x70) return error(ev, 1002, "reserved bits set (no extension was negotiated)");
    if (!(p[1] & 0x80)) return error(ev, 1002, "client frames must be masked");
    std::uint64_t len = p[1] & 0x7f;
    std::size_t hdr = 2;
    if (len == 126) {
      if (avail < 4) return false;
      len = (std::uint64_t(p[2]) << 8) | p[3];
      hdr = 4;
    } else if (len == 127) {
      if (avail < 10) return false;
      len = 0;
      for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
      hdr = 10;
    }
    if (opcode >= 8 && (!fin || len > 125)) return error(ev, 1002, "bad control frame");
    // Checked before waiting for the payload: a header alone announces how much would be held.
    if (len > max_payload_ || frag_.size() + len > max_payload_)
      return error(ev, 1009, "message too big");
    if (avail < hdr + 4 + len) return false;
    unsigned char key[4];
    std::memcpy(key, p + hdr, 4);
    char *payload = buf.data() + off + hdr + 4;
    unmask(payload, len, key);
    std::string_view data(payload, len);
    off += hdr + 4 + len;

    switch (opcode) {
    case 0x8: {
      std::uint16_t code = 1005;
      if (len == 1) return error(ev, 1002, "close frame with a one-byte payload");
      if (len >= 2) code = std::uint16_t((std::uint8_t(data[0]) << 8) | std::uint8_t(data[1]));
      ev = {Kind::Close, data.substr(len >= 2 ? 2 : 0), code, nullptr};
      return true;
    }
    case 0x9: ev = {Kind::Ping, data, 0, nullptr}; return true;
    case 0xA: ev = {Kind::Pong, data, 0, nullptr}; return true;
    case 0x1:
    case 0x2:
      if (frag_op_) return error(ev, 1002, "new message inside a fragmented one");
      if (!fin) {
        frag_op_ = opcode;
        frag_.assign(data);
        continue;
      }
      if (opcode == 0x1 && !protocol::utf8_valid(data))
        return error(ev, 1007, "text frame is not UTF-8");
      ev = {opcode == 0x1 ? Kind::Text : Kind::Binary, data, 0, nullptr};
      return true;
    case 0x0: {
      if (!frag_op_) return error(ev, 1002, "continuation without a message");
      frag_.append(data);
      if (!fin) continue;
      int op = frag_op_;
      frag_op_ = 0;
      done_.swap(frag_);
      frag_.clear();
      if (frag_.capacity() > 4096) std::string().swap(frag_);
      if (op == 0x1 && !protocol::utf8_valid(done_))
        return error(ev, 1007, "text message is not UTF-8");
      ev = {op == 0x1 ? Kind::Text : Kind::Binary, done_, 0, nullptr};
      return true;
    }
    default: return error(ev, 1002, "unknown opcode");
    }
  }
}

} // namespace pointcast::signaling
