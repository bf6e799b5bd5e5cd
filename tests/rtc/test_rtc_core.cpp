/* Pure C++ parts of rtcpeer: message framing for large messages, SDP helpers. */
#include "rtc/codecs.h"
#include "rtc/framing.h"
#include "rtc/sdputil.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static int failures = 0;
#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                                   \
    }                                                                               \
  } while (0)

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
  for (size_t i = 0; i < msg.size(); i++)
    msg[i] = uint8_t(i * 7 + 3);
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

static const char *kOffer =
    "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE video0 application1\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:video0\r\na=rtpmap:96 VP8/90000\r\n"
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
  auto mids = sdp::mids(kOffer);
  CHECK(mids.size() == 2 && mids[0] == "video0" && mids[1] == "application1");

  std::string full = sdp::with_candidates(
      kOffer, {{0, "candidate:1 1 UDP 2015363327 127.0.0.1 40000 typ host"},
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
      "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE video0 application1 video3\r\n"
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
  for (size_t at = 0; (at = fixed.find("a=setup:active\r\n", at)) != std::string::npos; at++)
    n++;
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
  test_sdp();
  test_split_ice_bundle();
  test_reoffer_keeps_bundle();
  test_codec_table();
  if (failures) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("all rtc core checks passed\n");
  return 0;
}
