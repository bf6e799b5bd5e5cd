// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/holewatch.h"

#include "rtc/layergate.h"
#include "rtc/probeutil.h"

#include <gst/rtp/rtp.h>
#include <gst/video/video.h>

#include <array>
#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>

GST_DEBUG_CATEGORY_STATIC(holewatch_debug);
#undef GST_CAT_DEFAULT
#define GST_CAT_DEFAULT holewatch_debug

namespace pointcast::holewatch {

void HoleWatch::reset()
{
  holes_.clear();
  highest_ = -1;
  key_start_ = key_end_ = -1;
}

HoleWatch::Action HoleWatch::packet(const Packet &p, int64_t now_us, int64_t window_us,
                                    int64_t ask_us)
{
  Action a;
  int64_t ext;
  if (highest_ < 0) {
    ext = (int64_t(1) << 20) + p.seq; // room below for packets older than the first
    highest_ = ext;
    highest_ts_ = p.ts;
  } else {
    ext = highest_ + int16_t(uint16_t(p.seq - uint16_t(highest_)));
    if (ext > highest_) {
      int64_t missing = ext - highest_ - 1;
      if (size_t(missing) + holes_.size() > kMaxHoles) {
        reset();
        highest_ = ext;
      } else {
        for (int64_t s = highest_ + 1; s < ext; s++) holes_[s] = Hole{now_us, highest_ts_, false};
      }
      highest_ = ext;
      highest_ts_ = p.ts;
    } else if (ext < highest_) {
      holes_.erase(ext); // a retransmission, a rebuilt or a reordered packet
    }
  }
  // Holes the jitterbuffer has given up by now are its own again.
  while (!holes_.empty() && now_us - holes_.begin()->second.since_us > window_us)
    holes_.erase(holes_.begin());

  if (p.key_start && (key_start_ < 0 || p.ts != key_ts_ || ext < key_start_)) {
    key_start_ = ext;
    key_ts_ = p.ts;
    key_end_ = -1;
  }
  if (p.marker && key_start_ >= 0 && p.ts == key_ts_ && ext >= key_start_) key_end_ = ext;
  if (key_start_ >= 0 && key_end_ >= 0 && ask_us < window_us) {
    auto inside = holes_.lower_bound(key_start_);
    if (inside == holes_.end() || inside->first > key_end_) {
      /* Whole: what is missing before it is no longer needed once its retransmission is
       * overdue; a younger hole is still repaired (a frame not lost), the keyframe waits for it. */
      bool young = false;
      for (auto it = holes_.begin(); it != inside;) {
        if (now_us - it->second.since_us < ask_us) {
          young = true;
          ++it;
          continue;
        }
        a.fill.push_back(Fill{uint16_t(it->first & 0xffff), it->second.ts});
        it = holes_.erase(it);
      }
      filled_ += a.fill.size();
      if (!young) key_start_ = key_end_ = -1;
    }
  }
  if (ask_us < window_us) {
    bool due = false;
    for (auto &[seq, h] : holes_) {
      // A keyframe already arriving after the hole will end it.
      if (key_start_ > seq) break;
      if (!h.asked && now_us - h.since_us >= ask_us) due = true;
    }
    if (due) {
      for (auto &[seq, h] : holes_) h.asked = true; // one keyframe answers them all
      a.ask_keyframe = true;
      asked_++;
    }
  }
  return a;
}

/* ------------------------------------------------------------------------------------------- */

namespace {
void init_debug()
{
  static std::once_flag once;
  std::call_once(once, [] {
    GST_DEBUG_CATEGORY_INIT(holewatch_debug, "rtcpeer-holes", 0,
                            "rtcpeer: keyframes ending the jitterbuffer's wait for a hole");
  });
}

constexpr int64_t kParamsEveryUs = 500'000;
constexpr size_t kMaxFakes = 1024;

struct Watch {
  GstElement *jb = nullptr; // not owned: the probes go with its pads
  std::mutex lock;
  HoleWatch holes;
  std::array<int8_t, 128> vp8{}; // per payload type: 0 unknown, 1 VP8, -1 not
  int vp8_pt = -1;               // the last VP8 packet's: only a VP8 stream is watched
  guint32 ssrc = 0;
  bool have_ssrc = false;
  int64_t params_at = -1;
  int64_t window_us = 0, ask_us = 0;
  std::deque<uint16_t> fakes; // seqnums of our fills not yet out of the jitterbuffer
  bool discont_next = false;
};

thread_local bool filling = false;

// The encoding of payload type PT: the sink pad's caps, else rtpbin's payload-type map.
bool is_vp8(Watch *w, GstPad *pad, int pt)
{
  if (w->vp8[pt]) return w->vp8[pt] > 0;
  GstCaps *caps = gst_pad_get_current_caps(pad);
  int cpt = -1;
  if (caps &&
      !(gst_structure_get_int(gst_caps_get_structure(caps, 0), "payload", &cpt) && cpt == pt)) {
    gst_caps_unref(caps);
    caps = nullptr;
  }
  if (!caps) g_signal_emit_by_name(w->jb, "request-pt-map", guint(pt), &caps);
  bool vp8 = false;
  if (caps && !gst_caps_is_empty(caps)) {
    const char *enc = gst_structure_get_string(gst_caps_get_structure(caps, 0), "encoding-name");
    vp8 = enc && !g_ascii_strcasecmp(enc, "VP8");
  }
  if (caps) gst_caps_unref(caps);
  w->vp8[pt] = vp8 ? 1 : -1;
  return vp8;
}

void refresh_params(Watch *w, int64_t now)
{
  if (w->params_at >= 0 && now - w->params_at < kParamsEveryUs) return;
  w->params_at = now;
  guint latency = 0;
  gboolean rtx = FALSE;
  GstStructure *stats = nullptr;
  g_object_get(w->jb, "latency", &latency, "do-retransmission", &rtx, "stats", &stats, nullptr);
  guint64 rtt = 0;
  if (stats) {
    gst_structure_get_uint64(stats, "rtx-rtt", &rtt);
    gst_structure_free(stats);
  }
  w->window_us = int64_t(latency) * 1000;
  // Without retransmission only FEC can fill a hole, within a few packets.
  int64_t rtt_us = rtt ? int64_t(rtt / 1000) : 100'000;
  w->ask_us = rtx ? 2 * std::max<int64_t>(rtt_us, 20'000) + 30'000 : 30'000;
}

GstPadProbeReturn on_jitterbuffer_in(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  if (filling) return GST_PAD_PROBE_OK;
  Watch *w = static_cast<std::shared_ptr<Watch> *>(user_data)->get();
  struct Out {
    HoleWatch::Action a;
    int pt;
    guint32 ssrc;
    GstBuffer *at;
  };
  std::vector<Out> todo;
  rtc::for_each_buffer(info, [&](GstBuffer *buf) {
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    if (!gst_rtp_buffer_map(buf, GST_MAP_READ, &rtp)) return;
    HoleWatch::Packet p;
    p.seq = gst_rtp_buffer_get_seq(&rtp);
    p.ts = gst_rtp_buffer_get_timestamp(&rtp);
    p.marker = gst_rtp_buffer_get_marker(&rtp);
    int pt = gst_rtp_buffer_get_payload_type(&rtp);
    guint32 ssrc = gst_rtp_buffer_get_ssrc(&rtp);
    std::lock_guard lk(w->lock);
    if (is_vp8(w, pad, pt)) {
      w->vp8_pt = pt;
      layergate::Vp8Packet v;
      if (layergate::parse_vp8(static_cast<const uint8_t *>(gst_rtp_buffer_get_payload(&rtp)),
                               gst_rtp_buffer_get_payload_len(&rtp), v))
        p.key_start = v.start && v.keyframe;
    }
    gst_rtp_buffer_unmap(&rtp);
    if (w->have_ssrc && ssrc != w->ssrc) w->holes.reset();
    w->ssrc = ssrc;
    w->have_ssrc = true;
    int64_t now = g_get_monotonic_time();
    refresh_params(w, now);
    auto a = w->holes.packet(p, now, w->window_us, w->ask_us);
    GST_LOG_OBJECT(w->jb,
                   "seq %u pt %d%s%s: %zu holes (window %" G_GINT64_FORMAT
                   " ms, ask after %" G_GINT64_FORMAT " ms)",
                   p.seq, pt, p.key_start ? " keyframe" : "", p.marker ? " marker" : "",
                   w->holes.holes(), w->window_us / 1000, w->ask_us / 1000);
    if (w->vp8_pt >= 0 && (!a.fill.empty() || a.ask_keyframe)) {
      for (auto &f : a.fill) {
        w->fakes.push_back(f.seq);
        if (w->fakes.size() > kMaxFakes) w->fakes.pop_front();
      }
      todo.push_back(Out{std::move(a), w->vp8_pt, ssrc, buf});
    }
  });
  for (auto &o : todo) {
    for (auto &f : o.a.fill) {
      GST_DEBUG_OBJECT(w->jb, "seqnum %u given up: a whole keyframe is behind it", f.seq);
      GstBuffer *b = gst_rtp_buffer_new_allocate(0, 0, 0);
      GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
      if (gst_rtp_buffer_map(b, GST_MAP_WRITE, &rtp)) {
        gst_rtp_buffer_set_payload_type(&rtp, guint8(o.pt));
        gst_rtp_buffer_set_seq(&rtp, f.seq);
        gst_rtp_buffer_set_timestamp(&rtp, f.ts);
        gst_rtp_buffer_set_ssrc(&rtp, o.ssrc);
        gst_rtp_buffer_unmap(&rtp);
      }
      gst_buffer_copy_into(b, o.at, GST_BUFFER_COPY_TIMESTAMPS, 0, -1);
      filling = true;
      rtc::chain_made(pad, b);
      filling = false;
    }
    if (o.a.ask_keyframe) {
      GST_DEBUG_OBJECT(w->jb, "a hole outlived its retransmission: asking for a keyframe");
      gst_pad_push_event(pad,
                         gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
    }
  }
  return GST_PAD_PROBE_OK;
}

// A fill of ours, as the jitterbuffer lets it out: size and seqnum.
bool take_fake(Watch *w, GstBuffer *buf, guint *seq)
{
  if (gst_buffer_get_size(buf) != 12) return false;
  guint8 head[12];
  gst_buffer_extract(buf, 0, head, sizeof head);
  *seq = guint(head[2] << 8 | head[3]);
  std::lock_guard lk(w->lock);
  for (auto it = w->fakes.begin(); it != w->fakes.end(); ++it)
    if (*it == *seq) {
      w->fakes.erase(it);
      w->discont_next = true;
      return true;
    }
  return false;
}

// Dropped in place of a lost event, the next packet DISCONT: what the jitterbuffer does itself.
constexpr const char *kKeyframeFollows = "pointcast-keyframe-follows";

bool pass_out(Watch *w, GstPad *pad, GstBuffer **buf)
{
  guint seq;
  if (take_fake(w, *buf, &seq)) {
    gst_pad_push_event(
        pad,
        gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM,
                             gst_structure_new("GstRTPPacketLost", "seqnum", G_TYPE_UINT, seq,
                                               "timestamp", G_TYPE_UINT64, GST_BUFFER_PTS(*buf),
                                               "duration", G_TYPE_UINT64, guint64(0), "retry",
                                               G_TYPE_UINT, 0u, kKeyframeFollows, G_TYPE_BOOLEAN,
                                               TRUE, nullptr)));
    return false;
  }
  bool mark;
  {
    std::lock_guard lk(w->lock);
    mark = w->discont_next;
    w->discont_next = false;
  }
  if (mark) {
    *buf = gst_buffer_make_writable(*buf);
    GST_BUFFER_FLAG_SET(*buf, GST_BUFFER_FLAG_DISCONT);
  }
  return true;
}

GstPadProbeReturn on_jitterbuffer_out(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Watch *w = static_cast<std::shared_ptr<Watch> *>(user_data)->get();
  return rtc::map_buffers(info, [w, pad](GstBuffer **buf) { return pass_out(w, pad, buf); });
}
} // namespace

bool keyframe_follows(GstEvent *ev)
{
  if (GST_EVENT_TYPE(ev) != GST_EVENT_CUSTOM_DOWNSTREAM) return false;
  const GstStructure *s = gst_event_get_structure(ev);
  gboolean follows = FALSE;
  return s && gst_structure_has_name(s, "GstRTPPacketLost") &&
      gst_structure_get_boolean(s, kKeyframeFollows, &follows) && follows;
}

void watch_holes(GstElement *jb)
{
  init_debug();
  GstPad *sink = gst_element_get_static_pad(jb, "sink");
  GstPad *src = gst_element_get_static_pad(jb, "src");
  if (sink && src) {
    GST_DEBUG_OBJECT(jb, "watching its holes");
    auto shared = std::make_shared<Watch>();
    shared->jb = jb;
    auto types = GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST);
    auto free_ref = [](gpointer d) { delete static_cast<std::shared_ptr<Watch> *>(d); };
    gst_pad_add_probe(sink, types, on_jitterbuffer_in, new std::shared_ptr<Watch>(shared),
                      free_ref);
    gst_pad_add_probe(src, types, on_jitterbuffer_out, new std::shared_ptr<Watch>(shared),
                      free_ref);
  }
  if (sink) gst_object_unref(sink);
  if (src) gst_object_unref(src);
}

} // namespace pointcast::holewatch
