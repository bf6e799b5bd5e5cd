// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target for the daemon's JSON message parser (common/protocol.cpp).
 * Whatever the text: no crash, no UB, json-glib never recursing past the bound. The fast path
 * and the full path agree: what the fast path accepts, the validator and the full (json-glib)
 * path accept with the same message. Every refusal has a code and a reason. And what the daemon
 * would relay (the accepted text with from_id appended, or the message serialized again) passes
 * the same validator and parses back to the same message: no text it did not validate leaves. */
#include "protocol.h"

#include <cstdint>
#include <cstdlib>
#include <string>

using namespace pointcast::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
  std::string text(reinterpret_cast<const char *>(data), size);
  auto fast = parse_fast(text);
  auto bad = check_json(text);
  ParseResult full = parse_full(text);
  ParseResult r = parse(text);
  if (!r.ok() && (r.error.code.empty() || r.error.message.empty())) std::abort();
  // The error reply goes back over the WebSocket: it must be valid text.
  if (!r.ok() &&
      (!utf8_valid(r.error.message) || check_json(error_json(r.error.code, r.error.message))))
    std::abort();
  if (bad && (full.ok() || r.ok() || full.error.code != bad->code))
    std::abort(); // the validator's refusal is final
  if (fast) {
    if (bad || !full.ok() || !r.ok()) std::abort();
    if (serialize(*fast) != serialize(*full.message)) std::abort();
  }
  if (r.ok() != full.ok() || (r.ok() && serialize(*r.message) != serialize(*full.message)))
    std::abort();
  if (!r.ok()) return 0;
  // Reserialized: valid, and the same message again.
  std::string again = serialize(*r.message);
  if (check_json(again)) std::abort();
  ParseResult back = parse(again);
  if (!back.ok() || serialize(*back.message) != again) std::abort();
  // Relayed as is with from_id appended (what Rooms::relay sends when the sender set none).
  bool has_from = false;
  if (auto *s = std::get_if<Sdp>(&*r.message))
    has_from = s->from_id.has_value();
  else if (auto *c = std::get_if<Candidate>(&*r.message))
    has_from = c->from_id.has_value();
  else
    return 0;
  if (has_from) return 0;
  std::string relayed = append_from_id(text, "peer-\xc3\xa9");
  if (check_json(relayed)) std::abort();
  ParseResult seen = parse(relayed);
  if (!seen.ok() || std::string(type_name(*seen.message)) != type_name(*r.message)) std::abort();
  return 0;
}
