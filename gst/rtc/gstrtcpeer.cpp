// SPDX-License-Identifier: LGPL-2.1-or-later
/**
 * SECTION:element-rtcpeer
 * @title: rtcpeer
 *
 * A bin around webrtcbin that does its own signaling. Each remote peer gets its own webrtcbin
 * (peer connection); data and media from the sink pads go to every peer, and what the peers send
 * comes out of the src pads.
 *
 * Sink pads: `data_%s` (each buffer becomes one message on the data channel labelled `%s`),
 * `video_%u` (raw video is encoded once, VP8 by default; encoded video passes through),
 * `audio_%u` (raw audio is encoded once with Opus). Src pads (sometimes): `data_%s` (one buffer
 * per message received on channel `%s`, from all peers), `video_%u`, `audio_%u` (decoded media
 * of each incoming track).
 *
 * Messages larger than the remote's SCTP max-message-size are announced and sent in pieces (see
 * README "rtcpeer"); rtcpeer reassembles them, so every buffer arrives whole.
 *
 * Each data_%s sink pad chooses its channel's reliability (`ordered`, `max-retransmits`,
 * `max-packet-lifetime`), in gst-launch as `rtcpeer name=rtc data_x::ordered=false`. A sender
 * waits while a peer drains, however slowly; at EOS it delivers everything, or posts an error
 * naming how many messages were not delivered.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 pointsrc rate=4 num-buffers=240 ! npypack ! rtcpeer wait-for-peers=1 \
 *     signaling=ws://127.0.0.1:8765/ws room=lab
 * gst-launch-1.0 rtcpeer name=rtc signaling=ws://127.0.0.1:8765/ws room=lab \
 *     rtc.data_points ! npyunpack ! pointsink
 * ]|
 * The sender waits for one receiver, streams 240 arrays, and ends.
 */
#include "rtc/gstrtcpeer.h"

#include "rtc/codecs.h"
#include "rtc/datachannels.h"
#include "rtc/startup.h"
#include "rtc/eos.h"
#include "rtc/iceservers.h"
#include "rtc/mediasend.h"
#include "rtc/rtcpeerpriv.h"
#include "rtc/session.h"
#include "rtc/signaller.h"

#include <openssl/crypto.h>

#include <mutex>

GST_DEBUG_CATEGORY(gst_rtc_peer_debug);

using namespace pointcast;
using namespace pointcast::rtc;

namespace {
constexpr guint kSrcEosWaitMs = 5000; // gst-launch -e: longest wait for our sinks to end
} // namespace

static void gst_rtc_peer_child_proxy_init(gpointer g_iface, gpointer);

G_DEFINE_TYPE_WITH_CODE(GstRtcPeer, gst_rtc_peer, GST_TYPE_BIN,
                        G_IMPLEMENT_INTERFACE(GST_TYPE_CHILD_PROXY, gst_rtc_peer_child_proxy_init));

/* The data_%s sink pads are children too, so that their properties can be set by name as in
 * gst-launch's `rtcpeer name=rtc data_x::ordered=false` (set when the pad is requested, after the
 * parse): GstBin's own children are its elements. */
static GstChildProxyInterface *bin_child_proxy = nullptr;

static GObject *gst_rtc_peer_child_by_name(GstChildProxy *proxy, const gchar *name)
{
  if (g_str_has_prefix(name, "data_")) {
    if (GstPad *pad = gst_element_get_static_pad(GST_ELEMENT(proxy), name)) {
      if (GST_PAD_IS_SINK(pad)) return G_OBJECT(pad);
      gst_object_unref(pad);
    }
  }
  return bin_child_proxy->get_child_by_name(proxy, name);
}

static void gst_rtc_peer_child_proxy_init(gpointer g_iface, gpointer)
{
  auto *iface = static_cast<GstChildProxyInterface *>(g_iface);
  bin_child_proxy = static_cast<GstChildProxyInterface *>(g_type_interface_peek_parent(iface));
  iface->get_child_by_name = gst_rtc_peer_child_by_name;
  iface->get_child_by_index = bin_child_proxy->get_child_by_index;
  iface->get_children_count = bin_child_proxy->get_children_count;
}
/* OpenSSL 3.0's exit-time cleanup (OPENSSL_cleanup, registered with atexit by the first
 * initialisation) frees every thread's thread-stop list without a lock, while streaming threads
 * that used DTLS may be exiting and freeing their own: a double free at process exit, seen as an
 * intermittent "double free or corruption" when a pipeline with webrtcbin ends. Initialise libcrypto
 * here, before webrtcbin's DTLS elements do, without that atexit handler; the kernel reclaims
 * the memory anyway. */
static void init_libcrypto_without_atexit()
{
  OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
}

GST_ELEMENT_REGISTER_DEFINE_WITH_CODE(rtcpeer, "rtcpeer", GST_RANK_NONE, GST_TYPE_RTC_PEER,
                                      init_libcrypto_without_atexit());

enum {
  PROP_0,
  PROP_SIGNALING,
  PROP_ROOM,
  PROP_PEER_ID,
  PROP_PEER_TYPE,
  PROP_TARGET,
  PROP_TOKEN,
  PROP_ROLE,
  PROP_STUN_SERVER,
  PROP_TURN_SERVER,
  PROP_TURN_TLS_CA,
  PROP_ICE_TRANSPORT_POLICY,
  PROP_LATENCY,
  PROP_VIDEO_CODEC,
  PROP_VIDEO_BITRATE,
  PROP_VIDEO_BITRATE_MIN,
  PROP_VIDEO_BITRATE_MAX,
  PROP_FEC_PERCENTAGE,
  PROP_WAIT_FOR_PEERS,
  PROP_RECEIVE_VIDEO,
  PROP_RECEIVE_AUDIO,
  PROP_CONNECTED_PEERS,
  PROP_END_WITH_PEERS,
  PROP_MAX_PEERS,
};

namespace pointcast::rtc {
static GstStaticPadTemplate data_sink_template =
    GST_STATIC_PAD_TEMPLATE("data_%s", GST_PAD_SINK, GST_PAD_REQUEST, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate video_sink_template = GST_STATIC_PAD_TEMPLATE(
    "video_%u", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS("video/x-raw; video/x-vp8; video/x-vp9; video/x-h264, "
                    "stream-format=(string)byte-stream, alignment=(string)au"));
static GstStaticPadTemplate audio_sink_template = GST_STATIC_PAD_TEMPLATE(
    "audio_%u", GST_PAD_SINK, GST_PAD_REQUEST, GST_STATIC_CAPS("audio/x-raw; audio/x-opus"));
/* A pad template name is unique per element class, so the src templates cannot share the sink
 * templates' names; the src pads themselves are still named data_%s, video_%u and audio_%u. */
GstStaticPadTemplate data_src_template =
    GST_STATIC_PAD_TEMPLATE("src_data_%s", GST_PAD_SRC, GST_PAD_SOMETIMES, GST_STATIC_CAPS_ANY);
GstStaticPadTemplate video_src_template = GST_STATIC_PAD_TEMPLATE(
    "src_video_%u", GST_PAD_SRC, GST_PAD_SOMETIMES, GST_STATIC_CAPS("video/x-raw"));
GstStaticPadTemplate audio_src_template = GST_STATIC_PAD_TEMPLATE(
    "src_audio_%u", GST_PAD_SRC, GST_PAD_SOMETIMES, GST_STATIC_CAPS("audio/x-raw"));
} // namespace pointcast::rtc

GType gst_rtc_peer_role_get_type(void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {int(Role::Auto),
       "Offer to peers that join after us, and to those that only answer (or to target)", "auto"},
      {int(Role::Offerer), "Offer to every peer (or to target)", "offerer"},
      {int(Role::Answerer), "Only answer offers", "answerer"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstRtcPeerRole", values));
  return type;
}

namespace pointcast::rtc {

void run_async(GstRtcPeer *self, std::function<void()> fn)
{
  self->priv->ctx.post(G_OBJECT(self), std::move(fn));
}

guint add_timeout(GstRtcPeer *self, guint ms, std::function<void()> fn)
{
  return self->priv->ctx.add_timeout(ms, std::move(fn));
}

void cancel_timeout(GstRtcPeer *self, guint *id)
{
  self->priv->ctx.cancel_timeout(id);
}

void post_peer_message(GstRtcPeer *self, const char *name, const std::string &peer,
                       const char *extra_key, const std::string &extra)
{
  GstStructure *s = gst_structure_new(name, "peer-id", G_TYPE_STRING, peer.c_str(), nullptr);
  if (extra_key) gst_structure_set(s, extra_key, G_TYPE_STRING, extra.c_str(), nullptr);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

void restore_flags(GstRtcPeer *self)
{
  // GstBin recomputes SINK/SOURCE from its children when one is removed; rtcpeer is both an end
  // of its pipeline's data flow (it posts EOS itself) and a live source.
  auto *p = self->priv;
  bool sinks;
  {
    std::lock_guard lk(p->lock);
    sinks = !p->data_sinks.empty() || !p->media_sends.empty();
  }
  std::lock_guard ek(p->eos_msg_lock); // against an EOS message posted meanwhile
  GST_OBJECT_LOCK(self);
  bool lost = sinks && !GST_OBJECT_FLAG_IS_SET(self, GST_ELEMENT_FLAG_SINK);
  if (sinks)
    GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK);
  else
    GST_OBJECT_FLAG_UNSET(self, GST_ELEMENT_FLAG_SINK);
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SOURCE);
  GST_OBJECT_UNLOCK(self);
  bool repost;
  {
    std::lock_guard lk(p->lock);
    repost = lost && p->eos_posted && p->eos_msg_sent;
  }
  // Our EOS may have come while we were no sink (a session's webrtcbin just removed): the pipeline
  // then did not count it and would wait forever. Once counted, the pipeline ignores a second one.
  if (repost) {
    GST_DEBUG_OBJECT(self, "posting EOS again: a child's removal cleared our SINK flag");
    post_eos_message(self, p->eos_msg_seqnum);
  }
}

// Takes a child out of a bin that may be changing state in another thread at the same time.
void shut_down(GstRtcPeer *self, GstElement *e)
{
  gst_element_set_locked_state(e, TRUE);
  gst_element_set_state(e, GST_STATE_NULL);
  gst_bin_remove(GST_BIN(self), e);
}

GstElement *make(GstRtcPeer *self, const char *factory)
{
  GstElement *e = gst_element_factory_make(factory, nullptr);
  if (!e)
    GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("Element '%s' is missing", factory), (nullptr));
  return e;
}

void for_each_element(GstBin *bin, const char *factory, const std::function<void(GstElement *)> &fn)
{
  GstIterator *it = gst_bin_iterate_recurse(bin);
  GValue v = G_VALUE_INIT;
  while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
    auto *e = GST_ELEMENT(g_value_get_object(&v));
    GstElementFactory *f = gst_element_get_factory(e);
    if (f && g_strcmp0(GST_OBJECT_NAME(f), factory) == 0) fn(e);
    g_value_reset(&v);
  }
  g_value_unset(&v);
  gst_iterator_free(it);
}

} // namespace pointcast::rtc

/* ---------------------------------------------------------------------------------------------
 * GstElement */

static GstPad *gst_rtc_peer_request_new_pad(GstElement *element, GstPadTemplate *templ,
                                            const gchar *req_name, const GstCaps *caps)
{
  auto *self = GST_RTC_PEER(element);
  auto *p = self->priv;
  const char *tname = GST_PAD_TEMPLATE_NAME_TEMPLATE(templ);
  if (g_str_equal(tname, "video_%u")) return request_media_pad(self, templ, true, req_name);
  if (g_str_equal(tname, "audio_%u")) return request_media_pad(self, templ, false, req_name);
  if (!g_str_equal(tname, "data_%s") || GST_PAD_TEMPLATE_DIRECTION(templ) != GST_PAD_SINK)
    return nullptr;
  std::string label = req_name && g_str_has_prefix(req_name, "data_") ? req_name + 5 : "";
  if (label.empty()) {
    GST_WARNING_OBJECT(self, "data pads need a label: request data_LABEL");
    return nullptr;
  }
  {
    std::lock_guard lk(p->lock);
    if (p->data_sinks.count(label)) {
      GST_WARNING_OBJECT(self, "data_%s is already requested", label.c_str());
      return nullptr;
    }
    // Linked as a src pad already (gst-launch retries that link at every pad-added, running);
    // asked for again before the start, it is a sink pad after all.
    if (p->awaited_srcs.count(req_name)) {
      if (GST_STATE(element) != GST_STATE_NULL) return nullptr;
      p->awaited_srcs.erase(req_name);
    }
  }
  GstPad *pad = gst_pad_new_from_template(templ, req_name);
  auto sink = std::make_unique<DataSink>();
  sink->label = label;
  sink->pad = pad;
  gst_pad_set_element_private(pad, sink.get());
  gst_pad_set_chain_function(pad, data_chain);
  gst_pad_set_event_function(pad, data_sink_event);
  {
    std::lock_guard lk(p->lock);
    p->data_sinks[label] = std::move(sink);
  }
  gst_pad_set_active(pad, TRUE);
  gst_element_add_pad(element, pad);
  gst_child_proxy_child_added(GST_CHILD_PROXY(element), G_OBJECT(pad), GST_OBJECT_NAME(pad));
  restore_flags(self);
  // Sessions that already run open the new channel right away.
  run_async(self, [self] {
    for (auto &s : all_sessions(self))
      if (s->remote_set) create_channels(self, s, false);
  });
  return pad;
}

static void gst_rtc_peer_release_pad(GstElement *element, GstPad *pad)
{
  auto *self = GST_RTC_PEER(element);
  auto *p = self->priv;
  std::string name = GST_PAD_NAME(pad);
  if (GST_STATE(element) == GST_STATE_NULL && !gst_pad_is_linked(pad)) {
    // Requested and released unlinked before the start: a link that wanted a src pad of that name.
    std::lock_guard lk(p->lock);
    p->awaited_srcs.insert(name);
  }
  if (g_str_has_prefix(name.c_str(), "data_")) {
    std::unique_ptr<DataSink> sink;
    {
      std::lock_guard lk(p->lock);
      auto it = p->data_sinks.find(name.substr(5));
      if (it != p->data_sinks.end()) {
        sink = std::move(it->second);
        p->data_sinks.erase(it);
      }
    }
    gst_child_proxy_child_removed(GST_CHILD_PROXY(element), G_OBJECT(pad), name.c_str());
    gst_element_remove_pad(element, pad);
    restore_flags(self);
    return;
  }
  // Media pads stay until the element is disposed (their encoders are shared by every session).
  gst_element_remove_pad(element, pad);
}

static bool start_signaling(GstRtcPeer *self)
{
  auto *p = self->priv;
  SignallerConfig cfg;
  {
    std::lock_guard lk(p->props_lock);
    cfg.uri = p->signaling;
    cfg.room = p->room;
    cfg.peer_id = p->peer_id;
    // An answer-only peer says so, so that auto newcomers offer to it (should_offer).
    cfg.peer_type =
        p->role == Role::Answerer && p->peer_type == kDefaultPeerType ? "answerer" : p->peer_type;
    cfg.target = p->target;
    cfg.token = p->token;
    cfg.role = p->role;
  }
  std::string error;
  auto sig = make_signaller(cfg, &error);
  if (!sig) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Bad signaling URI: %s", error.c_str()),
                      ("signaling='%s'", cfg.uri.c_str()));
    return false;
  }
  Role resolved = sig->resolve_role(cfg.role);
  p->ctx.run_sync([&] {
    {
      std::lock_guard lk(p->props_lock);
      p->role = resolved;
    }
    p->signaller = std::move(sig);
    p->signaller->start(p->ctx.context(), make_events(self));
    start_expiry(self);
  });
  return true;
}

static void stop_signaling(GstRtcPeer *self)
{
  auto *p = self->priv;
  p->ctx.run_sync([&] {
    stop_expiry(self);
    remove_all_sessions(self);
    p->turn_tunnels.clear();
    if (p->signaller) p->signaller->stop();
    p->signaller.reset();
    p->signaling_lost = false;
  });
}

static void remove_data_srcs(GstRtcPeer *self)
{
  auto *p = self->priv;
  std::map<std::string, std::unique_ptr<DataSrc>> srcs;
  {
    std::lock_guard lk(p->lock);
    srcs.swap(p->data_srcs);
  }
  for (auto &[label, src] : srcs) {
    gst_pad_set_active(src->pad, FALSE);
    gst_element_remove_pad(GST_ELEMENT(self), src->pad);
  }
  std::vector<GstPad *> ended, orphans;
  {
    std::lock_guard lk(p->lock);
    ended.swap(p->ended_srcs);
    orphans.swap(p->orphaned_sinks);
  }
  for (auto *pad : orphans) gst_object_unref(pad);
  for (auto *pad : ended) {
    gst_pad_set_active(pad, FALSE);
    gst_element_remove_pad(GST_ELEMENT(self), pad);
    gst_object_unref(pad);
  }
}

static GstStateChangeReturn gst_rtc_peer_change_state(GstElement *element,
                                                      GstStateChange transition)
{
  auto *self = GST_RTC_PEER(element);
  auto *p = self->priv;
  switch (transition) {
  case GST_STATE_CHANGE_NULL_TO_READY: p->ctx.start("rtcpeer"); break;
  case GST_STATE_CHANGE_READY_TO_PAUSED: {
    {
      std::lock_guard lk(p->lock);
      p->flushing = false;
      p->eos_posted = false;
      for (auto &[label, sink] : p->data_sinks) sink->eos = false;
      for (auto &m : p->media_sends) m->eos = false;
    }
    if (!check_ice_servers(self) || !start_signaling(self)) return GST_STATE_CHANGE_FAILURE;
    break;
  }
  case GST_STATE_CHANGE_PAUSED_TO_READY: {
    {
      std::lock_guard lk(p->lock);
      p->flushing = true;
      p->cond.notify_all();
      cancel_timeout(self, &p->src_eos_timer);
      gst_clear_event(&p->pending_src_eos);
    }
    std::lock_guard lk(p->wake_lock);
    p->wake.notify_all();
    break;
  }
  default: break;
  }
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) stop_signaling(self);
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS(gst_rtc_peer_parent_class)->change_state(element, transition);
  switch (transition) {
  case GST_STATE_CHANGE_READY_TO_PAUSED:
    if (ret == GST_STATE_CHANGE_FAILURE)
      stop_signaling(self);
    else if (ret == GST_STATE_CHANGE_SUCCESS)
      ret = GST_STATE_CHANGE_NO_PREROLL; // live: data arrives only once peers connect
    break;
  case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
    if (ret == GST_STATE_CHANGE_SUCCESS) ret = GST_STATE_CHANGE_NO_PREROLL;
    break;
  case GST_STATE_CHANGE_PAUSED_TO_READY: remove_data_srcs(self); break;
  case GST_STATE_CHANGE_READY_TO_NULL: p->ctx.stop(); break;
  default: break;
  }
  return ret;
}

/* Nothing one peer does may stop the pipeline: an error from a child that belongs to one session
 * (its webrtcbin: ICE, DTLS, SCTP; its decoders: a track we cannot decode) becomes a warning, and
 * a failed webrtcbin takes only its own session with it. */
static void gst_rtc_peer_handle_message(GstBin *bin, GstMessage *msg)
{
  auto *self = GST_RTC_PEER(bin);
  auto *p = self->priv;
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR && GST_MESSAGE_SRC(msg)) {
    // The child of ours the message comes from.
    GstObject *child = GST_MESSAGE_SRC(msg);
    gst_object_ref(child);
    while (true) {
      GstObject *parent = gst_object_get_parent(child);
      if (!parent || parent == GST_OBJECT(self)) {
        if (parent) gst_object_unref(parent);
        break;
      }
      gst_object_unref(child);
      child = parent;
    }
    std::string peer;
    bool is_webrtc = false;
    {
      std::lock_guard lk(p->lock);
      for (auto &[id, s] : p->sessions) {
        bool decoder = false;
        for (auto *d : s->decoders) decoder |= GST_OBJECT(d) == child;
        if (decoder || GST_OBJECT(s->webrtc) == child) {
          peer = id;
          is_webrtc = GST_OBJECT(s->webrtc) == child;
          break;
        }
      }
    }
    /* A webrtcbin no longer among the sessions was replaced or removed (a lost path rebuilt):
     * its SCTP/DTLS failing as it goes is expected, and stopping the pipeline for it would cut
     * short the accounting of what the peer did not get. */
    bool retired = peer.empty() && !g_strcmp0(G_OBJECT_TYPE_NAME(child), "GstWebRTCBin");
    gst_object_unref(child);
    if (retired) {
      GST_DEBUG_OBJECT(self, "error from a retired session's webrtcbin dropped: %" GST_PTR_FORMAT,
                       msg);
      gst_message_unref(msg);
      return;
    }
    if (!peer.empty()) {
      GError *err = nullptr;
      gchar *dbg = nullptr;
      gst_message_parse_error(msg, &err, &dbg);
      GST_ELEMENT_WARNING(self, STREAM, FAILED,
                          ("Peer '%s': %s", peer.c_str(), err ? err->message : "error"),
                          ("%s%s", dbg ? dbg : "",
                           is_webrtc ? "; removing this peer only" : "; dropping that track"));
      g_clear_error(&err);
      g_free(dbg);
      gst_message_unref(msg);
      if (is_webrtc)
        run_async(self, [self, peer] { remove_session(self, peer, "its connection failed"); });
      return;
    }
  }
  GST_BIN_CLASS(gst_rtc_peer_parent_class)->handle_message(bin, msg);
}

static gboolean gst_rtc_peer_send_event(GstElement *element, GstEvent *event)
{
  auto *self = GST_RTC_PEER(element);
  auto *p = self->priv;
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    /* As a source (gst-launch -e): end every stream we produce. An element that also sends
     * (ball-sender: video out, detections back) ends its src pads only once its sink pads have
     * ended and drained (maybe_post_eos), so the replies to its last frames are not cut off; at
     * most kSrcEosWaitMs. A pure receiver, or one with no peer connected, ends at once and
     * posts EOS itself once its sinks have ended. */
    bool sending, data_sinks;
    std::set<std::string> fed_by_self = sinks_fed_by_self(self);
    {
      std::lock_guard lk(p->lock);
      gst_event_replace(&p->pending_src_eos, event);
      data_sinks = !p->data_sinks.empty();
      // With no peer connected there are no replies to wait for: end the src pads now.
      bool connected = false;
      for (auto &[id, sess] : p->sessions) connected |= sess->connected && !sess->peer_closed;
      sending = connected && !p->eos_posted && !sinks_ended(p, fed_by_self);
      if (sending && p->ctx.context()) {
        cancel_timeout(self, &p->src_eos_timer);
        p->src_eos_timer = add_timeout(self, kSrcEosWaitMs, [self] {
          {
            std::lock_guard lk(self->priv->lock);
            self->priv->src_eos_timer = 0;
          }
          end_src_pads(self);
        });
      }
    }
    if (!sending) end_src_pads(self);
    if (!data_sinks) maybe_post_eos(self, gst_event_get_seqnum(event));
    gst_event_unref(event);
    return TRUE;
  }
  return GST_ELEMENT_CLASS(gst_rtc_peer_parent_class)->send_event(element, event);
}

static void gst_rtc_peer_set_property(GObject *object, guint prop_id, const GValue *value,
                                      GParamSpec *pspec)
{
  auto *p = GST_RTC_PEER(object)->priv;
  std::lock_guard lk(p->props_lock);
  auto str = [&](std::string &dst) {
    const char *s = g_value_get_string(value);
    dst = s ? s : "";
  };
  switch (prop_id) {
  case PROP_SIGNALING: {
    const char *s = g_value_get_string(value);
    p->signaling = s && *s ? s : kSignalingDefault.value();
    break;
  }
  case PROP_ROOM: {
    const char *s = g_value_get_string(value);
    p->room = s && *s ? s : kRoomDefault.value();
    break;
  }
  case PROP_PEER_ID: str(p->peer_id); break;
  case PROP_PEER_TYPE: str(p->peer_type); break;
  case PROP_TARGET: str(p->target); break;
  case PROP_TOKEN: {
    const char *s = g_value_get_string(value);
    p->token = s && *s ? s : kTokenDefault.value();
    break;
  }
  case PROP_ROLE: p->role = Role(g_value_get_enum(value)); break;
  case PROP_STUN_SERVER: str(p->stun_server); break;
  case PROP_TURN_SERVER: str(p->turn_server); break;
  case PROP_TURN_TLS_CA: str(p->turn_tls_ca); break;
  case PROP_ICE_TRANSPORT_POLICY:
    p->relay_only = g_value_get_enum(value) == GST_WEBRTC_ICE_TRANSPORT_POLICY_RELAY;
    break;
  case PROP_LATENCY: p->latency = g_value_get_uint(value); break;
  case PROP_VIDEO_CODEC: {
    std::string c = g_value_get_string(value) ? g_value_get_string(value) : "vp8";
    for (auto &ch : c) ch = char(g_ascii_tolower(ch));
    const codecs::Codec *known = codecs::by_name(c);
    if (!known || !known->video) {
      GST_WARNING_OBJECT(object, "unknown video-codec '%s' (vp8, vp9, h264); keeping %s", c.c_str(),
                         p->video_codec.c_str());
      break;
    }
    p->video_codec = c;
    break;
  }
  case PROP_VIDEO_BITRATE: p->video_bitrate = g_value_get_uint(value); break;
  case PROP_VIDEO_BITRATE_MIN: p->video_bitrate_min = g_value_get_uint(value); break;
  case PROP_VIDEO_BITRATE_MAX: p->video_bitrate_max = g_value_get_uint(value); break;
  case PROP_FEC_PERCENTAGE: p->fec_percentage = g_value_get_int(value); break;
  case PROP_WAIT_FOR_PEERS: p->wait_for_peers = g_value_get_uint(value); break;
  case PROP_RECEIVE_VIDEO: p->receive_video = g_value_get_boolean(value); break;
  case PROP_RECEIVE_AUDIO: p->receive_audio = g_value_get_boolean(value); break;
  case PROP_END_WITH_PEERS: p->end_with_peers = g_value_get_boolean(value); break;
  case PROP_MAX_PEERS: p->max_peers = g_value_get_uint(value); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_rtc_peer_get_property(GObject *object, guint prop_id, GValue *value,
                                      GParamSpec *pspec)
{
  auto *p = GST_RTC_PEER(object)->priv;
  if (prop_id == PROP_CONNECTED_PEERS) {
    guint n = 0;
    std::lock_guard lk(p->lock);
    for (auto &[id, s] : p->sessions) n += s->connected;
    g_value_set_uint(value, n);
    return;
  }
  std::lock_guard lk(p->props_lock);
  switch (prop_id) {
  case PROP_SIGNALING: g_value_set_string(value, p->signaling.c_str()); break;
  case PROP_ROOM: g_value_set_string(value, p->room.c_str()); break;
  case PROP_PEER_ID: g_value_set_string(value, p->peer_id.c_str()); break;
  case PROP_PEER_TYPE: g_value_set_string(value, p->peer_type.c_str()); break;
  case PROP_TARGET: g_value_set_string(value, p->target.c_str()); break;
  case PROP_TOKEN: g_value_set_string(value, p->token.c_str()); break;
  case PROP_ROLE: g_value_set_enum(value, int(p->role)); break;
  case PROP_STUN_SERVER: g_value_set_string(value, p->stun_server.c_str()); break;
  case PROP_TURN_SERVER: g_value_set_string(value, p->turn_server.c_str()); break;
  case PROP_TURN_TLS_CA: g_value_set_string(value, p->turn_tls_ca.c_str()); break;
  case PROP_ICE_TRANSPORT_POLICY:
    g_value_set_enum(value,
                     p->relay_only ? GST_WEBRTC_ICE_TRANSPORT_POLICY_RELAY
                                   : GST_WEBRTC_ICE_TRANSPORT_POLICY_ALL);
    break;
  case PROP_LATENCY: g_value_set_uint(value, p->latency); break;
  case PROP_VIDEO_CODEC: g_value_set_string(value, p->video_codec.c_str()); break;
  case PROP_VIDEO_BITRATE: g_value_set_uint(value, p->video_bitrate); break;
  case PROP_VIDEO_BITRATE_MIN: g_value_set_uint(value, p->video_bitrate_min); break;
  case PROP_VIDEO_BITRATE_MAX: g_value_set_uint(value, p->video_bitrate_max); break;
  case PROP_FEC_PERCENTAGE: g_value_set_int(value, p->fec_percentage); break;
  case PROP_WAIT_FOR_PEERS: g_value_set_uint(value, p->wait_for_peers); break;
  case PROP_RECEIVE_VIDEO: g_value_set_boolean(value, p->receive_video); break;
  case PROP_RECEIVE_AUDIO: g_value_set_boolean(value, p->receive_audio); break;
  case PROP_END_WITH_PEERS: g_value_set_boolean(value, p->end_with_peers); break;
  case PROP_MAX_PEERS: g_value_set_uint(value, p->max_peers); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void gst_rtc_peer_finalize(GObject *object)
{
  auto *self = GST_RTC_PEER(object);
  for (auto &m : self->priv->media_sends)
    if (m->rtp_caps) gst_caps_unref(m->rtp_caps);
  gst_clear_event(&self->priv->pending_src_eos);
  delete self->priv;
  release_first_connection();
  G_OBJECT_CLASS(gst_rtc_peer_parent_class)->finalize(object);
}

static void gst_rtc_peer_init(GstRtcPeer *self)
{
  prepare_first_connection(); // as early as possible: gst-launch parses long before PLAYING
  self->priv = new RtcPeerPrivate;
  if (self->priv->peer_id.empty()) {
    // Stable for the element's lifetime, so reconnections re-register under the same id.
    gchar *id = g_strdup_printf("rtcpeer-%08x", g_random_int());
    self->priv->peer_id = id;
    g_free(id);
  }
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SOURCE);
}

static void gst_rtc_peer_class_init(GstRtcPeerClass *klass)
{
  auto *gobject_class = G_OBJECT_CLASS(klass);
  auto *element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->set_property = gst_rtc_peer_set_property;
  gobject_class->get_property = gst_rtc_peer_get_property;
  gobject_class->finalize = gst_rtc_peer_finalize;
  auto flags = GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);

  g_object_class_install_property(
      gobject_class, PROP_SIGNALING,
      g_param_spec_string(
          "signaling", "Signaling",
          "Signaling URI: ws://host:port/ws (room protocol), tcp://host:port (aiortc "
          "TcpSocketSignaling), http://host:port/offer, or local://NAME (in-process). "
          "Default: $POINTCAST_SIGNALING, else ws://127.0.0.1:8765/ws",
          kSignalingDefault.fallback, flags));
  g_object_class_install_property(
      gobject_class, PROP_ROOM,
      g_param_spec_string("room", "Room", "Room to join. Default: $POINTCAST_ROOM, else 'default'",
                          kRoomDefault.fallback, flags));
  g_object_class_install_property(
      gobject_class, PROP_PEER_ID,
      g_param_spec_string(
          "peer-id", "Peer id",
          "Our id in the room. Default: $POINTCAST_PEER_ID, else a generated rtcpeer-XXXXXXXX",
          nullptr, flags));
  g_object_class_install_property(
      gobject_class, PROP_PEER_TYPE,
      g_param_spec_string(
          "peer-type", "Peer type",
          "client_type announced to the room (with role=answerer the default is announced as "
          "'answerer', so that role=auto newcomers offer to us)",
          kDefaultPeerType, flags));
  g_object_class_install_property(
      gobject_class, PROP_TARGET,
      g_param_spec_string(
          "target", "Target",
          "Peer to call; empty: offer to every peer (auto/offerer); either way either side may "
          "renegotiate later",
          nullptr, flags));
  g_object_class_install_property(
      gobject_class, PROP_TOKEN,
      g_param_spec_string("token", "Token",
                          "Token the signaling server requires (ws://: sent as \"Authorization: "
                          "Bearer\", never in the "
                          "URL). Default: $POINTCAST_TOKEN, else none",
                          nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_ROLE,
                                  g_param_spec_enum("role", "Role", "Who makes the offer",
                                                    GST_TYPE_RTC_PEER_ROLE, int(Role::Auto),
                                                    flags));
  g_object_class_install_property(
      gobject_class, PROP_STUN_SERVER,
      g_param_spec_string(
          "stun-server", "STUN server",
          "stun://host:port, checked at start; empty (default): host candidates only", nullptr,
          flags));
  g_object_class_install_property(
      gobject_class, PROP_TURN_SERVER,
      g_param_spec_string("turn-server", "TURN server",
                          "turn://user:password@host:port[?transport=udp|tcp] or "
                          "turns://user:password@host:port, several separated by commas; "
                          "checked at start; empty by default",
                          nullptr, flags));
  g_object_class_install_property(
      gobject_class, PROP_TURN_TLS_CA,
      g_param_spec_string("turn-tls-ca", "TURN TLS CA file",
                          "PEM file of the certificates trusted for turns:// servers (e.g. a "
                          "self-signed one); empty (default): the system's CAs",
                          nullptr, flags));
  g_object_class_install_property(
      gobject_class, PROP_ICE_TRANSPORT_POLICY,
      g_param_spec_enum("ice-transport-policy", "ICE transport policy",
                        "all (default): any candidate pair; relay: only through the TURN "
                        "servers of turn-server (needs one)",
                        GST_TYPE_WEBRTC_ICE_TRANSPORT_POLICY, GST_WEBRTC_ICE_TRANSPORT_POLICY_ALL,
                        flags));
  g_object_class_install_property(
      gobject_class, PROP_LATENCY,
      g_param_spec_uint("latency", "Latency",
                        "Jitterbuffer latency of received media in ms (webrtcbin's default is 200)",
                        0, 10000, kDefaultLatency, flags));
  g_object_class_install_property(
      gobject_class, PROP_VIDEO_CODEC,
      g_param_spec_string("video-codec", "Video codec",
                          "Codec for raw video on video_%u pads: vp8, vp9 or h264", "vp8", flags));
  g_object_class_install_property(gobject_class, PROP_VIDEO_BITRATE,
                                  g_param_spec_uint("video-bitrate", "Video bitrate",
                                                    "Video bitrate in kbit/s at the start; then "
                                                    "congestion control moves it between "
                                                    "video-bitrate-min and video-bitrate-max",
                                                    50, 100000, kDefaultVideoBitrate, flags));
  g_object_class_install_property(
      gobject_class, PROP_VIDEO_BITRATE_MIN,
      g_param_spec_uint("video-bitrate-min", "Minimum video bitrate",
                        "Congestion control never sets the encoder below this (kbit/s); under "
                        "150 kbit/s it also drops frames, keeping each frame's quality",
                        20, 100000, kDefaultVideoBitrateMin, flags));
  g_object_class_install_property(
      gobject_class, PROP_VIDEO_BITRATE_MAX,
      g_param_spec_uint("video-bitrate-max", "Maximum video bitrate",
                        "Congestion control never sets the encoder above this (kbit/s)", 50, 100000,
                        kDefaultVideoBitrateMax, flags));
  g_object_class_install_property(
      gobject_class, PROP_FEC_PERCENTAGE,
      g_param_spec_int("fec-percentage", "FEC percentage",
                       "Video sent with RED/ULPFEC: -1 sends FEC packets as each viewer's "
                       "reported loss calls for (none on a clean link), 1-100 that many per 100 "
                       "media packets always, 0 offers no RED/ULPFEC (received FEC is used "
                       "either way); taken when a viewer connects",
                       -1, 100, -1, flags));
  g_object_class_install_property(
      gobject_class, PROP_WAIT_FOR_PEERS,
      g_param_spec_uint(
          "wait-for-peers", "Wait for peers",
          "Hold data on each data_%s pad until this many peers have that channel open "
          "(0: send to whoever is connected, drop otherwise)",
          0, 1000, 0,
          GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property(
      gobject_class, PROP_RECEIVE_VIDEO,
      g_param_spec_boolean(
          "receive-video", "Receive video",
          "When offering without a video_%u sink pad, still offer to receive one video track", TRUE,
          flags));
  g_object_class_install_property(
      gobject_class, PROP_RECEIVE_AUDIO,
      g_param_spec_boolean(
          "receive-audio", "Receive audio",
          "When offering without an audio_%u sink pad, still offer to receive one audio track",
          FALSE, flags));
  g_object_class_install_property(
      gobject_class, PROP_END_WITH_PEERS,
      g_param_spec_boolean(
          "end-with-peers", "End with peers",
          "End each data_%s src pad (EOS) once every peer that sent on its channel has closed it, "
          "so that a receiver pipeline finishes when its sender does",
          FALSE, flags));
  g_object_class_install_property(
      gobject_class, PROP_MAX_PEERS,
      g_param_spec_uint(
          "max-peers", "Max peers",
          "Remote peers (peer connections) at once; further peers that the signaling server "
          "announces or that offer are ignored, with a warning (0: no limit)",
          0, G_MAXUINT, kDefaultMaxPeers,
          GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property(
      gobject_class, PROP_CONNECTED_PEERS,
      g_param_spec_uint("connected-peers", "Connected peers",
                        "Number of peers with an established connection", 0, G_MAXUINT, 0,
                        GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  gst_element_class_add_static_pad_template_with_gtype(element_class, &data_sink_template,
                                                       GST_TYPE_RTC_DATA_PAD);
  gst_element_class_add_static_pad_template(element_class, &video_sink_template);
  gst_element_class_add_static_pad_template(element_class, &audio_sink_template);
  gst_element_class_add_static_pad_template(element_class, &data_src_template);
  gst_element_class_add_static_pad_template(element_class, &video_src_template);
  gst_element_class_add_static_pad_template(element_class, &audio_src_template);
  gst_element_class_set_static_metadata(
      element_class, "WebRTC peer", "Filter/Network/WebRTC",
      "webrtcbin with built-in signaling: data channels, video and audio to and from several "
      "peers",
      "pointcast");
  element_class->request_new_pad = gst_rtc_peer_request_new_pad;
  element_class->release_pad = gst_rtc_peer_release_pad;
  element_class->change_state = gst_rtc_peer_change_state;
  element_class->send_event = gst_rtc_peer_send_event;
  GST_BIN_CLASS(klass)->handle_message = gst_rtc_peer_handle_message;
  gst_type_mark_as_plugin_api(GST_TYPE_RTC_PEER_ROLE, GstPluginAPIFlags(0));
  GST_DEBUG_CATEGORY_INIT(gst_rtc_peer_debug, "rtcpeer", 0, "WebRTC peer with signaling");
}
