// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/mediarecv.h"

#include "rtc/layergate.h"
#include "rtc/probeutil.h"
#include "rtc/rtcpeerpriv.h"

#include <gst/rtp/rtp.h>

#include <cstdio>
#include <string>

namespace pointcast::rtc {

// Data key on a decodebin and on the src pad of its track: 1 + the track's webrtcbin m-line.
static const char *const kMlineKey = "pointcast-mline";

static bool is_video_src(GstPad *pad)
{
  return g_str_has_prefix(GST_PAD_NAME(pad), "video_");
}

/* A parked src pad of `peer` for a new track (the one of the same m-line, else the first of the
 * kind), taken off the list; ref'd, or null. Any thread. */
static GstPad *take_parked(GstRtcPeer *self, const std::string &peer, bool video, int mline)
{
  auto *p = self->priv;
  std::lock_guard lk(p->lock);
  auto it = p->parked_srcs.find(peer);
  if (it == p->parked_srcs.end()) return nullptr;
  auto &v = it->second;
  auto pick = v.end();
  for (auto i = v.begin(); i != v.end(); ++i) {
    if (is_video_src(*i) != video) continue;
    if (pick == v.end()) pick = i;
    if (mline && GPOINTER_TO_INT(g_object_get_data(G_OBJECT(*i), kMlineKey)) == mline) {
      pick = i;
      break;
    }
  }
  if (pick == v.end()) return nullptr;
  GstPad *pad = *pick;
  v.erase(pick);
  if (v.empty()) p->parked_srcs.erase(it);
  return pad;
}

// Incoming media: decode and expose as video_%u / audio_%u.
static void on_decoded_pad(GstElement *decodebin, GstPad *pad, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstRtcPeer *self = h->self;
  auto s = h->session.lock();
  if (!s || s->removed) return; // a decoder of a connection being taken down
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  const char *media = gst_structure_get_name(gst_caps_get_structure(caps, 0));
  bool video = g_str_has_prefix(media, "video/");
  bool audio = g_str_has_prefix(media, "audio/");
  gst_caps_unref(caps);
  if (!video && !audio) return;
  auto *p = self->priv;
  int mline = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(decodebin), kMlineKey));
  GstPad *parked = take_parked(self, s->id, video, mline);
  std::string name;
  while (!parked) {
    {
      std::lock_guard lk(p->lock);
      name = video ? "video_" + std::to_string(p->next_src_video++)
                   : "audio_" + std::to_string(p->next_src_audio++);
    }
    // Sink pads use the same names; skip any taken.
    GstPad *taken = gst_element_get_static_pad(GST_ELEMENT(self), name.c_str());
    if (!taken) break;
    gst_object_unref(taken);
  }
  // A tee that may run unlinked: a track nobody links (a second sender in the room, media the
  // pipeline does not expect) is dropped there instead of failing decodebin with not-linked.
  GstElement *tee = gst_element_factory_make("tee", nullptr);
  g_object_set(tee, "allow-not-linked", TRUE, nullptr);
  gst_bin_add(GST_BIN(self), tee);
  gst_element_sync_state_with_parent(tee);
  GstPad *tee_sink = gst_element_get_static_pad(tee, "sink");
  gst_pad_link(pad, tee_sink);
  gst_object_unref(tee_sink);
  GstPad *tee_src = gst_element_request_pad_simple(tee, "src_%u");
  GstPad *ghost;
  if (parked) {
    /* The same pad, now fed by the new connection: downstream gets its stream-start, caps and
     * segment (running time goes on: the new webrtcbin runs on the pipeline's clock and base
     * time), then frames from a keyframe (the depayloader waits for one and asks for it). */
    ghost = parked;
    name = GST_PAD_NAME(ghost);
    gst_ghost_pad_set_target(GST_GHOST_PAD(ghost), tee_src);
    GST_INFO_OBJECT(self, "%s carries the track of '%s' on its new connection", name.c_str(),
                    s->id.c_str());
  } else {
    GstPadTemplate *templ =
        gst_static_pad_template_get(video ? &video_src_template : &audio_src_template);
    ghost = gst_ghost_pad_new_from_template(name.c_str(), tee_src, templ);
    gst_object_unref(templ);
    gst_pad_set_active(ghost, TRUE);
  }
  gst_object_unref(tee_src);
  g_object_set_data(G_OBJECT(ghost), kMlineKey, GINT_TO_POINTER(mline));
  {
    std::lock_guard lk(p->lock);
    s->media_srcs.push_back(GST_PAD(gst_object_ref(ghost)));
    s->decoders.push_back(GST_ELEMENT(gst_object_ref(tee)));
  }
  if (parked) {
    post_peer_message(self, "rtcpeer-media-added", s->id, "pad", name);
    gst_object_unref(parked);
    return;
  }
  gst_element_add_pad(GST_ELEMENT(self), ghost);
  post_peer_message(self, "rtcpeer-media-added", s->id, "pad", name);
  if (!gst_pad_is_linked(ghost))
    GST_ELEMENT_WARNING(self, STREAM, DEMUX, ("Nothing is linked to %s", name.c_str()),
                        ("the %s track from peer '%s' is dropped until something links it",
                         video ? "video" : "audio", s->id.c_str()));
}

// Depayloaders ask the sender for a keyframe (PLI) when they start without one or lose packets,
// instead of waiting for the next periodic keyframe. VP8's gate does that itself, asking once
// per loss rather than once per frame dropped; its temporal layers are off (layergate.h).
static void on_decoder_element(GstBin *, GstBin *, GstElement *element, gpointer)
{
  GstElementFactory *factory = gst_element_get_factory(element);
  if (factory && !g_strcmp0(GST_OBJECT_NAME(factory), "rtpvp8depay")) {
    layergate::gate_vp8_depayloader(element, false);
    return;
  }
  GObjectClass *klass = G_OBJECT_GET_CLASS(element);
  if (g_object_class_find_property(klass, "request-keyframe"))
    g_object_set(element, "request-keyframe", TRUE, nullptr);
  if (g_object_class_find_property(klass, "wait-for-keyframe"))
    g_object_set(element, "wait-for-keyframe", TRUE, nullptr);
}

void on_webrtc_pad_added(GstElement *webrtc, GstPad *pad, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstRtcPeer *self = h->self;
  auto s = h->session.lock();
  if (!s || s->removed || GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
  /* A src pad of repair packets (a payload type webrtcbin's map calls RTX, RED or ULPFEC came out
   * of rtpptdemux: fec.cpp, on_jitterbuffer_out) ends in a fakesink: behind decodebin, which has
   * no decoder for it, not-linked went up to nicesrc and the whole session was removed. */
  if (GstCaps *caps = gst_pad_get_current_caps(pad)) {
    const char *name = gst_structure_get_string(gst_caps_get_structure(caps, 0), "encoding-name");
    std::string enc = name ? name : "";
    gst_caps_unref(caps);
    bool repair = false;
    for (const char *r : {"RTX", "RED", "ULPFEC", "FLEXFEC"})
      repair |= !g_ascii_strcasecmp(enc.c_str(), r);
    if (repair) {
      GST_WARNING_OBJECT(self, "'%s': %s packets on a media pad of their own, dropped",
                         s->id.c_str(), enc.c_str());
      GstElement *sink = gst_element_factory_make("fakesink", nullptr);
      g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
      gst_bin_add(GST_BIN(self), sink);
      {
        std::lock_guard lk(self->priv->lock);
        s->decoders.push_back(GST_ELEMENT(gst_object_ref(sink)));
      }
      gst_element_sync_state_with_parent(sink);
      GstPad *sink_pad = gst_element_get_static_pad(sink, "sink");
      gst_pad_link(pad, sink_pad);
      gst_object_unref(sink_pad);
      return;
    }
  }
  GstElement *dec = gst_element_factory_make("decodebin", nullptr);
  if (!dec) {
    GST_ELEMENT_WARNING(self, CORE, MISSING_PLUGIN, ("decodebin is missing"), (nullptr));
    return;
  }
  // webrtcbin names its src pads src_<m-line>.
  guint mline = 0;
  if (sscanf(GST_PAD_NAME(pad), "src_%u", &mline) == 1)
    g_object_set_data(G_OBJECT(dec), kMlineKey, GINT_TO_POINTER(int(mline) + 1));
  g_signal_connect_data(dec, "pad-added", G_CALLBACK(on_decoded_pad), new_handle(self, s),
                        free_handle, GConnectFlags(0));
  g_signal_connect(dec, "deep-element-added", G_CALLBACK(on_decoder_element), nullptr);
  gst_bin_add(GST_BIN(self), dec);
  {
    std::lock_guard lk(self->priv->lock);
    s->decoders.push_back(GST_ELEMENT(gst_object_ref(dec)));
  }
  gst_element_sync_state_with_parent(dec);
  GstPad *sink = gst_element_get_static_pad(dec, "sink");
  if (gst_pad_link(pad, sink) != GST_PAD_LINK_OK)
    GST_WARNING_OBJECT(self, "could not link incoming media of '%s'", s->id.c_str());
  gst_object_unref(sink);
}

// A media src pad that no peer's track filled: made at EOS so the branch linked to it ends.
GstPad *make_ended_media_src(GstRtcPeer *self, const std::string &name)
{
  bool video = g_str_has_prefix(name.c_str(), "video_");
  GstPad *pad = gst_pad_new_from_static_template(video ? &video_src_template : &audio_src_template,
                                                 name.c_str());
  gst_pad_set_query_function(pad, data_src_query);
  gst_pad_set_iterate_internal_links_function(pad, no_internal_links);
  gst_pad_set_active(pad, TRUE);
  if (!gst_element_add_pad(GST_ELEMENT(self), pad))
    return nullptr; // the name was taken meanwhile; add_pad sank the pad
  {
    std::lock_guard lk(self->priv->lock);
    self->priv->ended_srcs.push_back(GST_PAD(gst_object_ref(pad)));
  }
  gst_pad_push_event(pad, gst_event_new_stream_start(("ended/" + name).c_str()));
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  gst_pad_push_event(pad, gst_event_new_segment(&seg));
  return GST_PAD(gst_object_ref(pad));
}

void release_received_media(GstRtcPeer *self, std::vector<GstPad *> &media_srcs,
                            std::vector<GstElement *> &decoders)
{
  auto *p = self->priv;
  for (auto *pad : media_srcs) {
    // At EOS what it was linked to gets the EOS directly (end_src_pads).
    if (GstPad *peer_pad = gst_pad_get_peer(pad)) {
      std::lock_guard lk(p->lock);
      p->orphaned_sinks.push_back(peer_pad);
    }
    gst_element_remove_pad(GST_ELEMENT(self), pad);
    gst_object_unref(pad);
  }
  media_srcs.clear();
  for (auto *d : decoders) {
    shut_down(self, d);
    gst_object_unref(d);
  }
  decoders.clear();
}

void park_received_media(GstRtcPeer *self, const std::string &peer,
                         std::vector<GstPad *> &media_srcs, std::vector<GstElement *> &decoders)
{
  auto *p = self->priv;
  // Off the old tees first: nothing of the old connection reaches the pad after this.
  for (auto *pad : media_srcs) gst_ghost_pad_set_target(GST_GHOST_PAD(pad), nullptr);
  {
    std::lock_guard lk(p->lock);
    auto &v = p->parked_srcs[peer];
    v.insert(v.end(), media_srcs.begin(), media_srcs.end()); // the list takes the refs
  }
  if (!media_srcs.empty())
    GST_INFO_OBJECT(self, "keeping %zu src pad(s) of '%s' for its new connection",
                    media_srcs.size(), peer.c_str());
  media_srcs.clear();
  std::vector<GstPad *> none;
  release_received_media(self, none, decoders);
}

void release_parked_media(GstRtcPeer *self, const std::string &peer)
{
  auto *p = self->priv;
  std::vector<GstPad *> pads;
  {
    std::lock_guard lk(p->lock);
    for (auto it = p->parked_srcs.begin(); it != p->parked_srcs.end();) {
      if (!peer.empty() && it->first != peer) {
        ++it;
        continue;
      }
      pads.insert(pads.end(), it->second.begin(), it->second.end());
      it = p->parked_srcs.erase(it);
    }
  }
  std::vector<GstElement *> none;
  release_received_media(self, pads, none);
}

void parked_media_pads(GstRtcPeer *self, std::vector<GstPad *> &out)
{
  for (auto &[peer, v] : self->priv->parked_srcs)
    for (auto *pad : v) out.push_back(GST_PAD(gst_object_ref(pad)));
}

// See follow_negotiated_nack (mediarecv.h). Returns whether the packet decided it.
static bool nack_from_packet(GstElement *jb, GstBuffer *buf)
{
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  if (!gst_rtp_buffer_map(buf, GST_MAP_READ, &rtp)) return false;
  guint pt = gst_rtp_buffer_get_payload_type(&rtp);
  gst_rtp_buffer_unmap(&rtp);
  GstCaps *caps = nullptr;
  // rtpbin forwards it to its own request-pt-map, which webrtcbin answers from its payload map.
  g_signal_emit_by_name(jb, "request-pt-map", pt, &caps);
  if (!caps) return false;
  bool decided = false;
  if (!gst_caps_is_empty(caps)) {
    const GstStructure *st = gst_caps_get_structure(caps, 0);
    const char *enc = gst_structure_get_string(st, "encoding-name");
    bool repair = !enc || !g_ascii_strcasecmp(enc, "RTX") || !g_ascii_strcasecmp(enc, "RED") ||
        !g_ascii_strcasecmp(enc, "ULPFEC");
    if (!repair) {
      gboolean nack = FALSE;
      gst_structure_get_boolean(st, "rtcp-fb-nack", &nack);
      GST_DEBUG_OBJECT(jb, "payload type %u (%s): retransmissions %s", pt, enc,
                       nack ? "asked for" : "not negotiated");
      g_object_set(jb, "do-retransmission", nack, nullptr);
      decided = true;
    }
  }
  gst_caps_unref(caps);
  return decided;
}

static GstPadProbeReturn on_first_media_packet(GstPad *pad, GstPadProbeInfo *info, gpointer)
{
  GstElement *jb = gst_pad_get_parent_element(pad);
  if (!jb) return GST_PAD_PROBE_OK;
  bool decided =
      !for_each_buffer(info, [jb](GstBuffer *buf) { return !nack_from_packet(jb, buf); });
  gst_object_unref(jb);
  return decided ? GST_PAD_PROBE_REMOVE : GST_PAD_PROBE_OK;
}

void follow_negotiated_nack(GstElement *jb)
{
  GstPad *sink = gst_element_get_static_pad(jb, "sink");
  if (!sink) return;
  gst_pad_add_probe(sink,
                    GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                    on_first_media_packet, nullptr, nullptr);
  gst_object_unref(sink);
}

} // namespace pointcast::rtc
