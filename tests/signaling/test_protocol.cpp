// SPDX-License-Identifier: LGPL-2.1-or-later
// Room protocol: every message type round-trips, every malformed input gets its error code.
#include "protocol.h"

#include <glib.h>
#include <json-glib/json-glib.h>

#include <random>
#include <string>

using namespace pointcast::protocol;
using namespace std::string_literals;

static Message must_parse(const char *text)
{
  ParseResult r = parse(text);
  if (!r.ok())
    g_error("parse(%s) failed: %s %s", text, r.error.code.c_str(), r.error.message.c_str());
  return *r.message;
}

static void expect_error(const std::string &str, const char *code)
{
  const char *text = str.c_str();
  ParseResult r = parse(str);
  if (r.ok()) g_error("parse(%s) unexpectedly succeeded", text);
  if (r.error.code != code)
    g_error("parse(%s): code %s, expected %s (%s)", text, r.error.code.c_str(), code,
            r.error.message.c_str());
  g_assert_false(r.error.message.empty());
}

static void test_register()
{
  auto m = std::get<Register>(
      must_parse(R"({"type":"register","client_id":"a","room_id":"r1","client_type":"browser"})"));
  g_assert_cmpstr(m.client_id.c_str(), ==, "a");
  g_assert_cmpstr(m.room_id.c_str(), ==, "r1");
  g_assert_cmpstr(m.client_type.c_str(), ==, "browser");
  auto d = std::get<Register>(must_parse(R"({"type":"register","client_id":"b"})"));
  g_assert_cmpstr(d.room_id.c_str(), ==, "default");
  g_assert_cmpstr(d.client_type.c_str(), ==, "unknown");
  auto back = std::get<Register>(must_parse(serialize(m).c_str()));
  g_assert_cmpstr(back.client_type.c_str(), ==, "browser");
  g_assert_cmpstr(type_name(m), ==, "register");
}

static void test_sdp()
{
  auto m = std::get<Sdp>(must_parse(
      R"({"type":"offer","target_id":"b","sdp":{"type":"offer","sdp":"v=0\r\n"},"extra":1})"));
  g_assert_cmpstr(m.target_id->c_str(), ==, "b");
  g_assert_false(m.from_id.has_value());
  g_assert_cmpstr(m.sdp.sdp.c_str(), ==, "v=0\r\n");
  g_assert_cmpstr(type_name(m), ==, "offer");
  // Bare SDP string, as some peers send it.
  auto a = std::get<Sdp>(must_parse(R"({"type":"answer","sdp":"v=0\r\n","trickle":false})"));
  g_assert_cmpstr(a.sdp.type.c_str(), ==, "answer");
  g_assert_false(a.target_id.has_value());
  g_assert_true(a.trickle.has_value() && !*a.trickle);
  a.from_id = "x\"y";
  auto back = std::get<Sdp>(must_parse(serialize(a).c_str()));
  g_assert_cmpstr(back.from_id->c_str(), ==, "x\"y");
  g_assert_cmpstr(back.sdp.sdp.c_str(), ==, "v=0\r\n");
  g_assert_true(back.trickle.has_value() && !*back.trickle);
}

static void test_candidate()
{
  auto c = std::get<Candidate>(must_parse(
      R"({"type":"ice_candidate","target_id":"b","candidate":{"candidate":"candidate:1 1 UDP 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}})"));
  g_assert_cmpint(*c.candidate.sdp_mline_index, ==, 0);
  g_assert_cmpstr(c.candidate.sdp_mid->c_str(), ==, "0");
  auto back = std::get<Candidate>(must_parse(serialize(c).c_str()));
  g_assert_cmpstr(back.candidate.candidate.c_str(), ==, c.candidate.candidate.c_str());
  auto end = std::get<Candidate>(must_parse(R"({"type":"ice_candidate","candidate":null})"));
  g_assert_true(end.candidate.candidate.empty());
  auto end2 = std::get<Candidate>(
      must_parse(R"({"type":"ice_candidate","candidate":{"candidate":"","sdpMid":null}})"));
  g_assert_true(end2.candidate.candidate.empty());
  g_assert_cmpstr(type_name(end2), ==, "ice_candidate");
}

static void test_server_messages()
{
  Registered r{"me", "room", {{"a", "browser"}, {"b", "gstreamer"}}};
  auto back = std::get<Registered>(must_parse(serialize(r).c_str()));
  g_assert_cmpuint(back.peers.size(), ==, 2);
  g_assert_cmpstr(back.peers[1].client_id.c_str(), ==, "b");
  g_assert_cmpstr(back.peers[1].client_type.c_str(), ==, "gstreamer");
  auto j = std::get<PeerJoined>(must_parse(serialize(PeerJoined{"a", "browser"}).c_str()));
  g_assert_cmpstr(j.client_type.c_str(), ==, "browser");
  auto l = std::get<PeerLeft>(must_parse(serialize(PeerLeft{"a"}).c_str()));
  g_assert_cmpstr(l.client_id.c_str(), ==, "a");
  auto e = std::get<Error>(must_parse(error_json("bad_json", "line 1: \"oops\"\n").c_str()));
  g_assert_cmpstr(e.code.c_str(), ==, "bad_json");
  g_assert_cmpstr(e.message.c_str(), ==, "line 1: \"oops\"\n");
  // Control characters are escaped so the output stays one valid JSON line.
  std::string s = error_json("c",
                             std::string("a\x01"
                                         "b"));
  g_assert_null(strchr(s.c_str(), '\x01'));
  g_assert_true(std::get<Error>(must_parse(s.c_str())).message ==
                std::string("a\x01"
                            "b"));
}

static void test_append_from_id()
{
  const char *in =
      R"( {"type":"offer","target_id":"b","sdp":{"type":"offer","sdp":"x"},"extra":[1,{"k":"}"}]} )";
  std::string out = append_from_id(in, "a\\b");
  auto m = std::get<Sdp>(must_parse(out.c_str()));
  g_assert_cmpstr(m.from_id->c_str(), ==, "a\\b");
  // Extra members the sender added survive the relay.
  g_autoptr(JsonParser) p = json_parser_new();
  g_assert_true(json_parser_load_from_data(p, out.c_str(), -1, nullptr));
  JsonObject *o = json_node_get_object(json_parser_get_root(p));
  g_assert_true(json_object_has_member(o, "extra"));
}

static void test_errors()
{
  expect_error("", code::kBadJson);
  expect_error("{", code::kBadJson);
  expect_error("{\"type\":\"register\",}", code::kBadJson);
  expect_error("[1,2]", code::kNotObject);
  expect_error("42", code::kNotObject);
  expect_error("\"register\"", code::kNotObject);
  expect_error("null", code::kNotObject);
  expect_error(std::string(100000, '[').c_str(), code::kBadJson); // no stack overflow
  std::string deep = R"({"type":"register","client_id":"a","x":)" + std::string(40, '[') +
      std::string(40, ']') + "}";
  expect_error(deep.c_str(), code::kBadJson);
  std::string ok =
      R"({"type":"register","client_id":"a","x":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})";
  g_assert_true(parse(ok).ok()); // brackets inside strings do not count
  expect_error("{}", code::kMissingType);
  expect_error(R"({"type":7})", code::kMissingType);
  expect_error(R"({"type":"hello"})", code::kUnknownType);
  expect_error(R"({"type":"register"})", code::kMissingField);
  expect_error(R"({"type":"register","client_id":null})", code::kMissingField);
  expect_error(R"({"type":"register","client_id":5})", code::kBadField);
  expect_error(R"({"type":"register","client_id":""})", code::kBadField);
  expect_error(R"({"type":"register","client_id":"a","room_id":["r"]})", code::kBadField);
  expect_error(R"({"type":"register","client_id":"a","client_type":{}})", code::kBadField);
  std::string longid = R"({"type":"register","client_id":")" + std::string(300, 'x') + "\"}";
  expect_error(longid.c_str(), code::kBadField);
  expect_error(R"({"type":"offer","target_id":"b"})", code::kMissingField);
  expect_error(R"({"type":"offer","target_id":"b","sdp":5})", code::kBadField);
  expect_error(R"({"type":"offer","target_id":"b","sdp":{"type":"offer"}})", code::kMissingField);
  expect_error(R"({"type":"offer","target_id":"b","sdp":{"type":"answer","sdp":"v=0"}})",
               code::kBadField);
  expect_error(R"({"type":"offer","target_id":"b","sdp":""})", code::kBadField);
  expect_error(R"({"type":"answer","target_id":3,"sdp":"v=0"})", code::kBadField);
  expect_error(R"({"type":"answer","sdp":"v=0","trickle":"no"})", code::kBadField);
  expect_error(R"({"type":"ice_candidate","target_id":"b"})", code::kMissingField);
  expect_error(R"({"type":"ice_candidate","candidate":"candidate:1"})", code::kBadField);
  expect_error(R"({"type":"ice_candidate","candidate":{"sdpMid":"0"}})", code::kMissingField);
  expect_error(R"({"type":"ice_candidate","candidate":{"candidate":"candidate:1"}})",
               code::kBadField);
  expect_error(R"({"type":"ice_candidate","candidate":{"candidate":"c","sdpMLineIndex":"0"}})",
               code::kBadField);
  expect_error(R"({"type":"ice_candidate","candidate":{"candidate":"c","sdpMLineIndex":-1}})",
               code::kBadField);
  expect_error(R"({"type":"ice_candidate","candidate":{"candidate":"c","sdpMLineIndex":1.5}})",
               code::kBadField);
  expect_error(R"({"type":"registered","client_id":"a","room_id":"r"})", code::kMissingField);
  expect_error(R"({"type":"registered","client_id":"a","room_id":"r","peers":[1]})",
               code::kBadField);
  expect_error(R"({"type":"peer_left"})", code::kMissingField);
  expect_error(R"({"type":"error"})", code::kMissingField);
}

// Texts that two JSON readers could read differently are refused before any of them reads it.
static void test_hostile()
{
  // A lone surrogate escape decodes to bytes that are not UTF-8 (the daemon used to relay them
  // in peer_joined, and every client in the room dropped with 1007).
  expect_error(R"({"type":"register","client_id":"\udc00x"})", code::kBadField);
  expect_error(R"({"type":"register","client_id":"a\ud800"})", code::kBadField);
  expect_error(R"({"type":"register","client_id":"a\ud800\u0041"})", code::kBadField);
  expect_error(R"({"type":"offer","target_id":"b","sdp":"v=0","x":"\udfff"})", code::kBadField);
  g_assert_true(parse(R"({"type":"register","client_id":"\ud83d\ude00"})").ok()); // a pair is fine
  // NUL: json-glib's key "type\u0000" is "type", a browser's is not (forged peer_left).
  expect_error(R"({"type":"offer","target_id":"b","sdp":"v=0","type\u0000":"peer_left"})",
               code::kBadField);
  expect_error(R"({"type":"register","client_id":"a\u0000b"})", code::kBadField);
  expect_error("{\"type\":\"register\",\"client_id\":\"a\0b\"}"s, code::kBadJson);
  expect_error(std::string("abc\0def", 7), code::kBadJson);
  // Duplicates: readers differ on which one wins.
  expect_error(R"({"type":"offer","type":"peer_left","client_id":"x"})", code::kBadJson);
  expect_error(R"({"type":"offer","target_id":"b","sdp":{"sdp":"v=0","sdp":"v=1"}})",
               code::kBadJson);
  expect_error(R"({"type":"register","client_id":"a","x":1,"\u0078":2})", code::kBadJson);
  std::string dupkey = std::string(63, 'k') + "\u00e9";
  ParseResult dup = parse("{\"" + dupkey + "\":1,\"" + dupkey + "\":2}");
  g_assert_true(utf8_valid(dup.error.message)); // the name is cut on a character boundary
  // json-glib's own extensions never reach it.
  expect_error(R"({'type':'register','client_id':'a'})", code::kBadJson);
  expect_error(R"({"type":"register",/* c */"client_id":"a"})", code::kBadJson);
  expect_error("{\"type\":\"register\",\"client_id\":\"a\"} // c", code::kBadJson);
  expect_error(R"({"type":"register","client_id":"a",})", code::kBadJson);
  expect_error("\xef\xbb\xbf{\"type\":\"register\",\"client_id\":\"a\"}", code::kBadJson); // BOM
  expect_error("not json at all", code::kBadJson);
  // Size-independent depth bound, also for bodies that are not protocol messages.
  g_assert_true(check_json(std::string(1000000, '[')).has_value());
  g_assert_true(check_json(std::string(32, '[') + std::string(32, ']')) == std::nullopt);
  g_assert_true(check_json(std::string(33, '[') + std::string(33, ']')).has_value());
  // UTF-8: NUL is a character; surrogates and overlongs are not.
  g_assert_true(utf8_valid(std::string("a\0b", 3)));
  g_assert_true(utf8_valid("\xc3\xa9\xf0\x9f\x98\x80"));
  g_assert_false(utf8_valid("\xed\xb0\x80"));
  g_assert_false(utf8_valid("\xc0\x80"));
  g_assert_false(utf8_valid("\xf4\x90\x80\x80"));
  g_assert_false(utf8_valid("abcdefgh\xc3"));
  // Tokens: equal only when equal (length included), whatever the prefix in common.
  g_assert_true(secret_equal("s3cret", "s3cret"));
  for (const char *no : {"", "s", "s3cre", "s3cret!", "S3cret", "s3cres"})
    g_assert_false(secret_equal(no, "s3cret"));
  g_assert_false(secret_equal(std::string_view("s3cret\0", 7), "s3cret"));
  g_assert_true(secret_equal("", ""));
}

// Whatever the fast path accepts, json-glib accepts with the same result.
static int g_fast_accepted = 0;
static void agree(const std::string &text)
{
  auto fast = parse_fast(text);
  if (!fast) return;
  g_fast_accepted++;
  if (auto bad = check_json(text))
    g_error("fast path accepted what the validator refuses (%s): %s", bad->message.c_str(),
            text.c_str());
  ParseResult full = parse_full(text);
  if (!full.ok())
    g_error("fast path accepted what json-glib refuses (%s): %s", full.error.message.c_str(),
            text.c_str());
  std::string a = serialize(*fast), b = serialize(*full.message);
  if (a != b)
    g_error("fast and full parsers differ on %s:\n%s\n%s", text.c_str(), a.c_str(), b.c_str());
}

static void test_fast_path()
{
  const char *common[] = {
      R"({"type":"offer","target_id":"b","sdp":{"type":"offer","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"}})",
      R"({"type": "answer", "target_id": "a", "sdp": {"sdp": "v=0\r\n", "type": "answer"}, "trickle": false})",
      R"({"type":"answer","sdp":"v=0\r\n","extra":[1,2.5e3,{"k":null,"t":true}],"z":-0.0})",
      R"({"type":"ice_candidate","target_id":"b","candidate":{"candidate":"candidate:1 1 udp 2122260223 192.168.1.10 54321 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abc"}})",
      R"({"type":"ice_candidate","candidate":null})",
      R"({"type":"ice_candidate","candidate":{"candidate":"","sdpMid":null,"sdpMLineIndex":null}})",
      R"({"type":"register","client_id":"caf\u00e9 \ud83d\ude00 \"q\" \\ \/","room_id":"r\n1","client_type":"browser"})",
      "{\"type\":\"register\",\"client_id\":\"\xc3\xa9t\xc3\xa9\"}",
      R"(  {"client_id":"x","type":"register","room_id":null}  )",
  };
  for (const char *c : common) {
    if (!parse_fast(c)) g_error("fast path refused a common message: %s", c);
    agree(c);
  }
  // Mutations of every common message at every position: the fast path may refuse, but never
  // accept what json-glib refuses or read it differently.
  const char subst[] = {'"', '\\', '{', '}', '[', ']',    ',', ':',   ' ',
                        'x', '0',  '-', 'e', '.', '\x01', 'u', '\xc3'};
  for (const char *c : common) {
    std::string base = c;
    for (std::size_t i = 0; i < base.size(); i++) {
      agree(base.substr(0, i));
      agree(base.substr(0, i) + base.substr(i + 1));
      for (char ch : subst) {
        std::string m = base;
        m[i] = ch;
        agree(m);
      }
    }
  }
  // Random multi-byte mutations (fixed seed): inserts, deletes and replacements that favour the
  // characters JSON cares about, including escapes.
  std::mt19937 rng(20261123);
  const std::string alphabet =
      "\"\\{}[],: \t\nxu0123456789abcdefABCDEF-+.eEtrunlsf/\x01\x7f\xc3\xa9";
  for (int iter = 0; iter < 30000; iter++) {
    std::string m = common[rng() % (sizeof common / sizeof common[0])];
    int edits = 1 + rng() % 3;
    for (int e = 0; e < edits && !m.empty(); e++) {
      std::size_t pos = rng() % m.size();
      char ch = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
      case 0: m.insert(m.begin() + pos, ch); break;
      case 1: m.erase(pos, 1); break;
      default: m[pos] = ch;
      }
    }
    agree(m);
  }
  // The comparison really ran on many mutated inputs the fast path accepted.
  g_assert_cmpint(g_fast_accepted, >, 5000);
  // Duplicates and unusual types go to the full parser, which still answers.
  g_assert_false(parse_fast(R"({"type":"offer","type":"answer","sdp":"v=0"})").has_value());
  g_assert_false(parse_fast(R"({"type":"peer_left","client_id":"a"})").has_value());
  g_assert_true(parse(R"({"type":"peer_left","client_id":"a"})").ok());
  g_assert_false(parse_fast("{\"type\":\"register\",\"client_id\":\"\xff\"}").has_value());
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/protocol/register", test_register);
  g_test_add_func("/protocol/sdp", test_sdp);
  g_test_add_func("/protocol/candidate", test_candidate);
  g_test_add_func("/protocol/server-messages", test_server_messages);
  g_test_add_func("/protocol/append-from-id", test_append_from_id);
  g_test_add_func("/protocol/errors", test_errors);
  g_test_add_func("/protocol/fast-path", test_fast_path);
  g_test_add_func("/protocol/hostile", test_hostile);
  return g_test_run();
}
