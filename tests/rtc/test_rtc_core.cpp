// SPDX-License-Identifier: LGPL-2.1-or-later
/* Pure C++ parts of rtcpeer: message framing for large messages, SDP helpers. */
#include "rtc/codecs.h"
#include "rtc/framing.h"
#include "sdp.h"
#include "rtc/sigcheck.h"

#include "check.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

using namespace pointcast;
using Status = framing::Reassembler::Status;

static void test_announcement_roundtrip()
{
  auto text = framing::announce(1048576, 16);
  CHECK(text == "{\"pointcast\":\"fragments\",\"size\":1048576,\"count\":16}");
  auto a = framing::parse_announcement(text);
  CHECK(a && a->size == 1048576 && a->count == 16);
  // Ordinary text is not an announcement.
  CHECK(!framing::parse_announcement("hello"));
  CHECK(!framing::parse_announcement("{\"pointcast\":\"fragments\",\"size\":1}"));
  CHECK(!framing::parse_announcement("{\"pointcast\":\"fragments\",\"size\":1,\"count\":1} "));
  CHECK(!framing::parse_announcement("{\"pointcast\":\"fragments\",\"size\":-1,\"count\":1}"));
  CHECK(!framing::parse_announcement(
      "{\"pointcast\":\"fragments\",\"size\":99999999999999999999999,\"count\":1}"));
  CHECK(framing::piece_count(1048576, 65536) == 16);
  CHECK(framing::piece_count(1048577, 65536) == 17);
}

static void test_reassembly()
{
  std::vector<uint8_t> msg(200000);
  for (size_t i = 0; i < msg.size(); i++) msg[i] = uint8_t(i * 7 + 3);
  const size_t chunk = 65536;
  framing::Reassembler r;
  CHECK(r.on_binary("plain", 5) == Status::Plain);
  CHECK(r.on_text("just text") == Status::Plain);
  uint64_t count = framing::piece_count(msg.size(), chunk);
  CHECK(r.on_text(framing::announce(msg.size(), count)) == Status::Pending);
  for (size_t off = 0; off < msg.size(); off += chunk) {
    size_t n = std::min(chunk, msg.size() - off);
    Status st = r.on_binary(msg.data() + off, n);
    CHECK(st == (off + n == msg.size() ? Status::Complete : Status::Pending));
  }
  size_t size = 0;
  void *out = r.take(&size);
  CHECK(size == msg.size() && out && std::memcmp(out, msg.data(), size) == 0);
  std::free(out);
  // Back to plain messages afterwards.
  CHECK(r.on_binary("x", 1) == Status::Plain);
}

static void test_reassembly_errors()
{
  framing::Reassembler r(1000);
  // Over the limit.
  CHECK(r.on_text(framing::announce(5000, 2)) == Status::Error);
  CHECK(r.error().find("limit") != std::string::npos);
  // Pieces larger than announced.
  CHECK(r.on_text(framing::announce(10, 2)) == Status::Pending);
  CHECK(r.on_binary("0123456789ab", 12) == Status::Error);
  CHECK(r.on_binary("x", 1) == Status::Plain);
  // Too few bytes in the announced number of pieces.
  CHECK(r.on_text(framing::announce(10, 2)) == Status::Pending);
  CHECK(r.on_binary("01234", 5) == Status::Pending);
  CHECK(r.on_binary("567", 3) == Status::Error);
  // A text message in the middle of a fragmented one.
  CHECK(r.on_text(framing::announce(10, 2)) == Status::Pending);
  CHECK(r.on_binary("01234", 5) == Status::Pending);
  CHECK(r.on_text("interloper") == Status::Error);
  CHECK(r.error().find("interrupted") != std::string::npos);
  CHECK(!r.in_progress());
  // Nonsense counts.
  CHECK(r.on_text(framing::announce(10, 0)) == Status::Error);
  CHECK(r.on_text(framing::announce(10, 50)) == Status::Error);
  // And it recovers.
  CHECK(r.on_text(framing::announce(3, 1)) == Status::Pending);
  CHECK(r.on_binary("abc", 3) == Status::Complete);
  size_t n = 0;
  void *p = r.take(&n);
  CHECK(n == 3 && std::memcmp(p, "abc", 3) == 0);
  std::free(p);
}

// Resident set size of this process, KiB.
static long rss_kib()
{
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

static void test_reassembly_bounds()
{
  using namespace std::chrono_literals;
  const auto t0 = framing::Clock::now();
  framing::Limits limits; // 256 MiB per message, 10 s idle timeout
  CHECK(limits.max_message == (uint64_t(256) << 20) && limits.idle_timeout == 10s);

  // Announcing costs nothing until the bytes arrive: 200 MiB announced, 64 KiB sent.
  {
    long before = rss_kib();
    framing::Reassembler r;
    CHECK(r.on_text(framing::announce(200u << 20, 3200), t0) == Status::Pending);
    std::vector<char> piece(65536, 'x');
    CHECK(r.on_binary(piece.data(), piece.size(), t0) == Status::Pending);
    CHECK(rss_kib() - before < 8 * 1024);
  }
  // Nonsense announcements, each refused with its reason.
  {
    framing::Reassembler r;
    CHECK(r.on_text("{\"pointcast\":\"fragments\",\"size\":9223372036854775808,\"count\":1}", t0) ==
          Status::Error);
    CHECK(r.error().find("exceeds the limit of 268435456") != std::string::npos);
    // the announcement's prefix with anything else is refused, not passed on as text
    CHECK(r.on_text("{\"pointcast\":\"fragments\",\"size\":99999999999999999999,\"count\":1}",
                    t0) == Status::Error);
    CHECK(r.error().find("malformed fragment announcement") != std::string::npos);
    CHECK(r.on_text("{\"pointcast\":\"fragments\",\"size\":5,\"count\":1,\"x\":\"\n\x1b[2J\"}",
                    t0) == Status::Error);
    CHECK(r.error().find("\\x1b") != std::string::npos); // shown escaped
    CHECK(r.on_text("{\"pointcast\":\"fragment\"}", t0) == Status::Plain);
    CHECK(r.on_text(framing::announce(100, 102), t0) == Status::Error);
    CHECK(r.error().find("102 pieces for 100 bytes") != std::string::npos);
  }
  // One budget for all of a peer's channels.
  auto budget = std::make_shared<framing::Budget>(1000);
  {
    framing::Reassembler a(limits, budget), b(limits, budget);
    CHECK(a.on_text(framing::announce(800, 2), t0) == Status::Pending);
    CHECK(budget->used() == 800);
    CHECK(b.on_text(framing::announce(300, 1), t0) == Status::Error);
    CHECK(b.error().find("reassembly budget (800 of 1000 bytes") != std::string::npos);
    CHECK(b.on_text(framing::announce(200, 1), t0) == Status::Pending); // what fits is taken
    CHECK(b.on_binary(std::string(200, 'b').data(), 200, t0) == Status::Complete);
    size_t n = 0;
    std::free(b.take(&n));
    CHECK(n == 200 && budget->used() == 800);
    CHECK(a.on_binary(std::string(400, 'a').data(), 400, t0 + 1s) == Status::Pending);
    CHECK(a.on_binary(std::string(400, 'a').data(), 400, t0 + 2s) == Status::Complete);
    std::free(a.take(&n));
    CHECK(n == 800 && budget->used() == 0);

    // Idle past the timeout: dropped on its next piece, and its late pieces are not messages.
    CHECK(a.on_text(framing::announce(30, 3), t0) == Status::Pending);
    CHECK(a.on_binary("0123456789", 10, t0 + 5s) == Status::Pending);
    CHECK(a.on_binary("0123456789", 10, t0 + 16s) == Status::Error);
    CHECK(a.error().find("no piece for 11.0 s (limit 10.0 s), 1 of 3 pieces") != std::string::npos);
    CHECK(budget->used() == 0 && !a.in_progress());
    CHECK(a.on_binary("0123456789", 10, t0 + 16s) == Status::Pending); // the third, late
    CHECK(a.on_binary("next", 4, t0 + 16s) == Status::Plain);

    // An abandoned message is dropped when another channel needs the room...
    CHECK(a.on_text(framing::announce(900, 2), t0) == Status::Pending);
    CHECK(b.on_text(framing::announce(500, 1), t0 + 5s) == Status::Error); // not idle long enough
    CHECK(b.on_text(framing::announce(500, 1), t0 + 11s) == Status::Pending);
    CHECK(!a.in_progress() && budget->used() == 500);
    CHECK(b.on_binary(std::string(500, 'b').data(), 500, t0 + 11s) == Status::Complete);
    std::free(b.take(&n));
    // ...or by a periodic sweep.
    CHECK(a.on_text(framing::announce(900, 2), t0) == Status::Pending);
    CHECK(budget->expire(t0 + 9s) == 0 && budget->used() == 900);
    CHECK(budget->expire(t0 + 11s) == 1 && budget->used() == 0);
    // A new text message ends the skipping of the dropped message's pieces.
    CHECK(a.on_text("hello", t0 + 11s) == Status::Plain);
    CHECK(a.on_binary("x", 1, t0 + 11s) == Status::Plain);
    // Destroyed mid-message: its reservation goes back.
    CHECK(b.on_text(framing::announce(700, 2), t0) == Status::Pending);
  }
  CHECK(budget->used() == 0);
}

static void test_sigcheck()
{
  using namespace pointcast::sigcheck;
  CHECK(valid_utf8("plain") && valid_utf8("\xc3\xa9t\xc3\xa9") && valid_utf8("\xf0\x9f\x98\x80"));
  CHECK(!valid_utf8("\xc3"));             // cut short
  CHECK(!valid_utf8("\xc0\xaf"));         // overlong '/'
  CHECK(!valid_utf8("\xe0\x80\xaf"));     // overlong
  CHECK(!valid_utf8("\xed\xb0\x80"));     // lone surrogate U+DC00
  CHECK(!valid_utf8("\xf4\x90\x80\x80")); // past U+10FFFF
  CHECK(!valid_utf8("\xff"));

  const std::string sdp = "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=caf\xc3\xa9\r\nt=0 0\r\n";
  CHECK(!check_sdp("offer", sdp) && !check_sdp("answer", sdp));
  CHECK(check_sdp("pranswer", sdp)->find("expected offer or answer") != std::string::npos);
  CHECK(check_sdp("offer", "hello")->find("v=0") != std::string::npos);
  CHECK(check_sdp("offer", sdp + std::string("a=x\0y\r\n", 8))->find("NUL") != std::string::npos);
  CHECK(check_sdp("offer", sdp + "a=\x1b[2J\r\n")->find("control character") != std::string::npos);
  CHECK(check_sdp("offer", sdp + "a=\xed\xa0\x80\r\n")->find("UTF-8") != std::string::npos);
  CHECK(check_sdp("offer", sdp + std::string(kMaxSdpBytes, 'a'))->find("limit 65536") !=
        std::string::npos);

  const std::string cand = "candidate:1 1 UDP 2015363327 127.0.0.1 40000 typ host";
  CHECK(!check_candidate("0", 0, cand) && !check_candidate("", -1, "a=" + cand) &&
        !check_candidate("0", 0, ""));
  // CR/LF would become SDP lines of the sender's choosing once merged into an SDP
  CHECK(check_candidate("0", 0, cand + "\r\na=fingerprint:x")->find("control character") !=
        std::string::npos);
  CHECK(check_candidate("0", 0, "typ host")->find("candidate:") != std::string::npos);
  CHECK(check_candidate("0", 0, cand + std::string(1024, ' '))->find("limit 1024") !=
        std::string::npos);
  CHECK(check_candidate(std::string(300, 'm'), 0, cand)->find("sdpMid") != std::string::npos);
  CHECK(check_candidate("0", 5000, cand)->find("out of range") != std::string::npos);
  CHECK(check_candidate(std::string("a\0", 2), 0, cand)->find("NUL") != std::string::npos);

  CHECK(!check_id("peer id", "cam-1") && !check_id("peer id", "\xc3\xa9"));
  CHECK(check_id("peer id", "")->find("empty") != std::string::npos);
  CHECK(check_id("peer id", "a\nb")->find("control") != std::string::npos);
  CHECK(check_id("peer id", std::string(257, 'x'))->find("limit 256") != std::string::npos);
  CHECK(check_id("peer id", "\xed\xb0\x80x")->find("UTF-8") != std::string::npos);

  CHECK(has_escaped_nul("{\"sdp\":\"v=0\\u0000\"}") && has_escaped_nul("\\\\\\u0000"));
  CHECK(!has_escaped_nul("{\"sdp\":\"a\\\\u0000\"}") && !has_escaped_nul("u0000") &&
        !has_escaped_nul(""));
  CHECK(printable("a\nb\x1b[2J\\ \xc3\xa9\xff") == "a\\nb\\x1b[2J\\\\ \xc3\xa9\\xff");
  CHECK(printable(std::string(300, 'x'), 10) == std::string(10, 'x') + "...");

  // Lines: bounded, the over-long one skipped without being kept, CRLF accepted, split reads.
  LineSplitter split(16);
  std::vector<std::string> lines;
  int overlong = 0;
  auto on_line = [&](std::string &l) {
    lines.push_back(l);
    return true;
  };
  auto on_long = [&] {
    overlong++;
    return true;
  };
  std::string big(1 << 20, 'x');
  split.feed("one\r\ntw", 7, on_line, on_long);
  split.feed("o\n", 2, on_line, on_long);
  split.feed(big.data(), big.size(), on_line, on_long);
  CHECK(split.buffered() == 0);
  split.feed(big.data(), big.size(), on_line, on_long);
  split.feed("tail\nsixteen-bytes-ok\nseventeen-bytes-x\nlast", 44, on_line, on_long);
  CHECK(overlong == 2);
  CHECK(lines.size() == 3 && lines[0] == "one" && lines[1] == "two" &&
        lines[2] == "sixteen-bytes-ok");
  split.feed("\n", 1, on_line, on_long);
  CHECK(lines.size() == 4 && lines[3] == "last");
  // a callback can stop the feed (the connection was closed)
  LineSplitter stop(100);
  int seen = 0;
  stop.feed(
      "a\nb\nc\n", 6, [&](std::string &) { return ++seen < 2; }, on_long);
  CHECK(seen == 2);
}

static const char *kOffer =
    "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE video0 application1\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:video0\r\na=rtpmap:96 "
    "VP8/90000\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:application1\r\n"
    "a=sctp-port:5000\r\na=max-message-size:262144\r\n";

static void test_sdp()
{
  CHECK(sdp::max_message_size(kOffer) == 262144);
  CHECK(sdp::max_message_size("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n") ==
        65536);
  CHECK(sdp::max_message_size("v=0\nm=application 9 x\na=max-message-size:0\n") == 0);
  // An attribute in another section does not count.
  CHECK(sdp::max_message_size("v=0\nm=video 9 x\na=max-message-size:5\n") == 65536);
  CHECK(sdp::media_count(kOffer) == 2);
  // One line splitter for every SDP reader (CRLF or LF, empty lines dropped).
  auto lines = sdp::lines("v=0\r\n\r\nm=video 9 x\na=mid:0");
  CHECK(lines.size() == 3 && lines[0] == "v=0" && lines[1] == "m=video 9 x" &&
        lines[2] == "a=mid:0");
  CHECK(sdp::candidate_value("a=candidate:1 1 UDP 1 1.2.3.4 5 typ host") ==
        "candidate:1 1 UDP 1 1.2.3.4 5 typ host");
  CHECK(sdp::candidate_value("candidate:1") == "candidate:1");
  auto mids = sdp::mids(kOffer);
  CHECK(mids.size() == 2 && mids[0] == "video0" && mids[1] == "application1");

  std::string full = sdp::with_candidates(
      kOffer,
      {{0, "candidate:1 1 UDP 2015363327 127.0.0.1 40000 typ host"},
       {0, "a=candidate:2 1 TCP 1015021823 127.0.0.1 9 typ host tcptype active"},
       {1, "candidate:3 1 UDP 2015363327 127.0.0.1 40001 typ host"}});
  auto video = full.find("m=video");
  auto app = full.find("m=application");
  auto c1 = full.find("a=candidate:1 ");
  auto c2 = full.find("a=candidate:2 ");
  auto c3 = full.find("a=candidate:3 ");
  CHECK(c1 != std::string::npos && c1 > video && c1 < app);
  CHECK(c2 != std::string::npos && c2 > c1 && c2 < app);
  CHECK(c3 != std::string::npos && c3 > app);
  CHECK(full.find("a=a=") == std::string::npos);
  CHECK(full.find("a=end-of-candidates\r\nm=application") != std::string::npos);
  CHECK(full.size() > 2 && full.substr(full.size() - 2) == "\r\n");
  // Idempotent: sections that already have candidates are left alone.
  CHECK(sdp::with_candidates(full, {{0, "candidate:9 1 UDP 1 127.0.0.1 1 typ host"}}) == full);
}

// Merge (the daemon's POST /offer answer): by index, else by mid; once; no end-of-candidates.
static void test_sdp_merge()
{
  const std::string answer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\n"
                             "a=candidate:1 1 UDP 1 10.0.0.1 1 typ host\r\n"
                             "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:d\r\n";
  auto merged = sdp::with_candidates(answer,
                                     {{0, "candidate:1 1 UDP 1 10.0.0.1 1 typ host"},
                                      {0, "candidate:2 1 UDP 1 10.0.0.2 2 typ host"},
                                      {-1, "a=candidate:3 1 UDP 1 10.0.0.3 3 typ host", "d"},
                                      {7, "candidate:4 1 UDP 1 10.0.0.4 4 typ host", "d"},
                                      {-1, "candidate:5 1 UDP 1 10.0.0.5 5 typ host", "nope"},
                                      {-1, "candidate:6 1 UDP 1 10.0.0.6 6 typ host"},
                                      {-1, "", "d"}},
                                     sdp::Fill::Merge);
  const std::string want = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\n"
                           "a=candidate:1 1 UDP 1 10.0.0.1 1 typ host\r\n"
                           "a=candidate:2 1 UDP 1 10.0.0.2 2 typ host\r\n"
                           "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:d\r\n"
                           "a=candidate:3 1 UDP 1 10.0.0.3 3 typ host\r\n"
                           "a=candidate:4 1 UDP 1 10.0.0.4 4 typ host\r\n";
  CHECK(merged == want);
  if (merged != want) std::fprintf(stderr, "merged:\n%s\n", merged.c_str());
  CHECK(sdp::with_candidates(merged, {{1, "candidate:3 1 UDP 1 10.0.0.3 3 typ host"}},
                             sdp::Fill::Merge) == merged);
}

// aiortc 1.4's offer: one BUNDLE group, separate ICE credentials per section.
static void test_split_ice_bundle()
{
  const std::string aiortc =
      "v=0\r\na=group:BUNDLE 0 1\r\nm=video 9 UDP/TLS/RTP/SAVPF 97\r\na=mid:0\r\n"
      "a=ice-ufrag:aaaa\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\n"
      "a=ice-ufrag:bbbb\r\n";
  std::string fixed = sdp::drop_bundle_with_split_ice(aiortc);
  CHECK(fixed.find("a=group:BUNDLE") == std::string::npos);
  CHECK(fixed.find("a=ice-ufrag:bbbb\r\n") != std::string::npos);
  CHECK(sdp::media_count(fixed) == 2);
  // A proper bundle (one ufrag) is left alone, byte for byte.
  const std::string good =
      "v=0\r\na=group:BUNDLE 0 1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:aaaa\r\n"
      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:aaaa\r\n";
  CHECK(sdp::drop_bundle_with_split_ice(good) == good);
}

// webrtcbin 1.22's re-offer once connected (taken from a run; candidates and codecs cut).
static void test_reoffer_keeps_bundle()
{
  const std::string reoffer =
      "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE video0 application1 "
      "video3\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=setup:active\r\na=sendrecv\r\n"
      "a=mid:video0\r\n"
      "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\n"
      "a=bundle-only\r\na=mid:application1\r\na=sctp-port:5000\r\n"
      "m=video 0 UDP/TLS/RTP/SAVPF 98\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\na=bundle-only\r\n"
      "a=sendrecv\r\na=mid:video3\r\na=rtcp-mux-only\r\n";
  std::string fixed = sdp::keep_bundle_in_reoffer(reoffer);
  // Every m-line and the group kept; one port, one DTLS role (the one in use), no bundle-only.
  CHECK(sdp::mids(fixed) == std::vector<std::string>({"video0", "application1", "video3"}));
  CHECK(fixed.find("a=group:BUNDLE video0 application1 video3\r\n") != std::string::npos);
  CHECK(fixed.find("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n") != std::string::npos);
  CHECK(fixed.find("m=video 9 UDP/TLS/RTP/SAVPF 98\r\n") != std::string::npos);
  CHECK(fixed.find("a=setup:actpass") == std::string::npos);
  CHECK(fixed.find("a=bundle-only") == std::string::npos);
  size_t n = 0;
  for (size_t at = 0; (at = fixed.find("a=setup:active\r\n", at)) != std::string::npos; at++) n++;
  CHECK(n == 3);
  CHECK(fixed.find("a=sctp-port:5000\r\n") != std::string::npos);
  CHECK(sdp::keep_bundle_in_reoffer(fixed) == fixed);
  // A first offer (actpass everywhere) is left alone, as is SDP without a group.
  std::string first = reoffer;
  first.replace(first.find("a=setup:active"), 14, "a=setup:actpass");
  CHECK(sdp::keep_bundle_in_reoffer(first) == first);
  const std::string ungrouped = "v=0\r\nm=video 9 RTP/AVP 96\r\na=setup:active\r\na=mid:0\r\n"
                                "m=video 0 RTP/AVP 97\r\na=setup:actpass\r\na=mid:1\r\n";
  CHECK(sdp::keep_bundle_in_reoffer(ungrouped) == ungrouped);
}

// The codec table: every lookup finds the same row, and the RTP caps carry what webrtcbin needs.
static void test_codec_table()
{
  for (auto &c : codecs::all()) {
    CHECK(codecs::by_name(c.name) == &c);
    CHECK(codecs::by_encoded(c.encoded) == &c);
    CHECK(codecs::by_encoding(c.encoding) == &c);
    CHECK(c.encoder && c.payloader && c.depayloader && c.clock_rate > 0);
  }
  CHECK(codecs::by_name("VP8") == codecs::by_name("vp8")); // case-insensitive
  CHECK(codecs::by_encoding("opus") && !codecs::by_encoding("opus")->video);
  CHECK(!codecs::by_name("av1") && !codecs::by_encoded("video/x-raw"));
  CHECK(codecs::rtp_caps(*codecs::by_name("vp8"), 98) ==
        "application/x-rtp,media=video,encoding-name=VP8,payload=98,clock-rate=90000,"
        "rtcp-fb-nack-pli=(boolean)true,rtcp-fb-ccm-fir=(boolean)true");
  CHECK(codecs::rtp_caps(*codecs::by_name("h264"), 96).find("packetization-mode=(string)1") !=
        std::string::npos);
  CHECK(codecs::by_name("h264")->parser != nullptr);
}

int main()
{
  test_announcement_roundtrip();
  test_reassembly();
  test_reassembly_errors();
  test_reassembly_bounds();
  test_sigcheck();
  test_sdp();
  test_sdp_merge();
  test_split_ice_bundle();
  test_reoffer_keeps_bundle();
  test_codec_table();
  if (check_failures()) {
    std::fprintf(stderr, "%d check(s) failed\n", check_failures());
    return 1;
  }
  std::printf("all rtc core checks passed\n");
  return 0;
}
