// SPDX-License-Identifier: LGPL-2.1-or-later
/* What rtcpeer's media path needs from webrtcbin 1.22 for loss recovery and congestion control,
 * kept out of the element: the caps fields that negotiate NACK/RTX and TWCC, the TWCC header
 * extension on a payloader, the feedback webrtcbin hands upstream, and EncoderControl, which
 * drives one shared encoder from every viewer's cc::Controller.
 *
 * How webrtcbin 1.22 does it (probed on this machine, GStreamer 1.22.0):
 * - NACK + RTX: `do-nack` on the transceiver and `rtcp-fb-nack=true` in its caps; the offer then
 *   carries `a=rtcp-fb:PT nack` and an rtx payload type with apt=PT, and webrtcbin puts
 *   rtprtxsend/rtpstorage in the sender and do-retransmission on the receiver's jitterbuffer. An
 *   answerer whose transceiver has no codec-preferences answers without `nack` and without RTX.
 * - TWCC: the payloader writes the extension (rtphdrexttwcc, `add-extension`), the caps carry
 *   `extmap-ID=<kTwccUri>` and `rtcp-fb-transport-cc=true`; rtpsession rewrites the sequence number
 *   per session (it makes the buffer writable, so a tee shared by sessions is fine) and, for each
 *   feedback, pushes the upstream event "RTPTWCCPackets" into the track's sink pad.
 * - ULPFEC/RED: `fec-type=ulp-red` and `fec-percentage` on the transceiver (rtpulpfecenc +
 *   rtpredenc inside webrtcbin); the offer gets red and ulpfec payload types. */
#pragma once

#include "rtc/congestion.h"

#include <gst/gst.h>
#include <gst/sdp/sdp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pointcast::mediacc {

inline constexpr const char *kTwccUri =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
inline constexpr int kTwccId = 1; // our offers map TWCC to extension id 1

// NACK, transport-cc feedback and the TWCC extension (as TWCC_ID) in every structure of CAPS.
void add_feedback(GstCaps *caps, int twcc_id = kTwccId);
// The TWCC extension id in caps (extmap-N=kTwccUri), 0 when absent.
int twcc_id(const GstCaps *caps);
// Makes PAYLOADER write the TWCC extension with ID; false when rtphdrexttwcc is missing.
bool add_twcc_extension(GstElement *payloader, int id);
/* The caps for a transceiver webrtcbin created from a remote offer (m-line MEDIA), so that the
 * answer keeps the offer's NACK/RTX, transport-cc and TWCC extmap: every codec of the offer that
 * rtcpeer can decode, with its own payload type and attributes. nullptr when none. */
GstCaps *caps_from_offer(const GstSDPMedia *media);
// The packets of an "RTPTWCCPackets" event; false for any other event.
bool parse_twcc_event(GstEvent *event, std::vector<cc::PacketResult> &out);

/* Retransmissions within a budget: RTX bytes at most SHARE of the original packets' bytes (a
 * token bucket on rtprtxsend's src pad, refilled by each original packet). Why: a receiver whose
 * packets arrive late (a queue building, or its own process descheduled on a busy machine) asks
 * again for packets that are only late (rtpjitterbuffer's expected-packet timers); each request
 * adds a retransmission to the queue that made them late, and on the 1 Mbit/s link that feedback
 * turned a 20 ms queue into 80 ms and 20 % loss within half a second, after the encoder's rate
 * had already been cut. Random loss needs a few percent; SHARE leaves room for bursts of it. */
void limit_retransmissions(GstElement *rtprtxsend, double share = 0.25);

// At most one keyframe per interval: each is 5-10x a frame, and on a full link every extra
// keyframe a PLI storm asks for makes the loss that caused it worse.
class KeyframeGate {
public:
  explicit KeyframeGate(int64_t min_interval_us = 100'000) : min_(min_interval_us) {}
  bool allow(int64_t now_us)
  {
    if (last_ >= 0 && now_us - last_ < min_) return false;
    last_ = now_us;
    return true;
  }

private:
  int64_t min_, last_ = -1;
};

/* One shared video encoder driven by its viewers' controllers (cc::allocate: the slowest viewer
 * above cc::kViewerFloorBps sets the rate), below FLOOR_BPS with fewer frames for everyone
 * (cc::frame_fraction), its keyframe requests rate-limited. A VP8 encoder set up with temporal
 * layers (set_temporal_layers) also gets per-layer targets (cc::Layering::targets: the base
 * layer fits the slowest viewer below the floor), and each viewer the layers that fit its own
 * estimate (cc::Layering::choose, cc::LayerSelector), dropped before that viewer's payloader.
 * Thread-safe: feedback arrives on each webrtcbin's RTCP thread. */
class EncoderControl {
public:
  // ENCODER: vp8enc/vp9enc (target-bitrate, bit/s) or x264enc (bitrate, kbit/s).
  EncoderControl(GstElement *encoder, cc::Config cfg, uint32_t floor_bps);
  ~EncoderControl();
  EncoderControl(const EncoderControl &) = delete;
  EncoderControl &operator=(const EncoderControl &) = delete;

  /* Starts a controller for PEER, fed by the feedback events webrtcbin sends upstream out of PAD
   * (the peer's webrtcbin sink pad for this track). With FRAMES (the sink pad of that peer's own
   * payloader) and a layered encoder, that peer gets only the layers that fit. Removed by
   * forget() or with the pads. */
  void watch(const std::string &peer, GstPad *pad, GstPad *frames = nullptr);
  void forget(const std::string &peer);
  /* What PEER's link carries beyond the encoder's bits, as a share of them (its FEC packets,
   * rtc/fec.h): that viewer's target for the encoder is its controller's / (1 + SHARE). */
  void set_overhead(const std::string &peer, double share);
  /* The queue PEER's controller sees on its path above the delay jitter (ms, cc::Controller::
   * queue_above_jitter_ms), -1 for an unknown peer: loss with a queue is our own rate's
   * (rtc/fec.cpp). */
  double queue_ms(const std::string &peer) const;
  uint32_t bitrate_bps() const;
  double frame_fraction() const;
  // The layers (0: base only .. cc::Layering::kLayers - 1: all) PEER gets now; -1: unknown peer.
  int layer(const std::string &peer) const;

  struct Shared;

private:
  std::shared_ptr<Shared> shared_;
};

/* Sets up VP8ENCODER for cc::Layering (before it starts; the targets follow in EncoderControl). */
void set_temporal_layers(GstElement *vp8encoder, uint32_t total_bps);

} // namespace pointcast::mediacc
