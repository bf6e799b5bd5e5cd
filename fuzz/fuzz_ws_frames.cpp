// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target for the daemon's WebSocket frame decoder (signaling/wsframe.cpp).
 * The first input byte picks a payload limit and a split point; the rest is what a client sent.
 * Whatever the bytes: no read outside them, no crash or UB; every text message is UTF-8 and
 * within the limit; and the bytes fed in two parts give exactly the events they give at once
 * (the daemon reads the socket in pieces of any size). */
#include "wsframe.h"

#include "protocol.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

using pointcast::signaling::WsDecoder;

namespace {
struct Seen {
  int kind;
  std::string data;
  std::uint16_t code;
  bool operator==(const Seen &o) const
  {
    return kind == o.kind && data == o.data && code == o.code;
  }
};

// Feeds `parts` one after another, as WsConn does: decode what is there, keep the rest.
std::vector<Seen> run(const std::vector<std::string> &parts, std::size_t max_payload)
{
  WsDecoder dec(max_payload);
  std::vector<Seen> out;
  std::string buf;
  std::size_t off = 0;
  for (const auto &p : parts) {
    buf.append(p);
    WsDecoder::Event ev;
    while (dec.next(buf, off, ev)) {
      if (ev.data.size() > max_payload) std::abort();
      if (ev.kind == WsDecoder::Kind::Text && !pointcast::protocol::utf8_valid(ev.data))
        std::abort();
      if (ev.kind == WsDecoder::Kind::Error && (!ev.why || ev.code < 1000)) std::abort();
      out.push_back({int(ev.kind), std::string(ev.data), ev.code});
      if (ev.kind == WsDecoder::Kind::Error || ev.kind == WsDecoder::Kind::Close) return out;
    }
    if (off > buf.size() || dec.pending() > max_payload) std::abort();
    buf.erase(0, off);
    off = 0;
  }
  return out;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
  if (size < 1) return 0;
  std::size_t max_payload = 16 + (data[0] & 0x0f) * 64; // 16..976 bytes: limits get hit
  std::string body(reinterpret_cast<const char *>(data + 1), size - 1);
  std::size_t split = body.empty() ? 0 : (std::size_t(data[0] >> 4) * 7919) % (body.size() + 1);
  auto whole = run({body}, max_payload);
  auto halves = run({body.substr(0, split), body.substr(split)}, max_payload);
  if (!(whole == halves)) std::abort();
  std::vector<std::string> bytes;
  for (char c : body) bytes.emplace_back(1, c);
  if (body.size() < 4096 && !(run(bytes, max_payload) == whole)) std::abort();
  return 0;
}
