// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/mediacc.h"

#include "rtc/codecs.h"

#include <gst/rtp/rtp.h>
#include <gst/video/video.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <map>
#include <mutex>
#include <string_view>

GST_DEBUG_CATEGORY_STATIC(mediacc_debug);
#define GST_CAT_DEFAULT mediacc_debug

namespace pointcast::mediacc {

namespace {
void init_debug()
{
  static std::once_flag once;
  std::call_once(once, [] {
    GST_DEBUG_CATEGORY_INIT(mediacc_debug, "rtcpeer-cc", 0, "rtcpeer congestion control");
  });
}

const char *extmap_uri(const GValue *v)
{
  if (G_VALUE_HOLDS_STRING(v)) return g_value_get_string(v);
  // (direction, uri, attributes) as webrtcbin also accepts it
  if (GST_VALUE_HOLDS_ARRAY(v) && gst_value_array_get_size(v) >= 2) {
    const GValue *u = gst_value_array_get_value(v, 1);
    if (G_VALUE_HOLDS_STRING(u)) return g_value_get_string(u);
  }
  return nullptr;
}
} // namespace

void add_feedback(GstCaps *caps, int id)
{
  std::string field = "extmap-" + std::to_string(id);
  for (guint i = 0; i < gst_caps_get_size(caps); i++)
    gst_structure_set(gst_caps_get_structure(caps, i), "rtcp-fb-nack", G_TYPE_BOOLEAN, TRUE,
                      "rtcp-fb-transport-cc", G_TYPE_BOOLEAN, TRUE, field.c_str(), G_TYPE_STRING,
                      kTwccUri, nullptr);
}

int twcc_id(const GstCaps *caps)
{
  if (!caps || gst_caps_is_empty(caps) || gst_caps_is_any(caps)) return 0;
  const GstStructure *s = gst_caps_get_structure(caps, 0);
  for (int i = 0; i < gst_structure_n_fields(s); i++) {
    std::string_view name = gst_structure_nth_field_name(s, guint(i));
    if (name.substr(0, 7) != "extmap-") continue;
    const char *uri = extmap_uri(gst_structure_get_value(s, name.data()));
    if (uri && std::string_view(uri) == kTwccUri) return std::atoi(name.data() + 7);
  }
  return 0;
}

bool add_twcc_extension(GstElement *payloader, int id)
{
  GstRTPHeaderExtension *ext = gst_rtp_header_extension_create_from_uri(kTwccUri);
  if (!ext) return false;
  gst_rtp_header_extension_set_id(ext, guint(id));
  g_signal_emit_by_name(payloader, "add-extension", ext);
  gst_object_unref(ext);
  return true;
}

GstCaps *caps_from_offer(const GstSDPMedia *media)
{
  GstCaps *out = gst_caps_new_empty();
  for (guint i = 0; i < gst_sdp_media_formats_len(media); i++) {
    int pt = std::atoi(gst_sdp_media_get_format(media, i));
    GstCaps *caps = gst_sdp_media_get_caps_from_media(media, pt);
    if (!caps) continue;
    // attributes_to_caps adds the m-line's extmaps (get_caps_from_media has the rtcp-fb ones).
    gst_sdp_media_attributes_to_caps(media, caps);
    GstStructure *s = gst_caps_get_structure(caps, 0);
    const char *enc = gst_structure_get_string(s, "encoding-name");
    // RTX, RED and ULPFEC are webrtcbin's to add (do-nack, fec-type); unknown codecs we
    // could not depayload.
    if (!enc || !codecs::by_encoding(enc)) {
      gst_caps_unref(caps);
      continue;
    }
    gst_structure_set_name(s, "application/x-rtp");
    // Attributes of the section that are not the codec's (the answer makes its own): mid, ICE,
    // DTLS, direction, the remote's candidates and SSRCs (a-*, ssrc-N-cname...). A remote
    // candidate in the caps went into our answer as one of ours.
    for (int f = gst_structure_n_fields(s) - 1; f >= 0; f--) {
      std::string_view name = gst_structure_nth_field_name(s, guint(f));
      if (name.substr(0, 2) == "a-" || name.substr(0, 5) == "ssrc-")
        gst_structure_remove_field(s, std::string(name).c_str());
    }
    gst_caps_append(out, caps);
  }
  if (gst_caps_is_empty(out)) {
    gst_caps_unref(out);
    return nullptr;
  }
  return out;
}

bool parse_twcc_event(GstEvent *event, std::vector<cc::PacketResult> &out)
{
  if (GST_EVENT_TYPE(event) != GST_EVENT_CUSTOM_UPSTREAM) return false;
  const GstStructure *s = gst_event_get_structure(event);
  if (!s || !gst_structure_has_name(s, "RTPTWCCPackets")) return false;
  const GValue *packets = gst_structure_get_value(s, "packets");
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS // rtpsession 1.22 sends a GValueArray
      if (!packets || !G_VALUE_HOLDS(packets, g_value_array_get_type())) return false;
  auto *array = static_cast<GValueArray *>(g_value_get_boxed(packets));
  for (guint i = 0; array && i < array->n_values; i++) {
    const GValue *v = g_value_array_get_nth(array, i);
    if (!GST_VALUE_HOLDS_STRUCTURE(v)) continue;
    const GstStructure *p = gst_value_get_structure(v);
    guint64 local = GST_CLOCK_TIME_NONE, remote = GST_CLOCK_TIME_NONE;
    guint size = 0;
    gboolean lost = FALSE;
    // Field by field: one missing or of another type must not take the others with it.
    gst_structure_get_uint64(p, "local-ts", &local);
    gst_structure_get_uint64(p, "remote-ts", &remote);
    gst_structure_get_uint(p, "size", &size);
    gst_structure_get_boolean(p, "lost", &lost);
    if (!GST_CLOCK_TIME_IS_VALID(local)) continue; // not one of ours (sent before a restart)
    cc::PacketResult r;
    r.send_us = int64_t(local / 1000);
    r.lost = lost || !GST_CLOCK_TIME_IS_VALID(remote);
    r.recv_us = r.lost ? 0 : int64_t(remote / 1000);
    r.size = size;
    out.push_back(r);
  }
  G_GNUC_END_IGNORE_DEPRECATIONS
  return true;
}

namespace {
struct RtxBudget {
  std::mutex lock;
  /* Starts with 16 KiB saved up: empty, the first losses of a stream (its first keyframe's, the
   * ones before a few dozen packets had gone out) were not retransmitted. */
  double share = 0.25, tokens = 16 * 1024;
  std::vector<guint> rtx_pts; // the payload types rtprtxsend retransmits with
  bool map_read = false;
  uint64_t dropped = 0;
};

gboolean collect_rtx_pt(GQuark, const GValue *v, gpointer user_data)
{
  auto *pts = static_cast<std::vector<guint> *>(user_data);
  if (G_VALUE_HOLDS_UINT(v)) pts->push_back(g_value_get_uint(v));
  if (G_VALUE_HOLDS_INT(v)) pts->push_back(guint(g_value_get_int(v)));
  return TRUE;
}

GstPadProbeReturn on_rtx_out(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  auto *b = static_cast<RtxBudget *>(user_data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!buf) return GST_PAD_PROBE_OK;
  // The payload type from the header's second byte: every packet of every viewer comes by here,
  // and rtprtxsend's output is RTP already (no need for gst_rtp_buffer_map's checks).
  guint8 b1;
  if (gst_buffer_extract(buf, 1, &b1, 1) != 1) return GST_PAD_PROBE_OK;
  guint pt = b1 & 0x7f;
  double size = double(gst_buffer_get_size(buf));
  std::lock_guard lk(b->lock);
  if (!b->map_read) {
    // Set by webrtcbin before anything flows.
    GstStructure *map = nullptr;
    if (GstElement *rtx = gst_pad_get_parent_element(pad)) {
      g_object_get(rtx, "payload-type-map", &map, nullptr);
      gst_object_unref(rtx);
    }
    if (map) {
      gst_structure_foreach(map, collect_rtx_pt, &b->rtx_pts);
      gst_structure_free(map);
    }
    b->map_read = true;
  }
  bool is_rtx = std::find(b->rtx_pts.begin(), b->rtx_pts.end(), pt) != b->rtx_pts.end();
  if (!is_rtx) {
    // At most about a second's worth of budget saved up.
    b->tokens = std::min(b->tokens + b->share * size, 64.0 * 1024);
    return GST_PAD_PROBE_OK;
  }
  if (b->tokens >= size) {
    b->tokens -= size;
    return GST_PAD_PROBE_OK;
  }
  if (b->dropped++ % 100 == 0)
    GST_DEBUG_OBJECT(pad, "retransmission over budget dropped (%" G_GUINT64_FORMAT " so far)",
                     b->dropped);
  return GST_PAD_PROBE_DROP;
}
} // namespace

void limit_retransmissions(GstElement *rtprtxsend, double share)
{
  init_debug();
  // Once per element: deep-element-added may report it with its bin and on its own.
  if (g_object_get_data(G_OBJECT(rtprtxsend), "pointcast-rtx-budget")) return;
  g_object_set_data(G_OBJECT(rtprtxsend), "pointcast-rtx-budget", GINT_TO_POINTER(1));
  GstPad *src = gst_element_get_static_pad(rtprtxsend, "src");
  if (!src) return;
  auto *b = new RtxBudget;
  b->share = share;
  GST_DEBUG_OBJECT(rtprtxsend, "retransmissions limited to %.0f %% of the stream", share * 100);
  gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, on_rtx_out, b,
                    [](gpointer d) { delete static_cast<RtxBudget *>(d); });
  gst_object_unref(src);
}

/* ------------------------------------------------------------------------------------------- */

struct EncoderControl::Shared {
  std::mutex lock;
  GstElement *encoder = nullptr;
  bool kbit = false; // x264enc: kbit/s
  cc::Config cfg;
  uint32_t floor = 0;
  struct Peer {
    std::unique_ptr<cc::Controller> ctl;
    GstPad *pad = nullptr;
    gulong probe = 0;
    // Layered: the frames before this peer's payloader, and the layers it gets.
    GstPad *frames = nullptr;
    gulong frames_probe = 0;
    int wanted = cc::Layering::kLayers - 1;
    cc::LayerSelector selector;
  };
  std::map<std::string, Peer> peers;
  std::map<std::string, double> overhead; // set_overhead, kept across watch()
  uint32_t applied = 0;
  // Layered VP8 (set_temporal_layers): the cumulative layer targets applied, and the cumulative
  // layer rates measured at the encoder's output (bit/s, over about a second).
  bool layered = false;
  std::array<uint32_t, cc::Layering::kLayers> applied_layers{};
  std::array<double, cc::Layering::kLayers> layer_bps{};
  std::array<uint64_t, cc::Layering::kLayers> layer_bytes{};
  guint intra_pct = 0; // max-intra-bitrate applied (0: the encoder's own setting still)
  double fraction = 1.0, credit = 0;
  KeyframeGate keyframes;
  cc::FrameClock clock;
  std::deque<std::array<uint64_t, 3>> shown; // (shown pts, real pts, real duration) per frame
  bool keyframe_pending = false; // asked for within the gate's interval: sent when it ends
  gulong raw_probe = 0, out_probe = 0;
  // What the encoder puts out (bit/s, over about a second): whether the target binds at all.
  double out_bps = 0;
  int64_t out_since = -1;
  uint64_t out_bytes = 0;

  // Under lock: the encoder rate the viewers call for now, 0 when it need not change. The caller
  // sets it with set_rate() after unlocking: the encoder's own lock may be held by its streaming
  // thread, which takes ours in on_encoded().
  uint32_t update_locked();
  void set_rate(uint32_t bps);
  std::array<uint32_t, cc::Layering::kLayers> pending_layers{}; // with update_locked's rate
  guint pending_intra = 0;
};

namespace {
struct Tap {
  std::weak_ptr<EncoderControl::Shared> shared;
  std::string peer;
};

int64_t now_us()
{
  return int64_t(g_get_monotonic_time());
}
} // namespace

uint32_t EncoderControl::Shared::update_locked()
{
  // Each viewer's target for the encoder: its controller's less what its link carries beside
  // the encoder's bits (set_overhead).
  std::vector<uint32_t> targets;
  for (auto &[id, p] : peers) {
    auto o = overhead.find(id);
    double share = o == overhead.end() ? 0.0 : o->second;
    targets.push_back(uint32_t(double(p.ctl->target_bps()) / (1.0 + share)));
  }
  if (targets.empty()) return 0;
  auto a = cc::allocate(targets, cc::kViewerFloorBps, cfg.min_bps, cfg.max_bps);
  // Fewer frames only when the target binds: an encoder that sends less than it (a still
  // scene) loses nothing to a low target, and dropping its frames would.
  fraction = out_bps >= 0.8 * a.encoder_bps ? cc::frame_fraction(a.encoder_bps, floor) : 1.0;
  bool layers_moved = false;
  if (layered) {
    // The base layer fits the slowest viewer that cannot take the whole stream.
    uint32_t slowest = 0;
    for (uint32_t t : targets)
      if (t < a.encoder_bps && (!slowest || t < slowest)) slowest = t;
    auto want = cc::Layering::targets(a.encoder_bps, slowest, cfg.min_bps);
    size_t i = 0;
    for (auto &[id, p] : peers) {
      // A viewer the encoder's rate fits gets everything (the one it follows, and those above
      // it); the others what the measured layer rates say fits.
      uint32_t t = targets[i++];
      int w = t >= a.encoder_bps ? cc::Layering::kLayers - 1
                                 : cc::Layering::choose(t, layer_bps, p.selector.layer());
      if (w != p.wanted)
        GST_DEBUG_OBJECT(encoder, "'%s' (%u bit/s) now gets layers 0-%d", id.c_str(), t, w);
      p.wanted = w;
    }
    uint32_t base = applied_layers[0];
    layers_moved = !base || std::fabs(double(want[0]) - base) >= 0.05 * base;
    pending_layers = want;
    pending_intra = cc::Layering::keyframe_pct(a.encoder_bps, slowest);
  }
  // Small steps are noise; each change reconfigures the encoder.
  if (applied && std::fabs(double(a.encoder_bps) - applied) < 0.03 * applied && !layers_moved)
    return 0;
  GST_DEBUG_OBJECT(encoder, "bitrate %u -> %u bit/s (%zu viewers), frames kept %.2f, base %u",
                   applied, a.encoder_bps, targets.size(), fraction, pending_layers[0]);
  applied = a.encoder_bps;
  if (layered) {
    pending_layers[cc::Layering::kLayers - 1] = applied;
    applied_layers = pending_layers;
  }
  return applied;
}

static void set_layer_targets(GstElement *encoder,
                              const std::array<uint32_t, cc::Layering::kLayers> &bps)
{
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS // vpxenc 1.22 takes a GValueArray
      GValueArray *va = g_value_array_new(cc::Layering::kLayers);
  for (uint32_t b : bps) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_TYPE_INT);
    g_value_set_int(&v, gint(std::max<uint32_t>(b, 1000)));
    g_value_array_append(va, &v);
    g_value_unset(&v);
  }
  GValue arr = G_VALUE_INIT;
  g_value_init(&arr, G_TYPE_VALUE_ARRAY);
  g_value_take_boxed(&arr, va);
  g_object_set_property(G_OBJECT(encoder), "temporal-scalability-target-bitrate", &arr);
  g_value_unset(&arr);
  G_GNUC_END_IGNORE_DEPRECATIONS
}

void EncoderControl::Shared::set_rate(uint32_t bps)
{
  if (!bps) return;
  if (kbit)
    g_object_set(encoder, "bitrate", guint(std::max<uint32_t>(1, bps / 1000)), nullptr);
  else
    g_object_set(encoder, "target-bitrate", gint(bps), nullptr);
  if (!layered) return;
  // After the total: vpxenc applies each property on its own (vpx_codec_enc_config_set), and
  // the last one leaves layer targets that add up to the total.
  std::array<uint32_t, cc::Layering::kLayers> layers;
  guint intra = 0;
  {
    std::lock_guard lk(lock);
    layers = applied_layers;
    if (pending_intra != intra_pct) intra = intra_pct = pending_intra;
  }
  set_layer_targets(encoder, layers);
  if (intra) g_object_set(encoder, "max-intra-bitrate", gint(intra), nullptr);
}

void set_temporal_layers(GstElement *enc, uint32_t total_bps)
{
  using L = cc::Layering;
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  auto int_array = [](const int *values, int n) {
    GValueArray *va = g_value_array_new(guint(n));
    for (int i = 0; i < n; i++) {
      GValue v = G_VALUE_INIT;
      g_value_init(&v, G_TYPE_INT);
      g_value_set_int(&v, values[i]);
      g_value_array_append(va, &v);
      g_value_unset(&v);
    }
    return va;
  };
  GValueArray *ids = int_array(L::kLayerId, L::kPeriod);
  GValueArray *dec = int_array(L::kDecimator, L::kLayers);
  g_object_set(enc, "temporal-scalability-number-layers", L::kLayers,
               "temporal-scalability-periodicity", L::kPeriod, "temporal-scalability-layer-id", ids,
               "temporal-scalability-rate-decimator", dec, nullptr);
  g_value_array_free(ids);
  g_value_array_free(dec);
  G_GNUC_END_IGNORE_DEPRECATIONS
  set_layer_targets(enc, L::targets(total_bps, 0, 0));
  // Base frames: reference and update only the last frame (the previous base frame). Frames
  // above it: reference only that, update nothing, not even the entropy context, which a viewer
  // that never got them would otherwise decode the next frames with wrongly.
  GValue flags = G_VALUE_INIT, sync = G_VALUE_INIT;
  gst_value_array_init(&flags, L::kPeriod);
  gst_value_array_init(&sync, L::kPeriod);
  for (int i = 0; i < L::kPeriod; i++) {
    const char *nick = L::kLayerId[i] == 0
        ? "no-ref-golden+no-ref-alt+no-upd-golden+no-upd-alt"
        : "no-ref-golden+no-ref-alt+no-upd-last+no-upd-golden+no-upd-alt+no-upd-entropy";
    GValue f = G_VALUE_INIT;
    g_value_init(&f, g_type_from_name("GstVPXEncTsLayerFlags"));
    gst_value_deserialize(&f, nick);
    gst_value_array_append_and_take_value(&flags, &f);
    GValue b = G_VALUE_INIT;
    g_value_init(&b, G_TYPE_BOOLEAN);
    g_value_set_boolean(&b, L::kLayerId[i] != 0);
    gst_value_array_append_and_take_value(&sync, &b);
  }
  g_object_set_property(G_OBJECT(enc), "temporal-scalability-layer-flags", &flags);
  g_object_set_property(G_OBJECT(enc), "temporal-scalability-layer-sync-flags", &sync);
  g_value_unset(&flags);
  g_value_unset(&sync);
}

// The temporal layer of an encoded VP8 frame (vp8enc's GstVP8Meta); false without layers.
static bool frame_layer(GstBuffer *buf, int *layer, bool *sync)
{
  GstCustomMeta *meta = gst_buffer_get_custom_meta(buf, "GstVP8Meta");
  if (!meta) return false;
  GstStructure *s = gst_custom_meta_get_structure(meta);
  gboolean temporal = FALSE, layer_sync = FALSE;
  guint id = 0;
  if (!gst_structure_get_boolean(s, "use-temporal-scaling", &temporal) || !temporal) return false;
  gst_structure_get_uint(s, "layer-id", &id);
  gst_structure_get_boolean(s, "layer-sync", &layer_sync);
  *layer = int(id);
  *sync = layer_sync;
  return true;
}

// A peer's frames on their way into its payloader: only the layers it gets.
static GstPadProbeReturn on_peer_frame(GstPad *, GstPadProbeInfo *info, gpointer user_data)
{
  auto *tap = static_cast<Tap *>(user_data);
  auto shared = tap->shared.lock();
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!shared || !buf) return GST_PAD_PROBE_OK;
  int layer = 0;
  bool sync = false;
  if (!frame_layer(buf, &layer, &sync)) return GST_PAD_PROBE_OK;
  bool key = !GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);
  std::lock_guard lk(shared->lock);
  auto it = shared->peers.find(tap->peer);
  if (it == shared->peers.end()) return GST_PAD_PROBE_OK;
  auto &p = it->second;
  int before = p.selector.layer();
  bool pass = p.selector.pass(layer, sync, key, p.wanted);
  if (p.selector.layer() != before)
    GST_DEBUG("'%s' layers 0-%d from here (frame of layer %d%s)", tap->peer.c_str(),
              p.selector.layer(), layer, key ? ", keyframe" : "");
  return pass ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
}

static GstPadProbeReturn on_upstream(GstPad *, GstPadProbeInfo *info, gpointer user_data)
{
  auto *tap = static_cast<Tap *>(user_data);
  auto shared = tap->shared.lock();
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
  if (!shared || !ev) return GST_PAD_PROBE_OK;
  if (gst_video_event_is_force_key_unit(ev)) {
    std::lock_guard lk(shared->lock);
    if (shared->keyframes.allow(now_us())) {
      shared->keyframe_pending = false;
      return GST_PAD_PROBE_OK;
    }
    // Coalesced, not dropped: a receiver whose keyframe was the one lost asks only once.
    GST_LOG("keyframe request from '%s' deferred: one was sent just now", tap->peer.c_str());
    shared->keyframe_pending = true;
    return GST_PAD_PROBE_DROP;
  }
  std::vector<cc::PacketResult> packets;
  if (!parse_twcc_event(ev, packets)) return GST_PAD_PROBE_OK;
  uint32_t rate = 0;
  {
    std::lock_guard lk(shared->lock);
    auto it = shared->peers.find(tap->peer);
    if (it != shared->peers.end() && !packets.empty()) {
      auto &c = *it->second.ctl;
      for (auto &r : packets)
        GST_TRACE("'%s' packet sent %" G_GINT64_FORMAT " recv %" G_GINT64_FORMAT " size %u%s",
                  tap->peer.c_str(), r.send_us, r.recv_us, r.size, r.lost ? " lost" : "");
      c.on_feedback(now_us(), packets);
      // Sent with the next frame, through the gate like a receiver's request.
      if (c.take_outage_end()) {
        GST_DEBUG("'%s' is back after an outage: keyframe", tap->peer.c_str());
        shared->keyframe_pending = true;
      }
      GST_LOG(
          "'%s': %zu packets, usage %d, jitter %.1f queue %.1f ms, loss %.3f, received %u bit/s, "
          "target delay %u loss %u",
          tap->peer.c_str(), packets.size(), int(c.usage()), c.jitter_ms(), c.queuing_delay_ms(),
          c.loss_fraction(), c.acked_bps(), c.delay_target_bps(), c.loss_target_bps());
      rate = shared->update_locked();
    }
  }
  shared->set_rate(rate);
  return GST_PAD_PROBE_DROP; // ours; nothing upstream of the tee wants it
}

static GstPadProbeReturn on_raw_frame(GstPad *, GstPadProbeInfo *info, gpointer user_data)
{
  auto *shared = static_cast<EncoderControl::Shared *>(user_data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!buf) return GST_PAD_PROBE_OK;
  GST_TRACE("raw pts %" G_GUINT64_FORMAT " at %" G_GINT64_FORMAT, GST_BUFFER_PTS(buf), now_us());
  bool keyframe = false;
  {
    std::lock_guard lk(shared->lock);
    if (shared->keyframe_pending && shared->keyframes.allow(now_us())) {
      shared->keyframe_pending = false;
      keyframe = true;
    }
    if (shared->fraction < 1.0 && !keyframe) {
      shared->credit += shared->fraction;
      if (shared->credit < 1.0) return GST_PAD_PROBE_DROP;
      shared->credit -= 1.0;
    }
    // The encoder sees an even clock (cc::FrameClock); on_encoded() puts the real times back.
    if (GST_BUFFER_PTS_IS_VALID(buf)) {
      buf = gst_buffer_make_writable(buf);
      GST_PAD_PROBE_INFO_DATA(info) = buf;
      uint64_t duration = 0;
      uint64_t shown = shared->clock.map(GST_BUFFER_PTS(buf), &duration);
      shared->shown.push_back({shown, GST_BUFFER_PTS(buf), GST_BUFFER_DURATION(buf)});
      if (shared->shown.size() > 64) shared->shown.pop_front(); // an encoder that drops frames
      GST_BUFFER_PTS(buf) = shown;
      GST_BUFFER_DURATION(buf) = duration;
    }
  }
  if (keyframe) {
    // Into the encoder's src pad as a receiver's request would come; before this frame enters.
    GstPad *src = gst_element_get_static_pad(shared->encoder, "src");
    gst_pad_send_event(src,
                       gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
    gst_object_unref(src);
  }
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn on_encoded(GstPad *, GstPadProbeInfo *info, gpointer user_data)
{
  auto *shared = static_cast<EncoderControl::Shared *>(user_data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!buf) return GST_PAD_PROBE_OK;
  int64_t now = now_us();
  std::lock_guard lk(shared->lock);
  // The frame's real timestamps (see on_raw_frame); entries before it were frames the encoder
  // dropped.
  auto &shown = shared->shown;
  auto it = std::find_if(shown.begin(), shown.end(),
                         [&](const auto &e) { return e[0] == GST_BUFFER_PTS(buf); });
  if (it != shown.end()) {
    buf = gst_buffer_make_writable(buf);
    GST_PAD_PROBE_INFO_DATA(info) = buf;
    GST_BUFFER_PTS(buf) = (*it)[1];
    if (GST_BUFFER_DTS_IS_VALID(buf)) GST_BUFFER_DTS(buf) = (*it)[1];
    GST_BUFFER_DURATION(buf) = (*it)[2];
    shown.erase(shown.begin(), it + 1);
  }
  GST_TRACE("encoded %" G_GSIZE_FORMAT " bytes at %" G_GINT64_FORMAT "%s, pts %" GST_TIME_FORMAT,
            gst_buffer_get_size(buf), now,
            GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT) ? "" : " key",
            GST_TIME_ARGS(GST_BUFFER_PTS(buf)));
  if (shared->out_since < 0) shared->out_since = now;
  shared->out_bytes += gst_buffer_get_size(buf);
  if (shared->layered) {
    int layer = 0;
    bool sync = false;
    frame_layer(buf, &layer, &sync);
    shared->layer_bytes[size_t(std::clamp(layer, 0, cc::Layering::kLayers - 1))] +=
        gst_buffer_get_size(buf);
  }
  if (now - shared->out_since >= 1'000'000) {
    double dt = double(now - shared->out_since);
    shared->out_bps = double(shared->out_bytes) * 8e6 / dt;
    double sum = 0;
    for (size_t l = 0; l < shared->layer_bytes.size(); l++) {
      sum += double(shared->layer_bytes[l]) * 8e6 / dt;
      shared->layer_bps[l] = sum;
      shared->layer_bytes[l] = 0;
    }
    shared->out_since = now;
    shared->out_bytes = 0;
  }
  return GST_PAD_PROBE_OK;
}

EncoderControl::EncoderControl(GstElement *encoder, cc::Config cfg, uint32_t floor_bps)
    : shared_(std::make_shared<Shared>())
{
  init_debug();
  shared_->encoder = GST_ELEMENT(gst_object_ref(encoder));
  shared_->kbit = !g_object_class_find_property(G_OBJECT_GET_CLASS(encoder), "target-bitrate");
  shared_->cfg = cfg;
  shared_->floor = floor_bps;
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(encoder),
                                   "temporal-scalability-periodicity")) {
    gint period = 0;
    g_object_get(encoder, "temporal-scalability-periodicity", &period, nullptr);
    shared_->layered = period == cc::Layering::kPeriod;
    if (shared_->layered)
      shared_->applied_layers = cc::Layering::targets(cfg.start_bps, 0, cfg.min_bps);
  }
  // Raw frames dropped before the encoder (below the floor): the encoder's rate control then
  // spends the bits on fewer, sharper frames. The probe's data is freed with the element.
  if (GstPad *sink = gst_element_get_static_pad(encoder, "sink")) {
    shared_->raw_probe =
        gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_BUFFER, on_raw_frame, shared_.get(), nullptr);
    gst_object_unref(sink);
  }
  if (GstPad *src = gst_element_get_static_pad(encoder, "src")) {
    shared_->out_probe =
        gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, on_encoded, shared_.get(), nullptr);
    gst_object_unref(src);
  }
}

EncoderControl::~EncoderControl()
{
  std::map<std::string, Shared::Peer> peers;
  {
    std::lock_guard lk(shared_->lock);
    peers.swap(shared_->peers);
  }
  for (auto &[id, p] : peers) {
    if (p.probe) gst_pad_remove_probe(p.pad, p.probe);
    gst_object_unref(p.pad);
    if (p.frames) {
      gst_pad_remove_probe(p.frames, p.frames_probe);
      gst_object_unref(p.frames);
    }
  }
  if (GstPad *sink = gst_element_get_static_pad(shared_->encoder, "sink")) {
    if (shared_->raw_probe) gst_pad_remove_probe(sink, shared_->raw_probe);
    gst_object_unref(sink);
  }
  if (GstPad *src = gst_element_get_static_pad(shared_->encoder, "src")) {
    if (shared_->out_probe) gst_pad_remove_probe(src, shared_->out_probe);
    gst_object_unref(src);
  }
  gst_object_unref(shared_->encoder);
}

void EncoderControl::watch(const std::string &peer, GstPad *pad, GstPad *frames)
{
  forget(peer);
  auto *tap = new Tap{shared_, peer};
  gulong id = gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, on_upstream, tap,
                                [](gpointer d) { delete static_cast<Tap *>(d); });
  gulong frames_id = 0;
  if (frames && shared_->layered)
    frames_id =
        gst_pad_add_probe(frames, GST_PAD_PROBE_TYPE_BUFFER, on_peer_frame, new Tap{shared_, peer},
                          [](gpointer d) { delete static_cast<Tap *>(d); });
  std::lock_guard lk(shared_->lock);
  cc::Config c = shared_->cfg;
  // A new viewer starts where the encoder is, not back at the start rate.
  if (shared_->applied) c.start_bps = shared_->applied;
  auto &p = shared_->peers[peer];
  p.ctl = std::make_unique<cc::Controller>(c);
  p.pad = GST_PAD(gst_object_ref(pad));
  p.probe = id;
  if (frames_id) {
    p.frames = GST_PAD(gst_object_ref(frames));
    p.frames_probe = frames_id;
  }
}

void EncoderControl::forget(const std::string &peer)
{
  Shared::Peer p;
  uint32_t rate = 0;
  {
    std::lock_guard lk(shared_->lock);
    auto it = shared_->peers.find(peer);
    if (it == shared_->peers.end()) return;
    p = std::move(it->second);
    shared_->peers.erase(it);
    rate = shared_->update_locked(); // the viewers left set the rate from now on
  }
  shared_->set_rate(rate);
  if (p.probe) gst_pad_remove_probe(p.pad, p.probe);
  gst_object_unref(p.pad);
  if (p.frames) {
    gst_pad_remove_probe(p.frames, p.frames_probe);
    gst_object_unref(p.frames);
  }
}

void EncoderControl::set_overhead(const std::string &peer, double share)
{
  uint32_t rate = 0;
  {
    std::lock_guard lk(shared_->lock);
    if (share > 0)
      shared_->overhead[peer] = share;
    else
      shared_->overhead.erase(peer);
    rate = shared_->update_locked();
  }
  shared_->set_rate(rate);
}

uint32_t EncoderControl::bitrate_bps() const
{
  std::lock_guard lk(shared_->lock);
  return shared_->applied ? shared_->applied : shared_->cfg.start_bps;
}

int EncoderControl::layer(const std::string &peer) const
{
  std::lock_guard lk(shared_->lock);
  auto it = shared_->peers.find(peer);
  if (it == shared_->peers.end()) return -1;
  return shared_->layered ? it->second.selector.layer() : cc::Layering::kLayers - 1;
}

double EncoderControl::queue_ms(const std::string &peer) const
{
  std::lock_guard lk(shared_->lock);
  auto it = shared_->peers.find(peer);
  if (it == shared_->peers.end()) return -1;
  auto &c = *it->second.ctl;
  return c.queue_above_jitter_ms();
}

double EncoderControl::frame_fraction() const
{
  std::lock_guard lk(shared_->lock);
  return shared_->fraction;
}

} // namespace pointcast::mediacc
