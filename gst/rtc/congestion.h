// SPDX-License-Identifier: LGPL-2.1-or-later
/* Congestion control for one media sender towards one remote peer, as a pure object: feedback in,
 * a target bitrate out; no GStreamer, no clock of its own (every call says what time it is).
 *
 * Modelled on webrtcsink's "homegrown" controller (gst-plugins-rs net/webrtc/src/webrtcsink/
 * homegrown_cc.rs): a delay-based target and a loss-based target, the lower of the two applied,
 * multiplicative increase far from the last congestion point and additive close to it. It
 * differs where that one reads webrtcbin's averaged "twcc-stats": here the delay signal is
 * computed from the per-packet TWCC results (send time, size, arrival time or lost), as a
 * trendline of the one-way delay variation over packet groups with an adaptive threshold (the
 * GCC detector, draft-ietf-rmcat-gcc-02 section 5), plus guards on the absolute queuing delay
 * put above the path's measured delay jitter (homegrown_cc reacts to averaged delay growth and
 * to sent-minus-received rate only, where zero-mean jitter cancels; an absolute queue guard
 * needs the jitter band made explicit instead).
 *
 * Where the input comes from in GStreamer 1.22 (probed on this machine): when the TWCC header
 * extension is negotiated (rtphdrexttwcc on the payloader, `extmap-N=<URI>` and
 * `rtcp-fb-transport-cc=true` in the caps of *both* sides' transceivers; an answerer without the
 * extmap in its codec-preferences drops it from the answer), webrtcbin's rtpsession pushes an
 * upstream custom event "RTPTWCCPackets" into the sink pad of the track for every feedback
 * packet: a "packets" array of "RTPTWCCPacket" structures (seqnum, local-ts and remote-ts in ns,
 * size, payload-type, lost). The same session also has a "twcc-stats" property and get-stats'
 * candidate-pair entry a "gst-twcc-stats" structure (averages only). RTCP receiver reports
 * (fraction lost, RTT) come from get-stats' remote-inbound-rtp entries.
 */
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace pointcast::cc {

// One RTP packet as TWCC feedback reports it. Times in microseconds: send time on our clock,
// arrival on the remote's (only differences of arrivals are used).
struct PacketResult {
  int64_t send_us = 0;
  int64_t recv_us = 0; // ignored when lost
  uint32_t size = 0;   // bytes
  bool lost = false;
};

enum class Usage { Normal, Overuse, Underuse };

struct Config {
  uint32_t min_bps = 100'000;
  uint32_t max_bps = 4'000'000;
  uint32_t start_bps = 2'000'000;
};

class Controller {
public:
  explicit Controller(Config c);

  // A TWCC feedback message: its packets in sequence-number order.
  void on_feedback(int64_t now_us, const std::vector<PacketResult> &packets);
  // An RTCP receiver report: fraction lost in [0, 1] since the last one; RTT in ms (< 0: unknown).
  void on_receiver_report(int64_t now_us, double fraction_lost, double rtt_ms);

  uint32_t target_bps() const;
  uint32_t delay_target_bps() const { return uint32_t(delay_target_); }
  uint32_t loss_target_bps() const { return uint32_t(loss_target_); }
  // What the receiver took in over the last half second (bit/s), 0 before any feedback.
  uint32_t acked_bps() const { return uint32_t(std::min(acked_bps_, 4e9)); }
  Usage usage() const { return usage_; }
  /* True once after feedback resumed from an outage (a run of losses over 0.5 s of send time, or
   * 0.5 s without feedback): the receiver has lost its reference frame, and a keyframe sent now
   * saves it the round trip of asking for one. */
  bool take_outage_end()
  {
    bool r = outage_ended_;
    outage_ended_ = false;
    return r;
  }
  double loss_fraction() const { return loss_; }
  double queuing_delay_ms() const { return queue_ms_; }
  double standing_queue_ms() const { return standing_ms_; }
  /* The path's delay jitter band (ms): how far the least one-way delay of 100 ms typically sits
   * above the least of the second before it (the median over 10 s). 0 on a steady path, also
   * under a standing queue; with N(0, sigma) jitter about one sigma. The queue guards are put
   * above multiples of it. */
  double jitter_ms() const { return jitter_ms_; }
  /* The queue that is more than jitter (ms, >= 0): the last group's queuing delay or the
   * standing queue, each less the allowance the guards make for the jitter band (rtc/fec.cpp
   * treats loss with such a queue as our own rate's). */
  double queue_above_jitter_ms() const;
  double rtt_ms() const { return rtt_ms_; }
  // Packets and samples held (all windows together): bounded whatever the feedback.
  size_t memory_entries() const
  {
    return window_.size() + owd_min_.size() + standing_.size() + trend_.size() + floors_.size() +
        spread_.size();
  }

private:
  struct Group {
    int64_t first_send = 0, last_send = 0, last_recv = 0;
    int64_t min_owd = 0; // the packet of the burst that waited least: the standing queue
    uint64_t bytes = 0;
  };
  void add_received(const PacketResult &p);
  void close_group(int64_t now_us);
  void reset_delay();
  void update_jitter();
  double path_jitter() const; // the band beyond what our own queue and the host make
  void detect(int64_t now_us, double trend, int64_t dt_us);
  void update_rate(int64_t now_us);
  void update_loss_target(int64_t now_us);
  // Window index ranges [first, last] of the bursts that lost packets and are far above the rest.
  std::vector<std::pair<size_t, size_t>> oversized_bursts() const;
  double clamp(double bps) const;

  Config cfg_;
  double delay_target_, loss_target_;
  // Packet groups (burst of packets sent within 5 ms) and the trendline over them.
  std::optional<Group> cur_, prev_;
  double acc_delay_ms_ = 0, smoothed_ms_ = 0;
  std::deque<std::pair<double, double>> trend_; // (arrival ms since first, smoothed delay ms)
  std::optional<int64_t> first_recv_;
  double threshold_ = 12.5;
  std::optional<int64_t> last_threshold_update_;
  int64_t overuse_since_ = -1;
  double prev_trend_ = 0;
  int overuse_count_ = 0;
  Usage usage_ = Usage::Normal;
  bool overuse_seen_ = false;
  // Standing queue: the least one-way delay (clock offset included) in the last packet group,
  // minus the least of the last 10 s. Per group, because the last packets of a frame's burst
  // always wait for the first ones (33 ms at 1 Mbit/s), which is no queue to drain.
  std::deque<std::pair<int64_t, int64_t>> owd_min_; // (recv, owd) monotonic deque
  double queue_ms_ = 0;
  // The least of the groups' queues over the last 300 ms: what even the luckiest packet waited,
  // a queue that does not drain. Above a few ms the rate is at the link's: hold, then cut.
  std::deque<std::pair<int64_t, double>> standing_; // (recv, queue ms) monotonic deque
  double standing_ms_ = 0;
  /* Jitter: the least one-way delay of each 100 ms of send time, and per such slot how far it
   * sat above the least of the second before it (last 10 s); the median of those is the band. */
  std::deque<std::pair<int64_t, int64_t>> floors_; // (100 ms slot, least owd in it)
  std::deque<double> spread_;                      // ms
  double jitter_ms_ = 0;
  bool prev_late_ = false; // the last group was above the outright guard
  bool queued_ = false;    // ... and counts as a queue (on a jittery path: the one before too)
  // Receive rate and loss over the last 500 ms of feedback (by send time).
  std::deque<PacketResult> window_;
  double acked_bps_ = 0;
  double loss_ = 0;
  double rtt_ms_ = -1;
  // Rate control.
  std::optional<int64_t> last_update_, last_decrease_, last_loss_update_, last_loss_cut_;
  double loss_from_ = 0; // where the last loss episode began (see update_loss_target)
  // The receive rate at the last feedback without a loss, and when: what the link delivered
  // before a loss episode.
  double clean_acked_bps_ = 0;
  std::optional<int64_t> clean_acked_at_;
  std::optional<double> congestion_ema_;
  double congestion_var_ = 0;
  int64_t last_feedback_send_ = -1;
  std::optional<int64_t> last_feedback_at_;
  bool outage_ended_ = false;
};

/* Several viewers of one shared encoder. The encoder follows the slowest viewer whose target is
 * at or above FLOOR (within [min, max]); a viewer below the floor does not hold the others back:
 * it gets fewer frames instead (VP8 temporal layers, see Layering). When every viewer is below
 * the floor, the encoder follows the fastest of them, so the best link still gets every frame.
 * Why not the slowest always: one viewer on a bad LTE link would pull a room of wired viewers
 * down to its 200 kbit/s; why not an encoder per class: CPU (the scale-out target is one encode
 * for 8 viewers). keep[i]: the share of the frames viewer i can take at the encoder's rate
 * (1/2^k, at least 1/8), for codecs without layers a figure only. */
struct Allocation {
  uint32_t encoder_bps = 0;
  std::vector<double> keep; // per viewer, in (0, 1]
};
Allocation allocate(const std::vector<uint32_t> &viewer_bps, uint32_t floor_bps, uint32_t min_bps,
                    uint32_t max_bps);

/* The viewer floor: above it a viewer's estimate sets the shared encoder's rate, below it that
 * viewer gets the temporal layers that fit. 500 kbit/s: at 640x480 VP8 under that is a smear at
 * 30 fps, so a viewer there is better served by 7.5-15 sharp frames a second of the room's
 * stream than by pulling every other viewer's picture down to it. */
inline constexpr uint32_t kViewerFloorBps = 500'000;

/* VP8 temporal layers as rtcpeer encodes them: 3 layers over a period of 4 frames, layer ids
 * 0 2 1 2. Every frame above the base references only the last base frame and updates no
 * reference and no entropy context, so any frame above the base can be dropped for one viewer
 * and each is a layer sync (a viewer can switch up at any of them). Layer L with all below it:
 * 1/4, 1/2, all of the frames. */
struct Layering {
  static constexpr int kLayers = 3;
  static constexpr int kPeriod = 4;
  static constexpr int kLayerId[kPeriod] = {0, 2, 1, 2};
  static constexpr int kDecimator[kLayers] = {4, 2, 1};
  /* Cumulative targets (bit/s, layer 0, 0-1, 0-2) for an encoder at TOTAL whose slowest
   * layer-limited viewer has SLOWEST (0: none). The base layer fits that viewer (85 % of its
   * estimate, for the retransmissions and RTCP beside it) but never takes more than the split
   * libwebrtc uses for 3 layers (40 / 60 / 100 %) and never goes under MIN (video-bitrate-min);
   * layer 1 takes a third of what is left above the base. Whole kbit/s, strictly increasing
   * (what libvpx accepts), the total at least 3 kbit/s. */
  static std::array<uint32_t, kLayers> targets(uint32_t total, uint32_t slowest, uint32_t min_bps);
  /* Which layers (0..kLayers-1) a viewer with TARGET takes, given the measured cumulative rates
   * RATES of the stream now, currently at CURRENT: the highest whose rate fits the target, with
   * 10 % of hysteresis against flapping at the edge; the base layer always. */
  static int choose(uint32_t target, const std::array<double, kLayers> &rates, int current);
  /* vp8enc's max-intra-bitrate (% of an average frame at TOTAL) for a keyframe that the slowest
   * layer-limited viewer (SLOWEST, 0: none) takes in about 0.3 s: a keyframe any viewer asks for
   * goes to all, and one sized for the fast viewers (2.5 frames at 1.5 Mbit/s: 15 kB) is half a
   * second of a 250 kbit/s link, a burst its queue drops. 250 % without such a viewer (the noisy
   * 1 Mbit/s run's setting), at least 50 %. */
  static unsigned keyframe_pct(uint32_t total, uint32_t slowest);
};

/* One viewer's view of a layered stream: frames above its layer are dropped (before its own
 * payloader, so its RTP sequence numbers and VP8 picture ids stay continuous); going down takes
 * effect at once (nothing below refers to what is dropped), going up at the first frame of the
 * new layer that is a layer sync (or a keyframe). */
class LayerSelector {
public:
  // Whether to send a frame of LAYER (SYNC: a layer sync; KEY: a keyframe) to a viewer that
  // should now get layers up to WANTED.
  bool pass(int layer, bool sync, bool key, int wanted);
  int layer() const { return current_; }
  uint64_t dropped() const { return dropped_; }

private:
  int current_ = Layering::kLayers - 1;
  uint64_t dropped_ = 0;
};

/* One encoder below the floor: bitrate alone would make every frame a smear, so the frame rate
 * goes down with it (frames kept = target / floor, at least MIN_FRACTION), keeping the bits per
 * frame of the floor. */
double frame_fraction(uint32_t target_bps, uint32_t floor_bps, double min_fraction = 0.2);

/* The timestamps a rate-controlled encoder is shown. libvpx's VP8 rate control re-estimates the
 * frame rate from every frame's timestamp and, when one interval differs from the one before by
 * 10 %, jumps to it: the frame after a 67-100 ms gap (raw frames dropped upstream on a busy
 * machine) gets the bits of several frames, measured 18-40x an average frame, which a narrow
 * link's queue cannot hold (the loss, the keyframe request and the next big frame follow). Shown
 * instead: intervals that follow the real mean interval (intentional drops below the frame-rate
 * floor still give each frame more bits) but change by at most 4 % from one frame to the next.
 * Times in ns; the caller puts the real timestamps back on the encoded frames. */
class FrameClock {
public:
  // What to show the encoder for a frame with timestamp PTS, and as its duration.
  uint64_t map(uint64_t pts, uint64_t *duration);
  void reset() { last_real_.reset(); }

private:
  std::optional<uint64_t> last_real_, last_shown_;
  double interval_ = 0, mean_ = 0;
};

} // namespace pointcast::cc
