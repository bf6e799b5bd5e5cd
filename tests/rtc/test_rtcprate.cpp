// SPDX-License-Identifier: LGPL-2.1-or-later
/* The RTCP bandwidth rtcprate gives each rtpsession (gst/rtc/rtcprate.h), with several webrtcbins
 * in one process as a sender with many viewers (or a process of many viewers) has them: a session
 * that receives reports fast from its jitterbuffer's start, one that only sends drops to the
 * send-only rate once connected 2 s. */
#include "rtc/rtcprate.h"

#include "rtc/fec.h"

#include <gst/check/gstcheck.h>

#include <vector>

// rtcprate reads how many packets FEC rebuilt in front of a jitterbuffer; these have no FEC
// receiver in front of them (fec.cpp would bring in the whole element).
guint64 pointcast::rtc::fec_recovered(GstElement *)
{
  return 0;
}

using namespace pointcast::rtc;

namespace {
// A webrtcbin's shape as rtcprate sees it: a bin holding an rtpbin named "rtpbin" with session 0.
struct FakeWebrtc {
  GstElement *bin = nullptr, *rtpbin = nullptr, *session = nullptr, *jb = nullptr;
  FakeWebrtc(const FakeWebrtc &) = delete;
  FakeWebrtc()
  {
    bin = gst_bin_new(nullptr);
    rtpbin = gst_element_factory_make("rtpbin", "rtpbin");
    gst_bin_add(GST_BIN(bin), rtpbin);
    GstPad *pad = gst_element_request_pad_simple(rtpbin, "send_rtp_sink_0");
    fail_unless(pad != nullptr);
    gst_object_unref(pad);
    g_signal_emit_by_name(rtpbin, "get-session", 0u, &session);
    fail_unless(session != nullptr);
    rtcprate::configure_session(session); // as webrtcbin's deep-element-added does
  }
  ~FakeWebrtc()
  {
    if (jb) gst_object_unref(jb);
    gst_object_unref(session);
    gst_object_unref(bin);
  }
  void receive()
  {
    jb = gst_element_factory_make("rtpjitterbuffer", nullptr);
    gst_object_ref_sink(jb);
    rtcprate::watch_jitterbuffer(rtpbin, jb, 0);
  }
  int bandwidth() const
  {
    int rr = 0, rs = 0;
    g_object_get(session, "rtcp-rr-bandwidth", &rr, "rtcp-rs-bandwidth", &rs, nullptr);
    fail_unless_equals_int(rr, rs);
    return rr;
  }
};
} // namespace

// Every session of the process follows its own link, not only the first one made (whose
// rtpsession happens to be named after its id).
GST_START_TEST(test_receiving_sessions_in_one_process)
{
  std::vector<FakeWebrtc> peers(4);
  for (auto &p : peers) fail_unless_equals_int(p.bandwidth(), 5000);
  for (auto &p : peers) p.receive();
  for (size_t i = 0; i < peers.size(); i++)
    fail_unless(peers[i].bandwidth() == 40000, "session %zu: %d bit/s at its start", i,
                peers[i].bandwidth());
}
GST_END_TEST;

GST_START_TEST(test_send_only_after_connected)
{
  FakeWebrtc sends, receives;
  receives.receive();
  rtcprate::connected(sends.bin);
  rtcprate::connected(receives.bin);
  g_usleep(500 * 1000);
  fail_unless_equals_int(sends.bandwidth(), 5000); // not yet: media may still come in
  g_usleep(2000 * 1000);
  fail_unless_equals_int(sends.bandwidth(), 800);
  fail_unless_equals_int(receives.bandwidth(), 40000); // its first 5 s
}
GST_END_TEST;

static rtcprate::LinkStats jitter_ms(guint64 ms)
{
  rtcprate::LinkStats s;
  s.jitter_ns = ms * GST_MSECOND;
  return s;
}

// A loaded host's scheduling jitter now and then (single checks of 10-17 ms, the fan-out
// viewers at load average 18-24) keeps RTCP slow; a link whose jitter stays up does not.
GST_START_TEST(test_jitter_twice_in_a_row)
{
  rtcprate::Trouble t;
  for (guint64 ms : {4, 14, 5, 17, 3, 12, 9})
    fail_unless(t.check(jitter_ms(ms)) == nullptr, "%" G_GUINT64_FORMAT " ms alone", ms);
  fail_unless(t.check(jitter_ms(12)) == nullptr);
  fail_unless(t.check(jitter_ms(11)) != nullptr, "over 10 ms twice in a row");
  fail_unless(t.check(jitter_ms(13)) != nullptr, "and on while it stays up");
  fail_unless(t.check(jitter_ms(2)) == nullptr);
}
GST_END_TEST;

// A queue building fast (jitter over 30 ms), a loss, a repair: fast at the first check.
GST_START_TEST(test_trouble_at_once)
{
  rtcprate::Trouble t;
  fail_unless(t.check(jitter_ms(2)) == nullptr);
  fail_unless(t.check(jitter_ms(35)) != nullptr, "a high jitter alone");
  fail_unless(t.check(jitter_ms(2)) == nullptr);
  rtcprate::LinkStats s = jitter_ms(2);
  s.lost = 1;
  fail_unless(t.check(s) != nullptr, "a lost packet");
  fail_unless(t.check(s) == nullptr, "no news: the same count");
  s.repaired = 1;
  fail_unless(t.check(s) != nullptr, "a retransmitted packet");
  s.rebuilt = 3;
  fail_unless(t.check(s) != nullptr, "packets rebuilt from FEC");
  fail_unless(t.check(s) == nullptr);
}
GST_END_TEST;

static Suite *rtcprate_suite()
{
  Suite *s = suite_create("rtcprate");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 20);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_receiving_sessions_in_one_process);
  tcase_add_test(tc, test_send_only_after_connected);
  tcase_add_test(tc, test_jitter_twice_in_a_row);
  tcase_add_test(tc, test_trouble_at_once);
  return s;
}

GST_CHECK_MAIN(rtcprate)
