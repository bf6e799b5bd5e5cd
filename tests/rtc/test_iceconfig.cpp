// SPDX-License-Identifier: LGPL-2.1-or-later
/* stun-server / turn-server values as rtcpeer checks them at start (gst/rtc/iceconfig.h): what
 * webrtcbin 1.22.0 would take silently and then never use must be refused with a reason. */
#include "rtc/iceconfig.h"

#include "check.h"

#include <string>

using namespace pointcast::rtc::iceconfig;

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

int main()
{
  test_stun();
  test_turn();
  test_relay_candidate();
  return check_failures() != 0;
}
