// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target for the fragment reassembler (gst/rtc/framing.cpp): two channels of one peer
 * sharing a small budget, driven by a byte program (announce, text, piece, time passing, sweep).
 * Whatever arrives: no crash, leak or UB; reservations never exceed the budget and all return
 * when nothing is in progress; a completed message is exactly its announced size and the bytes of
 * the pieces that followed its announcement. */
#include "rtc/framing.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace pointcast::framing;
using Status = Reassembler::Status;

namespace {

struct Reader {
  const uint8_t *p, *end;
  bool more() const { return p < end; }
  unsigned byte() { return p < end ? *p++ : 0; }
  unsigned u16() { return byte() | (byte() << 8); }
  std::string bytes(size_t n)
  {
    std::string s;
    while (n-- && p < end) s.push_back(char(*p++));
    return s;
  }
};

struct Channel {
  std::unique_ptr<Reassembler> r;
  bool active = false; // a message was announced and accepted: model its bytes
  uint64_t size = 0;
  std::string bytes;
};

void check_done(Channel &c)
{
  size_t n = 0;
  void *p = c.r->take(&n);
  if (!p || !c.active || n != c.size || n != c.bytes.size() ||
      std::memcmp(p, c.bytes.data(), n) != 0)
    std::abort();
  std::free(p);
  c.active = false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  Limits limits;
  limits.max_message = 4096;
  limits.idle_timeout = std::chrono::seconds(10);
  auto budget = std::make_shared<Budget>(6000);
  Channel ch[2];
  for (auto &c : ch) c.r = std::make_unique<Reassembler>(limits, budget);
  Clock::time_point now{};
  Reader in{data, data + size};
  while (in.more()) {
    unsigned op = in.byte();
    Channel &c = ch[(op >> 4) & 1];
    Status st = Status::Plain;
    bool text = true;
    std::string t;
    switch (op % 6) {
    case 0: {
      uint64_t sz = in.u16() % 5000, count = in.byte();
      t = announce(sz, count);
      break;
    }
    case 1: t = in.bytes(in.byte()); break;
    case 2: {
      text = false;
      std::string piece = in.bytes(in.u16() % 5000);
      st = c.r->on_binary(piece.data(), piece.size(), now);
      if (c.active && (st == Status::Pending || st == Status::Complete)) c.bytes += piece;
      break;
    }
    case 3: now += std::chrono::seconds(in.byte()); continue;
    case 4:
      budget->expire(now);
      for (auto &x : ch)
        if (!x.r->in_progress()) x.active = false;
      continue;
    case 5: t = "{\"pointcast\":\"fragments\"," + in.bytes(in.byte()); break;
    }
    if (text) {
      st = c.r->on_text(t, now);
      if (st == Status::Pending) {
        auto a = parse_announcement(t);
        if (!a) std::abort(); // only an announcement is consumed as pending
        c.active = true;
        c.size = a->size;
        c.bytes.clear();
      }
    }
    if (st == Status::Complete) {
      if (text) std::abort(); // only a piece completes a message
      check_done(c);
    } else if (st == Status::Error) {
      if (c.r->error().empty()) std::abort(); // every refusal has a reason
      c.active = false;
    } else if (st == Status::Plain && c.r->in_progress()) {
      std::abort();
    }
    if (text && st != Status::Pending) c.active = false;
    if (!c.r->in_progress()) c.active = false;
    if (budget->used() > budget->limit()) std::abort();
    if (!ch[0].r->in_progress() && !ch[1].r->in_progress() && budget->used() != 0) std::abort();
  }
  return 0;
}
