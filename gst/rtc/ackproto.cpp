// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/ackproto.h"

namespace pointcast::ackproto {

std::string ack(uint64_t received)
{
  return std::string(kAckPrefix) + std::to_string(received) + "}";
}

std::string resume(uint64_t from)
{
  return std::string(kResumePrefix) + std::to_string(from) + "}";
}

// The decimal number between `prefix` and the closing brace that ends `text`; at most
// `max_digits`, no sign, no leading zero (but "0"), nothing else.
static std::optional<uint64_t> number_after(std::string_view text, std::string_view prefix,
                                            size_t max_digits, bool strict)
{
  if (text.size() < prefix.size() + 2 || text.substr(0, prefix.size()) != prefix ||
      text.back() != '}')
    return std::nullopt;
  std::string_view digits = text.substr(prefix.size(), text.size() - prefix.size() - 1);
  if (digits.empty() || digits.size() > max_digits) return std::nullopt;
  if (strict && digits.size() > 1 && digits[0] == '0') return std::nullopt;
  uint64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + uint64_t(c - '0');
  }
  return n;
}

std::optional<uint64_t> parse_ack(std::string_view text)
{
  return number_after(text, kAckPrefix, 19, false); // as rtcpeer has always parsed it
}

bool is_resume(std::string_view text)
{
  constexpr std::string_view head = "{\"pointcast\":\"resume\"";
  return text.substr(0, head.size()) == head;
}

Cursor::Verdict Cursor::on_resume(Stream &s, std::string_view text)
{
  Verdict v;
  auto from = number_after(text, kResumePrefix, 16, true);
  if (!from || *from > kMaxIndex) {
    v.reason = "malformed (expected {\"pointcast\":\"resume\",\"from\":N}, N at most 2^53-1)";
    return v;
  }
  if (started_) {
    v.reason = "not the channel's first message";
    return v;
  }
  started_ = true;
  if (s.known && *from < s.base) {
    // A sender only re-sends what the last channel left unacknowledged, which starts at or after
    // that channel's first message. Taken as a new stream: everything is delivered.
    v.reason = "goes back before the previous channel's first message (" + std::to_string(*from) +
        " < " + std::to_string(s.base) + ")";
    s.base = s.delivered = next_ = 0;
    return v;
  }
  v.accepted = true;
  if (!s.known || *from > s.delivered) {
    v.missing = s.known ? *from - s.delivered : 0;
    s.delivered = *from; // a new process (nothing to skip), or a gap the sender reports itself
  }
  s.known = true;
  v.skip = s.delivered - *from;
  s.base = next_ = *from;
  return v;
}

bool Cursor::on_message(Stream &s)
{
  if (!started_) { // a channel that starts with data starts a new stream
    started_ = s.known = true;
    s.base = s.delivered = next_ = 0;
  }
  uint64_t index = next_++;
  if (index < s.delivered) return false;
  s.delivered = index + 1;
  return true;
}

} // namespace pointcast::ackproto
