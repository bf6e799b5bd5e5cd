// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/mediasend.h"

#include "rtc/codecs.h"
#include "rtc/eos.h"
#include "rtc/fec.h"
#include "rtc/holewatch.h"
#include "rtc/mediarecv.h"
#include "rtc/negotiation.h"
#include "rtc/rtcpeerpriv.h"
#include "rtc/rtcprate.h"

#include <gst/video/video.h>

namespace pointcast::rtc {

void request_keyframes(GstRtcPeer *self)
{
  auto *p = self->priv;
  std::vector<GstElement *> encoders;
  {
    std::lock_guard lk(p->lock);
    for (auto &m : p->media_sends)
      if (m->encoder) encoders.push_back(GST_ELEMENT(gst_object_ref(m->encoder)));
  }
  for (auto *e : encoders) {
    GstPad *src = gst_element_get_static_pad(e, "src");
    gst_pad_send_event(src,
                       gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
    gst_object_unref(src);
    gst_object_unref(e);
  }
}

// Whether any media fed to the element comes from a live source (a camera, ballsrc) rather than a file.
static bool fed_live(GstRtcPeer *self)
{
  bool live = false, answered = false;
  GstIterator *it = gst_element_iterate_sink_pads(GST_ELEMENT(self));
  GValue v = G_VALUE_INIT;
  while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
    GstPad *pad = GST_PAD(g_value_get_object(&v));
    // Media pads only: a data pad may be fed from this element's own received media, and a query
    // back into webrtcbin while it adds an element could wait on webrtcbin's own lock.
    if (g_str_has_prefix(GST_OBJECT_NAME(pad), "data_")) {
      g_value_reset(&v);
      continue;
    }
    GstQuery *q = gst_query_new_latency();
    if (gst_pad_peer_query(pad, q)) {
      gboolean l = FALSE;
      gst_query_parse_latency(q, &l, nullptr, nullptr);
      live |= l;
      answered = true;
    }
    gst_query_unref(q);
    g_value_reset(&v);
  }
  g_value_unset(&v);
  gst_iterator_free(it);
  return live || !answered;
}

// webrtcbin (1.20+) puts a clocksync with sync=true in front of rtpbin on every media sink pad:
// each encoded frame then waits until its timestamp plus the pipeline latency (a live source's
// frame duration and more), about one frame (33 ms at 30 fps) of pure delay on the way out. Live
// frames are real-time already, so they go out as soon as they are encoded; only a non-live
// source (a file played as fast as it decodes) still needs that clock to pace it.
void on_webrtc_element_added(GstBin *, GstElement *element, gpointer user_data)
{
  GstElementFactory *f = gst_element_get_factory(element);
  if (!f || g_strcmp0(GST_OBJECT_NAME(f), "clocksync") != 0) return;
  GstRtcPeer *self = GST_RTC_PEER(user_data);
  bool live = fed_live(self);
  GST_DEBUG_OBJECT(self, "%s source: %s sync %s", live ? "live" : "non-live",
                   GST_OBJECT_NAME(element), live ? "off" : "on");
  if (live) g_object_set(element, "sync", FALSE, nullptr);
}

static void configure_payloader(GstElement *pay, guint pt);

static void connect_tee(GstRtcPeer *self, MediaLink &l)
{
  if (!l.pay) return;
  GstPad *tpad = gst_element_request_pad_simple(l.send->tee, "src_%u");
  GstPad *qsink = gst_element_get_static_pad(l.pay, "sink");
  if (!tpad || gst_pad_link(tpad, qsink) != GST_PAD_LINK_OK)
    GST_ELEMENT_WARNING(self, CORE, NEGOTIATION,
                        ("Could not send %s to a peer", l.send->name.c_str()), (nullptr));
  gst_object_unref(qsink);
  l.tee_pad = tpad;
}

/* Each session: tee -> queue -> webrtcbin sink pad. The queue is fed from the shared tee only
 * once the peer is connected: webrtcbin (1.22) answers with the caps already on its sink pad when
 * there are some, and those (ssrc, offsets...) can fail to match the offer; and until it is
 * negotiated it blocks its sink pads, so a serialized query (allocation, after the tee got a new
 * pad) would wait in the queue and stall the encoder for every peer. */
void link_media(GstRtcPeer *self, const std::shared_ptr<Session> &s, MediaSend *m)
{
  ASSERT_CTX(self);
  GstElement *queue = gst_element_factory_make("queue", nullptr);
  // A slow peer drops its own old frames instead of holding up the encoder and the other peers.
  // The limit is time, not packets: a keyframe arrives as a burst of dozens of RTP packets with one
  // timestamp, and a packet count (it was 8) dropped parts of every large keyframe, so a browser
  // never got a whole one and froze after a few frames (no retransmission without RTX).
  g_object_set(queue, "max-size-buffers", 2000u, "max-size-bytes", 0u, "max-size-time",
               guint64(500 * GST_MSECOND), "leaky", 2 /* downstream */, nullptr);
  gst_bin_add(GST_BIN(self), queue);
  // Running, and linked downstream, before the tee can push into it: a buffer reaching a
  // still-flushing queue returns FLUSHING up the sender's streaming thread, which silently
  // stops a non-live source (a file) for good.
  gst_element_sync_state_with_parent(queue);
  GstPadTemplate *templ =
      gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(s->webrtc), "sink_%u");
  GstPad *wpad = gst_element_request_pad(s->webrtc, templ, nullptr, m->rtp_caps);
  if (wpad) {
    // The offer must not depend on whether caps have reached the tee yet.
    GstWebRTCRTPTransceiver *trans = nullptr;
    g_object_get(wpad, "transceiver", &trans, nullptr);
    if (trans) {
      g_object_set(trans, "codec-preferences", m->rtp_caps, nullptr);
      if (m->video) {
        g_object_set(trans, "do-nack", TRUE, nullptr);
        gint fec;
        {
          std::lock_guard lk(self->priv->props_lock);
          fec = self->priv->fec_percentage;
        }
        if (fec) {
          enable_fec(trans);
          watch_fec(self, m, s->id, wpad, trans, fec);
        }
      }
      gst_object_unref(trans);
    }
  }
  GstPad *qsrc = gst_element_get_static_pad(queue, "src");
  bool ok = wpad && gst_pad_link(qsrc, wpad) == GST_PAD_LINK_OK;
  gst_object_unref(qsrc);
  // The session's own payloader, in the tee's thread; the queue after it drops RTP packets
  // (which the receiver sees as a sequence gap and repairs or asks a keyframe for), never whole
  // frames with continuous sequence numbers.
  const codecs::Codec *c = codecs::by_encoding(
      gst_structure_get_string(gst_caps_get_structure(m->rtp_caps, 0), "encoding-name"));
  GstElement *pay = c ? make(self, c->payloader) : nullptr;
  GstElement *filter = gst_element_factory_make("capsfilter", nullptr);
  if (pay) {
    configure_payloader(pay, m->pt);
    g_object_set(filter, "caps", m->rtp_caps, nullptr);
    gst_bin_add_many(GST_BIN(self), pay, filter, nullptr);
    ok &= gst_element_link_many(pay, filter, queue, nullptr);
    gst_element_sync_state_with_parent(filter);
    gst_element_sync_state_with_parent(pay);
  } else {
    gst_object_unref(filter);
    filter = nullptr;
    ok = false;
  }
  if (!ok)
    GST_ELEMENT_WARNING(self, CORE, NEGOTIATION,
                        ("Could not send %s to peer '%s'", m->name.c_str(), s->id.c_str()),
                        (nullptr));
  gst_element_sync_state_with_parent(queue);
  MediaLink l{m, nullptr, queue, wpad};
  l.pay = pay;
  l.pay_filter = filter;
  std::lock_guard lk(self->priv->lock);
  s->media.push_back(l);
}

/* A peer that offered another payload type for the codec (Firefox: VP8 as 120, aiortc: 97), or
 * no TWCC under our extension id, gets it from its own payloader: PREFS (what its transceiver
 * was told) become that payloader's output caps. Before the session is connected, so nothing
 * flows yet. */
static void repayload(MediaLink &l, guint pt, GstCaps *prefs)
{
  if (!l.pay || !l.pay_filter) return;
  g_object_set(l.pay, "pt", pt, nullptr);
  g_object_set(l.pay_filter, "caps", prefs, nullptr);
}

/* Answering: each of our tracks not negotiated yet takes the payload type (and, through
 * webrtcbin's intersection with the offer, the parameters) the remote offered for its codec in
 * the first free m-line of its kind. */
void adopt_remote_payload_types(GstRtcPeer *self, const std::shared_ptr<Session> &s,
                                GstWebRTCSessionDescription *offer)
{
  ASSERT_CTX(self);
  const std::string text = description_text(offer);
  // Our receive-only tracks (from an offer of ours that lost a glare) take the remote's payload
  // types as they are: their preferences keep the codecs, not our numbers.
  GArray *all = nullptr;
  g_signal_emit_by_name(s->webrtc, "get-transceivers", &all);
  for (guint i = 0; all && i < all->len; i++) {
    auto *t = g_array_index(all, GstWebRTCRTPTransceiver *, i);
    GstWebRTCRTPTransceiverDirection dir;
    gchar *mid = nullptr;
    GstCaps *prefs = nullptr;
    g_object_get(t, "direction", &dir, "mid", &mid, "codec-preferences", &prefs, nullptr);
    if (dir == GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY && !mid && prefs) {
      GstCaps *any_pt = gst_caps_copy(prefs);
      for (guint k = 0; k < gst_caps_get_size(any_pt); k++)
        gst_structure_remove_field(gst_caps_get_structure(any_pt, k), "payload");
      g_object_set(t, "codec-preferences", any_pt, nullptr);
      gst_caps_unref(any_pt);
    }
    g_free(mid);
    if (prefs) gst_caps_unref(prefs);
  }
  if (all) g_array_unref(all);
  auto kinds = negotiation::media_kinds(text);
  std::vector<bool> taken(kinds.size(), false);
  for (auto &l : s->media) {
    if (!l.webrtc_pad || media_negotiated(l) || l.remote_pt) continue;
    const GstStructure *ours = gst_caps_get_structure(l.send->rtp_caps, 0);
    const char *codec = gst_structure_get_string(ours, "encoding-name");
    const char *kind = l.send->video ? "video" : "audio";
    for (size_t i = 0; i < kinds.size(); i++) {
      if (taken[i] || kinds[i] != kind) continue;
      auto c = negotiation::match_codec(negotiation::offered_codecs(text, int(i)), codec);
      if (!c) continue;
      taken[i] = true;
      // Extension ids are the offerer's: ours (TWCC as 1) only where the offer agrees.
      int twcc = 0;
      if (i < gst_sdp_message_medias_len(offer->sdp))
        if (GstCaps *oc =
                mediacc::caps_from_offer(gst_sdp_message_get_media(offer->sdp, guint(i)))) {
          twcc = mediacc::twcc_id(oc);
          gst_caps_unref(oc);
        }
      bool drop_twcc = twcc != mediacc::kTwccId;
      if (guint(c->pt) == l.send->pt && !drop_twcc) break;
      GST_INFO_OBJECT(self, "'%s' offered %s as payload type %d: sending %s with it", s->id.c_str(),
                      codec, c->pt, l.send->name.c_str());
      GstCaps *prefs = gst_caps_copy(l.send->rtp_caps);
      GstStructure *st = gst_caps_get_structure(prefs, 0);
      gst_structure_set(st, "payload", G_TYPE_INT, c->pt, nullptr);
      gst_structure_remove_field(st, "profile-level-id"); // the remote's, from its offer
      if (drop_twcc)
        gst_structure_remove_field(st, ("extmap-" + std::to_string(mediacc::kTwccId)).c_str());
      GstWebRTCRTPTransceiver *trans = nullptr;
      g_object_get(l.webrtc_pad, "transceiver", &trans, nullptr);
      if (trans) {
        g_object_set(trans, "codec-preferences", prefs, nullptr);
        gst_object_unref(trans);
      }
      if (guint(c->pt) != l.send->pt) l.remote_pt = guint(c->pt);
      repayload(l, guint(c->pt), prefs);
      gst_caps_unref(prefs);
      break;
    }
  }
}

// Whether the track has an m-line in the negotiated session (an answer may leave some out).
bool media_negotiated(const MediaLink &l)
{
  if (!l.webrtc_pad) return false;
  GstWebRTCRTPTransceiver *trans = nullptr;
  g_object_get(l.webrtc_pad, "transceiver", &trans, nullptr);
  gchar *mid = nullptr;
  if (trans) {
    g_object_get(trans, "mid", &mid, nullptr);
    gst_object_unref(trans);
  }
  bool ok = mid != nullptr;
  g_free(mid);
  return ok;
}

// The peer is connected: feed it the shared media, starting with a keyframe.
void connect_pending_media(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  ASSERT_CTX(self);
  rtcprate::connected(s->webrtc); // a session that only sends reports less
  bool any = false;
  for (auto &l : s->media)
    if (!l.tee_pad && media_negotiated(l)) {
      if (l.send->control) {
        GstPad *frames = l.pay ? gst_element_get_static_pad(l.pay, "sink") : nullptr;
        l.send->control->watch(s->id, l.webrtc_pad, frames);
        if (frames) gst_object_unref(frames);
      }
      connect_tee(self, l);
      any = true;
    }
  if (any) request_keyframes(self);
}

/* What we offer to receive: every codec of the table of that kind, VP8 first, each with a
 * payload type of its own (96, 98, ...; audio 97, ...), so that a sender of any of them can answer. */
static std::string recv_caps(bool video)
{
  std::string out;
  guint pt = video ? 96 : 97;
  for (auto &c : codecs::all()) {
    if (c.video != video) continue;
    out += (out.empty() ? "" : ";") + codecs::rtp_caps(c, pt);
    pt += 2;
  }
  return out;
}

void add_recv_transceiver(GstElement *webrtc, bool video)
{
  GstCaps *caps = gst_caps_from_string(recv_caps(video).c_str());
  if (video) mediacc::add_feedback(caps);
  GstWebRTCRTPTransceiver *t = nullptr;
  g_signal_emit_by_name(webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY,
                        caps, &t);
  gst_caps_unref(caps);
  if (t) {
    if (video) {
      g_object_set(t, "do-nack", TRUE, nullptr);
      enable_fec(t);
    }
    gst_object_unref(t);
  }
}

// The answer's feedback for a codec: what rtcpeer does of what was offered (not goog-remb).
static void keep_supported_feedback(GstCaps *caps)
{
  for (guint i = 0; i < gst_caps_get_size(caps); i++) {
    GstStructure *st = gst_caps_get_structure(caps, i);
    for (int f = gst_structure_n_fields(st) - 1; f >= 0; f--) {
      std::string_view name = gst_structure_nth_field_name(st, guint(f));
      if (name.substr(0, 8) == "rtcp-fb-" && name != "rtcp-fb-nack" && name != "rtcp-fb-nack-pli" &&
          name != "rtcp-fb-ccm-fir" && name != "rtcp-fb-transport-cc")
        gst_structure_remove_field(st, std::string(name).c_str());
    }
  }
}

bool prepare_answer_transceivers(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  GstWebRTCSessionDescription *remote = nullptr;
  g_object_get(s->webrtc, "remote-description", &remote, nullptr);
  if (!remote) return false;
  bool changed = false;
  std::vector<std::pair<GstWebRTCRTPTransceiver *, const GstSDPMedia *>> audio;
  GArray *all = nullptr;
  g_signal_emit_by_name(s->webrtc, "get-transceivers", &all);
  for (guint i = 0; all && i < all->len; i++) {
    auto *t = g_array_index(all, GstWebRTCRTPTransceiver *, i);
    GstCaps *prefs = nullptr;
    guint mline = G_MAXUINT;
    GstWebRTCKind kind = GST_WEBRTC_KIND_UNKNOWN;
    g_object_get(t, "codec-preferences", &prefs, "mlineindex", &mline, "kind", &kind, nullptr);
    const GstSDPMedia *media = mline < gst_sdp_message_medias_len(remote->sdp)
        ? gst_sdp_message_get_media(remote->sdp, mline)
        : nullptr;
    if (!prefs && media && kind == GST_WEBRTC_KIND_AUDIO) audio.emplace_back(t, media);
    if (!prefs && media && kind == GST_WEBRTC_KIND_VIDEO)
      if (GstCaps *caps = mediacc::caps_from_offer(media)) {
        keep_supported_feedback(caps);
        GST_DEBUG_OBJECT(self, "'%s' m-line %u answered with %" GST_PTR_FORMAT, s->id.c_str(),
                         mline, caps);
        g_object_set(t, "codec-preferences", caps, "do-nack", TRUE, nullptr);
        enable_fec(t); // answers the offer's red/ulpfec, if any
        gst_caps_unref(caps);
        changed = true;
      }
    if (prefs) gst_caps_unref(prefs);
  }
  // Asked for the answer again, webrtcbin gives each m-line the first transceiver whose
  // preferences take the offer: an audio one without any made a second transceiver for its m-line.
  if (changed)
    for (auto [t, media] : audio)
      if (GstCaps *caps = mediacc::caps_from_offer(media)) {
        g_object_set(t, "codec-preferences", caps, nullptr);
        gst_caps_unref(caps);
      }
  if (all) g_array_unref(all);
  gst_webrtc_session_description_free(remote);
  return changed;
}

// See on_new_jitterbuffer (mediasend.h).
static GstPadProbeReturn restore_latency(GstPad *pad, GstPadProbeInfo *, gpointer user_data)
{
  if (GstElement *jb = gst_pad_get_parent_element(pad)) {
    // Retries up to the deadline: by default the jitterbuffer stops one retry timeout (~RTT)
    // before it, refusing a retry that would still be answered in time (mediasend.h).
    guint latency = GPOINTER_TO_UINT(user_data);
    g_object_set(jb, "latency", latency, "rtx-retry-period", gint(latency), nullptr);
    gst_object_unref(jb);
  }
  return GST_PAD_PROBE_REMOVE;
}

/* Retransmissions for packets that are only late, not lost: rtpjitterbuffer asks for a packet
 * that has not come when it expected it (rtx-next-seqnum), and on a full link packets are late
 * because a queue builds; each answer adds to that queue (and arrives as a duplicate). While
 * duplicates say so (3 or more in a second), it asks for gaps only, for 10 s: a FIFO link
 * reorders nothing, so a gap is a loss. Not always: on a random-loss link the expected-packet
 * timer asks ~a frame earlier for a frame's last packet (2 % loss, three runs each: p99 123-155 ms
 * with it, 142-352 ms with gaps only). Noisy video into 1 Mbit/s (bench/net/diag_loss.py
 * --noise 0.12, three runs each, alternating): with it always, 178-234 requests, 51-114
 * duplicates, 96.8-100 % of the frames from 3 s on; gaps only, 49-56 requests, 0-1 duplicates,
 * 100 % each. */
namespace {
struct DuplicateWatch {
  int64_t next_check = 0, gaps_only_until = 0;
  guint64 duplicates = 0;
  bool gaps_only = false;
};
} // namespace

static GstPadProbeReturn check_duplicates(GstPad *pad, GstPadProbeInfo *, gpointer user_data)
{
  auto *w = static_cast<DuplicateWatch *>(user_data);
  int64_t now = g_get_monotonic_time();
  if (now < w->next_check) return GST_PAD_PROBE_OK;
  w->next_check = now + 1'000'000;
  GstElement *jb = gst_pad_get_parent_element(pad);
  if (!jb) return GST_PAD_PROBE_OK;
  GstStructure *stats = nullptr;
  g_object_get(jb, "stats", &stats, nullptr);
  guint64 dups = w->duplicates;
  if (stats) {
    gst_structure_get_uint64(stats, "num-duplicates", &dups);
    gst_structure_free(stats);
  }
  bool late_asked = dups >= w->duplicates + 3;
  w->duplicates = dups;
  if (late_asked) w->gaps_only_until = now + 10'000'000;
  bool gaps_only = now < w->gaps_only_until;
  if (gaps_only != w->gaps_only) {
    GST_DEBUG_OBJECT(jb, "retransmissions asked for %s",
                     gaps_only ? "gaps only" : "late packets too");
    g_object_set(jb, "rtx-next-seqnum", !gaps_only, nullptr);
    w->gaps_only = gaps_only;
  }
  gst_object_unref(jb);
  return GST_PAD_PROBE_OK;
}

static void watch_duplicates(GstElement *jb)
{
  GstPad *src = gst_element_get_static_pad(jb, "src");
  if (!src) return;
  gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, check_duplicates, new DuplicateWatch,
                    [](gpointer d) { delete static_cast<DuplicateWatch *>(d); });
  gst_object_unref(src);
}

void on_new_jitterbuffer(GstElement *rtpbin, GstElement *jb, guint session, guint, gpointer)
{
  recover_fec(jb);
  holewatch::watch_holes(jb);
  follow_negotiated_nack(jb);
  rtcprate::watch_jitterbuffer(rtpbin, jb, session);
  watch_duplicates(jb);
  guint latency = 0;
  g_object_get(jb, "latency", &latency, nullptr);
  if (latency <= 10) return;
  g_object_set(jb, "latency", 10u, nullptr);
  GstPad *src = gst_element_get_static_pad(jb, "src");
  gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, restore_latency, GUINT_TO_POINTER(latency),
                    nullptr);
  gst_object_unref(src);
}

/* rtpsession notifies "stats" for every RTCP packet it receives or sends (and "twcc-stats" for
 * every TWCC feedback), its inner RTPSession first; GstObject repeats each one as deep-notify on
 * every parent (rtpbin, webrtcbin, rtcpeer, the pipeline): five signal emissions a packet that
 * nobody here or in webrtcbin listens to, ~10 % of the sender's receive path (perf, 8 viewers).
 * Frozen, a notification is only queued (once per property): "stats" and "twcc-stats" are still
 * read as properties, as webrtcbin's get-stats does. */
static void quiet_notifications(GstElement *rtpsession)
{
  g_object_freeze_notify(G_OBJECT(rtpsession));
  GObject *internal = nullptr;
  g_object_get(rtpsession, "internal-session", &internal, nullptr);
  if (!internal) return;
  // Held by the element's own ref for as long as it lives.
  g_object_freeze_notify(internal);
  g_object_unref(internal);
}

void on_webrtc_deep_element_added(GstBin *, GstBin *, GstElement *element, gpointer)
{
  GstElementFactory *f = gst_element_get_factory(element);
  // Sender side: retransmissions within a budget (mediacc::limit_retransmissions). rtprtxsend
  // comes inside the aux-sender bin webrtcbin hands rtpbin, added whole.
  if (GST_IS_BIN(element)) {
    for_each_element(GST_BIN(element), "rtprtxsend",
                     [](GstElement *e) { mediacc::limit_retransmissions(e); });
    return;
  }
  if (f && g_strcmp0(GST_OBJECT_NAME(f), "rtprtxsend") == 0) {
    mediacc::limit_retransmissions(element);
    return;
  }
  if (f && g_strcmp0(GST_OBJECT_NAME(f), "rtpsession") == 0) {
    // Its RTCP interval, and so a NACK's longest wait, follows the session (rtcprate.h).
    rtcprate::configure_session(element);
    quiet_notifications(element);
  }
}

// Per-codec encoder settings (the rest of what a codec needs is its row in rtc/codecs.h).
static void configure_encoder(GstElement *encoder, const codecs::Codec &c, guint bitrate)
{
  std::string_view name = c.name;
  if (name == "h264") {
    gst_util_set_object_arg(G_OBJECT(encoder), "tune", "zerolatency");
    gst_util_set_object_arg(G_OBJECT(encoder), "speed-preset", "ultrafast");
    g_object_set(encoder, "bitrate", bitrate, "key-int-max", 120u, "vbv-buf-capacity", 120u,
                 nullptr);
  } else if (name == "vp8" || name == "vp9") {
    // Real-time: no look-ahead, frames decodable on their own after a loss, the fastest
    // preset (VP8's 16 took a third less CPU than 8 in the ball loop and encodes faster,
    // at the same accuracy; VP9's real-time presets end at 9).
    // One thread: a real-time frame takes a few ms on one core, while libvpx's worker
    // threads on busy cores stalled frames by 100+ ms and lost two thirds of them.
    // Keyframes when a receiver asks (PLI/FIR: at the start, after a loss), as libwebrtc does,
    // plus one every 100 s in case one never asks: a periodic one every 4 s (it was 120 frames)
    // is 4x a frame on a link already full, and each one lost frames on the 1 Mbit/s link.
    g_object_set(encoder, "deadline", gint64(1), "lag-in-frames", 0, "cpu-used",
                 name == "vp9" ? 9 : 16, "target-bitrate", gint(bitrate * 1000),
                 "keyframe-max-dist", 3000, "threads", 1, nullptr);
    gst_util_set_object_arg(G_OBJECT(encoder), "error-resilient", "default");
    // Timestamps at RTP's 90 kHz, not in whole frames (the default): the even clock EncoderControl
    // shows the encoder (cc::FrameClock) moves by fractions of a frame.
    gst_util_set_object_arg(G_OBJECT(encoder), "timebase", "1/90000");
    gst_util_set_object_arg(G_OBJECT(encoder), "end-usage", "cbr");
    // A rate buffer of 400 ms (libvpx's default is 6 s) and keyframes of at most 2.5 average
    // frames: the rate congestion control asks for is the rate on the wire within a few frames,
    // and a keyframe does not fill a narrow link's queue on its own (noisy video into 1 Mbit/s:
    // 60 % of the frames scored with the default buffer). Not webrtcsink's 150 ms: with keyframes
    // asked for every few frames (a receiver after losses) it starves and bursts, 5 frames of
    // 250 bytes, then one of 12-20 kB, and 333 ms windows at 2x the target (1.2x with 400 ms).
    g_object_set(encoder, "buffer-initial-size", 200, "buffer-optimal-size", 300, "buffer-size",
                 400, "max-intra-bitrate", 250, nullptr);
    // VP8: temporal layers, so a viewer below the floor gets a quarter or half of the frames of
    // the one shared stream (cc::Layering). rtpvp9pay (1.22) writes no layer fields: VP9 has none.
    if (name == "vp8") mediacc::set_temporal_layers(encoder, bitrate * 1000);
  } else if (name == "opus") {
    gst_util_set_object_arg(G_OBJECT(encoder), "frame-size", "10");
  }
}

static void configure_payloader(GstElement *pay, guint pt)
{
  g_object_set(pay, "pt", pt, nullptr);
  // VP8: 15-bit picture ids, with vp8enc's TL0PICIDX/TID: browsers then track references per
  // temporal layer instead of by sequence number alone.
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(pay), "picture-id-mode"))
    gst_util_set_object_arg(G_OBJECT(pay), "picture-id-mode", "15-bit");
  // H.264: SPS/PPS with every keyframe, so a late joiner can decode.
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(pay), "config-interval"))
    g_object_set(pay, "config-interval", -1, nullptr);
}

static bool build_media_chain(GstRtcPeer *self, MediaSend *m, GstCaps *caps)
{
  auto *p = self->priv;
  const GstStructure *st = gst_caps_get_structure(caps, 0);
  std::string name = gst_structure_get_name(st);
  std::string codec_name;
  guint bitrate, bitrate_min, bitrate_max;
  {
    std::lock_guard lk(p->props_lock);
    codec_name = p->video_codec;
    bitrate = p->video_bitrate;
    bitrate_min = std::min(p->video_bitrate_min, p->video_bitrate_max);
    bitrate_max = std::max(p->video_bitrate_min, p->video_bitrate_max);
  }
  bitrate = std::clamp(bitrate, bitrate_min, bitrate_max);
  GstElement *encoder = nullptr;
  std::vector<GstElement *> chain;
  auto add = [&](GstElement *e) {
    if (e) chain.push_back(e);
    return e;
  };
  bool ok = true;
  const codecs::Codec *codec = nullptr;
  if (name == "video/x-raw" || name == "audio/x-raw") {
    codec = codecs::by_name(name == "video/x-raw" ? codec_name : "opus");
    if (name == "video/x-raw") {
      add(make(self, "videoconvert"));
    } else {
      add(make(self, "audioconvert"));
      add(make(self, "audioresample"));
    }
    if (codec && (encoder = add(make(self, codec->encoder)))) {
      configure_encoder(encoder, *codec, bitrate);
      if (codec->encoder_caps) {
        GstElement *profile = add(gst_element_factory_make("capsfilter", nullptr));
        GstCaps *want = gst_caps_from_string(codec->encoder_caps);
        g_object_set(profile, "caps", want, nullptr);
        gst_caps_unref(want);
      }
    }
  } else {
    codec = codecs::by_encoded(name); // already encoded: payload it as it is
  }
  if (!codec) {
    GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Cannot send %s on %s", name.c_str(), m->name.c_str()),
                      (nullptr));
    for (auto *e : chain) gst_object_unref(e);
    return false;
  }
  if (codec->parser) add(make(self, codec->parser));
  // The payloaders are each session's (link_media).
  for (auto *e : chain) ok &= e != nullptr;
  if (!ok) {
    for (auto *e : chain) gst_object_unref(e);
    return false;
  }
  for (auto *e : chain) gst_bin_add(GST_BIN(self), e);
  GstElement *prev = m->head;
  for (auto *e : chain) {
    ok &= gst_element_link(prev, e);
    prev = e;
  }
  ok &= gst_element_link(prev, m->tee);
  for (auto *e : chain) gst_element_sync_state_with_parent(e);
  std::unique_ptr<mediacc::EncoderControl> control;
  if (encoder && codec->video) {
    cc::Config cfg;
    cfg.start_bps = bitrate * 1000;
    cfg.min_bps = bitrate_min * 1000;
    cfg.max_bps = bitrate_max * 1000;
    control = std::make_unique<mediacc::EncoderControl>(encoder, cfg, kFrameRateFloor * 1000);
  }
  std::lock_guard lk(p->lock);
  m->encoder = encoder;
  m->control = std::move(control);
  m->chain = chain;
  m->built = true;
  return ok;
}

static GstPadProbeReturn media_caps_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  auto *m = static_cast<MediaSend *>(user_data);
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(ev) != GST_EVENT_CAPS || m->built) return GST_PAD_PROBE_OK;
  auto *self = GST_RTC_PEER(gst_object_get_parent(GST_OBJECT(m->head)));
  if (!self) return GST_PAD_PROBE_OK;
  GstCaps *caps;
  gst_event_parse_caps(ev, &caps);
  // Built here, in the streaming thread, so the caps event flows on into the new elements.
  bool ok = build_media_chain(self, m, caps);
  gst_object_unref(self);
  return ok ? GST_PAD_PROBE_REMOVE : GST_PAD_PROBE_DROP;
}

// EOS on a media pad: that stream ended (e.g. the end of a file). Once every pad that carried
// something has ended, the element posts EOS so that the pipeline can finish.
static GstPadProbeReturn media_eos_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  auto *m = static_cast<MediaSend *>(user_data);
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(ev) != GST_EVENT_EOS && GST_EVENT_TYPE(ev) != GST_EVENT_FLUSH_STOP)
    return GST_PAD_PROBE_OK;
  auto *self = GST_RTC_PEER(gst_object_get_parent(GST_OBJECT(m->head)));
  if (!self) return GST_PAD_PROBE_OK;
  bool eos = GST_EVENT_TYPE(ev) == GST_EVENT_EOS;
  {
    std::lock_guard lk(self->priv->lock);
    m->eos = eos;
    if (!eos) self->priv->eos_posted = false;
  }
  if (eos) maybe_post_eos(self, gst_event_get_seqnum(ev));
  gst_object_unref(self);
  return GST_PAD_PROBE_OK;
}

/* Every sink pad gets its own payload type (video 96, 98, ...; audio 97, 99, ...): tracks share
 * one BUNDLE transport and no MID header extension is sent, so a receiving webrtcbin tells two
 * video tracks apart only by payload type; with the same one it merges them into one src pad. */
static guint alloc_payload_type(GstRtcPeer *self, bool video)
{
  std::lock_guard lk(self->priv->lock);
  for (guint pt = video ? 96 : 97; pt <= 127; pt += 2) {
    bool used = false;
    for (auto &m : self->priv->media_sends) used |= m->pt == pt;
    if (!used) return pt;
  }
  return 0;
}

static GstCaps *rtp_caps_for(GstRtcPeer *self, bool video, guint pt)
{
  std::string name = "opus";
  if (video) {
    std::lock_guard lk(self->priv->props_lock);
    name = self->priv->video_codec;
  }
  const codecs::Codec *c = codecs::by_name(name);
  GstCaps *caps =
      gst_caps_from_string(codecs::rtp_caps(c ? *c : *codecs::by_name("vp8"), pt).c_str());
  // A fixed SSRC (the payloader takes it from these caps) so that offers carry a=ssrc: an SFU
  // (Janus) routes incoming RTP by the SSRCs of the offer and drops what it cannot place. Also
  // needed for NACK/RTX (do-nack): without it webrtcbin 1.22 answers with an a=ssrc that is not
  // the one it sends, so a browser binds its track to no stream (Chromium decodes, shows nothing).
  gst_caps_set_simple(caps, "ssrc", G_TYPE_UINT, g_random_int_range(1, G_MAXINT32), nullptr);
  return caps;
}

GstPad *request_media_pad(GstRtcPeer *self, GstPadTemplate *templ, bool video,
                          const gchar *req_name)
{
  auto *p = self->priv;
  auto m = std::make_unique<MediaSend>();
  m->video = video;
  m->pt = alloc_payload_type(self, video);
  if (!m->pt) {
    GST_ELEMENT_WARNING(self, CORE, NEGOTIATION,
                        ("Too many %s pads: no payload type left", video ? "video" : "audio"),
                        (nullptr));
    return nullptr;
  }
  {
    std::lock_guard lk(p->lock);
    guint n = video ? p->next_video++ : p->next_audio++;
    m->name = req_name ? req_name : (video ? "video_" : "audio_") + std::to_string(n);
  }
  m->head = gst_element_factory_make("identity", nullptr);
  m->tee = gst_element_factory_make("tee", nullptr);
  g_object_set(m->tee, "allow-not-linked", TRUE, nullptr);
  g_object_set(m->head, "silent", TRUE, nullptr);
  m->rtp_caps = rtp_caps_for(self, video, m->pt);
  // NACK + RTX, and TWCC (the payloader adds the extension the caps name: auto-header-extension).
  if (video) mediacc::add_feedback(m->rtp_caps);
  gst_bin_add_many(GST_BIN(self), m->head, m->tee, nullptr);
  gst_element_sync_state_with_parent(m->head);
  gst_element_sync_state_with_parent(m->tee);
  GstPad *target = gst_element_get_static_pad(m->head, "sink");
  m->ghost = gst_ghost_pad_new_from_template(m->name.c_str(), target, templ);
  gst_object_unref(target);
  GstPad *head_src = gst_element_get_static_pad(m->head, "src");
  gst_pad_add_probe(head_src, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, media_caps_probe, m.get(),
                    nullptr);
  gst_pad_add_probe(
      head_src,
      GstPadProbeType(GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_EVENT_FLUSH),
      media_eos_probe, m.get(), nullptr);
  gst_object_unref(head_src);
  GstPad *ghost = m->ghost;
  {
    std::lock_guard lk(p->lock);
    p->media_sends.push_back(std::move(m));
  }
  gst_pad_set_active(ghost, TRUE);
  gst_element_add_pad(GST_ELEMENT(self), ghost);
  restore_flags(self);
  return ghost;
}

void unlink_media(std::vector<MediaLink> &media)
{
  for (auto &m : media) {
    if (!m.tee_pad) continue;
    if (GstPad *peer_pad = gst_pad_get_peer(m.tee_pad)) {
      gst_pad_unlink(m.tee_pad, peer_pad);
      gst_object_unref(peer_pad);
    }
    gst_element_release_request_pad(m.send->tee, m.tee_pad);
    gst_object_unref(m.tee_pad);
    m.tee_pad = nullptr;
  }
}

void release_media(GstRtcPeer *self, std::vector<MediaLink> &media)
{
  for (auto &m : media) {
    for (auto *e : {m.pay, m.pay_filter})
      if (e) shut_down(self, e);
    shut_down(self, m.queue);
    if (m.webrtc_pad) gst_object_unref(m.webrtc_pad);
  }
  media.clear();
}

} // namespace pointcast::rtc
