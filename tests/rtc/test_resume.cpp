// SPDX-License-Identifier: LGPL-2.1-or-later
/* The receiving side of a data channel stream continued on a rebuilt connection (rtc/ackproto.h):
 * what a sender that is the same process re-sends is delivered once, in order; a new process
 * takes everything; and a resume message is the remote's to write: malformed, misplaced or
 * lying ones are refused with a reason, never skip a message that was not delivered, and never
 * crash. */
#include "rtc/ackproto.h"

#include "check.h"

#include <cstdio>
#include <random>
#include <string>
#include <vector>

using namespace pointcast::ackproto;

namespace {

// Feeds n data messages to the channel; returns how many came out (were not duplicates).
int feed(Cursor &c, Stream &s, int n)
{
  int out = 0;
  for (int i = 0; i < n; i++) out += c.on_message(s);
  return out;
}

} // namespace

static void test_format()
{
  CHECK(ack(0) == "{\"pointcast\":\"ack\",\"received\":0}");
  CHECK(resume(42) == "{\"pointcast\":\"resume\",\"from\":42}");
  CHECK(parse_ack(ack(123456789)) == 123456789u);
  CHECK(!parse_ack("{\"pointcast\":\"ack\",\"received\":}"));
  CHECK(!parse_ack("{\"pointcast\":\"ack\",\"received\":12a}"));
  CHECK(is_resume(resume(7)));
  CHECK(is_resume("{\"pointcast\":\"resume\",junk"));
  CHECK(!is_resume("{\"pointcast\":\"ack\",\"received\":1}"));
  CHECK(!is_resume("resume"));
  CHECK(!is_resume(""));
}

// A path rebuild: the receiver is the same process and skips what it had received.
static void test_same_process_exactly_once()
{
  Stream s;
  Cursor c1;
  CHECK(feed(c1, s, 10) == 10);
  CHECK(s.delivered == 10);
  Cursor c2; // the sender had 7 acknowledged: it re-sends 7.. on the new channel
  auto v = c2.on_resume(s, resume(7));
  CHECK(v.accepted && v.skip == 3 && v.missing == 0);
  CHECK(!c2.on_message(s) && !c2.on_message(s) && !c2.on_message(s)); // 7, 8, 9 again
  CHECK(c2.on_message(s));                                            // 10: new
  CHECK(s.delivered == 11);
  // Everything acknowledged: a resume from the next index skips nothing.
  Cursor c3;
  v = c3.on_resume(s, resume(11));
  CHECK(v.accepted && v.skip == 0 && v.missing == 0);
  CHECK(feed(c3, s, 5) == 5 && s.delivered == 16);
}

// Rebuilt twice before the re-sent messages were acknowledged.
static void test_two_rebuilds()
{
  Stream s;
  Cursor c1;
  feed(c1, s, 10);
  Cursor c2;
  CHECK(c2.on_resume(s, resume(5)).skip == 5);
  CHECK(feed(c2, s, 3) == 0); // 5, 6, 7: duplicates; lost before 8 came
  Cursor c3;                  // the sender had 1 of them acknowledged: from 6
  auto v = c3.on_resume(s, resume(6));
  CHECK(v.accepted && v.skip == 4);
  CHECK(feed(c3, s, 4) == 0);
  CHECK(feed(c3, s, 2) == 2 && s.delivered == 12);
  // The second channel's resume never arrived (it died at once): the third's still counts.
  Stream t;
  Cursor d1;
  feed(d1, t, 10);
  Cursor d3;
  v = d3.on_resume(t, resume(8));
  CHECK(v.accepted && v.skip == 2);
  // Its resume arrived but no message: the third re-sends from the same place.
  Stream u;
  Cursor e1, e2, e3;
  feed(e1, u, 10);
  CHECK(e2.on_resume(u, resume(4)).skip == 6);
  v = e3.on_resume(u, resume(4));
  CHECK(v.accepted && v.skip == 6);
  CHECK(feed(e3, u, 7) == 1 && u.delivered == 11);
}

// A restarted receiver has no record: everything re-sent is delivered (at least once).
static void test_new_process_takes_everything()
{
  Stream s;
  Cursor c;
  auto v = c.on_resume(s, resume(1000));
  CHECK(v.accepted && v.skip == 0 && v.missing == 0);
  CHECK(feed(c, s, 20) == 20 && s.delivered == 1020);
}

// A restarted sender starts with data: a new stream, nothing skipped.
static void test_new_sender_new_stream()
{
  Stream s;
  Cursor c1, c2, c3;
  feed(c1, s, 50);
  CHECK(feed(c2, s, 5) == 5 && s.delivered == 5);
  // That new sender's own rebuild later continues its own numbering.
  CHECK(c3.on_resume(s, resume(3)).skip == 2);
}

// The sender re-sends from after what arrived: the gap is reported, nothing is skipped.
static void test_gap_reported()
{
  Stream s;
  Cursor c1, c2;
  feed(c1, s, 10);
  auto v = c2.on_resume(s, resume(15));
  CHECK(v.accepted && v.missing == 5 && v.skip == 0);
  CHECK(feed(c2, s, 3) == 3 && s.delivered == 18);
}

// What a hostile or broken peer might send: refused with a reason, then the channel's messages
// are delivered as a new stream (none skipped).
static void test_malformed_refused()
{
  const std::vector<std::string> bad = {
      "{\"pointcast\":\"resume\"}",
      "{\"pointcast\":\"resume\",\"from\":}",
      "{\"pointcast\":\"resume\",\"from\":-1}",
      "{\"pointcast\":\"resume\",\"from\":+1}",
      "{\"pointcast\":\"resume\",\"from\":1.5}",
      "{\"pointcast\":\"resume\",\"from\":1e3}",
      "{\"pointcast\":\"resume\",\"from\":007}",
      "{\"pointcast\":\"resume\",\"from\":\"7\"}",
      "{\"pointcast\":\"resume\",\"from\": 7}",
      "{\"pointcast\":\"resume\",\"from\":7 }",
      "{\"pointcast\":\"resume\",\"from\":7}}",
      "{\"pointcast\":\"resume\",\"from\":7",
      "{\"pointcast\":\"resume\",\"from\":7,\"x\":1}",
      "{\"pointcast\":\"resume\",\"from\":9007199254740992}",     // 2^53
      "{\"pointcast\":\"resume\",\"from\":18446744073709551616}", // 2^64
      "{\"pointcast\":\"resume\",\"from\":99999999999999999999999999999999}",
      std::string(kResumePrefix) + "7" + '\0' + "}",
      "{\"pointcast\":\"resume\",\"from\":\xd9\xa7}", // ARABIC-INDIC DIGIT SEVEN
      "{\"pointcast\":\"resume\",\"from\":" + std::string(100000, '9') + "}",
  };
  for (auto &text : bad) {
    CHECK(is_resume(text));
    Stream s;
    Cursor c1, c2;
    feed(c1, s, 10);
    auto v = c2.on_resume(s, text);
    if (v.accepted) std::fprintf(stderr, "accepted: %.80s\n", text.c_str());
    CHECK(!v.accepted && !v.reason.empty() && v.skip == 0);
    CHECK(feed(c2, s, 10) == 10); // not one skipped
  }
  // The largest index there is is taken.
  Stream s;
  Cursor c;
  CHECK(c.on_resume(s, resume(kMaxIndex)).accepted);
  CHECK(c.on_message(s) && s.delivered == kMaxIndex + 1);
}

// A resume anywhere but first changes nothing; a second one neither.
static void test_misplaced_refused()
{
  Stream s;
  Cursor c1, c2;
  feed(c1, s, 10);
  CHECK(c2.on_resume(s, resume(8)).skip == 2);
  auto v = c2.on_resume(s, resume(0)); // would skip ten more
  CHECK(!v.accepted && v.reason == "not the channel's first message");
  CHECK(feed(c2, s, 2) == 0 && feed(c2, s, 1) == 1);
  Cursor c3;
  c3.on_message(s);
  CHECK(!c3.on_resume(s, resume(0)).accepted);
  CHECK(feed(c3, s, 3) == 3);
}

// Going back before the previous channel's start cannot be a re-send of what it left: refused,
// and the channel is delivered in full.
static void test_going_back_refused()
{
  Stream s;
  Cursor c1, c2, c3;
  feed(c1, s, 100);
  CHECK(c2.on_resume(s, resume(90)).skip == 10);
  CHECK(feed(c2, s, 20) == 10);
  auto v = c3.on_resume(s, resume(0)); // would skip 110 delivered ones (and more)
  CHECK(!v.accepted && v.reason.find("goes back") != std::string::npos);
  CHECK(feed(c3, s, 50) == 50);
}

// Random bytes behind the prefix, and random sequences of resumes and messages: never a crash,
// never more skipped than was delivered on the stream before.
static void test_random()
{
  std::mt19937_64 rng(13);
  for (int i = 0; i < 20000; i++) {
    std::string text(kResumePrefix);
    int len = int(rng() % 24);
    for (int k = 0; k < len; k++) text += char(rng() % 3 ? '0' + rng() % 10 : rng() % 256);
    if (rng() % 2) text += '}';
    Stream s;
    Cursor c1, c2;
    feed(c1, s, int(rng() % 50));
    uint64_t before = s.delivered;
    auto v = c2.on_resume(s, text);
    CHECK(v.skip <= before);
    CHECK(v.accepted || (!v.reason.empty() && v.skip == 0));
  }
  for (int run = 0; run < 200; run++) {
    Stream s;
    uint64_t delivered = 0;
    for (int ch = 0; ch < 20; ch++) {
      Cursor c;
      if (rng() % 3) {
        auto v = c.on_resume(s, resume(rng() % (delivered + 5)));
        CHECK(v.skip <= delivered);
      }
      int out = feed(c, s, int(rng() % 10));
      CHECK(s.delivered >= uint64_t(out));
      delivered = s.delivered;
    }
  }
}

int main()
{
  test_format();
  test_same_process_exactly_once();
  test_two_rebuilds();
  test_new_process_takes_everything();
  test_new_sender_new_stream();
  test_gap_reported();
  test_malformed_refused();
  test_misplaced_refused();
  test_going_back_refused();
  test_random();
  int failures = check_failures();
  if (failures) std::fprintf(stderr, "%d check(s) failed\n", failures);
  return failures != 0;
}
