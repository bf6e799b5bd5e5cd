// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/fec.h"

#include "rtc/mediacc.h"
#include "rtc/mediasend.h"
#include "rtc/probeutil.h"
#include "rtc/rtcpeerpriv.h"
#include "rtc/ulpfec.h"

#include <gst/rtp/rtp.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

GST_DEBUG_CATEGORY_STATIC(fec_debug);
#undef GST_CAT_DEFAULT
#define GST_CAT_DEFAULT fec_debug

namespace pointcast::rtc {

namespace {
constexpr double kCongestedQueueMs = 20; // a queue this long: the loss is congestion (on_feedback)
constexpr int64_t kCongestedHoldUs = 5'000'000;
void init_debug()
{
  static std::once_flag once;
  std::call_once(
      once, [] { GST_DEBUG_CATEGORY_INIT(fec_debug, "rtcpeer-fec", 0, "rtcpeer RED/ULPFEC"); });
}

struct SendTap {
  GstRtcPeer *self;
  MediaSend *m;
  std::string peer;
  GstWebRTCRTPTransceiver *trans;
  int fixed; // > 0: the fec-percentage property, not the loss
  std::mutex lock;
  ulpfec::LossMeter meter;
  unsigned applied = 0;
  double frame_packets = 1.0; // packets per frame, smoothed
  unsigned in_frame = 0;
  uint64_t frames = 0;
  int64_t congested_until = 0; // no FEC until then (on_feedback)
  ~SendTap() { gst_object_unref(trans); }
};

void apply(SendTap *tap, unsigned pct)
{
  g_object_set(tap->trans, "fec-percentage", guint(pct), nullptr);
  mediacc::EncoderControl *control;
  {
    std::lock_guard lk(tap->self->priv->lock);
    control = tap->m->control.get();
  }
  // The controller's target covers everything sent (FEC packets carry TWCC too).
  if (control) control->set_overhead(tap->peer, pct / 100.0);
}

GstPadProbeReturn on_feedback(GstPad *, GstPadProbeInfo *info, gpointer user_data)
{
  auto *tap = static_cast<SendTap *>(user_data);
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
  std::vector<cc::PacketResult> packets;
  if (!ev || !mediacc::parse_twcc_event(ev, packets) || packets.empty()) return GST_PAD_PROBE_OK;
  unsigned lost = 0;
  for (auto &p : packets) lost += p.lost;
  /* Loss with a queue on the path is our own rate's, which the controller answers by sending
   * less: FEC on it would add to the queue. A 4 -> 0.5 Mbit/s drop lost 34 % in the router's
   * queue, FEC rose to 100 % and then 80 % of the video, and the link stayed full (8-10 % loss,
   * 17-23 % of the frames from 3 s after the drop, against 99 % without FEC). So the meter
   * learns only from feedback without a queue, and no FEC goes out while there is one. The
   * queue is the controller's, less its allowance for the path's delay jitter: with 8 ms of
   * jitter the raw delay above the 10 s minimum turned FEC off for 5 s again and again. */
  mediacc::EncoderControl *control;
  {
    std::lock_guard lk(tap->self->priv->lock);
    control = tap->m->control.get();
  }
  int64_t now = g_get_monotonic_time();
  bool queued = control && control->queue_ms(tap->peer) > kCongestedQueueMs;
  unsigned pct;
  {
    std::lock_guard lk(tap->lock);
    // Held a while: the queue comes and goes as the controller probes the link.
    if (queued) tap->congested_until = now + kCongestedHoldUs;
    bool congested = now < tap->congested_until;
    if (!congested) tap->meter.add(now, unsigned(packets.size()) - lost, lost);
    pct = tap->fixed > 0 ? tap->applied : congested ? 0 : tap->meter.percentage();
    GST_LOG("'%s': feedback on %zu packets, %u lost; loss %.3f", tap->peer.c_str(), packets.size(),
            lost, tap->meter.loss());
    if (pct == tap->applied) return GST_PAD_PROBE_OK;
    GST_INFO("'%s': loss %.2f %%, %.1f packets a frame, FEC %u -> %u %%", tap->peer.c_str(),
             tap->meter.loss() * 100, tap->frame_packets, tap->applied, pct);
    tap->applied = pct;
  }
  apply(tap, pct);
  return GST_PAD_PROBE_OK; // EncoderControl's probe after this one takes the event
}

// The marker bit from the header's second byte (our payloader's packets: RTP already).
static bool has_marker(GstBuffer *buf)
{
  guint8 b1;
  return gst_buffer_extract(buf, 1, &b1, 1) == 1 && (b1 & 0x80);
}

// The track's packets into webrtcbin: packets per frame (marker bit ends a frame).
GstPadProbeReturn on_media_packet(GstPad *, GstPadProbeInfo *info, gpointer user_data)
{
  auto *tap = static_cast<SendTap *>(user_data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!buf) return GST_PAD_PROBE_OK;
  bool marker = has_marker(buf);
  bool fix = false;
  {
    std::lock_guard lk(tap->lock);
    tap->in_frame++;
    if (marker) {
      tap->frame_packets =
          tap->frames++ ? 0.9 * tap->frame_packets + 0.1 * tap->in_frame : double(tap->in_frame);
      tap->in_frame = 0;
      tap->meter.set_frame_packets(tap->frame_packets);
    }
    if (tap->fixed > 0 && tap->applied != unsigned(tap->fixed)) {
      tap->applied = unsigned(tap->fixed);
      fix = true;
    }
  }
  if (fix) apply(tap, tap->applied); // from the first packet: the encoder control is built
  return GST_PAD_PROBE_OK;
}

struct RecvTap {
  GstElement *jb;
  std::mutex lock;
  ulpfec::Recovery rec;
  int media_pt = -1; // the stream's; FEC packets are told apart by their shape (looks_like_fec)
  std::atomic<guint64> recovered{0};
  bool codec_known = false; // the src pad's thread only (learn_codec)
};

/* The media's encoding, from the caps of rtpptdemux's src pad for it (set from the payload-type
 * map when its first packet went by): VP8 lets Recovery tell a frame's first packet
 * (ulpfec.h). Read here, in the jitterbuffer's src thread, which is the one pushing into
 * rtpptdemux, and not asked from rtpbin (see looks_like_fec). */
void learn_codec(RecvTap *t, GstPad *src)
{
  int pt;
  {
    std::lock_guard lk(t->lock);
    pt = t->media_pt;
  }
  GstPad *peer = pt >= 0 ? gst_pad_get_peer(src) : nullptr;
  GstElement *demux = peer ? gst_pad_get_parent_element(peer) : nullptr;
  if (peer) gst_object_unref(peer);
  if (!demux) return;
  std::string enc;
  GstIterator *it = gst_element_iterate_src_pads(demux);
  GValue v = G_VALUE_INIT;
  while (enc.empty() && gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
    if (GstCaps *caps = gst_pad_get_current_caps(GST_PAD(g_value_get_object(&v)))) {
      const GstStructure *st = gst_caps_get_structure(caps, 0);
      int p = -1;
      const char *name = gst_structure_get_string(st, "encoding-name");
      if (gst_structure_get_int(st, "payload", &p) && p == pt && name) enc = name;
      gst_caps_unref(caps);
    }
    g_value_reset(&v);
  }
  g_value_unset(&v);
  gst_iterator_free(it);
  gst_object_unref(demux);
  if (enc.empty()) return;
  t->codec_known = true;
  std::lock_guard lk(t->lock);
  t->rec.set_vp8(!g_ascii_strcasecmp(enc.c_str(), "VP8"));
  GST_DEBUG_OBJECT(t->jb, "media payload type %d is %s", pt, enc.c_str());
}

void take(RecvTap *t, GstBuffer *buf, std::vector<ulpfec::Packet> &rebuilt)
{
  GstMapInfo map;
  if (!gst_buffer_map(buf, &map, GST_MAP_READ)) return;
  if (map.size >= 12) {
    int pt = map.data[1] & 0x7f;
    std::lock_guard lk(t->lock);
    bool shaped = pt != t->media_pt && ulpfec::Recovery::looks_like_fec(map.data, map.size);
    if (t->media_pt < 0 && !shaped) t->media_pt = pt;
    bool fec = shaped && pt != t->media_pt;
    GST_TRACE_OBJECT(t->jb, "in seqnum %u%s", unsigned(map.data[2] << 8 | map.data[3]),
                     fec ? " fec" : "");
    auto more =
        fec ? t->rec.fec(map.data, map.size, &rebuilt) : t->rec.media(map.data, map.size, &rebuilt);
    for (auto &p : more) rebuilt.push_back(std::move(p));
  }
  gst_buffer_unmap(buf, &map);
}

GstPadProbeReturn on_jitterbuffer_in(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  if (made_here) return GST_PAD_PROBE_OK;
  RecvTap *t = static_cast<std::shared_ptr<RecvTap> *>(user_data)->get();
  std::vector<ulpfec::Packet> rebuilt;
  GstBuffer *at = nullptr;
  for_each_buffer(info, [&](GstBuffer *buf) {
    at = buf;
    take(t, buf, rebuilt);
  });
  // In front of the packet that completed it: the jitterbuffer stamps its arrival now, and
  // its retransmission request for that seqnum is cancelled.
  for (auto &p : rebuilt) {
    GstBuffer *b = gst_buffer_new_memdup(p.data(), p.size());
    if (at) gst_buffer_copy_into(b, at, GST_BUFFER_COPY_TIMESTAMPS, 0, -1);
    if (p.size() == 12) {
      GST_INFO_OBJECT(t->jb, "lost FEC packet %u filled", unsigned(p[2] << 8 | p[3]));
    } else {
      guint64 n = ++t->recovered;
      GST_INFO_OBJECT(t->jb, "rebuilt seqnum %u from FEC (%" G_GUINT64_FORMAT " so far)",
                      unsigned(p[2] << 8 | p[3]), n);
    }
    chain_made(pad, b);
  }
  return GST_PAD_PROBE_OK;
}

/* FEC packets go through the jitterbuffer (they hold seqnums of the stream, so a lost one is a
 * gap there) but end here, not in rtpptdemux: rtpptdemux drops a payload type only when the
 * payload-type map names it ULPFEC, and that map is webrtcbin's current remote description.
 * When we answered an offer and then offer ourselves (rtcpeer offers the tracks the remote's
 * offer left out), webrtcbin 1.22 picks the ULPFEC/RTX payload types of the answered m-line
 * afresh (_pick_available_pt skips every payload type of every transceiver's
 * codec-preferences: 98 of our receive-only m-line). The sender switches to the new ULPFEC type
 * when it answers; until our side applies that answer, its map still calls that type RTX.
 * rtpptdemux then made a pad for the FEC packets, webrtcbin a second src pad, decodebin found
 * no decoder for RTX, and not-linked went up to nicesrc: the session was removed (the stall of
 * 3 in 38 bursty runs: with FEC from the start, FEC packets were in flight in that window). */
bool is_fec_packet(RecvTap *t, GstBuffer *buf)
{
  GstMapInfo map;
  if (!gst_buffer_map(buf, &map, GST_MAP_READ)) return false;
  bool fec = false;
  if (map.size >= 12) {
    int pt = map.data[1] & 0x7f;
    std::lock_guard lk(t->lock);
    // Our fills are bare 12-byte headers of the FEC payload type.
    fec = t->media_pt >= 0 && pt != t->media_pt &&
        (map.size == 12 || ulpfec::Recovery::looks_like_fec(map.data, map.size));
  }
  gst_buffer_unmap(buf, &map);
  return fec;
}

GstPadProbeReturn on_jitterbuffer_out(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  RecvTap *t = static_cast<std::shared_ptr<RecvTap> *>(user_data)->get();
  if (!t->codec_known) learn_codec(t, pad);
  return keep_buffers(info, [t](GstBuffer *buf) {
    if (!is_fec_packet(t, buf)) return true;
    GST_LOG_OBJECT(t->jb, "FEC packet dropped after the jitterbuffer");
    return false;
  });
}
} // namespace

void enable_fec(GstWebRTCRTPTransceiver *trans)
{
  g_object_set(trans, "fec-type", GST_WEBRTC_FEC_TYPE_ULP_RED, "fec-percentage", 0u, nullptr);
}

void watch_fec(GstRtcPeer *self, MediaSend *m, const std::string &peer, GstPad *pad,
               GstWebRTCRTPTransceiver *trans, int fixed)
{
  init_debug();
  auto *tap = new SendTap{self, m, peer, GST_WEBRTC_RTP_TRANSCEIVER(gst_object_ref(trans)), fixed};
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_media_packet, tap, nullptr);
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, on_feedback, tap,
                    [](gpointer d) { delete static_cast<SendTap *>(d); });
}

void recover_fec(GstElement *jb)
{
  init_debug();
  GstPad *sink = gst_element_get_static_pad(jb, "sink");
  if (!sink) return;
  GstPad *src = gst_element_get_static_pad(jb, "src");
  if (!src) {
    gst_object_unref(sink);
    return;
  }
  // Shared by both probes (and the data key), freed with the last of them.
  auto shared = std::make_shared<RecvTap>();
  RecvTap *t = shared.get();
  t->jb = jb;
  auto types = GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST);
  auto free_ref = [](gpointer d) { delete static_cast<std::shared_ptr<RecvTap> *>(d); };
  g_object_set_data_full(G_OBJECT(jb), "pointcast-fec", new std::shared_ptr<RecvTap>(shared),
                         free_ref);
  gst_pad_add_probe(src, types, on_jitterbuffer_out, new std::shared_ptr<RecvTap>(shared),
                    free_ref);
  gst_pad_add_probe(sink, types, on_jitterbuffer_in, new std::shared_ptr<RecvTap>(shared),
                    free_ref);
  gst_object_unref(sink);
  gst_object_unref(src);
}

guint64 fec_recovered(GstElement *jb)
{
  auto *t =
      static_cast<std::shared_ptr<RecvTap> *>(g_object_get_data(G_OBJECT(jb), "pointcast-fec"));
  return t ? (*t)->recovered.load() : 0;
}

} // namespace pointcast::rtc
