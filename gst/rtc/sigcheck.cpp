// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/sigcheck.h"

#include <cstdio>
#include <cstring>

namespace pointcast::sigcheck {

// Length of the valid UTF-8 sequence at s[i], or 0.
static std::size_t utf8_len(std::string_view s, std::size_t i)
{
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  std::size_t n = c >= 0xc2 && c <= 0xdf ? 2
      : c >= 0xe0 && c <= 0xef           ? 3
      : c >= 0xf0 && c <= 0xf4           ? 4
                                         : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((b(k) & 0xc0) != 0x80) return 0;
  if (c == 0xe0 && b(1) < 0xa0) return 0;  // overlong
  if (c == 0xed && b(1) >= 0xa0) return 0; // UTF-16 surrogate
  if (c == 0xf0 && b(1) < 0x90) return 0;  // overlong
  if (c == 0xf4 && b(1) >= 0x90) return 0; // past U+10FFFF
  return n;
}

bool valid_utf8(std::string_view s)
{
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = utf8_len(s, i);
    if (!n) return false;
    i += n;
  }
  return true;
}

std::string printable(std::string_view s, std::size_t max)
{
  std::string out;
  std::size_t i = 0;
  for (; i < s.size() && out.size() < max;) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t n = utf8_len(s, i);
    if (n > 1) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    i++;
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\\')
      out += "\\\\";
    else if (n == 1 && c >= 0x20 && c != 0x7f)
      out.push_back(char(c));
    else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  if (i < s.size()) out += "...";
  return out;
}

// Refuses NUL, other control characters (but those in `allowed`) and invalid UTF-8.
static std::optional<std::string> check_text(std::string_view what, std::string_view s,
                                             const char *allowed)
{
  for (unsigned char c : s)
    if ((c < 0x20 || c == 0x7f) && !(c && std::strchr(allowed, c)))
      return std::string(what) + (c ? " contains a control character" : " contains NUL");
  if (!valid_utf8(s)) return std::string(what) + " is not valid UTF-8";
  return std::nullopt;
}

std::optional<std::string> check_sdp(std::string_view type, std::string_view sdp)
{
  if (type != "offer" && type != "answer")
    return "SDP of type \"" + printable(type, 40) + "\" (expected offer or answer)";
  if (sdp.size() > kMaxSdpBytes)
    return "SDP of " + std::to_string(sdp.size()) + " bytes (limit " +
        std::to_string(kMaxSdpBytes) + ")";
  if (sdp.substr(0, 3) != "v=0") return std::string("SDP does not start with v=0");
  return check_text("SDP", sdp, "\r\n\t");
}

std::optional<std::string> check_candidate(std::string_view mid, int mline,
                                           std::string_view candidate)
{
  if (candidate.size() > kMaxCandidateBytes)
    return "candidate of " + std::to_string(candidate.size()) + " bytes (limit " +
        std::to_string(kMaxCandidateBytes) + ")";
  // it becomes an SDP line: a CR or LF inside would add lines of the sender's choosing
  if (auto why = check_text("candidate", candidate, "")) return why;
  if (!candidate.empty() && candidate.substr(0, 10) != "candidate:" &&
      candidate.substr(0, 12) != "a=candidate:")
    return "candidate does not start with candidate:";
  if (mid.size() > kMaxIdBytes)
    return "sdpMid of " + std::to_string(mid.size()) + " bytes (limit " +
        std::to_string(kMaxIdBytes) + ")";
  if (auto why = check_text("sdpMid", mid, "")) return why;
  if (mline < -1 || mline > kMaxMLine)
    return "sdpMLineIndex " + std::to_string(mline) + " out of range";
  return std::nullopt;
}

std::optional<std::string> check_id(std::string_view what, std::string_view id)
{
  if (id.empty()) return std::string(what) + " is empty";
  if (id.size() > kMaxIdBytes)
    return std::string(what) + " of " + std::to_string(id.size()) + " bytes (limit " +
        std::to_string(kMaxIdBytes) + ")";
  return check_text(what, id, "");
}

bool has_escaped_nul(std::string_view json)
{
  for (std::size_t i = json.find("u0000"); i != std::string_view::npos;
       i = json.find("u0000", i + 1)) {
    std::size_t slashes = 0;
    while (slashes < i && json[i - 1 - slashes] == '\\') slashes++;
    if (slashes % 2 == 1) return true;
  }
  return false;
}

void LineSplitter::feed(const char *p, std::size_t n,
                        const std::function<bool(std::string &)> &on_line,
                        const std::function<bool()> &on_overlong)
{
  const char *end = p + n;
  while (p < end) {
    auto *nl = static_cast<const char *>(std::memchr(p, '\n', end - p));
    const char *stop = nl ? nl : end;
    if (discarding_) {
      discarding_ = !nl;
    } else if (buf_.size() + (stop - p) > max_) {
      buf_.clear();
      buf_.shrink_to_fit();
      discarding_ = !nl;
      if (!on_overlong()) return;
    } else {
      buf_.append(p, stop);
      if (nl) {
        std::string line;
        line.swap(buf_);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!on_line(line)) return;
      }
    }
    p = nl ? nl + 1 : end;
  }
}

} // namespace pointcast::sigcheck
