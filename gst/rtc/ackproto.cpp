// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/ackproto.h"

#include <algorithm>

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

static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(const void *data, size_t size)
{
  auto *in = static_cast<const unsigned char *>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (size_t i = 0; i < size; i += 3) {
    uint32_t v = uint32_t(in[i]) << 16;
    if (i + 1 < size) v |= uint32_t(in[i + 1]) << 8;
    if (i + 2 < size) v |= in[i + 2];
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < size ? kB64[(v >> 6) & 63] : '=';
    out += i + 2 < size ? kB64[v & 63] : '=';
  }
  return out;
}

static int b64_value(char c)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::optional<std::string> unbase64(std::string_view text)
{
  if (text.size() % 4) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=') : 0;
    int v[4];
    for (int k = 0; k < 4 - pad; k++)
      if ((v[k] = b64_value(text[i + k])) < 0) return std::nullopt;
    for (int k = 4 - pad; k < 4; k++) v[k] = 0;
    uint32_t w = uint32_t(v[0]) << 18 | uint32_t(v[1]) << 12 | uint32_t(v[2]) << 6 | v[3];
    // Canonical only: the bits padding leaves over are zero (one encoding per message).
    if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff))) return std::nullopt;
    out += char(w >> 16);
    if (pad < 2) out += char((w >> 8) & 0xff);
    if (pad < 1) out += char(w & 0xff);
  }
  return out;
}

std::string tagged(uint64_t seq, const void *data, size_t size)
{
  return std::string(kTaggedPrefix) + std::to_string(seq) + ",\"data\":\"" + base64(data, size) +
      "\"}";
}

bool is_tagged(std::string_view text)
{
  constexpr std::string_view head = "{\"pointcast\":\"msg\"";
  return text.substr(0, head.size()) == head;
}

std::optional<Tagged> parse_tagged(std::string_view text)
{
  constexpr std::string_view mid = ",\"data\":\"", tail = "\"}";
  if (text.substr(0, kTaggedPrefix.size()) != kTaggedPrefix) return std::nullopt;
  size_t at = text.find(mid, kTaggedPrefix.size());
  if (at == std::string_view::npos || text.size() < at + mid.size() + tail.size() ||
      text.substr(text.size() - tail.size()) != tail)
    return std::nullopt;
  // The number as number_after() takes it: the text up to `mid`, then a closing brace.
  std::string head(text.substr(0, at));
  head += '}';
  auto seq = number_after(head, kTaggedPrefix, 16, true);
  if (!seq || *seq > kMaxIndex) return std::nullopt;
  auto data = unbase64(text.substr(at + mid.size(), text.size() - at - mid.size() - tail.size()));
  if (!data) return std::nullopt;
  return Tagged{*seq, std::move(*data)};
}

bool Window::fresh(uint64_t seq)
{
  auto bit = [&](uint64_t q) -> uint64_t & { return bits_[(q % kSpan) / 64]; };
  auto mask = [](uint64_t q) { return uint64_t(1) << (q % 64); };
  if (!any_ || seq > top_) {
    // Forget the numbers the span moves past (all of them after a jump of kSpan or more).
    if (!any_ || seq - top_ >= kSpan)
      for (auto &w : bits_) w = 0;
    else
      for (uint64_t q = top_ + 1; q <= seq; q++) bit(q) &= ~mask(q);
    any_ = true;
    top_ = seq;
    bit(seq) |= mask(seq);
    return true;
  }
  if (top_ - seq >= kSpan) return true; // older than the span: cannot tell, delivered
  if (bit(seq) & mask(seq)) return false;
  bit(seq) |= mask(seq);
  return true;
}

bool Bucket::take(uint64_t n, int64_t now_us)
{
  if (!started_) {
    started_ = true;
    last_us_ = now_us;
  } else if (now_us > last_us_) {
    uint64_t add = uint64_t(now_us - last_us_) * rate_ / 1000000;
    if (tokens_ + add >= burst_) {
      tokens_ = burst_;
      last_us_ = now_us;
    } else if (add > 0) { // whole bytes: the rest of the time counts towards the next one
      tokens_ += add;
      last_us_ += int64_t(add * 1000000 / rate_);
    }
  }
  if (n > tokens_) return false;
  tokens_ -= n;
  return true;
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
