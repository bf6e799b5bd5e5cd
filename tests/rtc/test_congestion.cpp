// SPDX-License-Identifier: LGPL-2.1-or-later
/* The congestion controller (gst/rtc/congestion.h) against a simulated link on a virtual clock:
 * a sender of 30 fps video at the controller's target (each frame a burst of <= 1200-byte
 * packets, as rtcpeer sends them), a bottleneck with a drop-tail queue, random loss, one-way
 * delay, outages, and TWCC feedback every 100 ms that reports every packet up to the highest
 * one received. What is checked is what a viewer notices: the rate the sender settles at, how
 * long the queue (latency) stays high, and that loss alone does not starve the video. */
#include "rtc/congestion.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <random>
#include <vector>

static int failures = 0;
#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

using namespace pointcast;

namespace {

struct Link {
  double rate_bps = 10e6; // bottleneck
  double queue_ms = 100;  // drop-tail queue, as pcnet-router's queue-ms
  double delay_ms = 25;   // one way, after the bottleneck (both directions)
  double loss = 0;        // random, before the queue
  double jitter_ms = 0;   // N(0, jitter) added to each packet's delay, order kept (pcnet-router's)
  bool down = false;      // outage: everything dropped
};

struct Sim {
  cc::Controller ctl;
  Link link;
  std::mt19937 rng{42};
  int64_t now = 0; // us
  struct Sent {
    int64_t send = 0, recv = -1;
    uint32_t size = 0;
  };
  std::vector<Sent> sent;
  int64_t link_free_at = 0; // when the bottleneck has sent everything queued
  int64_t last_recv = 0;    // jitter keeps the order: no packet arrives before the one ahead
  size_t reported = 0;      // packets up to here were in a feedback
  struct Pending {
    int64_t at;
    std::vector<cc::PacketResult> packets;
  };
  std::deque<Pending> feedback;
  // Per 100 ms: the target, and the queuing delay a packet sent then met.
  std::vector<double> targets, queue_ms;
  double app_limit_bps = 0;               // an encoder that cannot fill its target (0: no limit)
  int64_t stall_from = -1, stall_to = -1; // the receiver does not run: arrivals wait until then
  std::deque<int64_t> keyframes; // the first frame sent at or after each has KEYFRAME_BYTES
  uint32_t keyframe_bytes = 0;

  explicit Sim(cc::Config c) : ctl(c) {}

  void send_frame()
  {
    double bps = ctl.target_bps();
    if (app_limit_bps > 0) bps = std::min(bps, app_limit_bps);
    auto bytes = uint32_t(bps / 8 / 30);
    if (!keyframes.empty() && now >= keyframes.front()) {
      bytes = keyframe_bytes; // all at once, as rtcpeer's payloader sends a frame (no pacer)
      keyframes.pop_front();
    }
    while (bytes > 0) {
      uint32_t size = std::min<uint32_t>(bytes, 1200);
      bytes -= size;
      Sent s{now, -1, size + 40};
      std::uniform_real_distribution<double> u(0, 1);
      bool drop = link.down || u(rng) < link.loss;
      if (!drop) {
        int64_t start = std::max(now, link_free_at);
        if (double(start - now) / 1000 > link.queue_ms) {
          drop = true; // the queue is full
        } else {
          link_free_at = start + int64_t(s.size * 8 / link.rate_bps * 1e6);
          double extra = link.delay_ms;
          if (link.jitter_ms > 0) extra += std::normal_distribution<double>(0, link.jitter_ms)(rng);
          s.recv = std::max(last_recv, link_free_at + int64_t(std::max(0.0, extra) * 1000));
          last_recv = s.recv;
          if (s.recv >= stall_from && s.recv < stall_to) s.recv = stall_to;
        }
      }
      sent.push_back(s);
    }
  }

  // The receiver's TWCC feedback at time `now`: every packet up to the highest one arrived.
  void make_feedback()
  {
    size_t highest = reported;
    for (size_t i = reported; i < sent.size(); i++)
      if (sent[i].recv >= 0 && sent[i].recv <= now) highest = i + 1;
    if (highest == reported) return;
    Pending fb{now + int64_t(link.delay_ms * 1000), {}};
    for (size_t i = reported; i < highest; i++) {
      bool arrived = sent[i].recv >= 0 && sent[i].recv <= now;
      fb.packets.push_back({sent[i].send, arrived ? sent[i].recv : 0, sent[i].size, !arrived});
    }
    reported = highest;
    if (!link.down) feedback.push_back(std::move(fb));
  }

  // Runs for SECONDS; CHANGE(t in s) may alter the link on the way.
  void run(double seconds, const std::function<void(double)> &change = {})
  {
    int64_t end = now + int64_t(seconds * 1e6);
    for (; now < end; now += 1000) {
      if (change) change(double(now) / 1e6);
      if (now % 33'333 < 1000) send_frame();
      if (now % 100'000 == 0) {
        make_feedback();
        targets.push_back(ctl.target_bps());
        queue_ms.push_back(std::max<double>(0, double(link_free_at - now) / 1000));
        if (getenv("CC_TRACE"))
          std::fprintf(stderr,
                       "t=%.1f target=%u delay=%u loss_t=%u acked=%u q=%.1f qest=%.1f st=%.1f "
                       "j=%.1f use=%d loss=%.3f\n",
                       now / 1e6, ctl.target_bps(), ctl.delay_target_bps(), ctl.loss_target_bps(),
                       ctl.acked_bps(), queue_ms.back(), ctl.queuing_delay_ms(),
                       ctl.standing_queue_ms(), ctl.jitter_ms(), int(ctl.usage()),
                       ctl.loss_fraction());
      }
      while (!feedback.empty() && feedback.front().at <= now) {
        ctl.on_feedback(now, feedback.front().packets);
        feedback.pop_front();
      }
    }
  }

  // Largest queuing delay met by packets sent in [from, to) seconds.
  double max_queue(double from, double to) const
  {
    double m = 0;
    for (size_t i = size_t(from * 10); i < std::min(queue_ms.size(), size_t(to * 10)); i++)
      m = std::max(m, queue_ms[i]);
    return m;
  }
  double mean_target(double from, double to) const
  {
    double sum = 0;
    int n = 0;
    for (size_t i = size_t(from * 10); i < std::min(targets.size(), size_t(to * 10)); i++)
      sum += targets[i], n++;
    return n ? sum / n : 0;
  }
};

cc::Config config(uint32_t start, uint32_t min = 100'000, uint32_t max = 4'000'000)
{
  cc::Config c;
  c.start_bps = start;
  c.min_bps = min;
  c.max_bps = max;
  return c;
}

// An uncongested link: from 1 Mbit/s the target climbs to the maximum, the queue stays empty.
void test_grows_on_a_clean_link()
{
  Sim sim(config(1'000'000));
  sim.link.rate_bps = 20e6;
  sim.run(25);
  CHECK(sim.ctl.target_bps() == 4'000'000);
  CHECK(sim.max_queue(0, 25) < 10);
  // Multiplicative, not a jump: after 2 s still well below the maximum.
  CHECK(sim.targets[20] < 1'500'000);
}

// Noisy video at 2 Mbit/s into a 1 Mbit/s link (the bench's noisy-rate1M): within 3 s the target
// is under the link rate and stays near it; the 100 ms queue empties and stays short.
void test_settles_under_a_bottleneck()
{
  Sim sim(config(2'000'000));
  sim.link.rate_bps = 1e6;
  sim.link.delay_ms = 0.5;
  sim.run(30);
  std::fprintf(stderr, "1 Mbit/s: target at 3 s %.0f, mean 5-30 s %.0f, queue max 3-30 s %.1f ms\n",
               sim.targets[30], sim.mean_target(5, 30), sim.max_queue(3, 30));
  CHECK(sim.targets[30] <= 1'000'000);
  CHECK(sim.mean_target(5, 30) > 650'000); // uses most of the link
  CHECK(sim.mean_target(5, 30) <= 1'000'000);
  CHECK(sim.max_queue(5, 30) < 80);
}

// A 4 -> 0.5 Mbit/s drop at 10 s: within 2 s the target is at or under 0.5 Mbit/s and the queue
// (latency) is back under 100 ms; afterwards it stays near the new rate.
void test_follows_a_drop()
{
  Sim sim(config(2'000'000));
  sim.link.rate_bps = 4e6;
  sim.run(30, [&](double t) { sim.link.rate_bps = t < 10 ? 4e6 : 0.5e6; });
  std::fprintf(stderr, "4 -> 0.5 Mbit/s: before %.0f, at +2 s %.0f, queue 12-30 s %.1f ms\n",
               sim.targets[99], sim.targets[120], sim.max_queue(12, 30));
  CHECK(sim.targets[99] > 2'500'000); // it had climbed towards the 4 Mbit/s link
  CHECK(sim.targets[120] <= 500'000);
  CHECK(sim.max_queue(12, 30) < 100);
  CHECK(sim.mean_target(15, 30) > 300'000);
}

// 2 % random loss alone is not congestion: the target still reaches the maximum.
void test_random_loss_is_not_congestion()
{
  Sim sim(config(1'000'000));
  sim.link.rate_bps = 20e6;
  sim.link.loss = 0.02;
  sim.run(30);
  std::fprintf(stderr, "2 %% loss: target %u, loss seen %.3f\n", sim.ctl.target_bps(),
               sim.ctl.loss_fraction());
  CHECK(sim.ctl.target_bps() >= 3'000'000);
}

// Heavy loss (20 %) brings the target down (loss-based controller), to its floor in time.
/* Delay jitter alone is not congestion (pcnet-router's "delay=25 jitter=8"): the 10 s minimum of
 * the one-way delay sits ~3 sigma under its mean, so a guard on the delay above that minimum
 * fired on every few late groups, and the target fell below the viewer floor (frames skipped).
 * With 2 % loss on top too. */
void test_jitter_is_not_congestion()
{
  for (double loss : {0.0, 0.02}) {
    for (double jitter : {4.0, 8.0}) {
      Sim sim(config(1'000'000));
      sim.link.rate_bps = 20e6;
      sim.link.jitter_ms = jitter;
      sim.link.loss = loss;
      sim.run(30);
      double low = *std::min_element(sim.targets.begin() + 10, sim.targets.end());
      std::fprintf(stderr, "jitter %.0f ms, loss %.0f %%: target %u, lowest from 1 s %.0f\n",
                   jitter, loss * 100, sim.ctl.target_bps(), low);
      CHECK(sim.ctl.target_bps() >= 3'000'000);
      CHECK(low >= 900'000); // never cut (far) below the start
    }
  }
}

// A real queue on a jittery link is still one: 8 ms of jitter on the 1 Mbit/s bottleneck and on
// the 4 -> 0.5 Mbit/s drop, the same bounds as without jitter.
void test_queue_under_jitter()
{
  Sim a(config(2'000'000));
  a.link.rate_bps = 1e6;
  a.link.jitter_ms = 8;
  a.run(30);
  std::fprintf(stderr, "1 Mbit/s + 8 ms jitter: target at 3 s %.0f, mean 5-30 s %.0f, queue %.1f\n",
               a.targets[30], a.mean_target(5, 30), a.max_queue(5, 30));
  CHECK(a.targets[30] <= 1'000'000);
  CHECK(a.mean_target(5, 30) > 600'000);
  CHECK(a.mean_target(5, 30) <= 1'000'000);
  CHECK(a.max_queue(5, 30) < 80);
  Sim b(config(2'000'000));
  b.link.rate_bps = 4e6;
  b.link.jitter_ms = 8;
  b.run(30, [&](double t) { b.link.rate_bps = t < 10 ? 4e6 : 0.5e6; });
  std::fprintf(stderr, "4 -> 0.5 Mbit/s + 8 ms jitter: before %.0f, at +2 s %.0f, queue %.1f ms\n",
               b.targets[99], b.targets[120], b.max_queue(12, 30));
  CHECK(b.targets[99] > 2'500'000);
  CHECK(b.targets[120] <= 500'000);
  // Probing near the link fills the jittery link's queue now and then: over seeds 1-12 the
  // largest queue 12-30 s was 84-111 ms (old controller) and 79-110 ms (loss recovery, which
  // reaches the delay-based phase sooner); 100 ms plus a frame is a full queue.
  CHECK(b.max_queue(12, 30) < 115);
  CHECK(b.mean_target(15, 30) > 300'000);
}

void test_heavy_loss_backs_off()
{
  Sim sim(config(2'000'000));
  sim.link.rate_bps = 20e6;
  sim.link.loss = 0.20;
  sim.run(5);
  CHECK(sim.ctl.target_bps() < 1'000'000);
  CHECK(sim.ctl.target_bps() >= 100'000); // never below min
}

// A 3 s outage is not congestion: the target after it is what it was before.
void test_outage_keeps_the_rate()
{
  Sim sim(config(1'000'000, 100'000, 1'000'000));
  sim.link.rate_bps = 20e6;
  sim.run(16, [&](double t) { sim.link.down = t >= 10 && t < 13; });
  std::fprintf(stderr, "outage: before %.0f, 1 s after %.0f\n", sim.targets[99], sim.targets[140]);
  CHECK(sim.targets[99] == 1'000'000);
  CHECK(sim.targets[140] >= 900'000);
}

// Without TWCC, receiver reports alone: 20 % loss cuts, 1 % does not.
void test_receiver_reports_alone()
{
  cc::Controller c(config(2'000'000));
  for (int i = 0; i < 10; i++) c.on_receiver_report(i * 1'000'000, 0.2, 60);
  CHECK(c.target_bps() < 1'000'000);
  CHECK(c.rtt_ms() == 60);
  cc::Controller d(config(2'000'000));
  for (int i = 0; i < 10; i++) d.on_receiver_report(i * 1'000'000, 0.01, 60);
  CHECK(d.target_bps() >= 2'000'000);
}

// The bounds hold whatever happens; a start outside them is clamped.
void test_bounds()
{
  cc::Controller c(config(10'000'000, 200'000, 800'000));
  CHECK(c.target_bps() == 800'000);
  Sim sim(config(500'000, 300'000, 600'000));
  sim.link.rate_bps = 150e3; // below min: the target stays at min, not below
  sim.run(10);
  CHECK(sim.ctl.target_bps() == 300'000);
  for (double t : sim.targets) CHECK(t >= 300'000 && t <= 600'000);
}

// An encoder that sends less than its target (a still scene) does not earn a higher target.
void test_application_limited()
{
  Sim sim(config(300'000));
  sim.link.rate_bps = 20e6;
  sim.app_limit_bps = 200'000;
  sim.run(20);
  std::fprintf(stderr, "app-limited 200k: target %u\n", sim.ctl.target_bps());
  CHECK(sim.ctl.target_bps() <= 350'000);
}

// A receiver descheduled for 150 ms (a busy machine) makes one burst look queued. A stream far
// below its target must not fall to a fraction of its own rate for that: at most halved.
void test_receiver_stall_is_not_a_collapse()
{
  Sim sim(config(2'000'000));
  sim.link.rate_bps = 20e6;
  sim.app_limit_bps = 200'000;
  sim.stall_from = 5'000'000;
  sim.stall_to = 5'150'000;
  sim.run(7);
  std::fprintf(stderr, "stall: target before %.0f, after %u\n", sim.targets[49],
               sim.ctl.target_bps());
  CHECK(sim.ctl.target_bps() >= 1'000'000);
}

/* net-adapt-drop's failure (issue 13): on a 0.5 Mbit/s link with a 100 ms (6 KB) queue a keyframe
 * of 13 KB (11 packets at once, ~9x a frame at the target) overflows the queue, and the one the
 * receiver asks for in its place 200 ms later too: 20-30 % of the window lost, all of it those
 * frames' packets. That is our own bursts, not a link that carries less than we send: the
 * target must stay near where it was (main: cut to 0.75x, 0.83x 2 s later; live it fell to
 * 135 kbit/s, below the 150 kbit/s frame floor, and climbed back at 8 %/s). */
void test_keyframe_burst_is_not_congestion()
{
  Sim sim(config(275'000));
  sim.link.rate_bps = 0.5e6;
  sim.keyframes = {5'000'000, 5'200'000};
  sim.keyframe_bytes = 13'000;
  sim.run(9);
  double before = sim.targets[49];
  double low = *std::min_element(sim.targets.begin() + 50, sim.targets.end());
  std::fprintf(stderr, "keyframe bursts: target before %.0f, lowest after %.0f, at +2 s %.0f\n",
               before, low, sim.targets[70]);
  CHECK(before >= 350'000);
  CHECK(low >= 0.85 * before);
  CHECK(sim.targets[70] >= 0.9 * before);
}

/* Loss that stops: a loss episode (40 % for 1 s on a fast link) cuts the loss-based target by
 * several times; once it is over the target is back near where it was within 2 s, not at 8 %/s
 * (live: +3 % per encoder step from 135 kbit/s, 78 % of the frames scored). */
void test_recovers_after_loss_stops()
{
  Sim sim(config(1'000'000, 100'000, 1'000'000));
  sim.link.rate_bps = 20e6;
  sim.run(14, [&](double t) { sim.link.loss = t >= 10 && t < 11 ? 0.40 : 0; });
  double before = sim.targets[99];
  double low = *std::min_element(sim.targets.begin() + 100, sim.targets.end());
  std::fprintf(stderr, "40 %% loss for 1 s: before %.0f, lowest %.0f, at +3 s %.0f\n", before, low,
               sim.targets[130]);
  CHECK(low < 0.6 * before);               // it did back off
  CHECK(sim.targets[130] >= 0.8 * before); // and came back
}

/* A start above the link (a viewer joining a room at the room's estimate, on a 250 kbit/s link
 * with a 50 ms queue): the first losses come from our own overshoot. Once they stop, the
 * recovery must go back to what the link delivered, not to the start estimate (the old rule:
 * 0.85x where the episode began, 318-405 kbit/s here after every loss-free window, a sawtooth
 * of losses; live, the slow viewer of net-viewers-fast-slow lost half its packets). */
void test_recovery_stays_under_the_link()
{
  for (uint32_t start : {450'000u, 600'000u, 1'000'000u}) {
    Sim sim(config(start));
    sim.link.rate_bps = 250e3;
    sim.link.queue_ms = 50;
    sim.run(12);
    double high = *std::max_element(sim.targets.begin() + 40, sim.targets.end());
    std::fprintf(stderr, "start %u into 250 kbit/s: highest target after 4 s %.0f, mean %.0f\n",
                 start, high, sim.mean_target(4, 12));
    CHECK(high <= 275'000);
    CHECK(sim.mean_target(4, 12) >= 150'000); // and does not starve
  }
}

void test_allocate()
{
  // The encoder follows the slowest viewer above the floor; the one below gets fewer frames.
  auto a = cc::allocate({2'000'000, 800'000, 150'000}, 300'000, 100'000, 4'000'000);
  CHECK(a.encoder_bps == 800'000);
  CHECK(a.keep.size() == 3);
  CHECK(a.keep[0] == 1.0 && a.keep[1] == 1.0);
  CHECK(a.keep[2] == 0.125 || a.keep[2] == 0.25); // 150k of 800k: under a quarter
  CHECK(a.keep[2] <= 150.0 / 800.0);
  // Everyone below the floor: the fastest of them sets the rate and gets every frame.
  auto b = cc::allocate({200'000, 120'000}, 300'000, 100'000, 4'000'000);
  CHECK(b.encoder_bps == 200'000 && b.keep[0] == 1.0 && b.keep[1] == 0.5);
  // Clamped to [min, max].
  auto c = cc::allocate({9'000'000}, 300'000, 100'000, 4'000'000);
  CHECK(c.encoder_bps == 4'000'000 && c.keep[0] == 1.0);
  CHECK(cc::allocate({}, 300'000, 100'000, 4'000'000).encoder_bps == 4'000'000);
}

void test_frame_fraction()
{
  CHECK(cc::frame_fraction(500'000, 300'000) == 1.0);
  CHECK(cc::frame_fraction(150'000, 300'000) == 0.5);
  CHECK(cc::frame_fraction(10'000, 300'000) == 0.2);
  CHECK(cc::frame_fraction(10'000, 0) == 1.0);
}

// Temporal layers: the base layer fits the slowest viewer that cannot take everything, within
// libwebrtc's 40 % share and above video-bitrate-min; a viewer gets the layers whose measured
// rate fits its estimate, with hysteresis.
void test_layer_targets()
{
  using L = cc::Layering;
  auto alone = L::targets(2'000'000, 0, 100'000);
  CHECK(alone[0] == 800'000 && alone[1] == 1'200'000 && alone[2] == 2'000'000);
  auto slow = L::targets(2'000'000, 200'000, 100'000);
  CHECK(slow[0] == 170'000); // 85 % of the slow viewer's estimate
  CHECK(slow[1] > slow[0] && slow[1] < slow[2] && slow[2] == 2'000'000);
  CHECK(L::targets(2'000'000, 50'000, 100'000)[0] == 100'000); // never under min
  // Nor up to the total: libvpx refuses targets that do not strictly increase in kbit/s (an
  // encoder held at video-bitrate-min stopped the pipeline).
  for (uint32_t total : {80'000u, 100'000u, 100'999u, 2'500u, 0u}) {
    auto t = L::targets(total, 50'000, 100'000);
    CHECK(t[0] >= 1000 && t[0] % 1000 == 0 && t[1] % 1000 == 0);
    CHECK(t[0] / 1000 < t[1] / 1000 && t[1] / 1000 < t[2] / 1000);
  }
  CHECK(L::targets(80'000, 50'000, 100'000)[0] == 78'000);
  std::array<double, 3> rates{150'000, 700'000, 1'500'000};
  CHECK(L::choose(2'000'000, rates, 2) == 2);
  CHECK(L::choose(200'000, rates, 2) == 0);
  CHECK(L::choose(50'000, rates, 0) == 0);  // the base layer always
  CHECK(L::choose(790'000, rates, 0) == 1); // up: 10 % to spare
  CHECK(L::choose(770'000, rates, 0) == 0);
  CHECK(L::choose(710'000, rates, 1) == 1); // staying: it fits
  CHECK(L::choose(690'000, rates, 1) == 0);
  CHECK(L::kLayerId[0] == 0 && L::kDecimator[0] == L::kPeriod);
  // Keyframes: the slow viewer's 0.3 s, within 50-250 % of an average frame.
  CHECK(L::keyframe_pct(1'500'000, 0) == 250);
  CHECK(L::keyframe_pct(1'500'000, 150'000) == 90);
  CHECK(L::keyframe_pct(1'500'000, 20'000) == 50);
}

// One viewer's selector: down at once, up only at a sync frame of the new layer or a keyframe;
// what it passes of a 0 2 1 2 pattern is a quarter, a half, or all of the frames.
void test_layer_selector()
{
  using L = cc::Layering;
  auto run = [](cc::LayerSelector &sel, int wanted, int frames, bool sync) {
    int passed = 0;
    for (int i = 0; i < frames; i++)
      passed += sel.pass(L::kLayerId[i % L::kPeriod], sync, false, wanted);
    return passed;
  };
  cc::LayerSelector sel;
  CHECK(run(sel, 2, 40, true) == 40);
  CHECK(run(sel, 0, 40, true) == 10 && sel.layer() == 0);
  CHECK(run(sel, 1, 40, true) == 20 && sel.layer() == 1);
  // Without sync frames it stays down until a keyframe.
  CHECK(run(sel, 2, 40, false) == 20 && sel.layer() == 1);
  CHECK(sel.pass(2, false, true, 2) && sel.layer() == 2);
  CHECK(run(sel, 2, 8, false) == 8);
  CHECK(sel.dropped() == 30 + 20 + 20);
}

// The encoder's clock (cc::FrameClock): a gap of dropped frames does not show up as one long
// interval (libvpx would give the next frame the bits of all of them), steady dropping does
// (fewer frames, more bits each), timestamps only ever increase, and a discontinuity resyncs.
void test_frame_clock()
{
  const uint64_t frame = 1'000'000'000 / 30;
  cc::FrameClock c;
  uint64_t d = 0, prev = c.map(5 * frame, &d), prev_d = d;
  CHECK(prev == 5 * frame);
  double max_change = 0;
  auto feed = [&](uint64_t pts) {
    uint64_t shown = c.map(pts, &d);
    CHECK(shown > prev);
    max_change = std::max(max_change, std::fabs(double(shown - prev) / double(prev_d) - 1));
    prev = shown;
    prev_d = d;
  };
  for (uint64_t i = 6; i < 60; i++) feed(i * frame);
  feed(63 * frame); // two frames dropped
  for (uint64_t i = 64; i < 120; i++) feed(i * frame);
  CHECK(max_change < 0.05); // libvpx jumps at 10 %
  CHECK(std::llabs(int64_t(prev) - int64_t(119 * frame)) < int64_t(3 * frame));
  // Every other frame dropped for good: within 2 s the intervals are the real ones.
  for (uint64_t i = 120; i < 240; i += 2) feed(i * frame);
  CHECK(std::fabs(double(d) / double(2 * frame) - 1) < 0.05);
  CHECK(max_change < 0.05);
  // A jump backwards (a new segment) keeps the encoder's timestamps increasing.
  feed(10 * frame);
  feed(11 * frame);
}

} // namespace

int main()
{
  test_grows_on_a_clean_link();
  test_settles_under_a_bottleneck();
  test_follows_a_drop();
  test_random_loss_is_not_congestion();
  test_jitter_is_not_congestion();
  test_queue_under_jitter();
  test_heavy_loss_backs_off();
  test_outage_keeps_the_rate();
  test_receiver_reports_alone();
  test_bounds();
  test_application_limited();
  test_receiver_stall_is_not_a_collapse();
  test_keyframe_burst_is_not_congestion();
  test_recovers_after_loss_stops();
  test_recovery_stays_under_the_link();
  test_allocate();
  test_frame_fraction();
  test_layer_targets();
  test_layer_selector();
  test_frame_clock();
  if (failures) std::fprintf(stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
