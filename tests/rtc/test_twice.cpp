// SPDX-License-Identifier: LGPL-2.1-or-later
/* Small messages sent twice on a partially reliable pointcast-ack3 channel (rtc/ackproto.h): the
 * tagged form gives back the exact bytes, the receiver's window lets each sequence number through
 * once and never grows or holds back real messages whatever numbers a peer sends, and the copies'
 * byte budget holds. */
#include "rtc/ackproto.h"

#include "check.h"

#include <cstdio>
#include <random>
#include <string>
#include <vector>

using namespace pointcast::ackproto;

static void test_round_trip()
{
  std::mt19937 rng(13);
  for (size_t n = 0; n <= 900; n++) {
    std::string bytes(n, '\0');
    for (auto &c : bytes) c = char(rng());
    uint64_t seq = n * 7919;
    std::string text = tagged(seq, bytes.data(), bytes.size());
    CHECK(is_tagged(text));
    auto t = parse_tagged(text);
    CHECK(t && t->seq == seq && t->data == bytes);
  }
  CHECK(base64("", 0).empty());
  CHECK(base64("f", 1) == "Zg==" && base64("fo", 2) == "Zm8=" && base64("foo", 3) == "Zm9v");
  CHECK(tagged(5, "hi", 2) == "{\"pointcast\":\"msg\",\"seq\":5,\"data\":\"aGk=\"}");
  CHECK(parse_tagged(tagged(kMaxIndex, "x", 1)));
}

static void test_malformed_refused()
{
  const char *bad[] = {
      "{\"pointcast\":\"msg\"}",
      "{\"pointcast\":\"msg\",\"seq\":,\"data\":\"\"}",
      "{\"pointcast\":\"msg\",\"seq\":-1,\"data\":\"\"}",
      "{\"pointcast\":\"msg\",\"seq\":01,\"data\":\"\"}",
      "{\"pointcast\":\"msg\",\"seq\":1.5,\"data\":\"\"}",
      "{\"pointcast\":\"msg\",\"seq\":9007199254740992,\"data\":\"\"}", // 2^53
      "{\"pointcast\":\"msg\",\"seq\":18446744073709551616,\"data\":\"\"}",
      "{\"pointcast\":\"msg\",\"seq\":1 ,\"data\":\"\"}",
      "{\"pointcast\":\"msg\",\"seq\":1,\"data\":\"Zg=\"}",  // not a multiple of 4
      "{\"pointcast\":\"msg\",\"seq\":1,\"data\":\"Zh==\"}", // non-zero padding bits
      "{\"pointcast\":\"msg\",\"seq\":1,\"data\":\"Z===\"}",
      "{\"pointcast\":\"msg\",\"seq\":1,\"data\":\"Zg==Zg==\"}", // padding inside
      "{\"pointcast\":\"msg\",\"seq\":1,\"data\":\"Zm9v\n\"}",
      "{\"pointcast\":\"msg\",\"seq\":1,\"data\":\"Zm9v\"",
      "{\"pointcast\":\"msg\",\"seq\":1,\"data\":\"Zm9v\"} ",
      "{\"pointcast\":\"msg\",\"seq\":1,\"data\":\"Zm9v\",\"x\":1}",
      "{\"pointcast\":\"msg\",\"seq\":1,\"data\":Zm9v}",
  };
  for (const char *b : bad) {
    CHECK(is_tagged(b));
    if (parse_tagged(b)) std::fprintf(stderr, "accepted: %s\n", b);
    CHECK(!parse_tagged(b));
  }
  CHECK(!is_tagged("{\"pointcast\":\"ack\",\"received\":1}"));
  CHECK(!is_tagged("msg"));
  std::string huge(std::string(kTaggedPrefix) + std::string(100000, '9') + ",\"data\":\"\"}");
  CHECK(!parse_tagged(huge));
}

// What the receiver hands on of a sequence of arrivals.
static std::vector<uint64_t> pass(Window &w, const std::vector<uint64_t> &in)
{
  std::vector<uint64_t> out;
  for (uint64_t q : in)
    if (w.fresh(q)) out.push_back(q);
  return out;
}

static void test_once_each()
{
  // Original then copy, some of either lost, some copies overtaking.
  Window w;
  std::vector<uint64_t> in, want;
  std::mt19937 rng(1);
  for (uint64_t q = 0; q < 5000; q++) {
    bool a = rng() % 10, b = rng() % 10;
    if (a) in.push_back(q);
    if (b) in.push_back(q);
    if (a || b) want.push_back(q);
  }
  CHECK(pass(w, in) == want);
  // Reordered within the span: each once.
  Window r;
  CHECK((pass(r, {5, 3, 4, 3, 5, 0, 1, 2, 4, 1}) == std::vector<uint64_t>{5, 3, 4, 0, 1, 2}));
}

static void test_hostile_numbers()
{
  // A jump to the largest number moves the span: real messages far below it are delivered (not
  // held back as duplicates), and within the span still once each.
  Window w;
  CHECK(w.fresh(10) && !w.fresh(10));
  CHECK(w.fresh(kMaxIndex));
  CHECK(w.fresh(11) && w.fresh(11)); // older than the span: cannot tell, delivered
  CHECK(!w.fresh(kMaxIndex) && w.fresh(kMaxIndex - 1) && !w.fresh(kMaxIndex - 1));
  CHECK(w.fresh(kMaxIndex - Window::kSpan + 1) && w.fresh(kMaxIndex - Window::kSpan));
  // Random numbers: no state beyond the fixed bitmap; each value inside the span once.
  static_assert(sizeof(Window) <= 160, "the window is a fixed bitmap");
  std::mt19937_64 rng(7);
  Window v;
  for (int i = 0; i < 200000; i++) v.fresh(rng() % (kMaxIndex + 1));
  // After the noise, a genuine stream starting anywhere is delivered in full.
  Window g;
  for (int i = 0; i < 1000; i++) g.fresh(rng() % 100000000);
  int out = 0;
  for (uint64_t q = 200000000; q < 200003000; q++) out += g.fresh(q) + g.fresh(q);
  CHECK(out == 3000);
}

static void test_bucket()
{
  // 16 KiB/s, 16 KiB held: 1000-byte copies at 100 Hz for 10 s take 16 + 160 KiB at most.
  Bucket b(16384, 16384);
  uint64_t taken = 0;
  for (int i = 0; i < 1000; i++) taken += b.take(1000, int64_t(i) * 10000) ? 1000 : 0;
  CHECK(taken <= 16384 + 16384 * 10);
  CHECK(taken >= 16384 * 10 - 2000);
  // Idle time is not saved up beyond the burst.
  Bucket c(1000, 2000);
  CHECK(c.take(2000, 0) && !c.take(1, 0));
  CHECK(c.take(2000, 100000000) && !c.take(1, 100000000));
  CHECK(c.take(500, 100500000) && !c.take(100, 100500000));
}

int main()
{
  test_round_trip();
  test_malformed_refused();
  test_once_each();
  test_hostile_numbers();
  test_bucket();
  int failures = check_failures();
  if (failures) std::fprintf(stderr, "%d check(s) failed\n", failures);
  return failures != 0;
}
