// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target for the tcp:// (aiortc TcpSocketSignaling) input path of rtcpeer: bytes from
 * the remote, cut into reads at places the input chooses, through sigcheck::LineSplitter and
 * tcpwire::parse_line. No crash, leak or UB; no line over the bound; every decoded message
 * within its field rules, and every refusal with a reason. */
#include "rtc/sigcheck.h"
#include "rtc/tcpwire.h"

#include <cstdint>
#include <cstdlib>
#include <string>

using namespace pointcast;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  // first byte: read size (1..256), so lines get split across reads in many ways
  size_t chunk = size_t(data[0]) + 1;
  const char *p = reinterpret_cast<const char *>(data + 1);
  size_t n = size - 1;
  constexpr size_t kMax = 4096; // smaller than the real bound, so the fuzzer reaches it
  sigcheck::LineSplitter split(kMax);
  auto on_line = [&](std::string &line) {
    if (line.size() > kMax || line.find('\n') != std::string::npos) std::abort();
    tcpwire::Message m = tcpwire::parse_line(line);
    using K = tcpwire::Message::Kind;
    switch (m.kind) {
    case K::Sdp:
      if (m.type != "offer" && m.type != "answer") std::abort();
      (void)sigcheck::check_sdp(m.type, m.sdp);
      break;
    case K::Candidate:
      if (m.mline < 0 || m.mline > 1023 ||
          (!m.candidate.empty() && m.candidate.rfind("candidate:", 0) != 0))
        std::abort();
      (void)sigcheck::check_candidate(m.mid, m.mline, m.candidate);
      break;
    case K::Bad:
      if (m.why.empty()) std::abort();
      (void)sigcheck::printable(line, 80);
      break;
    case K::Blank:
    case K::Bye: break;
    }
    return true;
  };
  for (size_t off = 0; off < n; off += chunk)
    split.feed(p + off, std::min(chunk, n - off), on_line, [] { return true; });
  if (split.buffered() > kMax) std::abort();
  return 0;
}
