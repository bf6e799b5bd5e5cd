// SPDX-License-Identifier: LGPL-2.1-or-later
/* stun-server / turn-server values as rtcpeer checks them at start (gst/rtc/iceconfig.h): what
 * webrtcbin 1.22.0 would take silently and then never use must be refused with a reason. */
#include "rtc/iceconfig.h"
#include "rtc/turnprobe.h"

#include "check.h"

#include <cstring>
#include <string>

using namespace pointcast::rtc::iceconfig;
namespace turnprobe = pointcast::rtc::turnprobe;

static bool refused(const std::string &uri, const std::string &reason_part, bool turn = true)
{
  std::string error;
  bool ok = turn ? bool(parse_turn_list(uri, &error)) : bool(parse_stun(uri, &error));
  if (!ok && error.find(reason_part) == std::string::npos)
    std::fprintf(stderr, "'%s': reason '%s' lacks '%s'\n", uri.c_str(), error.c_str(),
                 reason_part.c_str());
  // The password never appears in a reason.
  if (!ok && error.find("s3cret") != std::string::npos)
    std::fprintf(stderr, "'%s': reason '%s' shows the password\n", uri.c_str(), error.c_str());
  return !ok && error.find(reason_part) != std::string::npos &&
      error.find("s3cret") == std::string::npos;
}

static void test_stun()
{
  std::string error;
  auto s = parse_stun("stun://10.0.0.1:19302", &error);
  CHECK(s && s->host == "10.0.0.1" && s->port == 19302 && s->display() == "stun://10.0.0.1:19302");
  s = parse_stun("stun://stun.example.org", &error);
  CHECK(s && s->host == "stun.example.org" && s->port == 3478);
  s = parse_stun("stun://[2001:db8::1]:3479", &error);
  CHECK(s && s->host == "2001:db8::1" && s->display() == "stun://[2001:db8::1]:3479");
  // RFC 7064's form (what browsers take) has no host for webrtcbin 1.22: silently nothing.
  CHECK(refused("stun:stun.example.org:3478", "write stun://HOST:PORT", false));
  CHECK(refused("stun.example.org:3478", "write stun://HOST:PORT", false));
  CHECK(refused("turn://u:p@10.0.0.1", "not a STUN URI", false));
  CHECK(refused("stun://10.0.0.1:99999", "not a URI", false));
  CHECK(refused("stun://10.0.0.1:0", "port 0", false));
  CHECK(refused("stun://10.0.0.1/x", "path", false));
  CHECK(refused("stun://u:s3cret@10.0.0.1", "no user or password", false));
  CHECK(refused("stun://10.0.0.1?transport=tcp", "query", false));
}

static void test_turn()
{
  std::string error;
  auto l = parse_turn_list("turn://pointcast:netlab-secret@10.99.1.1:3478", &error);
  CHECK(l && l->size() == 1);
  if (l && !l->empty()) {
    auto &t = l->front();
    CHECK(t.user == "pointcast" && t.password == "netlab-secret" && t.host == "10.99.1.1" &&
          t.port == 3478 && t.transport.empty());
    CHECK(t.display() == "turn://10.99.1.1:3478"); // no credentials in messages
  }
  auto t = parse_turn("turn://u:p@10.0.0.1?transport=tcp", &error);
  CHECK(t && t->port == 3478 && t->transport == "tcp" &&
        t->display() == "turn://10.0.0.1:3478?transport=tcp");
  t = parse_turn("turns://u:p@turn.example.org", &error);
  CHECK(t && t->port == 5349 && t->transport == "tls" &&
        t->display() == "turns://turn.example.org:5349");
  // Percent-encoded credentials are decoded as webrtcbin decodes them.
  t = parse_turn("turn://us%40er:p%3Aa%2Cb@10.0.0.1:3478", &error);
  CHECK(t && t->user == "us@er" && t->password == "p:a,b");
  // Several, for fallbacks from UDP to TCP to TLS.
  l = parse_turn_list("turn://u:p@10.0.0.1:3478, turn://u:p@10.0.0.1:3478?transport=tcp,"
                      "turns://u:p@10.0.0.1:5349",
                      &error);
  CHECK(l && l->size() == 3 && (*l)[1].transport == "tcp" && (*l)[2].transport == "tls");
  CHECK(l && (*l)[0].uri == "turn://u:p@10.0.0.1:3478"); // the URI itself goes to webrtcbin

  CHECK(refused("turn://10.0.0.1:3478", "no USER:PASSWORD@"));
  CHECK(refused("turn://user@10.0.0.1:3478", "no USER:PASSWORD@"));
  CHECK(refused("turn://user:@10.0.0.1:3478", "no USER:PASSWORD@"));
  CHECK(refused("turn:u:s3cret@10.0.0.1:3478", "not a TURN URI"));
  CHECK(refused("stun://10.0.0.1:3478", "not a TURN URI"));
  CHECK(refused("turn://u:s3cret@10.0.0.1:3478?transport=sctp", "transport='sctp'"));
  CHECK(refused("turn://u:s3cret@10.0.0.1:3478?proto=tcp", "unknown query key 'proto'"));
  CHECK(refused("turns://u:s3cret@10.0.0.1:5349?transport=udp", "takes no transport"));
  CHECK(refused("turn://u:s3cret@10.0.0.1:3478/x", "path"));
  CHECK(refused("turn://u:s3cret@10.0.0.1:3478,", "empty entry"));
  CHECK(refused("turn://u:s3cret@:3478", "no host"));
}

static void test_relay_candidate()
{
  CHECK(is_relay_candidate("candidate:7 1 UDP 8339455 10.99.2.1 49160 typ relay raddr 10.99.1.2 "
                           "rport 40000"));
  CHECK(is_relay_candidate("a=candidate:7 1 UDP 8339455 10.99.2.1 49160 typ relay"));
  CHECK(!is_relay_candidate("candidate:1 1 UDP 2015363327 10.99.1.2 40000 typ host"));
  CHECK(!is_relay_candidate("candidate:2 1 UDP 1677721855 1.2.3.4 40000 typ srflx raddr 10.0.0.1"));
}

static turnprobe::Bytes from_hex(const char *hex)
{
  turnprobe::Bytes out;
  for (size_t i = 0; hex[i] && hex[i + 1]; i += 2) {
    char two[3] = {hex[i], hex[i + 1], 0};
    out.push_back(uint8_t(std::strtoul(two, nullptr, 16)));
  }
  return out;
}

// The TURN probe's message coding (rtc/turnprobe.h) against RFC 5769's sample request.
static void test_stun_coding()
{
  using namespace turnprobe;
  auto sample = from_hex("000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420"
                         "636c69656e74002400046e0001ff80290008932ff9b151263b360006000965767"
                         "46a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"
                         "80280004e57a3bcf");
  CHECK(sample.size() == 20 + 0x58 && message_size(sample) == sample.size());
  // MESSAGE-INTEGRITY at offset 76: the HMAC of what precedes it, the length counting it.
  Bytes covered(sample.begin(), sample.begin() + 76);
  covered[3] = 76 - 20 + 24;
  std::string pw = "VOkJxbRl1RmTxUk/WvJxBt";
  Bytes mac = hmac_sha1(Bytes(pw.begin(), pw.end()), covered);
  CHECK(Bytes(sample.begin() + 80, sample.begin() + 100) == mac);
  CHECK(long_term_key("user", "realm", "pass") == from_hex("8493fbc53ba582fb4c044c456bdc40eb"));

  uint8_t txid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  Auth auth{"pointcast", "pointcast", "abcdef0123", long_term_key("pointcast", "pointcast", "x")};
  Bytes req = request(kAllocate, txid, &auth);
  CHECK(req.size() % 4 == 0 && message_size(req) == req.size());
  CHECK(req[0] == 0 && req[1] == 3 && req[20] == 0 && req[21] == 0x19 && req[24] == 17);
  // Its MESSAGE-INTEGRITY is the last attribute and verifies with the long-term key.
  size_t mi = req.size() - 24;
  CHECK(req[mi] == 0 && req[mi + 1] == 8 && req[mi + 3] == 20);
  Bytes head(req.begin(), req.begin() + long(mi));
  CHECK(Bytes(req.begin() + long(mi) + 4, req.end()) == hmac_sha1(auth.key, head));
  // A request is no response; a 401 with REALM and NONCE parses, for this txid only.
  CHECK(!parse(req, txid));
  Bytes resp = from_hex("0113002c"
                        "2112a442"
                        "0102030405060708090a0b0c"
                        "000900100000040155"
                        "6e617574686f72697a6564"           // 401 "Unauthorized"
                        "0014000a72656e64657a766f75730000" // REALM "rendezvous"
                        "00150004"
                        "6e6f6e63"); // NONCE "nonc"
  resp[3] = uint8_t(resp.size() - 20);
  auto r = parse(resp, txid);
  CHECK(r && !r->success && r->error == 401 && r->reason == "Unauthorized" &&
        r->realm == "rendezvous" && r->nonce == "nonc");
  uint8_t other[12] = {0};
  CHECK(!parse(resp, other));
}

int main()
{
  test_stun_coding();
  test_stun();
  test_turn();
  test_relay_candidate();
  return check_failures() != 0;
}
