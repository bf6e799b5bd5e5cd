// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/congestion.h"

#include <algorithm>
#include <cmath>

namespace pointcast::cc {

namespace {
constexpr int64_t kGroupUs = 5'000;        // packets sent within 5 ms: one group (GCC 5.2)
constexpr size_t kTrendWindow = 20;        // groups in the trendline regression
constexpr double kSmoothing = 0.9;         // of the accumulated delay
constexpr double kTrendGain = 4.0;         // GCC's threshold gain
constexpr int64_t kOveruseTimeUs = 10'000; // the trend must stay above for this long
// The queue guards sit above the path's jitter band (jitter_ms_, about sigma of N(0, sigma)
// jitter): the 10 s minimum is ~3 sigma under the mean delay, so a group is ~5 sigma above it
// now and then, and the standing queue (least of ~9 groups) ~1.5 sigma, at times ~3.
// Measured on a clean 1 Mbit/s link carrying the noisy video: a band of 4-6 ms, the queue our
// own frames (of varying size) build and drain, and a loaded host's scheduling. Only the band
// beyond 4 ms moves the guards (8 ms of N(0, 8) jitter: a band of 7-11 ms in the simulation).
constexpr double kOwnBandMs = 4;
constexpr double kUnknownBandMs = 4;      // the band beyond it assumed until measured
constexpr double kQueueGuardMs = 30;      // a group this late is overuse outright (see detect)
constexpr double kQueueBand = 4;          // ... plus this many times the band beyond kOwnBandMs
constexpr double kStandingHoldMs = 8;     // a queue that does not drain: stop increasing
constexpr double kStandingGuardMs = 20;   // ... and this long: overuse
constexpr double kStandingBand = 3;       // ... both plus this many times that
constexpr int64_t kFloorSlotUs = 100'000; // the jitter band's minima: one per 100 ms of send time
constexpr size_t kLocalSlots = 10;        // ... each against the least of the last second
constexpr int64_t kStandingUs = 300'000;  // over this much arrival time
constexpr int64_t kWindowUs = 500'000;    // loss and receive rate over this much send time
constexpr int64_t kMinWindowUs = 10'000'000;  // the one-way-delay minimum is over 10 s
constexpr int64_t kOutageUs = 500'000;        // a run of losses this long is an outage
constexpr int64_t kSaneUs = int64_t(1) << 50; // +-35 years: beyond it a timestamp is garbage
constexpr uint32_t kMaxPacket = 65'535;       // no UDP datagram is larger
constexpr size_t kMaxEntries = 20'000;        // per window: 500 ms of 300 Mbit/s in 1 kB packets
constexpr int64_t kJumpUs = 2'000'000;        // a group this far off its predecessor: a new clock
constexpr double kBeta = 0.85;                // decrease to this share of the received rate
constexpr double kIncreasePerSecond = 1.08;   // multiplicative increase, far from congestion
constexpr double kBelowCongestion = 0.85;     // for a while after a cut, stay this far under it
constexpr int64_t kSettleUs = 8'000'000;      // that while
// A frame's packets leave back to back (no pacer): packets sent this close are one burst. A
// burst of more than 100 ms of the stream's rate (a keyframe over its budget) can overflow a
// queue like the router's (100 ms) on its own.
constexpr int64_t kBurstGapUs = 2'000;
constexpr int64_t kOversizedUs = 100'000; // ... more than this much of the stream's mean rate
constexpr int64_t kMinSpanUs = 200'000;   // ... measured over at least this much send time
// After a loss cut, once the loss has stopped for a window: back towards the rate the episode
// began at (at most kBelowCongestion of it, and not above the delay-based target) this fast.
constexpr double kLossRecoveryS = 0.5;        // time constant
constexpr int64_t kLossEpisodeUs = 2'000'000; // a cut this long after the last begins a new one
constexpr int64_t kCleanFreshUs = 1'000'000;  // a loss-free receive rate this old still counts
} // namespace

Controller::Controller(Config c) : cfg_(c)
{
  if (cfg_.min_bps > cfg_.max_bps) std::swap(cfg_.min_bps, cfg_.max_bps);
  delay_target_ = loss_target_ = clamp(cfg_.start_bps);
}

double Controller::clamp(double bps) const
{
  return std::clamp(bps, double(cfg_.min_bps), double(cfg_.max_bps));
}

uint32_t Controller::target_bps() const
{
  return uint32_t(clamp(std::min(delay_target_, loss_target_)));
}

void Controller::on_feedback(int64_t now_us, const std::vector<PacketResult> &input)
{
  // The feedback is the remote's to make up: times that cannot be real are dropped, sizes
  // bounded, and all arithmetic below stays far from int64's limits.
  std::vector<PacketResult> packets;
  packets.reserve(input.size());
  for (PacketResult p : input) {
    if (p.send_us <= -kSaneUs || p.send_us >= kSaneUs) continue;
    if (!p.lost && (p.recv_us <= -kSaneUs || p.recv_us >= kSaneUs)) p.lost = true;
    if (p.lost) p.recv_us = 0;
    p.size = std::min(p.size, kMaxPacket);
    packets.push_back(p);
  }
  // Losses that span more than kOutageUs of send time are an outage (the link was down, or the
  // peer away), not congestion: cutting the rate for them would only slow the recovery.
  std::vector<bool> outage(packets.size(), false);
  for (size_t i = 0; i < packets.size();) {
    if (!packets[i].lost) {
      i++;
      continue;
    }
    size_t j = i;
    while (j + 1 < packets.size() && packets[j + 1].lost) j++;
    if (packets[j].send_us - packets[i].send_us >= kOutageUs) {
      std::fill(outage.begin() + i, outage.begin() + j + 1, true);
      outage_ended_ |= j + 1 < packets.size(); // and packets arrived again after it
    }
    i = j + 1;
  }
  if (last_feedback_at_ && now_us - *last_feedback_at_ >= kOutageUs) outage_ended_ = true;
  last_feedback_at_ = now_us;
  // Overuse in any group of this feedback counts: a later group of the same batch must not hide
  // it (the sender hears about the queue only this once).
  overuse_seen_ = false;
  bool batch_lost = false; // a loss in this feedback, outages aside
  for (size_t i = 0; i < packets.size(); i++) {
    const auto &p = packets[i];
    if (outage[i]) continue;
    last_feedback_send_ = std::max(last_feedback_send_, p.send_us);
    window_.push_back(p);
    batch_lost |= p.lost;
    if (!p.lost) add_received(p);
  }
  while (
      !window_.empty() &&
      (window_.front().send_us < last_feedback_send_ - kWindowUs || window_.size() > kMaxEntries))
    window_.pop_front();
  size_t lost = 0, total = window_.size();
  uint64_t bytes = 0;
  int64_t lo = INT64_MAX, hi = INT64_MIN, send_lo = INT64_MAX, send_hi = INT64_MIN;
  auto bursts = oversized_bursts();
  size_t b = 0; // the next (or current) oversized burst, as [first, last] window indices
  for (size_t i = 0; i < window_.size(); i++) {
    const auto &p = window_[i];
    while (b < bursts.size() && bursts[b].second < i) b++;
    if (b < bursts.size() && bursts[b].first <= i) {
      total--; // not in the loss fraction (received bytes still count below)
    } else if (p.lost) {
      lost++;
    }
    if (p.lost) continue;
    bytes += p.size;
    lo = std::min(lo, p.recv_us);
    hi = std::max(hi, p.recv_us);
    send_lo = std::min(send_lo, p.send_us);
    send_hi = std::max(send_hi, p.send_us);
  }
  if (overuse_seen_) usage_ = Usage::Overuse;
  if (total >= 10) loss_ = double(lost) / double(total);
  // Over the longer of the two spans: a receiver that was descheduled stamps a burst of arrivals
  // within a few ms, which over the receive span alone reads as a rate above the link's
  // (measured: 1.0 Mbit/s "received" through a 1 Mbit/s link carrying 0.87 of payload).
  if (hi > lo)
    acked_bps_ =
        double(bytes) * 8e6 / double(std::max({hi - lo, send_hi - send_lo, int64_t(100'000)}));
  if (!batch_lost && !packets.empty() && acked_bps_ > 0) {
    clean_acked_bps_ = acked_bps_;
    clean_acked_at_ = now_us;
  }
  update_loss_target(now_us);
  update_rate(now_us);
}

std::vector<std::pair<size_t, size_t>> Controller::oversized_bursts() const
{
  /* The loss of a burst far above the stream's frames (a keyframe of 13 KB where frames are
   * 1.1 KB: 11 packets at once into a 6 KB queue at 0.5 Mbit/s) is the burst's own, not a link
   * that carries less than we send: counted as congestion it took 20-30 % of the window and cut
   * the target below the frame floor. The delay signal still sees the queue it made. A burst:
   * packets sent within kBurstGapUs of each other; oversized: more than kOversizedUs of the
   * window's mean rate (a frame at 30 fps is 33 ms of it, a keyframe within vp8enc's 250 %
   * 83 ms). By rate, not against the mean burst: a bundled audio track's small packets in the
   * same feedback would make every video frame look large. */
  std::vector<std::pair<size_t, size_t>> out;
  if (window_.size() < 2) return out;
  uint64_t sum = 0;
  for (auto &p : window_) sum += p.size;
  int64_t span = window_.back().send_us - window_.front().send_us;
  if (span < kMinSpanUs) return out; // too little to know the rate by
  double limit = double(sum) * double(kOversizedUs) / double(span);
  size_t first = 0;
  uint64_t bytes = 0;
  bool lost = false;
  for (size_t i = 0; i <= window_.size(); i++) {
    if (i == window_.size() ||
        (i > first &&
         (window_[i].send_us - window_[i - 1].send_us > kBurstGapUs ||
          window_[i].send_us < window_[i - 1].send_us))) {
      if (lost && double(bytes) > limit) out.emplace_back(first, i - 1);
      if (i == window_.size()) break;
      first = i;
      bytes = 0;
      lost = false;
    }
    bytes += window_[i].size;
    lost |= window_[i].lost;
  }
  return out;
}

void Controller::on_receiver_report(int64_t now_us, double fraction_lost, double rtt_ms)
{
  if (std::isfinite(rtt_ms) && rtt_ms >= 0) rtt_ms_ = std::min(rtt_ms, 10'000.0);
  if (!std::isfinite(fraction_lost)) return;
  // Without TWCC (a peer that did not negotiate it) the receiver report's loss drives the
  // loss-based target; with it, the per-packet results are fresher and finer.
  if (last_update_ && now_us - *last_update_ < 2'000'000) return;
  loss_ = std::clamp(fraction_lost, 0.0, 1.0);
  update_loss_target(now_us);
}

void Controller::add_received(const PacketResult &p)
{
  int64_t owd = p.recv_us - p.send_us;
  // A group far off the one before it (the remote's clock jumped, or lies): what the delay
  // signal knew is about another clock; start over rather than read hours as a queue.
  if (cur_ && (std::llabs((p.recv_us - cur_->last_recv) - (p.send_us - cur_->last_send)) > kJumpUs))
    reset_delay();
  // By send time, ours: arrival times the remote made up cannot keep a minimum alive.
  while (!owd_min_.empty() && owd_min_.back().second >= owd) owd_min_.pop_back();
  owd_min_.emplace_back(p.send_us, owd);
  while (owd_min_.size() > 1 &&
         (owd_min_.front().first < p.send_us - kMinWindowUs || owd_min_.size() > kMaxEntries))
    owd_min_.pop_front();
  int64_t slot = p.send_us / kFloorSlotUs;
  if (!floors_.empty() && floors_.back().first >= slot) {
    floors_.back().second = std::min(floors_.back().second, owd); // (or sent earlier: close enough)
  } else {
    update_jitter(); // the slot before is complete
    floors_.emplace_back(slot, owd);
    while (floors_.size() > kLocalSlots) floors_.pop_front();
  }

  if (cur_ && p.send_us - cur_->first_send <= kGroupUs && p.send_us >= cur_->first_send) {
    cur_->last_send = std::max(cur_->last_send, p.send_us);
    cur_->last_recv = std::max(cur_->last_recv, p.recv_us);
    cur_->min_owd = std::min(cur_->min_owd, owd);
    cur_->bytes += p.size;
    return;
  }
  if (cur_) close_group(p.recv_us);
  cur_ = Group{p.send_us, p.send_us, p.recv_us, owd, p.size};
}

void Controller::update_jitter()
{
  // Called when a slot has just completed (floors_.back()): how far its least delay sits above
  // the least of the second before it. Jitter puts a slot there all the time; a queue that
  // stands (or grows for a second, or drains) does so only for a second or two of the ten,
  // which the median leaves out. Offset-free: a standing queue is no jitter.
  if (floors_.empty()) return;
  int64_t lo = floors_.back().second;
  for (auto &f : floors_) lo = std::min(lo, f.second); // (at most kLocalSlots of them)
  spread_.push_back(double(floors_.back().second - lo) / 1000.0);
  while (spread_.size() > size_t(kMinWindowUs / kFloorSlotUs)) spread_.pop_front();
  if (spread_.size() < 2 * kLocalSlots) return; // too few: no band yet
  std::vector<double> v(spread_.begin(), spread_.end());
  auto mid = v.begin() + ptrdiff_t(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  jitter_ms_ = *mid;
}

double Controller::path_jitter() const
{
  // Before the band is known (2 s), an allowance as for 8 ms of jitter: at 1 Mbit/s, with a
  // packet or two a frame, two late groups in a row came within the first second there and
  // halved the rate twice. A queue at the start (2 Mbit/s into 1) passes it within ~0.5 s.
  if (spread_.size() < 2 * kLocalSlots) return kUnknownBandMs;
  return std::max(0.0, jitter_ms_ - kOwnBandMs);
}

double Controller::queue_above_jitter_ms() const
{
  double late = queued_ ? queue_ms_ - kQueueBand * path_jitter() : 0;
  return std::max({0.0, late, standing_ms_ - kStandingBand * path_jitter()});
}

void Controller::reset_delay()
{
  cur_.reset();
  prev_.reset();
  acc_delay_ms_ = smoothed_ms_ = 0;
  trend_.clear();
  first_recv_.reset();
  owd_min_.clear();
  standing_.clear();
  floors_.clear();
  spread_.clear();
  queue_ms_ = standing_ms_ = jitter_ms_ = 0;
  prev_late_ = queued_ = false;
}

void Controller::close_group(int64_t now_us)
{
  queue_ms_ = double(cur_->min_owd - owd_min_.front().second) / 1000.0;
  while (!standing_.empty() && standing_.back().second >= queue_ms_) standing_.pop_back();
  standing_.emplace_back(cur_->last_send, queue_ms_);
  while (
      standing_.size() > 1 &&
      (standing_.front().first < cur_->last_send - kStandingUs || standing_.size() > kMaxEntries))
    standing_.pop_front();
  standing_ms_ = standing_.front().second;
  if (prev_ && cur_->last_send > prev_->last_send) {
    int64_t send_delta = cur_->last_send - prev_->last_send;
    int64_t recv_delta = cur_->last_recv - prev_->last_recv;
    acc_delay_ms_ += double(recv_delta - send_delta) / 1000.0;
    smoothed_ms_ = kSmoothing * smoothed_ms_ + (1 - kSmoothing) * acc_delay_ms_;
    if (!first_recv_) first_recv_ = cur_->last_recv;
    trend_.emplace_back(double(cur_->last_recv - *first_recv_) / 1000.0, smoothed_ms_);
    if (trend_.size() > kTrendWindow) trend_.pop_front();
    double slope = 0;
    if (trend_.size() >= 5) {
      double mx = 0, my = 0;
      for (auto &[x, y] : trend_) mx += x, my += y;
      mx /= double(trend_.size());
      my /= double(trend_.size());
      double num = 0, den = 0;
      for (auto &[x, y] : trend_) num += (x - mx) * (y - my), den += (x - mx) * (x - mx);
      if (den > 0) slope = num / den;
    }
    detect(now_us, slope, send_delta);
  }
  prev_ = cur_;
}

// GCC's overuse detector (draft-ietf-rmcat-gcc-02 5.4, 5.5 as libwebrtc's trendline does it).
void Controller::detect(int64_t now_us, double trend, int64_t dt_us)
{
  double t = double(std::min<size_t>(trend_.size(), 60)) * trend * kTrendGain;
  if (trend_.size() < 5) t = 0;
  if (t > threshold_) {
    overuse_since_ = overuse_since_ < 0 ? dt_us / 2 : overuse_since_ + dt_us;
    overuse_count_++;
    if (overuse_since_ > kOveruseTimeUs && overuse_count_ > 1 && trend >= prev_trend_) {
      usage_ = Usage::Overuse;
      overuse_since_ = 0;
      overuse_count_ = 0;
    }
  } else if (t < -threshold_) {
    overuse_since_ = -1;
    overuse_count_ = 0;
    usage_ = Usage::Underuse;
  } else {
    overuse_since_ = -1;
    overuse_count_ = 0;
    usage_ = Usage::Normal;
  }
  // A queue is delay above the jitter band; on a jittery path also one that persists: a single
  // late group there is jitter's tail. (Two in a row on a steady path too cost the 4 -> 0.5
  // Mbit/s drop frames: 94.6-100 % from 3 s after it, against 100 % in 4 of 4 runs.)
  bool late = queue_ms_ > kQueueGuardMs + kQueueBand * path_jitter();
  queued_ = late && (prev_late_ || path_jitter() <= 0);
  prev_late_ = late;
  if (queued_ || standing_ms_ > kStandingGuardMs + kStandingBand * path_jitter())
    usage_ = Usage::Overuse;
  overuse_seen_ |= usage_ == Usage::Overuse;
  prev_trend_ = trend;
  // The threshold follows |t| slowly upwards and faster downwards, so that a link with steady
  // jitter does not look congested and a quiet one notices a queue early.
  if (last_threshold_update_ && std::fabs(t) <= threshold_ + 15) {
    double k = std::fabs(t) < threshold_ ? 0.039 : 0.0087;
    double dt_ms = std::min(double(now_us - *last_threshold_update_) / 1000.0, 100.0);
    threshold_ = std::clamp(threshold_ + k * (std::fabs(t) - threshold_) * dt_ms, 6.0, 600.0);
  }
  last_threshold_update_ = now_us;
}

void Controller::update_rate(int64_t now_us)
{
  double dt = last_update_ ? double(now_us - *last_update_) / 1e6 : 0.0;
  dt = std::clamp(dt, 0.0, 1.0);
  last_update_ = now_us;
  double rtt = rtt_ms_ > 0 ? rtt_ms_ : 100.0;
  double target = std::min(delay_target_, loss_target_);
  if (usage_ == Usage::Overuse) {
    // At most one cut per round trip: the feedback after a cut still shows the old queue.
    if (last_decrease_ && double(now_us - *last_decrease_) < std::max(rtt, 200.0) * 1000) return;
    double base = acked_bps_ > 0 ? acked_bps_ : target;
    // At most halved per cut: an encoder sending far below its target (a still scene) would
    // otherwise fall to 0.85 x its own small rate on one late burst (a receiver descheduled for
    // 30 ms on a busy machine looks like a queue); a real bottleneck takes one or two cuts more.
    delay_target_ = clamp(std::min(std::max(kBeta * base, 0.5 * target), delay_target_));
    last_decrease_ = now_us;
    // Where the link congested, smoothed: the next increase slows down near it.
    if (congestion_ema_) {
      double d = base - *congestion_ema_;
      *congestion_ema_ += 0.25 * d;
      congestion_var_ = 0.75 * (congestion_var_ + 0.25 * d * d);
    } else {
      congestion_ema_ = base;
      congestion_var_ = 0;
    }
    return;
  }
  if (usage_ == Usage::Underuse) return; // the queue drains: hold until it has
  // At the link's rate already (a queue builds, slowly): more would only fill it up to the loss
  // that costs a viewer a frozen picture until the next keyframe.
  if (standing_ms_ > kStandingHoldMs + kStandingBand * path_jitter()) return;
  if (last_decrease_ && double(now_us - *last_decrease_) < rtt * 1000) return;
  double next;
  double sigma =
      congestion_ema_ ? std::max(std::sqrt(congestion_var_), 0.05 * *congestion_ema_) : 0;
  if (congestion_ema_ && delay_target_ > *congestion_ema_ + 3 * sigma) congestion_ema_.reset();
  if (congestion_ema_ && delay_target_ >= *congestion_ema_ - 3 * sigma) {
    // Near the last congestion point: about one packet per response time (GCC 5.5).
    double bits_per_frame = delay_target_ / 30;
    double packets = std::ceil(bits_per_frame / (1200 * 8));
    double response_s = (rtt + 100) / 1000;
    next = delay_target_ + std::max(1000.0, dt / response_s * bits_per_frame / packets);
  } else {
    next = delay_target_ * std::pow(kIncreasePerSecond, dt);
  }
  // Back to just under where the link congested, and no further for a while: the encoder's
  // frames vary, keyframes and retransmissions come on top, and with nothing to spare each of
  // them fills the queue up to a loss (measured: a loss, then a frozen picture until the next
  // keyframe, every 4-5 s of the noisy 1 Mbit/s run). Probing resumes after kSettleUs.
  if (congestion_ema_ && last_decrease_ && now_us - *last_decrease_ < kSettleUs)
    next = std::min(next, std::max(delay_target_, kBelowCongestion * *congestion_ema_));
  // Never far beyond what actually got through: an encoder that sends less than its target
  // (a still scene) must not earn a target the link never carried.
  if (acked_bps_ > 0) next = std::min(next, std::max(delay_target_, 1.5 * acked_bps_ + 10'000));
  delay_target_ = clamp(next);
}

// Loss-based, homegrown_cc's rule with a wider band: above 10 % cut by half the loss, 5-10 %
// hold, below grow. homegrown_cc holds from 2 %; with NACK + RTX a few percent of random loss
// is repaired within a round trip, and holding there froze the rate on the 2 % links of the
// benchmark (the unit test's 2 % link ended at 2.8 instead of 4 Mbit/s).
void Controller::update_loss_target(int64_t now_us)
{
  double dt = last_loss_update_ ? double(now_us - *last_loss_update_) / 1e6 : 0.0;
  dt = std::clamp(dt, 0.0, 1.0);
  if (loss_ > 0.10) {
    if (last_loss_update_ && dt < 0.3) return; // once per 300 ms: the window still has them
    double now_bps = std::min(delay_target_, loss_target_);
    if (!last_loss_cut_ || now_us - *last_loss_cut_ > kLossEpisodeUs) {
      /* The episode begins no higher than what the link delivered before (or during) the loss:
       * a loss that came from sending above the link (a new viewer's start estimate into a
       * 250 kbit/s link) must not be recovered back to that overshoot (live: the target went
       * 116 -> 391 kbit/s within 0.5 s, twice, and the router dropped half the packets). */
      bool fresh = clean_acked_at_ && now_us - *clean_acked_at_ <= kCleanFreshUs;
      double delivered = std::max(fresh ? clean_acked_bps_ : 0.0, acked_bps_);
      loss_from_ = delivered > 0 ? std::min(now_bps, delivered) : now_bps;
    }
    loss_target_ = clamp(now_bps * std::max(0.5, 1 - 0.5 * loss_));
    last_loss_cut_ = now_us;
  } else if (loss_ <= 0.05) {
    double next = loss_target_ * std::pow(kIncreasePerSecond, dt);
    /* The loss has stopped (a whole window without it): the cuts of one episode compound (30 %
     * of a window is two or three of them) and 8 %/s took 8 s to undo one to half the link.
     * Back quickly to just under where the episode began, no higher than the delay-based
     * target (which saw any queue that came with the loss); beyond that, probing as before. */
    if (loss_ <= 0.02 && last_loss_cut_ && now_us - *last_loss_cut_ >= kWindowUs) {
      double cap = std::min(delay_target_, kBelowCongestion * loss_from_);
      if (loss_target_ < cap)
        next = std::max(next, cap - (cap - loss_target_) * std::exp(-dt / kLossRecoveryS));
    }
    loss_target_ = clamp(next);
  }
  last_loss_update_ = now_us;
}

Allocation allocate(const std::vector<uint32_t> &viewer_bps, uint32_t floor_bps, uint32_t min_bps,
                    uint32_t max_bps)
{
  Allocation a;
  if (viewer_bps.empty()) {
    a.encoder_bps = max_bps;
    return a;
  }
  uint32_t slowest_above = 0, fastest = 0;
  for (uint32_t v : viewer_bps) {
    if (v >= floor_bps && (!slowest_above || v < slowest_above)) slowest_above = v;
    fastest = std::max(fastest, v);
  }
  a.encoder_bps =
      std::clamp(slowest_above ? slowest_above : fastest, std::min(min_bps, max_bps), max_bps);
  for (uint32_t v : viewer_bps) {
    double keep = 1.0;
    while (keep > 0.125 && double(v) < keep * a.encoder_bps) keep /= 2;
    a.keep.push_back(keep);
  }
  return a;
}

std::array<uint32_t, Layering::kLayers> Layering::targets(uint32_t total, uint32_t slowest,
                                                          uint32_t min_bps)
{
  double t = total;
  double base = 0.4 * t;
  if (slowest) base = std::min(base, 0.85 * double(slowest));
  base = std::max(base, std::min(double(min_bps), t));
  double mid = base + (t - base) / 3;
  /* vpxenc takes kbit/s and libvpx refuses layer targets that do not strictly increase ("Failed
   * to set encoder configuration", an error that stops the pipeline: an encoder held at
   * video-bitrate-min with the base layer at that minimum too). So whole kbit/s, each at least
   * one above the one below. */
  uint32_t top = std::max<uint32_t>(total / 1000, 3);
  uint32_t b = std::clamp<uint32_t>(uint32_t(base / 1000), 1, top - 2);
  uint32_t m = std::clamp<uint32_t>(uint32_t(mid / 1000), b + 1, top - 1);
  return {b * 1000, m * 1000, std::max<uint32_t>(total, top * 1000)};
}

int Layering::choose(uint32_t target, const std::array<double, kLayers> &rates, int current)
{
  int best = 0;
  for (int l = 1; l < kLayers; l++) {
    // Staying needs the layer to fit; going up needs 10 % to spare.
    double need = l <= current ? 1.0 : 0.9;
    if (rates[size_t(l)] <= need * double(target)) best = l;
  }
  return best;
}

unsigned Layering::keyframe_pct(uint32_t total, uint32_t slowest)
{
  if (!slowest || !total) return 250;
  double frame = double(total) / 30;
  return unsigned(std::clamp(100 * 0.3 * double(slowest) / frame, 50.0, 250.0));
}

bool LayerSelector::pass(int layer, bool sync, bool key, int wanted)
{
  wanted = std::clamp(wanted, 0, Layering::kLayers - 1);
  if (wanted < current_) current_ = wanted;
  if (key) {
    current_ = wanted; // every frame after it refers to it
    return true;
  }
  if (layer > current_ && layer <= wanted && sync) current_ = layer;
  if (layer <= current_) return true;
  dropped_++;
  return false;
}

double frame_fraction(uint32_t target_bps, uint32_t floor_bps, double min_fraction)
{
  if (!floor_bps || target_bps >= floor_bps) return 1.0;
  return std::max(min_fraction, double(target_bps) / double(floor_bps));
}

uint64_t FrameClock::map(uint64_t pts, uint64_t *duration)
{
  constexpr double kDefault = 1e9 / 30, kStep = 0.04, kGain = 0.1;
  constexpr double kResync = 1e9; // further apart than this: a discontinuity, not jitter
  std::optional<uint64_t> shown;
  if (last_real_ && pts > *last_real_ && double(pts - *last_real_) < kResync) {
    mean_ += kGain * (double(pts - *last_real_) - mean_);
    interval_ = std::clamp(mean_, interval_ * (1 - kStep), interval_ * (1 + kStep));
    uint64_t next = *last_shown_ + uint64_t(std::max(1.0, interval_));
    if (std::fabs(double(next) - double(pts)) < kResync) shown = next;
  }
  if (!shown) {
    if (!last_real_) interval_ = mean_ = kDefault;
    // Still increasing: the encoder drops (or complains about) a timestamp going backwards.
    shown = last_shown_ && pts <= *last_shown_ ? *last_shown_ + uint64_t(interval_) : pts;
  }
  last_real_ = pts;
  last_shown_ = shown;
  if (duration) *duration = uint64_t(interval_);
  return *shown;
}

} // namespace pointcast::cc
