// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/layergate.h"
#include "rtc/holewatch.h"

#include "rtc/probeutil.h"

#include <gst/rtp/rtp.h>
#include <gst/video/video.h>

#include <memory>
#include <mutex>

GST_DEBUG_CATEGORY_STATIC(layergate_debug);
#undef GST_CAT_DEFAULT
#define GST_CAT_DEFAULT layergate_debug

namespace pointcast::layergate {

bool parse_vp8(const uint8_t *d, size_t len, Vp8Packet &out)
{
  out = Vp8Packet{};
  if (len < 1) return false;
  size_t off = 1;
  out.start = (d[0] & 0x10) && (d[0] & 0x07) == 0;
  if (d[0] & 0x80) { // X
    if (len < 2) return false;
    uint8_t x = d[1];
    off = 2;
    if (x & 0x80) { // I
      if (len < off + 1) return false;
      if (d[off] & 0x80) {
        if (len < off + 2) return false;
        out.picture_id = ((d[off] & 0x7f) << 8) | d[off + 1];
        out.long_id = true;
        off += 2;
      } else {
        out.picture_id = d[off] & 0x7f;
        off += 1;
      }
    }
    if (x & 0x40) { // L
      if (len < off + 1) return false;
      out.tl0 = d[off];
      off += 1;
    }
    if (x & 0x30) { // T or K
      if (len < off + 1) return false;
      if (x & 0x20) {
        out.tid = d[off] >> 6;
        out.sync = d[off] & 0x20;
      }
      off += 1;
    }
  }
  if (out.start) {
    if (len < off + 1) return false;
    out.keyframe = !(d[off] & 0x01);
  }
  return true;
}

void Gate::reset()
{
  *this = Gate{use_layers_};
}

void Gate::broken()
{
  if (synced_) ask_pending_ = true; // at once when the chain breaks
  synced_ = false;
}

bool Gate::ask(bool dropping, int64_t now_us)
{
  // Not for the first keyframe's own packets.
  if (synced_ || (!ask_pending_ && !dropping)) return false;
  if (keyframe_due_us_ >= 0 && now_us - keyframe_due_us_ < kAskUs) return false;
  if (!ask_pending_ && asked_us_ >= 0 && now_us - asked_us_ < kAskUs) return false;
  ask_pending_ = false;
  asked_us_ = now_us;
  return true;
}

void Gate::finish_frame(bool complete)
{
  in_frame_ = false;
  if (!cur_pass_) return;
  bool layered = use_layers_ && cur_.tid >= 0 && cur_.tl0 >= 0;
  if (!complete) {
    // The depayloader drops an incomplete frame: whatever it updates is lost.
    if (cur_.keyframe || !layered || cur_.tid == 0) {
      broken();
    } else {
      layer_lost_[cur_.tid] = true;
    }
    return;
  }
  if (cur_.keyframe) {
    synced_ = true;
    layer_lost_.fill(false);
    asked_us_ = -1;
    ask_pending_ = false;
    keyframe_due_us_ = -1;
  }
  if (!layered) return;
  if (cur_.tid == 0) base_tl0_ = cur_.tl0;
  if (cur_.tid > 0 && cur_.sync) layer_lost_[cur_.tid] = false;
}

Gate::Verdict Gate::packet(uint16_t seq, bool marker, const Vp8Packet &p, int64_t now_us,
                           bool discont)
{
  Verdict v;
  bool gap = false;
  if (have_seq_) {
    auto diff = int16_t(uint16_t(seq - next_seq_));
    if (diff < 0 && diff > -1000) return v; // a duplicate: the depayloader drops it
    // A jump of hundreds of packets: a restarted sender, or long lost; start again.
    if (diff < 0 || diff > 1000) reset();
    gap = have_seq_ && diff != 0;
  }
  gap = gap || discont;
  have_seq_ = true;
  next_seq_ = uint16_t(seq + 1);
  if (gap && in_frame_) cur_ok_ = false;
  bool layered = use_layers_ && p.tid >= 0 && p.tl0 >= 0;
  // Another frame's packet without its start: the frame in progress lost its end, this one its
  // start.
  if (!p.start && in_frame_ && p.picture_id >= 0 && cur_.picture_id >= 0 &&
      p.picture_id != cur_.picture_id)
    finish_frame(false);

  if (p.start) {
    if (in_frame_) finish_frame(false); // its last packets were lost
    // Frames lost whole in between: PictureIDs tell; without them a gap may have been one.
    bool missed = gap;
    if (p.picture_id >= 0 && last_picture_id_ >= 0) {
      int mod = p.long_id ? 0x8000 : 0x80;
      int step = (p.picture_id - last_picture_id_ + mod) % mod;
      missed = step != 1;
    }
    if (missed) {
      // Of unknown layers: a lost base frame shows in TL0PICIDX below.
      if (!layered) broken();
      for (int i = 1; i < kLayers; i++) layer_lost_[i] = true;
    }
    bool pass;
    if (p.keyframe) {
      pass = true;
    } else if (!layered) {
      pass = synced_;
    } else if (p.tid == 0) {
      pass = synced_ && p.tl0 == ((base_tl0_ + 1) & 0xff);
      if (!pass) broken();
    } else {
      bool base = synced_ && p.tl0 == base_tl0_;
      if (!base) broken(); // its base frame never came
      bool layers_ok = true;
      for (int i = 1; i <= p.tid && !p.sync; i++) layers_ok = layers_ok && !layer_lost_[i];
      pass = base && layers_ok;
      if (!pass) layer_lost_[p.tid] = true; // what depends on it within its layer
    }
    in_frame_ = true;
    cur_ok_ = true;
    cur_pass_ = pass;
    cur_ = p;
    last_picture_id_ = p.picture_id;
    if (pass) {
      passed_++;
    } else {
      dropped_++;
    }
  } else if (!in_frame_) {
    // A frame whose first packet was lost: the depayloader ignores the rest of it.
    v.pass = false;
    if (p.picture_id < 0 || p.picture_id != lost_picture_id_) {
      if (p.picture_id >= 0) {
        lost_picture_id_ = p.picture_id;
        last_picture_id_ = p.picture_id;
      }
      if (!layered || p.tid == 0) {
        broken();
      } else {
        layer_lost_[p.tid] = true;
      }
    }
    v.ask_keyframe = ask(!v.pass, now_us);
    return v;
  }
  // Nothing of a frame after a hole in it reaches the depayloader: the gate does not rely on the
  // depayloader's own seqnum check to drop the frame.
  v.pass = cur_pass_ && cur_ok_;
  if (marker) finish_frame(cur_ok_);
  v.ask_keyframe = ask(!v.pass, now_us);
  return v;
}

/* ------------------------------------------------------------------------------------------- */

namespace {
void init_debug()
{
  static std::once_flag once;
  std::call_once(once, [] {
    GST_DEBUG_CATEGORY_INIT(layergate_debug, "rtcpeer-layergate", 0,
                            "rtcpeer VP8: frames that decode after a loss");
  });
}

struct Tap {
  explicit Tap(bool use_layers) : gate(use_layers) {}
  std::mutex lock;
  Gate gate;
  guint32 ssrc = 0;
  bool have_ssrc = false;
};

// Whether BUF goes on to the depayloader; asks for a keyframe on PAD when the gate says so.
bool let_through(Tap *t, GstPad *pad, GstBuffer *buf)
{
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  if (!gst_rtp_buffer_map(buf, GST_MAP_READ, &rtp)) return true; // the depayloader's to drop
  Vp8Packet p;
  bool parsed = parse_vp8(static_cast<const uint8_t *>(gst_rtp_buffer_get_payload(&rtp)),
                          gst_rtp_buffer_get_payload_len(&rtp), p);
  guint16 seq = gst_rtp_buffer_get_seq(&rtp);
  gboolean marker = gst_rtp_buffer_get_marker(&rtp);
  guint32 ssrc = gst_rtp_buffer_get_ssrc(&rtp);
  gst_rtp_buffer_unmap(&rtp);
  bool discont = GST_BUFFER_IS_DISCONT(buf);
  if (!parsed) return true;
  Gate::Verdict v;
  {
    std::lock_guard lk(t->lock);
    if (t->have_ssrc && ssrc != t->ssrc) t->gate.reset();
    t->ssrc = ssrc;
    t->have_ssrc = true;
    bool was = t->gate.synced();
    v = t->gate.packet(seq, marker, p, g_get_monotonic_time(), discont);
    GST_LOG_OBJECT(pad, "seq %u%s start %d key %d pid %d tl0 %d tid %d y %d marker %d: %s", seq,
                   discont ? " (discont)" : "", p.start, p.keyframe, p.picture_id, p.tl0, p.tid,
                   p.sync, marker, v.pass ? "pass" : "drop");
    if (was != t->gate.synced())
      GST_DEBUG_OBJECT(pad, "%s at seqnum %u (%" G_GUINT64_FORMAT " frames dropped so far)",
                       was ? "reference lost, dropping frames until a keyframe"
                           : "keyframe: decoding again",
                       seq, t->gate.frames_dropped());
  }
  if (v.ask_keyframe) {
    GST_DEBUG_OBJECT(pad, "asking for a keyframe");
    gst_pad_push_event(pad,
                       gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
  }
  return v.pass;
}

GstPadProbeReturn on_depay_input(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  auto *t = static_cast<Tap *>(user_data);
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(ev) == GST_EVENT_FLUSH_STOP ||
        GST_EVENT_TYPE(ev) == GST_EVENT_STREAM_START) {
      std::lock_guard lk(t->lock);
      t->gate.reset();
    } else if (holewatch::keyframe_follows(ev)) {
      GST_DEBUG_OBJECT(pad, "a hole given up before a keyframe: not asking for another");
      std::lock_guard lk(t->lock);
      t->gate.keyframe_follows(g_get_monotonic_time());
    }
    return GST_PAD_PROBE_OK;
  }
  return rtc::keep_buffers(info, [t, pad](GstBuffer *buf) { return let_through(t, pad, buf); });
}
} // namespace

void gate_vp8_depayloader(GstElement *depay, bool use_layers)
{
  init_debug();
  // Once per element: deep-element-added may report it more than once.
  if (g_object_get_data(G_OBJECT(depay), "pointcast-layergate")) return;
  g_object_set_data(G_OBJECT(depay), "pointcast-layergate", GINT_TO_POINTER(1));
  g_object_set(depay, "wait-for-keyframe", FALSE, "request-keyframe", FALSE, nullptr);
  GstPad *sink = gst_element_get_static_pad(depay, "sink");
  if (!sink) return;
  gst_pad_add_probe(sink,
                    GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST |
                                    GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
                    on_depay_input, new Tap(use_layers),
                    [](gpointer d) { delete static_cast<Tap *>(d); });
  gst_object_unref(sink);
}

} // namespace pointcast::layergate
