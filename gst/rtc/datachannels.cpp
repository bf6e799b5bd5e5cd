// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/datachannels.h"

#include "rtc/eos.h"
#include "rtc/rtcpeerpriv.h"

#include "points/bufmap.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

struct _GstRtcDataPad {
  GstPad parent;
  // Under the object lock; -1: not set.
  gboolean ordered;
  gint max_retransmits;
  gint max_packet_lifetime;
};

G_DEFINE_TYPE(GstRtcDataPad, gst_rtc_data_pad, GST_TYPE_PAD);

enum { PAD_PROP_0, PAD_PROP_ORDERED, PAD_PROP_MAX_RETRANSMITS, PAD_PROP_MAX_PACKET_LIFETIME };

static void gst_rtc_data_pad_set_property(GObject *object, guint prop_id, const GValue *value,
                                          GParamSpec *pspec)
{
  auto *pad = GST_RTC_DATA_PAD(object);
  GST_OBJECT_LOCK(pad);
  switch (prop_id) {
  case PAD_PROP_ORDERED: pad->ordered = g_value_get_boolean(value); break;
  case PAD_PROP_MAX_RETRANSMITS: pad->max_retransmits = g_value_get_int(value); break;
  case PAD_PROP_MAX_PACKET_LIFETIME: pad->max_packet_lifetime = g_value_get_int(value); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(pad);
}

static void gst_rtc_data_pad_get_property(GObject *object, guint prop_id, GValue *value,
                                          GParamSpec *pspec)
{
  auto *pad = GST_RTC_DATA_PAD(object);
  GST_OBJECT_LOCK(pad);
  switch (prop_id) {
  case PAD_PROP_ORDERED: g_value_set_boolean(value, pad->ordered); break;
  case PAD_PROP_MAX_RETRANSMITS: g_value_set_int(value, pad->max_retransmits); break;
  case PAD_PROP_MAX_PACKET_LIFETIME: g_value_set_int(value, pad->max_packet_lifetime); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(pad);
}

static void gst_rtc_data_pad_init(GstRtcDataPad *pad)
{
  pad->ordered = TRUE;
  pad->max_retransmits = -1;
  pad->max_packet_lifetime = -1;
}

static void gst_rtc_data_pad_class_init(GstRtcDataPadClass *klass)
{
  auto *gobject_class = G_OBJECT_CLASS(klass);
  gobject_class->set_property = gst_rtc_data_pad_set_property;
  gobject_class->get_property = gst_rtc_data_pad_get_property;
  auto flags = GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      gobject_class, PAD_PROP_ORDERED,
      g_param_spec_boolean("ordered", "Ordered",
                           "Messages arrive in the order sent (false: as they come, e.g. "
                           "\"latest wins\" telemetry)",
                           TRUE, flags));
  g_object_class_install_property(
      gobject_class, PAD_PROP_MAX_RETRANSMITS,
      g_param_spec_int("max-retransmits", "Max retransmits",
                       "Partially reliable: resend a lost message at most this often (0: never); "
                       "-1: fully reliable. Not with max-packet-lifetime",
                       -1, 65535, -1, flags));
  g_object_class_install_property(
      gobject_class, PAD_PROP_MAX_PACKET_LIFETIME,
      g_param_spec_int("max-packet-lifetime", "Max packet lifetime",
                       "Partially reliable: resend a lost message only within this many ms; -1: "
                       "fully reliable. Not with max-retransmits",
                       -1, 65535, -1, flags));
}

namespace pointcast::rtc {

GstStructure *channel_options(GstPad *pad)
{
  if (!pad || !GST_IS_RTC_DATA_PAD(pad)) return nullptr;
  auto *dp = GST_RTC_DATA_PAD(pad);
  GST_OBJECT_LOCK(dp);
  GstStructure *s = gst_structure_new("options", "ordered", G_TYPE_BOOLEAN, dp->ordered, nullptr);
  if (dp->max_retransmits >= 0)
    gst_structure_set(s, "max-retransmits", G_TYPE_INT, dp->max_retransmits, nullptr);
  if (dp->max_packet_lifetime >= 0)
    gst_structure_set(s, "max-packet-lifetime", G_TYPE_INT, dp->max_packet_lifetime, nullptr);
  GST_OBJECT_UNLOCK(dp);
  return s;
}

namespace {
GQuark channel_quark()
{
  static GQuark q = g_quark_from_static_string("pointcast-channel-state");
  return q;
}
} // namespace

ChannelState *channel_state(GstWebRTCDataChannel *ch)
{
  return static_cast<ChannelState *>(g_object_get_qdata(G_OBJECT(ch), channel_quark()));
}

Resend::~Resend()
{
  for (auto *b : msgs) g_bytes_unref(b);
}

void Resend::push(GBytes *b)
{
  bytes += g_bytes_get_size(b);
  msgs.push_back(b);
}

void Resend::pop()
{
  bytes -= g_bytes_get_size(msgs.front());
  g_bytes_unref(msgs.front());
  msgs.pop_front();
  from++;
}

ChannelState::~ChannelState()
{
  for (auto *b : kept) g_bytes_unref(b);
}

// Under resend_lock: where messages for r go now (r, or the one it was handed on to).
static Resend *current(Resend *r)
{
  while (r->next) r = r->next.get();
  return r;
}

/* ---------------------------------------------------------------------------------------------
 * Received data: one src pad per label */

gboolean data_src_query(GstPad *pad, GstObject *parent, GstQuery *query)
{
  switch (GST_QUERY_TYPE(query)) {
  case GST_QUERY_LATENCY: gst_query_set_latency(query, TRUE, 0, GST_CLOCK_TIME_NONE); return TRUE;
  default: return gst_pad_query_default(pad, parent, query);
  }
}

/* What a data src pad (or a media one made only to end, make_ended_media_src) carries comes from
 * no sink pad of ours: upstream events and queries go nowhere. The default (every sink pad) sent
 * a reconfigure from ball-tracker's data_detections back round its own loop without end. */
GstIterator *no_internal_links(GstPad *, GstObject *)
{
  return nullptr;
}

DataSrc *ensure_data_src(GstRtcPeer *self, const std::string &label)
{
  auto *p = self->priv;
  {
    std::lock_guard lk(p->lock);
    auto it = p->data_srcs.find(label);
    if (it != p->data_srcs.end()) return it->second.get();
    if (p->flushing) return nullptr;
    if (auto sink = p->data_sinks.find(label); sink != p->data_sinks.end()) {
      // Pad names are unique: the sink pad of that name sends on this label.
      if (!std::exchange(sink->second->warned_in, true))
        GST_ELEMENT_WARNING(self, STREAM, DEMUX,
                            ("A peer sends on data channel '%s'", label.c_str()),
                            ("this element sends on '%s' (its data_%s is a sink pad); the peer's "
                             "messages on it are dropped",
                             label.c_str(), label.c_str()));
      return nullptr;
    }
    if (p->data_srcs.size() >= kMaxDataSrcs) {
      // Each label is a pad: a peer must not be able to make this element grow without end.
      if (p->refused_labels++ == 0)
        GST_ELEMENT_WARNING(self, STREAM, DEMUX, ("Too many data channel labels"),
                            ("already %zu data_%%s src pads; dropping messages on '%s' and any "
                             "further new label",
                             kMaxDataSrcs, label.c_str()));
      return nullptr;
    }
  }
  std::lock_guard create(p->src_create_lock);
  {
    std::lock_guard lk(p->lock);
    auto it = p->data_srcs.find(label);
    if (it != p->data_srcs.end()) return it->second.get();
  }
  std::string name = "data_" + label;
  GstPad *pad = gst_pad_new_from_static_template(&data_src_template, name.c_str());
  gst_pad_set_query_function(pad, data_src_query);
  gst_pad_set_iterate_internal_links_function(pad, no_internal_links);
  gst_pad_use_fixed_caps(pad);
  gst_pad_set_active(pad, TRUE);
  auto src = std::make_unique<DataSrc>();
  src->pad = pad;
  DataSrc *raw = src.get();
  {
    std::lock_guard lk(p->lock);
    p->data_srcs[label] = std::move(src);
  }
  // pad-added lets gst-launch (and applications) link before the first buffer.
  gst_element_add_pad(GST_ELEMENT(self), pad);
  std::string stream_id = std::string("data/") + label;
  gst_pad_push_event(pad, gst_event_new_stream_start(stream_id.c_str()));
  // Messages are opaque bytes; take whatever fixed format downstream wants (application/x-npy for
  // npyunpack), else application/octet-stream.
  GstCaps *peer_caps = gst_pad_peer_query_caps(pad, nullptr);
  GstCaps *caps;
  if (!peer_caps || gst_caps_is_any(peer_caps) || gst_caps_is_empty(peer_caps)) {
    caps = gst_caps_new_empty_simple("application/octet-stream");
  } else {
    caps = gst_caps_fixate(gst_caps_copy_nth(peer_caps, 0));
  }
  if (peer_caps) gst_caps_unref(peer_caps);
  gst_pad_push_event(pad, gst_event_new_caps(caps));
  gst_caps_unref(caps);
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  gst_pad_push_event(pad, gst_event_new_segment(&seg));
  return raw;
}

/* ---------------------------------------------------------------------------------------------
 * Acknowledgements (kAckProtocol) */

namespace {
// A channel reference owned by a pending timeout (released whether it ran or was dropped).
struct ChannelRef {
  explicit ChannelRef(GstWebRTCDataChannel *c) : ch(GST_WEBRTC_DATA_CHANNEL(gst_object_ref(c))) {}
  ~ChannelRef() { gst_object_unref(ch); }
  ChannelRef(const ChannelRef &) = delete;
  ChannelRef &operator=(const ChannelRef &) = delete;
  GstWebRTCDataChannel *ch;
};
} // namespace

static bool is_flushing(RtcPeerPrivate *p);
static void resume_step(GstRtcPeer *self, std::shared_ptr<ChannelRef> ref);
static void nap(RtcPeerPrivate *p, std::chrono::milliseconds d);
static guint64 buffered_amount(GstWebRTCDataChannel *ch);
static void keep_acking(GstRtcPeer *self, std::shared_ptr<ChannelRef> ref, bool first = true);
static void abandon_resend(GstRtcPeer *self, ChannelState *cs, Resend *r, const std::string &why);
static void note_sent(ChannelState *cs, guint64 bytes, GBytes *msg = nullptr, bool resent = false);

/* Under acct: lets go of the kept messages the peer acknowledged (until it acknowledged at all,
 * those SCTP let go of: a peer that never does, a browser, costs no more than before). */
static void prune_kept_locked(ChannelState *cs)
{
  guint64 upto = cs->ack_seen ? cs->acked.load() : cs->known;
  while (!cs->kept.empty() && cs->kept_from < upto) {
    cs->kept_bytes -= g_bytes_get_size(cs->kept.front());
    g_bytes_unref(cs->kept.front());
    cs->kept.pop_front();
    cs->kept_from++;
  }
}

// The peer received `n` whole messages of those we sent on ch.
static void note_ack(GstWebRTCDataChannel *ch, ChannelState *cs, guint64 n)
{
  {
    std::lock_guard lk(cs->acct);
    if (n > cs->sent_msgs) n = cs->sent_msgs; // never more than we sent
    if (n > cs->acked) cs->acked = n;
    cs->ack_seen = true;
    prune_kept_locked(cs);
  }
  // Our own kAckProtocol channel: the peer speaks it, so it takes our acks too (from the context
  // thread: webrtcbin may hold the channel's lock here).
  if (cs->acks_for_peer && !cs->acks_out.exchange(true)) {
    GstRtcPeer *self = cs->self;
    run_async(self, [self, ref = std::make_shared<ChannelRef>(ch)] { keep_acking(self, ref); });
  }
  std::lock_guard lk(cs->self->priv->wake_lock);
  cs->self->priv->wake.notify_all();
}

// The session's webrtcbin, reffed: it must outlive a send on one of its channels (see data_chain).
// Null once the session is gone.
static GstElement *session_bin(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  if (!s || s->removed) return nullptr;
  std::lock_guard lk(self->priv->lock);
  return s->webrtc ? GST_ELEMENT(gst_object_ref(s->webrtc)) : nullptr;
}

// ctx: tells the peer how many whole messages arrived on its channel.
static void send_ack(GstRtcPeer *self, GstWebRTCDataChannel *ch)
{
  auto *cs = channel_state(ch);
  if (!cs || !cs->open) return;
  GstElement *bin = session_bin(self, cs->session.lock());
  if (!bin) return;
  cs->ack_pending = false;
  std::string text = ackproto::ack(cs->received.load());
  {
    // Counted with what we send on it (buffered-amount includes it), unless the session is
    // being removed.
    std::lock_guard lk(cs->send_mu);
    if (!cs->gone && gst_webrtc_data_channel_send_string_full(ch, text.c_str(), nullptr))
      note_sent(cs, text.size());
  }
  gst_object_unref(bin);
}

// Any thread: a whole message arrived on ch; acknowledged within kAckDelay.
static void note_received(GstWebRTCDataChannel *ch, ChannelState *cs)
{
  if (!cs->acks_for_peer) return;
  cs->received++;
  if (!cs->acks_out || cs->ack_pending.exchange(true)) return;
  auto ref = std::make_shared<ChannelRef>(ch);
  GstRtcPeer *self = cs->self;
  add_timeout(self, guint(std::chrono::milliseconds(kAckDelay).count()),
              [self, ref] { send_ack(self, ref->ch); });
}

/* ctx: every kAckKeepalive while the channel is open, so that the peer knows we are there even
 * while nothing arrives (its SCTP backing off through a burst of losses). On a kAckProtocol
 * channel the peer sent nothing on yet, only the first (it says we speak the protocol): the side
 * that only sends on it, or an idle default channel, adds no traffic. */
static void keep_acking(GstRtcPeer *self, std::shared_ptr<ChannelRef> ref, bool first)
{
  auto *cs = channel_state(ref->ch);
  if (!cs || !cs->open || is_flushing(self->priv)) return;
  auto s = cs->session.lock();
  if (!s || s->removed) return;
  if (first || !cs->both_ways || cs->received > 0) send_ack(self, ref->ch);
  add_timeout(self, guint(std::chrono::milliseconds(kAckKeepalive).count()),
              [self, ref] { keep_acking(self, ref, false); });
}

static void push_message(GstRtcPeer *self, const std::string &label, GstBuffer *buf)
{
  DataSrc *src = ensure_data_src(self, label);
  if (!src) {
    gst_buffer_unref(buf);
    return;
  }
  std::lock_guard lk(src->push); // several peers' SCTP threads may deliver to one pad
  self->priv->last_message_in_us = g_get_monotonic_time();
  GstFlowReturn ret = gst_pad_push(src->pad, buf);
  if (ret == GST_FLOW_NOT_LINKED && src->dropped++ == 0)
    GST_ELEMENT_WARNING(
        self, STREAM, DEMUX, ("Nothing is linked to data_%s", label.c_str()),
        ("messages on channel '%s' are dropped until something links it", label.c_str()));
  else if (ret != GST_FLOW_OK)
    GST_LOG_OBJECT(self, "pushing on data_%s: %s", label.c_str(), gst_flow_get_name(ret));
}

/* A whole message arrived: out of the src pad unless it is one delivered already on an earlier
 * channel of its stream (sent again after a rebuild, rtc/ackproto.h); acknowledged either way. */
static void deliver(GstWebRTCDataChannel *ch, ChannelState *cs, GstBuffer *buf)
{
  bool fresh = true;
  if (cs->in) {
    std::lock_guard lk(cs->in->mu);
    fresh = cs->cursor.on_message(cs->in->st);
  }
  if (fresh) {
    push_message(cs->self, cs->label, buf);
  } else {
    gst_buffer_unref(buf);
    cs->skipped++;
  }
  note_received(ch, cs);
}

// A resume message (rtc/ackproto.h) on a channel with acks_for_peer.
static void on_resume(ChannelState *cs, std::string_view text)
{
  GstRtcPeer *self = cs->self;
  ackproto::Cursor::Verdict v;
  if (!cs->in) {
    v.reason = "the channel is not ordered and reliable";
  } else {
    std::lock_guard lk(cs->in->mu);
    v = cs->cursor.on_resume(cs->in->st, text);
  }
  if (!v.accepted) {
    // One warning per channel: a peer repeating itself must not flood the bus.
    if (!cs->warned_resume)
      GST_ELEMENT_WARNING(self, STREAM, DECODE,
                          ("Ignored a resume message from peer '%s'", cs->peer.c_str()),
                          ("channel '%s': %s; its messages are delivered as they come",
                           cs->label.c_str(), v.reason.c_str()));
    else
      GST_WARNING_OBJECT(self, "resume on '%s' from '%s' ignored: %s", cs->label.c_str(),
                         cs->peer.c_str(), v.reason.c_str());
    cs->warned_resume = true;
    return;
  }
  if (v.missing)
    GST_ELEMENT_WARNING(self, STREAM, DECODE,
                        ("%" G_GUINT64_FORMAT " data channel messages from peer '%s' were lost",
                         v.missing, cs->peer.c_str()),
                        ("channel '%s': its new connection goes on %" G_GUINT64_FORMAT
                         " messages after the last one that arrived",
                         cs->label.c_str(), v.missing));
  GST_ELEMENT_INFO(
      self, RESOURCE, READ,
      ("Peer '%s' continues channel '%s' on a new connection", cs->peer.c_str(), cs->label.c_str()),
      ("peer '%s' continues channel '%s' on a new connection: %" G_GUINT64_FORMAT
       " of the messages it sends again arrived before and are skipped",
       cs->peer.c_str(), cs->label.c_str(), v.skip));
}

// A tagged message (kAckProtocolTwice) on a channel with tagged_in: the first copy of each
// sequence number is delivered, as the bytes the sender's data_%s took.
static void on_tagged(GstWebRTCDataChannel *ch, ChannelState *cs, std::string_view text)
{
  auto t = ackproto::parse_tagged(text);
  if (!t) {
    if (!cs->warned_tagged)
      GST_ELEMENT_WARNING(cs->self, STREAM, DECODE,
                          ("Dropped a malformed message from peer '%s'", cs->peer.c_str()),
                          ("channel '%s': expected {\"pointcast\":\"msg\",\"seq\":Q,\"data\":"
                           "\"BASE64\"}, Q at most 2^53-1",
                           cs->label.c_str()));
    cs->warned_tagged = true;
    return;
  }
  if (!cs->seen.fresh(t->seq)) {
    cs->copies_dropped++;
    return;
  }
  GstBuffer *buf;
  if (t->data.empty()) {
    buf = gst_buffer_new();
  } else {
    auto *msg = new std::string(std::move(t->data));
    buf =
        gst_buffer_new_wrapped_full(GstMemoryFlags(0), msg->data(), msg->size(), 0, msg->size(),
                                    msg, [](gpointer d) { delete static_cast<std::string *>(d); });
  }
  deliver(ch, cs, buf);
}

static void on_message_data(GstWebRTCDataChannel *ch, GBytes *data, gpointer user_data)
{
  auto *cs = channel_state(ch);
  if (!cs) return;
  gsize size = 0;
  const void *bytes = data ? g_bytes_get_data(data, &size) : nullptr;
  switch (cs->reasm.on_binary(bytes, size)) {
  case framing::Reassembler::Status::Plain:
    deliver(ch, cs, data ? gst_buffer_new_wrapped_bytes(data) : gst_buffer_new());
    break;
  case framing::Reassembler::Status::Complete: {
    size_t n = 0;
    void *msg = cs->reasm.take(&n);
    deliver(ch, cs, gst_buffer_new_wrapped_full(GstMemoryFlags(0), msg, n, 0, n, msg, g_free));
    break;
  }
  case framing::Reassembler::Status::Error:
    GST_ELEMENT_WARNING(cs->self, STREAM, DECODE, ("Dropped a broken fragmented message"),
                        ("channel '%s' from peer '%s': %s", cs->label.c_str(), cs->peer.c_str(),
                         cs->reasm.error().c_str()));
    break;
  case framing::Reassembler::Status::Pending: break;
  }
}

static void on_message_string(GstWebRTCDataChannel *ch, const gchar *str, gpointer user_data)
{
  auto *cs = channel_state(ch);
  if (!cs) return;
  std::string_view text = str ? str : "";
  if (cs->acks_in) {
    if (auto n = ackproto::parse_ack(text)) {
      note_ack(ch, cs, *n);
      return;
    }
  }
  if (cs->acks_for_peer && ackproto::is_resume(text)) {
    on_resume(cs, text);
    return;
  }
  if (cs->tagged_in && ackproto::is_tagged(text)) {
    on_tagged(ch, cs, text);
    return;
  }
  switch (cs->reasm.on_text(text)) {
  case framing::Reassembler::Status::Plain:
    deliver(ch, cs, gst_buffer_new_memdup(text.data(), text.size()));
    break;
  case framing::Reassembler::Status::Error:
    GST_ELEMENT_WARNING(cs->self, STREAM, DECODE, ("Dropped a broken fragmented message"),
                        ("channel '%s' from peer '%s': %s", cs->label.c_str(), cs->peer.c_str(),
                         cs->reasm.error().c_str()));
    break;
  default: break;
  }
}

static void on_ready_state(GstWebRTCDataChannel *ch, GParamSpec *, gpointer user_data)
{
  auto *cs = channel_state(ch);
  if (!cs) return;
  GstWebRTCDataChannelState state;
  g_object_get(ch, "ready-state", &state, nullptr);
  GstRtcPeer *self = cs->self;
  auto *p = self->priv;
  {
    std::lock_guard lk(p->lock);
    // Before `open`: the sending thread may take the channel at once (flush_resume's wait).
    if (state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN && !cs->open)
      cs->open_us = g_get_monotonic_time();
    cs->open = state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN;
    if (cs->open) cs->ever_open = true;
  }
  p->cond.notify_all();
  if (state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) {
    GST_INFO_OBJECT(self, "channel '%s' with peer '%s' open", cs->label.c_str(), cs->peer.c_str());
    // With the reliability the channel was opened with (by either side).
    gboolean ordered = TRUE;
    gint retransmits = -1, lifetime = -1;
    g_object_get(ch, "ordered", &ordered, "max-retransmits", &retransmits, "max-packet-lifetime",
                 &lifetime, nullptr);
    if (cs->acks_out) // from the context thread: webrtcbin may hold the channel's lock here
      run_async(self, [self, ref = std::make_shared<ChannelRef>(ch)] { keep_acking(self, ref); });
    if (cs->resume && !cs->resuming.exchange(true))
      run_async(self, [self, ref = std::make_shared<ChannelRef>(ch)] { resume_step(self, ref); });
    GstStructure *st = gst_structure_new(
        "rtcpeer-channel-open", "peer-id", G_TYPE_STRING, cs->peer.c_str(), "label", G_TYPE_STRING,
        cs->label.c_str(), "ordered", G_TYPE_BOOLEAN, ordered, "max-retransmits", G_TYPE_INT,
        retransmits, "max-packet-lifetime", G_TYPE_INT, lifetime, nullptr);
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), st));
  } else if (state == GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED) {
    if (cs->twice || cs->tagged_in)
      GST_INFO_OBJECT(self,
                      "channel '%s' with peer '%s' closed: %" G_GUINT64_FORMAT
                      " copies sent, %" G_GUINT64_FORMAT
                      " small messages sent once, %" G_GUINT64_FORMAT " copies received dropped",
                      cs->label.c_str(), cs->peer.c_str(), cs->copies.load(), cs->once.load(),
                      cs->copies_dropped.load());
    std::string peer = cs->peer, label = cs->label;
    gst_object_ref(ch);
    run_async(self, [self, peer, label, ch] {
      auto *p = self->priv;
      std::shared_ptr<Session> s;
      bool any_open = false;
      {
        std::lock_guard lk(p->lock);
        auto it = p->sessions.find(peer);
        if (it != p->sessions.end()) {
          s = it->second;
          for (auto *c : s->channels) {
            auto *o = channel_state(c);
            GstWebRTCDataChannelState st;
            g_object_get(c, "ready-state", &st, nullptr);
            any_open |= st != GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED &&
                st != GST_WEBRTC_DATA_CHANNEL_STATE_CLOSING && o;
          }
        }
      }
      gst_object_unref(ch);
      // A peer that closed all its channels and sends no media has gone (our own closing at EOS
      // does not count: the pipeline is about to stop anyway).
      bool draining;
      {
        std::lock_guard lk(p->lock);
        draining = p->eos_posted;
      }
      if (!draining) maybe_end_src(self, label);
      bool has_media = false;
      if (s) {
        std::lock_guard lk(p->lock); // media_srcs grows on decodebin's thread
        has_media = !s->media.empty() || !s->media_srcs.empty();
      }
      /* Not at once: our channels' closing answers the peer's, and the peer waits for that
       * answer to know everything arrived. Gone with the session, a lost answer is never sent
       * again; a few seconds more let SCTP retransmit it. */
      if (s && !draining && !any_open && !has_media) {
        s->peer_closed = true;
        std::weak_ptr<Session> weak = s;
        add_timeout(self, guint(std::chrono::milliseconds(kPeerCloseLinger).count()),
                    [self, peer, weak] {
                      auto s = weak.lock();
                      if (!s || s->removed) return;
                      remove_session(self, peer, "the peer closed its data channels");
                    });
      }
    });
  }
}

// end-with-peers: EOS on data_<label> once no peer has that channel open any more.
void maybe_end_src(GstRtcPeer *self, const std::string &label)
{
  auto *p = self->priv;
  DataSrc *src = nullptr;
  {
    std::lock_guard plk(p->props_lock);
    if (!p->end_with_peers) return;
  }
  std::vector<GstWebRTCDataChannel *> channels;
  {
    std::lock_guard lk(p->lock);
    auto it = p->data_srcs.find(label);
    if (it == p->data_srcs.end()) return;
    src = it->second.get();
    for (auto &[id, s] : p->sessions)
      for (auto *c : s->channels) channels.push_back(GST_WEBRTC_DATA_CHANNEL(gst_object_ref(c)));
  }
  bool open = false;
  for (auto *c : channels) {
    auto *cs = channel_state(c);
    GstWebRTCDataChannelState st;
    g_object_get(c, "ready-state", &st, nullptr);
    open |= cs && cs->label == label &&
        (st == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN ||
         st == GST_WEBRTC_DATA_CHANNEL_STATE_CONNECTING);
    gst_object_unref(c);
  }
  if (open) return;
  GST_INFO_OBJECT(self, "every peer closed channel '%s': EOS on data_%s", label.c_str(),
                  label.c_str());
  std::lock_guard lk(src->push);
  gst_pad_push_event(src->pad, gst_event_new_eos());
}

static void on_buffered_amount_low(GstWebRTCDataChannel *, gpointer user_data)
{
  auto *self = static_cast<GstRtcPeer *>(user_data);
  std::lock_guard lk(self->priv->wake_lock);
  self->priv->wake.notify_all();
}

static bool is_flushing(RtcPeerPrivate *p)
{
  std::lock_guard lk(p->lock);
  return p->flushing;
}

static void nap(RtcPeerPrivate *p, std::chrono::milliseconds d)
{
  std::unique_lock lk(p->wake_lock);
  p->wake.wait_for(lk, d);
}

static void on_channel_error(GstWebRTCDataChannel *ch, GError *error, gpointer user_data)
{
  auto *cs = channel_state(ch);
  GST_ELEMENT_WARNING(static_cast<GstRtcPeer *>(user_data), RESOURCE, WRITE, ("Data channel error"),
                      ("channel '%s' with peer '%s': %s", cs ? cs->label.c_str() : "?",
                       cs ? cs->peer.c_str() : "?", error ? error->message : "unknown"));
}

// Any thread. Takes a reference to ch.
void setup_channel(GstRtcPeer *self, const std::shared_ptr<Session> &s, GstWebRTCDataChannel *ch,
                   bool remote)
{
  auto *p = self->priv;
  gchar *label_c = nullptr;
  g_object_get(ch, "label", &label_c, nullptr);
  std::string label = remote && !s->data_label.empty() ? s->data_label : label_c ? label_c : "";
  g_free(label_c);
  auto *cs = new ChannelState(s->reasm_budget);
  cs->self = self;
  cs->peer = s->id;
  cs->label = label;
  cs->chunk = s->chunk;
  cs->watch = s->watch;
  cs->session = s;
  gchar *protocol = nullptr;
  gint retransmits = -1, lifetime = -1;
  g_object_get(ch, "protocol", &protocol, "max-retransmits", &retransmits, "max-packet-lifetime",
               &lifetime, nullptr);
  cs->reliable = retransmits < 0 && lifetime < 0;
  gboolean ordered = TRUE;
  g_object_get(ch, "ordered", &ordered, nullptr);
  // kAckProtocol: both sides acknowledge; kAckProtocolV1 (an older rtcpeer): the non-opener.
  bool three = g_strcmp0(protocol, kAckProtocolTwice) == 0;
  bool both = three || g_strcmp0(protocol, kAckProtocol) == 0;
  bool v1 = g_strcmp0(protocol, kAckProtocolV1) == 0;
  g_free(protocol);
  cs->both_ways = both;
  cs->acks_in = both || (v1 && !remote);
  cs->acks_for_peer = both || (v1 && remote);
  cs->acks_out = cs->acks_for_peer && remote;
  // The first channel of a label is the one we send on, whoever opened it.
  bool sends;
  {
    std::lock_guard lk(p->lock);
    sends = !s->send_channels.count(label);
    if (sends) s->send_channels[label] = ch;
  }
  // A stream can be continued on a new connection only where the message order is the count's.
  bool stream = cs->reliable && ordered;
  cs->keeps = sends && cs->acks_in && stream;
  cs->twice = three && sends && !cs->reliable;
  cs->tagged_in = three;
  if (!cs->acks_in)
    cs->no_keep_reason = v1 ? "the peer opened it with the older pointcast-ack, which acknowledges "
                              "only the opener's messages"
                            : "the peer does not acknowledge on it";
  else if (!ordered)
    cs->no_keep_reason = "it is unordered: acknowledgements count the messages that arrived, not "
                         "which";
  else if (!cs->reliable)
    cs->no_keep_reason = "it is partially reliable: SCTP may give up its messages by design";
  std::shared_ptr<Resend> orphan; // left for this label, but this channel cannot take it
  if (sends || (cs->acks_for_peer && stream)) {
    auto key = std::make_pair(s->id, label);
    std::lock_guard lk(p->resend_lock);
    if (sends) {
      // What the peer's lost connection left on this label goes first.
      if (auto it = p->resends.find(key); it != p->resends.end()) {
        (cs->keeps ? cs->resume : orphan) = it->second;
        p->resends.erase(it);
      }
    }
    if (cs->acks_for_peer && stream) {
      auto &in = p->in_streams[key];
      if (!in) in = std::make_shared<InStream>();
      cs->in = in;
    }
  }
  g_object_set_qdata_full(G_OBJECT(ch), channel_quark(), cs,
                          [](gpointer d) { delete static_cast<ChannelState *>(d); });
  if (orphan) abandon_resend(self, cs, orphan.get(), cs->no_keep_reason);
  g_object_set(ch, "buffered-amount-low-threshold", guint64(kLowWater), nullptr);
  g_signal_connect(ch, "on-message-data", G_CALLBACK(on_message_data), self);
  g_signal_connect(ch, "on-message-string", G_CALLBACK(on_message_string), self);
  g_signal_connect(ch, "notify::ready-state", G_CALLBACK(on_ready_state), self);
  g_signal_connect(ch, "on-buffered-amount-low", G_CALLBACK(on_buffered_amount_low), self);
  g_signal_connect(ch, "on-error", G_CALLBACK(on_channel_error), self);
  {
    std::lock_guard lk(p->lock);
    s->channels.push_back(GST_WEBRTC_DATA_CHANNEL(gst_object_ref(ch)));
  }
  // The channel may already be open (remote-created channels arrive open).
  on_ready_state(ch, nullptr, self);
}

void on_data_channel(GstElement *webrtc, GstWebRTCDataChannel *ch, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  auto s = h->session.lock();
  if (!s) return;
  size_t n;
  {
    std::lock_guard lk(h->self->priv->lock);
    n = s->channels.size();
  }
  if (n >= kMaxChannels) {
    if (s->refused_channels++ == 0)
      GST_ELEMENT_WARNING(h->self, STREAM, DEMUX,
                          ("Peer '%s' opens too many data channels", s->id.c_str()),
                          ("%zu are open; closing the rest", n));
    gst_webrtc_data_channel_close(ch);
    return;
  }
  setup_channel(h->self, s, ch, true);
}

void create_channels(GstRtcPeer *self, const std::shared_ptr<Session> &s, bool always)
{
  ASSERT_CTX(self);
  auto *p = self->priv;
  std::vector<std::pair<std::string, GstStructure *>> labels;
  {
    std::lock_guard lk(p->lock);
    for (auto &[label, sink] : p->data_sinks) {
      if (s->send_channels.count(label)) continue;
      GstStructure *options = channel_options(sink->pad);
      if (!options) options = gst_structure_new_empty("options");
      // A receiving rtcpeer acknowledges what arrives (kAckProtocol); other peers ignore this.
      bool partial = gst_structure_has_field(options, "max-retransmits") ||
          gst_structure_has_field(options, "max-packet-lifetime");
      gst_structure_set(options, "protocol", G_TYPE_STRING,
                        partial ? kAckProtocolTwice : kAckProtocol, nullptr);
      labels.push_back({label, options});
    }
    // An offer needs a data section so that the answerer can open channels of its own (or send
    // on this one: with kAckProtocol its messages can be sent again too).
    if (always && p->data_sinks.empty() && s->send_channels.empty())
      labels.push_back(
          {kDefaultChannel,
           gst_structure_new("options", "protocol", G_TYPE_STRING, kAckProtocol, nullptr)});
  }
  for (auto &[label, options] : labels) {
    GstWebRTCDataChannel *ch = nullptr;
    g_signal_emit_by_name(s->webrtc, "create-data-channel", label.c_str(), options, &ch);
    if (options) gst_structure_free(options);
    if (!ch) {
      GST_ELEMENT_WARNING(self, RESOURCE, FAILED,
                          ("Could not create data channel '%s'", label.c_str()),
                          ("peer '%s'", s->id.c_str()));
      continue;
    }
    setup_channel(self, s, ch);
    gst_object_unref(ch);
  }
}

/* The state of a webrtcbin's SCTP transport; NEW while it has none yet. */
static GstWebRTCSCTPTransportState sctp_state(GstElement *webrtc)
{
  GstWebRTCSCTPTransport *t = nullptr;
  g_object_get(webrtc, "sctp-transport", &t, nullptr);
  GstWebRTCSCTPTransportState st = GST_WEBRTC_SCTP_TRANSPORT_STATE_NEW;
  if (t) {
    g_object_get(t, "state", &st, nullptr);
    gst_object_unref(t);
  }
  return st;
}

/* The answerer opens its own channels once SCTP is up: channels created earlier sometimes never
 * open with webrtcbin 1.22 when the DTLS role is not settled yet. Polled on the context thread. */
void open_channels_when_ready(GstRtcPeer *self, std::weak_ptr<Session> weak, int tries)
{
  ASSERT_CTX(self);
  auto s = weak.lock();
  if (!s || s->removed) return;
  if (sctp_state(s->webrtc) == GST_WEBRTC_SCTP_TRANSPORT_STATE_CONNECTED) {
    auto *p = self->priv;
    create_channels(self, s, p->signaller && p->signaller->answerer_opens_channel(s->id));
    if (std::exchange(s->channels_pending, false) && s->connected) renegotiate_if_needed(self, s);
    return;
  }
  if (tries > 600) { // 30 s: the connection has failed long since and reported it
    GST_WARNING_OBJECT(self, "SCTP with '%s' never came up; no channels of ours", s->id.c_str());
    if (std::exchange(s->channels_pending, false) && s->connected) renegotiate_if_needed(self, s);
    return;
  }
  if (s->channels_pending && s->connected) {
    // No data section (no SCTP transport), or SCTP slow: the tracks do not wait for it.
    GstWebRTCSCTPTransport *t = nullptr;
    g_object_get(s->webrtc, "sctp-transport", &t, nullptr);
    if (t) gst_object_unref(t);
    if (!t || tries > 40) {
      s->channels_pending = false;
      renegotiate_if_needed(self, s);
    }
  }
  add_timeout(self, 50, [self, weak, tries] { open_channels_when_ready(self, weak, tries + 1); });
}

/* ---------------------------------------------------------------------------------------------
 * Sending data */

namespace {
// A buffer reference and its read mapping, owned by the GBytes that sends it.
struct MappedBuffer {
  explicit MappedBuffer(GstBuffer *b) : buf(b), map(b, GST_MAP_READ) {}
  struct Ref {
    GstBuffer *buf;
    ~Ref() { gst_buffer_unref(buf); }
  } buf; // released after the mapping (members end in reverse order)
  BufferMap map;
};
} // namespace

static size_t open_count(RtcPeerPrivate *p, const std::string &label)
{
  size_t n = 0;
  for (auto &[id, s] : p->sessions) {
    auto it = s->send_channels.find(label);
    if (it == s->send_channels.end()) continue;
    auto *cs = channel_state(it->second);
    n += cs && cs->open;
  }
  return n;
}

// Waits (bounded) until the channel has room; false when the peer stalls or we are flushing.
static guint64 buffered_amount(GstWebRTCDataChannel *ch)
{
  guint64 amount = 0;
  g_object_get(ch, "buffered-amount", &amount, nullptr);
  return amount;
}

/* Counts `bytes` handed to the channel; msg: they complete that message, which a channel that
 * keeps holds on to until acknowledged; resent: it was the first of cs->resume (now sent). */
static void note_sent(ChannelState *cs, guint64 bytes, GBytes *msg, bool resent)
{
  std::lock_guard lk(cs->acct);
  cs->sent_bytes += bytes;
  if (!msg) return;
  cs->sent_msgs++;
  cs->ends.push_back(cs->sent_bytes);
  if (cs->keeps) {
    if (cs->kept.empty()) cs->kept_from = cs->sent_msgs - 1;
    cs->kept.push_back(g_bytes_ref(msg));
    cs->kept_bytes += g_bytes_get_size(msg);
  }
  if (resent) {
    std::lock_guard rl(cs->self->priv->resend_lock);
    if (!cs->resume->msgs.empty()) cs->resume->pop();
  }
}

/* Under acct: forgets the messages now known to have arrived. What webrtcbin passed on (what we
 * gave it minus its buffered-amount: 1.22 counts a buffer off when it leaves the channel's appsrc
 * for sctpenc, not when SCTP has it acknowledged) went into sctpenc, which holds at most one piece
 * while usrsctp's send buffer is full; usrsctp holds at most kSctpSendBuffer bytes not yet
 * acknowledged. A partially reliable channel's message is out of our hands once SCTP took it (its
 * policy may give it up: that is what the channel asked for). */
static void settle_locked(ChannelState *cs, guint64 amount)
{
  guint64 passed = cs->sent_bytes > amount ? cs->sent_bytes - amount : 0;
  guint64 held = cs->reliable ? kSctpSendBuffer + (cs->chunk ? cs->chunk->load() : 65536) : 0;
  guint64 sure = passed > held ? passed - held : 0;
  while (!cs->ends.empty() && (cs->ends.front() <= sure || cs->known < cs->acked)) {
    cs->ends.pop_front();
    cs->known++;
  }
  prune_kept_locked(cs);
}

guint64 unconfirmed_messages(ChannelState *cs, guint64 amount)
{
  std::lock_guard lk(cs->acct);
  settle_locked(cs, amount);
  return cs->ends.size();
}

// Messages the channel (webrtcbin's queue) still holds: those that end beyond what it passed on.
static guint64 still_queued(ChannelState *cs, guint64 amount)
{
  std::lock_guard lk(cs->acct);
  settle_locked(cs, amount);
  guint64 passed = cs->sent_bytes > amount ? cs->sent_bytes - amount : 0, n = 0;
  for (auto it = cs->ends.rbegin(); it != cs->ends.rend() && *it > passed; ++it) n++;
  return n;
}

// Everything handed to the channel is known to have arrived (a receiving rtcpeer said so).
static bool fully_acked(ChannelState *cs)
{
  std::lock_guard lk(cs->acct);
  return cs->ack_seen && cs->acked >= cs->sent_msgs;
}

// Bytes kept for re-sending once the peer acknowledges (kKeepLimit); 0 for a peer that does not.
static guint64 kept_unacked(ChannelState *cs)
{
  std::lock_guard lk(cs->acct);
  prune_kept_locked(cs);
  return cs->ack_seen ? cs->kept_bytes : 0;
}

// Messages waiting in cs->resume to be sent on this channel.
static guint64 resume_waiting(ChannelState *cs)
{
  if (!cs->resume) return 0;
  std::lock_guard lk(cs->self->priv->resend_lock);
  return cs->resume->abandoned ? 0 : cs->resume->msgs.size();
}

// The peer's transport delivered a packet (anything: SCTP, its acks, ICE checks) within `within`.
static bool peer_heard(ChannelState *cs, std::chrono::steady_clock::duration within)
{
  if (!cs->watch) return false;
  gint64 last = cs->watch->last_in_us;
  return last > 0 &&
      g_get_monotonic_time() - last <
      std::chrono::duration_cast<std::chrono::microseconds>(within).count();
}

// No progress for `idle`: the peer is given up on (see kStallLimit).
static bool stalled(ChannelState *cs, std::chrono::steady_clock::duration idle)
{
  return idle > kStallLimit && (idle > kLiveStallLimit || !peer_heard(cs, kStallLimit));
}

/* Waits until the channel has room: below high water (and at most kKeepLimit kept for a peer
 * that acknowledges) at once, else until it drained to low water (and the acknowledgements
 * caught up), however long that takes while the peer makes progress (the sender slows down to
 * the link). False when the peer takes nothing for kStallLimit, the channel closes or its session
 * is removed, or we are flushing. A channel above high water for kSaturatedWarn gets one warning
 * per such episode. */
static bool wait_for_room(GstRtcPeer *self, GstWebRTCDataChannel *ch, ChannelState *cs)
{
  auto *p = self->priv;
  guint64 amount = buffered_amount(ch);
  unconfirmed_messages(cs, amount); // forgets what arrived: the record stays small
  if (amount <= kHighWater && kept_unacked(cs) <= kKeepLimit) return true;
  // Waiting only for acknowledgements: the queue need not drain to low water as well.
  guint64 water = amount > kHighWater ? kLowWater : kHighWater;
  auto since = std::chrono::steady_clock::now(), progress = since;
  guint64 least = amount, acked = cs->acked;
  while (true) {
    if (is_flushing(p) || !cs->open || cs->gone_flag) return false;
    amount = buffered_amount(ch);
    guint64 kept = kept_unacked(cs);
    if (amount <= water && kept <= kKeepLimit) {
      cs->saturated = false;
      return true;
    }
    auto now = std::chrono::steady_clock::now();
    if (amount < least || cs->acked > acked) {
      least = std::min(least, amount);
      acked = cs->acked;
      progress = now;
    }
    if (!cs->saturated && now - since > kSaturatedWarn) {
      cs->saturated = true;
      GST_ELEMENT_WARNING(
          self, RESOURCE, WRITE,
          ("Peer '%s' is not keeping up on channel '%s'", cs->peer.c_str(), cs->label.c_str()),
          ("%" G_GUINT64_FORMAT " bytes queued (%" G_GUINT64_FORMAT " sent not acknowledged) for "
           "more than %d s: the sender waits for the peer (nothing is dropped while it makes "
           "progress)",
           amount, kept,
           int(std::chrono::duration_cast<std::chrono::seconds>(kSaturatedWarn).count())));
    }
    if (stalled(cs, now - progress)) return false;
    nap(p, 20ms);
  }
}

enum class Sent { Ok, Failed, Gone };

// ctx: the second copy of a tagged message (kAckProtocolTwice), unless the channel went.
static void send_copy(GstRtcPeer *self, std::shared_ptr<ChannelRef> ref,
                      std::shared_ptr<std::string> text)
{
  auto *cs = channel_state(ref->ch);
  if (!cs || !cs->open || is_flushing(self->priv)) return;
  GstElement *bin = session_bin(self, cs->session.lock());
  if (!bin) return;
  {
    std::lock_guard lk(cs->send_mu);
    if (!cs->gone && gst_webrtc_data_channel_send_string_full(ref->ch, text->c_str(), nullptr)) {
      note_sent(cs, text->size());
      cs->copies++;
    }
  }
  gst_object_unref(bin);
}

/* Under cs->turn: the tagged form of a message to send twice (kAckProtocolTwice), or null to
 * send it once as it is: too large, the peer not known to take it, or no room for a copy. */
static std::shared_ptr<std::string> tag_for_twice(GstWebRTCDataChannel *ch, ChannelState *cs,
                                                  GBytes *bytes)
{
  gsize size = 0;
  const void *data = g_bytes_get_data(bytes, &size);
  if (!cs->twice || !cs->ack_seen || size > kTwiceMaxSize) return nullptr;
  auto text = std::make_shared<std::string>(ackproto::tagged(cs->next_seq, data, size));
  if (buffered_amount(ch) > kTwiceQueue || !cs->bucket.take(text->size(), g_get_monotonic_time())) {
    cs->once++;
    return nullptr;
  }
  cs->next_seq++;
  return text;
}

/* Under cs->turn: one whole message, in pieces when larger than the remote takes; wait: for room
 * first and between pieces (else the caller saw room). resent: it is the first of cs->resume.
 * Gone: the session was removed meanwhile; the message is not sent (a new one is for the caller
 * to hand on; a re-sent one stays where the removal put it). Failed: given up, counted. */
static Sent send_message(GstRtcPeer *self, GstWebRTCDataChannel *ch, ChannelState *cs,
                         GBytes *bytes, bool resent, bool wait)
{
  GError *err = nullptr;
  gsize size = g_bytes_get_size(bytes);
  uint64_t chunk = cs->chunk ? cs->chunk->load() : 65536;
  bool gone = false, no_room = false;
  // One send call and its accounting, unless the session is being removed.
  auto send = [&](auto &&fn) {
    std::lock_guard lk(cs->send_mu);
    if (cs->gone) gone = true;
    return !gone && fn();
  };
  auto room = [&] {
    no_room = wait && !wait_for_room(self, ch, cs);
    return !no_room;
  };
  bool ok = room();
  std::shared_ptr<std::string> text = ok && size <= chunk ? tag_for_twice(ch, cs, bytes) : nullptr;
  if (text) {
    ok = send([&] {
      bool r = gst_webrtc_data_channel_send_string_full(ch, text->c_str(), &err);
      if (r) note_sent(cs, text->size(), bytes, resent);
      return r;
    });
    if (ok)
      add_timeout(
          self, guint(std::chrono::milliseconds(kTwiceDelay).count()),
          [self, ref = std::make_shared<ChannelRef>(ch), text] { send_copy(self, ref, text); });
  } else if (ok && size <= chunk) {
    ok = send([&] {
      bool r = gst_webrtc_data_channel_send_data_full(ch, bytes, &err);
      if (r) note_sent(cs, size, bytes, resent);
      return r;
    });
  } else if (ok) {
    std::string announcement = framing::announce(size, framing::piece_count(size, chunk));
    ok = send([&] {
      bool r = gst_webrtc_data_channel_send_string_full(ch, announcement.c_str(), &err);
      if (r) note_sent(cs, announcement.size());
      return r;
    });
    for (uint64_t off = 0; ok && off < size; off += chunk) {
      if (!room()) {
        ok = false;
        break;
      }
      uint64_t n = std::min<uint64_t>(chunk, size - off);
      GBytes *piece = g_bytes_new_from_bytes(bytes, off, n);
      ok = send([&] {
        bool r = gst_webrtc_data_channel_send_data_full(ch, piece, &err);
        if (r) note_sent(cs, n, off + n == size ? bytes : nullptr, resent);
        return r;
      });
      g_bytes_unref(piece);
    }
  }
  if (ok) return Sent::Ok;
  if (gone || cs->gone_flag) {
    g_clear_error(&err);
    return Sent::Gone;
  }
  cs->dropped++;
  if (resent) {
    std::lock_guard lk(cs->send_mu);
    std::lock_guard rl(self->priv->resend_lock);
    if (!cs->gone && !cs->resume->msgs.empty()) cs->resume->pop();
  }
  GST_WARNING_OBJECT(self, "send on '%s' to '%s' failed: %s", cs->label.c_str(), cs->peer.c_str(),
                     err ? err->message : "peer stalled");
  if (!cs->warned_send && (cs->open || !no_room)) {
    cs->warned_send = true;
    if (no_room)
      GST_ELEMENT_WARNING(self, RESOURCE, WRITE, ("Peer '%s' is not keeping up", cs->peer.c_str()),
                          ("dropping messages on channel '%s' after %d s without progress "
                           "(%d s while the peer is still heard from)",
                           cs->label.c_str(), int(kStallLimit.count()),
                           int(kLiveStallLimit.count())));
    else
      GST_ELEMENT_WARNING(
          self, RESOURCE, WRITE, ("Could not send to peer '%s'", cs->peer.c_str()),
          ("channel '%s': %s", cs->label.c_str(), err ? err->message : "the peer stalled"));
  }
  g_clear_error(&err);
  return Sent::Failed;
}

// A new message for a channel whose session was removed meanwhile: after what the channel left
// for the peer's next connection, if it left that; else it is lost, and said so.
static void hand_on(GstRtcPeer *self, ChannelState *cs, GBytes *bytes)
{
  bool kept = false;
  {
    std::lock_guard lk(cs->send_mu);
    if (cs->carry_to) {
      std::lock_guard rl(self->priv->resend_lock);
      Resend *r = current(cs->carry_to.get());
      if (!r->abandoned) {
        r->push(g_bytes_ref(bytes));
        kept = true;
      }
    }
  }
  if (kept) return;
  cs->dropped++;
  if (!cs->warned_send) {
    cs->warned_send = true;
    GST_ELEMENT_WARNING(
        self, RESOURCE, WRITE, ("Could not send to peer '%s'", cs->peer.c_str()),
        ("channel '%s': its connection was removed while sending", cs->label.c_str()));
  }
}

// The re-send of r gives up, on the new connection's channel cs (counted with it): `why`.
static void abandon_resend(GstRtcPeer *self, ChannelState *cs, Resend *r, const std::string &why)
{
  guint64 n = 0;
  {
    std::lock_guard rl(self->priv->resend_lock);
    n = r->msgs.size();
    while (!r->msgs.empty()) r->pop();
    r->abandoned = true;
  }
  cs->dropped += n;
  GST_ELEMENT_WARNING(self, RESOURCE, WRITE,
                      ("%" G_GUINT64_FORMAT " data channel messages to peer '%s' were not sent "
                       "again",
                       n, cs->peer.c_str()),
                      ("channel '%s': not acknowledged on its lost connection; on its new "
                       "connection %s",
                       cs->label.c_str(), why.c_str()));
}

// The peer's new connection does not acknowledge (not an rtcpeer now).
static void abandon_resume(GstRtcPeer *self, ChannelState *cs)
{
  abandon_resend(self, cs, cs->resume.get(),
                 "the peer did not acknowledge within " + std::to_string(kResumeWait.count()) +
                     " s (it does not speak " + kAckProtocol + " now)");
}

/* Under cs->turn: what the peer's lost connection left (cs->resume) goes before any new message:
 * once the peer acknowledged on this channel (its first acknowledgement comes as the channel
 * opens: it speaks the protocol), the resume message, then those messages. block: waits for that
 * acknowledgement and for room (the sending thread, EOS); else (the context thread) returns
 * false where it would wait. True once nothing is left to send (or the channel went). */
static bool flush_resume(GstRtcPeer *self, GstWebRTCDataChannel *ch, ChannelState *cs, bool block)
{
  auto *p = self->priv;
  if (!cs->resume) return true;
  {
    std::lock_guard rl(p->resend_lock);
    if (cs->resume->abandoned || (cs->resume_sent && cs->resume->msgs.empty())) return true;
  }
  auto wait_us = std::chrono::duration_cast<std::chrono::microseconds>(kResumeWait).count();
  while (!cs->ack_seen) {
    if (cs->gone_flag || !cs->open || is_flushing(p)) return true;
    gint64 opened = cs->open_us;
    if (opened && g_get_monotonic_time() - opened > wait_us) {
      abandon_resume(self, cs);
      return true;
    }
    if (!block) return false;
    nap(p, 20ms);
  }
  if (!cs->resume_sent) {
    guint64 from, n;
    {
      std::lock_guard rl(p->resend_lock);
      from = cs->resume->from;
      n = cs->resume->msgs.size();
    }
    std::string text = ackproto::resume(from);
    GError *err = nullptr;
    bool ok;
    {
      std::lock_guard lk(cs->send_mu);
      if (cs->gone) return true;
      ok = gst_webrtc_data_channel_send_string_full(ch, text.c_str(), &err);
      if (ok) {
        note_sent(cs, text.size());
        cs->resume_sent = true;
        cs->stream_base = from;
      }
    }
    if (!ok) {
      GST_WARNING_OBJECT(self, "resume on '%s' to '%s' failed: %s", cs->label.c_str(),
                         cs->peer.c_str(), err ? err->message : "?");
      g_clear_error(&err);
      abandon_resume(self, cs);
      return true;
    }
    GST_ELEMENT_INFO(self, RESOURCE, WRITE,
                     ("Sending %" G_GUINT64_FORMAT " data channel messages to peer '%s' again", n,
                      cs->peer.c_str()),
                     ("sending %" G_GUINT64_FORMAT " data channel messages to peer '%s' again "
                      "on channel '%s', from message %" G_GUINT64_FORMAT " of the stream on (not "
                      "acknowledged on the lost connection)",
                      n, cs->peer.c_str(), cs->label.c_str(), from));
  }
  while (true) {
    GBytes *b = nullptr;
    {
      std::lock_guard rl(p->resend_lock);
      if (!cs->resume->msgs.empty()) b = g_bytes_ref(cs->resume->msgs.front());
    }
    if (!b) return true;
    if (!block && (buffered_amount(ch) > kHighWater || kept_unacked(cs) > kKeepLimit)) {
      g_bytes_unref(b);
      return false;
    }
    Sent r = send_message(self, ch, cs, b, true, block);
    g_bytes_unref(b);
    if (r == Sent::Gone || !cs->open) return true;
  }
}

// Context thread, from the channel's opening until its re-send is done.
static void resume_step(GstRtcPeer *self, std::shared_ptr<ChannelRef> ref)
{
  auto *p = self->priv;
  auto *cs = channel_state(ref->ch);
  if (!cs) return;
  GstElement *bin =
      cs->gone_flag || is_flushing(p) ? nullptr : session_bin(self, cs->session.lock());
  if (!bin) {
    cs->resuming = false;
    return;
  }
  bool done = false;
  {
    std::unique_lock turn(cs->turn, std::try_to_lock); // else the sending thread is at it
    if (turn.owns_lock()) done = flush_resume(self, ref->ch, cs, false);
  }
  gst_object_unref(bin);
  if (done)
    cs->resuming = false;
  else
    add_timeout(self, 20, [self, ref] { resume_step(self, ref); });
}

static void send_one(GstRtcPeer *self, GstWebRTCDataChannel *ch, GBytes *bytes)
{
  auto *cs = channel_state(ch);
  if (!cs) return;
  std::lock_guard turn(cs->turn);
  flush_resume(self, ch, cs, true); // what the peer's lost connection left goes first
  if (send_message(self, ch, cs, bytes, false, true) == Sent::Gone) hand_on(self, cs, bytes);
}

GstFlowReturn data_chain(GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  auto *self = GST_RTC_PEER(parent);
  auto *p = self->priv;
  auto *sink = static_cast<DataSink *>(gst_pad_get_element_private(pad));
  std::vector<GstWebRTCDataChannel *> targets;
  std::vector<GstElement *> bins;
  {
    std::unique_lock lk(p->lock);
    guint want;
    {
      std::lock_guard plk(p->props_lock);
      want = p->wait_for_peers;
    }
    while (!p->flushing && want > 0 && open_count(p, sink->label) < want)
      p->cond.wait_for(lk, 100ms);
    if (p->flushing) {
      gst_buffer_unref(buf);
      return GST_FLOW_FLUSHING;
    }
    for (auto &[id, s] : p->sessions) {
      auto it = s->send_channels.find(sink->label);
      if (it == s->send_channels.end()) continue;
      auto *cs = channel_state(it->second);
      if (cs && cs->open) {
        targets.push_back(GST_WEBRTC_DATA_CHANNEL(gst_object_ref(it->second)));
        // A channel keeps only a plain pointer to its webrtcbin: hold the webrtcbin too, or a
        // session removed meanwhile frees it under the send (heap corruption).
        bins.push_back(GST_ELEMENT(gst_object_ref(s->webrtc)));
      }
    }
  }
  struct Unref {
    std::vector<GstElement *> &v;
    ~Unref()
    {
      for (auto *e : v) gst_object_unref(e);
    }
  } unref_bins{bins};
  if (targets.empty()) {
    gst_buffer_unref(buf);
    return GST_FLOW_OK;
  }
  // The channel gets the buffer's memory itself, no copy; it is unmapped when the last send
  // lets go of it.
  auto *mb = new MappedBuffer(buf);
  if (!mb->map) {
    delete mb;
    for (auto *ch : targets) gst_object_unref(ch);
    GST_ELEMENT_ERROR(self, RESOURCE, READ, ("Could not map a buffer"), (nullptr));
    return GST_FLOW_ERROR;
  }
  GBytes *bytes = g_bytes_new_with_free_func(
      mb->map.data(), mb->map.size(), [](gpointer d) { delete static_cast<MappedBuffer *>(d); },
      mb);
  for (auto *ch : targets) {
    send_one(self, ch, bytes);
    gst_object_unref(ch);
  }
  g_bytes_unref(bytes);
  return GST_FLOW_OK;
}

/* At EOS: how many accepted messages are not known to have reached a peer: given up on while
 * sending, still queued in webrtcbin, and (unconfirmed_too) taken by SCTP but neither acknowledged
 * by the peer nor let go by SCTP. Never fewer than did not arrive. */
struct Undelivered {
  guint64 lost = 0;
  guint64 resent = 0; // handed on to the peer's next connection (not lost)
  std::string detail;
};

/* removed: the connection is gone (not at EOS): a partially reliable channel's messages that SCTP
 * took count too unless the peer acknowledged them (the path, not the channel's policy, lost
 * them). */
static Undelivered count_undelivered(const std::vector<GstWebRTCDataChannel *> &channels,
                                     bool unconfirmed_too = true, bool removed = false)
{
  Undelivered u;
  for (auto *ch : channels) {
    auto *cs = channel_state(ch);
    if (!cs) continue;
    guint64 amount = buffered_amount(ch);
    guint64 queued = still_queued(cs, amount), dropped = cs->dropped;
    guint64 unconfirmed = unconfirmed_too ? unconfirmed_messages(cs, amount) : queued;
    guint64 sent_n;
    {
      std::lock_guard lk(cs->acct);
      sent_n = cs->sent_msgs;
      if (removed && !cs->reliable && cs->ack_seen)
        unconfirmed = std::max(unconfirmed, sent_n - std::min(cs->acked.load(), sent_n));
    }
    guint64 waiting = resume_waiting(cs), carried = 0;
    bool handed;
    {
      std::lock_guard lk(cs->send_mu);
      handed = cs->carry_to != nullptr;
      carried = cs->carried;
    }
    if (handed) {
      // Everything it had not had acknowledged goes to the next connection.
      u.resent += carried;
      u.lost += dropped;
      if (dropped && u.detail.size() < 2000)
        u.detail += "peer '" + cs->peer + "', channel '" + cs->label +
            "': " + std::to_string(dropped) + " given up while sending; ";
      continue;
    }
    if (!unconfirmed && !dropped && !waiting) continue;
    u.lost += unconfirmed + dropped + waiting;
    if (u.detail.size() < 2000)
      u.detail += "peer '" + cs->peer + "', channel '" + cs->label +
          "': " + std::to_string(queued) + " still queued, " +
          std::to_string(unconfirmed - queued) + " more sent but not confirmed" +
          (removed ? " (of " + std::to_string(sent_n) + " sent on it)" : "") + ", " +
          std::to_string(dropped) + " given up while sending" +
          (waiting ? ", " + std::to_string(waiting) + " not sent again from a lost connection"
                   : "") +
          (removed && cs->no_keep_reason && unconfirmed + dropped
               ? std::string(", not sent again: ") + cs->no_keep_reason
               : "") +
          "; ";
  }
  return u;
}

// An error naming the messages not known to have arrived.
static void report_lost(GstRtcPeer *self, const Undelivered &u)
{
  if (u.lost)
    GST_ELEMENT_ERROR(self, RESOURCE, WRITE,
                      ("%" G_GUINT64_FORMAT " data channel messages were not delivered", u.lost),
                      ("%sthe peer made no progress for %d s (%d s while still heard from)",
                       u.detail.c_str(), int(kStallLimit.count()), int(kLiveStallLimit.count())));
}

/* At EOS: a buffered-amount of 0 only means webrtcbin handed the data to SCTP, which may still
 * hold it unacknowledged. A receiving rtcpeer acknowledges what it got (kAckProtocol): wait for
 * that. Other peers: closing a channel resets its SCTP stream, which the remote completes only
 * after it has received everything sent before; so wait for the channels to be closed. */
/* At EOS, first: what lost connections left for the peers' new connections goes out on them,
 * for up to kResendWait while some is still waiting for its new connection. Returns what still
 * waits then (not delivered). */
static Undelivered send_again_first(GstRtcPeer *self)
{
  auto *p = self->priv;
  auto deadline = std::chrono::steady_clock::now() + kResendWait;
  Undelivered u;
  while (!is_flushing(p)) {
    std::vector<GstWebRTCDataChannel *> chans, connecting;
    std::vector<GstElement *> bins;
    std::set<std::string> labels;
    {
      std::lock_guard lk(p->lock);
      for (auto &[label, sink] : p->data_sinks) labels.insert(label);
      for (auto &[id, s] : p->sessions)
        for (auto &[label, ch] : s->send_channels)
          if (auto *cs = channel_state(ch); cs && cs->resume && labels.count(label)) {
            (cs->open ? chans : connecting).push_back(GST_WEBRTC_DATA_CHANNEL(gst_object_ref(ch)));
            if (cs->open) bins.push_back(GST_ELEMENT(gst_object_ref(s->webrtc)));
          }
    }
    for (size_t i = 0; i < chans.size(); i++) {
      auto *cs = channel_state(chans[i]);
      std::lock_guard turn(cs->turn);
      flush_resume(self, chans[i], cs, true);
      gst_object_unref(chans[i]);
      gst_object_unref(bins[i]);
    }
    u = {};
    // A new connection still coming up (its channel not open yet) with messages for it (if it
    // never opens, they are counted with that channel).
    guint64 connecting_n = 0;
    for (auto *ch : connecting) {
      auto *cs = channel_state(ch);
      connecting_n += cs->ever_open ? 0 : resume_waiting(cs);
      gst_object_unref(ch);
    }
    {
      std::lock_guard rl(p->resend_lock);
      for (auto &[key, r] : p->resends) {
        if (!labels.count(key.second) || r->abandoned) continue;
        u.lost += r->msgs.size();
        if (u.detail.size() < 2000)
          u.detail += "peer '" + key.first + "', channel '" + key.second +
              "': " + std::to_string(r->msgs.size()) +
              " not acknowledged on a lost connection, waiting for a new one; ";
      }
    }
    if ((!u.lost && !connecting_n) || std::chrono::steady_clock::now() >= deadline) break;
    nap(p, 20ms);
  }
  return u;
}

void drain_channels(GstRtcPeer *self)
{
  auto *p = self->priv;
  Undelivered not_resent; // waiting for a new connection at the end
  std::vector<GstWebRTCDataChannel *> channels;
  // First everything out of webrtcbin and, from a peer that acknowledges, acknowledged, for as
  // long as each peer makes progress (a narrow link drains megabytes slowly; through a burst of
  // losses SCTP retransmits after up to a minute); a channel without progress is given up on
  // (stalled). Then, unless every message is acknowledged, a moment for the remote to consume
  // what its SCTP stack holds: webrtcbin (1.22) drops messages still queued in its sctpdec when
  // the stream is reset, so closing right away can lose the last large message.
  // A peer that left the room (its session removed after the grace period) takes nothing more:
  // what is queued to it is counted in a warning below, not waited for.
  auto live = [&](GstWebRTCDataChannel *ch) {
    std::lock_guard lk(p->lock);
    for (auto &[id, s] : p->sessions)
      if (!s->removed && std::find(s->channels.begin(), s->channels.end(), ch) != s->channels.end())
        return true;
    return false;
  };
  struct Drain {
    GstWebRTCDataChannel *ch;
    ChannelState *cs;
    guint64 least = G_MAXUINT64, acked = 0;
    std::chrono::steady_clock::time_point progress;
    bool done = false, stalled = false;
    std::chrono::steady_clock::duration longest{}; // without progress (for the log)
  };
  auto drain_start = std::chrono::steady_clock::now(), progress = drain_start;
  std::vector<Drain> drains;
  guint64 at_start = 0;
  /* A connection lost while draining (its path, or the peer restarted) leaves what it had not had
   * acknowledged for the peer's new connection: then again, on that one (a few times at most). */
  for (int round = 0;; round++) {
    not_resent = send_again_first(self);
    {
      std::lock_guard lk(p->lock);
      for (auto &[id, s] : p->sessions)
        for (auto &[label, ch] : s->send_channels)
          if (p->data_sinks.count(label))
            channels.push_back(GST_WEBRTC_DATA_CHANNEL(gst_object_ref(ch)));
    }
    auto round_start = std::chrono::steady_clock::now();
    for (auto *ch : channels)
      if (auto *cs = channel_state(ch)) {
        drains.push_back({ch, cs, G_MAXUINT64, cs->acked, round_start});
        if (cs->open && live(ch) && round == 0) at_start += buffered_amount(ch);
      }
    while (!is_flushing(p)) {
      bool waiting = false;
      auto now = std::chrono::steady_clock::now();
      for (auto &d : drains) {
        if (d.done) continue;
        guint64 amount = buffered_amount(d.ch), acked = d.cs->acked;
        if (!d.cs->open || !live(d.ch) || (amount == 0 && (!d.cs->ack_seen || fully_acked(d.cs)))) {
          d.done = true;
          progress = std::max(progress, now);
          continue;
        }
        d.longest = std::max(d.longest, now - d.progress);
        if (amount < d.least || acked > d.acked) {
          d.least = std::min(d.least, amount);
          d.acked = acked;
          d.progress = now;
          progress = std::max(progress, now);
        }
        if (stalled(d.cs, now - d.progress)) {
          d.done = d.stalled = true;
          continue;
        }
        waiting = true;
      }
      if (!waiting) break;
      nap(p, 20ms);
    }
    bool handed_on = false;
    for (auto &d : drains) {
      std::lock_guard lk(d.cs->send_mu);
      handed_on |= d.cs->carry_to && d.cs->carried > 0;
    }
    if (!handed_on || round >= 3 || is_flushing(p)) break;
    GST_INFO_OBJECT(self, "a connection was lost while draining: draining its new one");
    for (auto *ch : channels) gst_object_unref(ch);
    channels.clear();
    drains.clear();
  }
  for (auto &d : drains) {
    guint64 unconfirmed = unconfirmed_messages(d.cs, buffered_amount(d.ch));
    std::lock_guard lk(d.cs->acct);
    GST_INFO_OBJECT(self,
                    "channel '%s' to '%s': %" G_GUINT64_FORMAT " messages sent, %" G_GUINT64_FORMAT
                    " known to have arrived (%" G_GUINT64_FORMAT
                    " acknowledged%s), at most %d ms without progress%s",
                    d.cs->label.c_str(), d.cs->peer.c_str(), d.cs->sent_msgs,
                    d.cs->sent_msgs - unconfirmed, d.cs->acked.load(),
                    d.cs->ack_seen ? "" : ", the peer does not acknowledge",
                    int(std::chrono::duration_cast<std::chrono::milliseconds>(d.longest).count()),
                    d.stalled ? ", given up" : "");
  }
  // Said at once: an application that stops on the error loses nothing more by it.
  std::vector<GstWebRTCDataChannel *> to_stalled, to_live, to_gone;
  for (auto &d : drains) {
    if (!live(d.ch))
      to_gone.push_back(d.ch);
    else
      (d.stalled ? to_stalled : to_live).push_back(d.ch);
  }
  auto lost = count_undelivered(to_stalled);
  auto given_up = count_undelivered(to_live, false); // only what was given up while sending
  lost.lost += given_up.lost + not_resent.lost;
  lost.detail += given_up.detail + not_resent.detail;
  report_lost(self, lost);
  if (auto gone = count_undelivered(to_gone); gone.lost)
    GST_ELEMENT_WARNING(self, RESOURCE, WRITE,
                        ("%" G_GUINT64_FORMAT " data channel messages were not delivered to peers "
                         "that left",
                         gone.lost),
                        ("%s", gone.detail.c_str()));
  bool connected = false;
  {
    std::lock_guard lk(p->lock);
    for (auto &[id, s] : p->sessions) connected |= s->connected && !s->peer_closed;
  }
  bool all_acked = std::all_of(drains.begin(), drains.end(),
                               [&](Drain &d) { return !live(d.ch) || fully_acked(d.cs); });
  if (!all_acked && (connected || !channels.empty())) { // else nothing to wait replies from
    std::unique_lock lk(p->wake_lock);
    p->wake.wait_for(lk, kEosLinger, [p] { return is_flushing(p); });
  } else if (connected) {
    /* Replies to what we sent last may still be on their way (ball-sender at EOS: the tracker's
     * detections of its last frames, an RTT and a detection later); our data src pads end with
     * us, so they wait until no message has come out of them for kEosQuiet, at most kEosLinger.
     * Without this a ball loop's last 2-3 frames went unscored in every run. */
    bool receiving;
    {
      std::lock_guard lk(p->lock);
      receiving = !p->data_srcs.empty();
    }
    auto until = std::chrono::steady_clock::now() + kEosLinger;
    auto quiet = std::chrono::duration_cast<std::chrono::microseconds>(kEosQuiet).count();
    while (receiving && !is_flushing(p) && std::chrono::steady_clock::now() < until &&
           g_get_monotonic_time() - p->last_message_in_us < quiet)
      nap(p, 20ms);
  }
  for (auto *ch : channels) {
    GstWebRTCDataChannelState st;
    g_object_get(ch, "ready-state", &st, nullptr);
    if (st == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) gst_webrtc_data_channel_close(ch);
  }
  auto deadline = drain_start + kCloseWait +
      std::min<std::chrono::steady_clock::duration>(2 * (progress - drain_start), kCloseWaitMore);
  /* A stream that was still queued at EOS went out through SCTP at the link's pace, and SCTP may
   * still be retransmitting its last messages: through a burst of losses usrsctp's retransmission
   * timeout doubles up to 60 s (webrtcbin offers no way to cap it), so the confirmation can come
   * a minute or two later. Wait for it while that peer's association is up, unless the peer
   * acknowledged every message already. */
  auto backoff_deadline = std::chrono::steady_clock::now() + kRtoBackoffWait;
  bool backlog = at_start > 0;
  GST_INFO_OBJECT(
      self, "drained %" G_GUINT64_FORMAT " bytes queued at EOS in %d ms", at_start,
      int(std::chrono::duration_cast<std::chrono::milliseconds>(progress - drain_start).count()));
  auto sctp_up = [&](GstWebRTCDataChannel *ch) {
    std::lock_guard lk(p->lock);
    for (auto &[id, s] : p->sessions) {
      if (std::find(s->channels.begin(), s->channels.end(), ch) == s->channels.end()) continue;
      if (!s->connected || !s->webrtc) return false;
      return sctp_state(s->webrtc) == GST_WEBRTC_SCTP_TRANSPORT_STATE_CONNECTED;
    }
    return false;
  };
  // Not closed yet, not all acknowledged, and its peer still there (a removed session's channels
  // never close, nor do those of a peer that closed its own first and is going).
  auto unconfirmed_channels = [&] {
    std::vector<GstWebRTCDataChannel *> out;
    for (auto *ch : channels) {
      GstWebRTCDataChannelState st;
      g_object_get(ch, "ready-state", &st, nullptr);
      if (st == GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED) continue;
      // All acknowledged: the close would confirm nothing more (it sometimes never completes).
      if (auto *cs = channel_state(ch); cs && fully_acked(cs)) continue;
      std::lock_guard lk(p->lock);
      for (auto &[id, s] : p->sessions)
        if (!s->peer_closed &&
            std::find(s->channels.begin(), s->channels.end(), ch) != s->channels.end()) {
          out.push_back(ch);
          break;
        }
    }
    return out;
  };
  auto unacked = [](GstWebRTCDataChannel *ch) {
    auto *cs = channel_state(ch);
    return cs && !fully_acked(cs);
  };
  while (!is_flushing(p)) {
    auto waiting = unconfirmed_channels();
    if (waiting.empty()) break;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline &&
        !(backlog && now < backoff_deadline &&
          std::any_of(waiting.begin(), waiting.end(), unacked) &&
          std::all_of(waiting.begin(), waiting.end(), sctp_up)))
      break;
    nap(p, 20ms);
  }
  auto waited = std::max(deadline, std::min(std::chrono::steady_clock::now(), backoff_deadline));
  // Those that neither confirmed closing nor acknowledged everything; the stalled ones are counted
  // in the error already.
  std::vector<GstWebRTCDataChannel *> doubtful;
  std::string names;
  for (auto *ch : unconfirmed_channels()) {
    auto *cs = channel_state(ch);
    if (!cs || fully_acked(cs) ||
        std::find(to_stalled.begin(), to_stalled.end(), ch) != to_stalled.end())
      continue;
    doubtful.push_back(ch);
    if (names.size() < 1000)
      names += (names.empty() ? "'" : ", '") + cs->label + "' to '" + cs->peer + "'";
  }
  if (!is_flushing(p) && !doubtful.empty())
    GST_ELEMENT_WARNING(
        self, RESOURCE, WRITE, ("A peer did not confirm the last data messages"),
        ("channels not closed by the peer within %d s of the end of stream: up to "
         "%" G_GUINT64_FORMAT " messages sent on them may be lost: %s",
         int(std::chrono::duration_cast<std::chrono::seconds>(waited - drain_start).count()),
         count_undelivered(doubtful).lost, names.c_str()));
  for (auto *ch : channels) gst_object_unref(ch);
}

void warn_unconfirmed(GstRtcPeer *self, const std::string &peer,
                      const std::vector<GstWebRTCDataChannel *> &channels, const std::string &why)
{
  auto *p = self->priv;
  bool lost_path = why.rfind(kLostPrefix, 0) == 0;
  {
    std::lock_guard lk(p->lock);
    if (!lost_path && (p->flushing || p->eos_posted)) return;
  }
  std::vector<GstWebRTCDataChannel *> sent_on;
  for (auto *ch : channels) {
    GstWebRTCDataChannelState st;
    g_object_get(ch, "ready-state", &st, nullptr);
    // A closed channel's stream reset completed, after the peer got everything sent before.
    if (st != GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED && channel_state(ch)) sent_on.push_back(ch);
  }
  auto u = count_undelivered(sent_on, true, true);
  std::string again = u.resent ? "; " + std::to_string(u.resent) +
          " more, not acknowledged, go again on the peer's new connection"
                               : "";
  if (lost_path) // always said, messages or not
    GST_ELEMENT_WARNING(self, RESOURCE, READ, ("Lost the connection to peer '%s'", peer.c_str()),
                        ("%s; %" G_GUINT64_FORMAT " data channel messages sent to it without "
                         "confirmation may be lost (%s)%s",
                         why.c_str() + strlen(kLostPrefix), u.lost, u.detail.c_str(),
                         again.c_str()));
  else if (u.lost || u.resent)
    GST_ELEMENT_WARNING(self, RESOURCE, WRITE,
                        ("Removed the connection to peer '%s'", peer.c_str()),
                        ("%s; %" G_GUINT64_FORMAT " data channel messages sent to it without "
                         "confirmation may be lost (%s)%s",
                         why.c_str(), u.lost, u.detail.c_str(), again.c_str()));
}

void hand_over_channels(GstRtcPeer *self, const std::string &peer,
                        const std::vector<GstWebRTCDataChannel *> &channels, bool keep,
                        const std::string &why)
{
  auto *p = self->priv;
  for (auto *ch : channels) {
    auto *cs = channel_state(ch);
    if (!cs) continue;
    guint64 amount = buffered_amount(ch);
    std::lock_guard lk(cs->send_mu);
    cs->gone = true;
    cs->gone_flag = true;
    if (!keep || !cs->keeps) continue;
    std::lock_guard al(cs->acct);
    settle_locked(cs, amount);
    std::lock_guard rl(p->resend_lock);
    Resend *r = cs->resume && !cs->resume->abandoned ? cs->resume.get() : nullptr;
    std::shared_ptr<Resend> carry;
    if (r && !cs->resume_sent) {
      carry = cs->resume; // none of it went out on this channel: on to the next as it is
    } else if (cs->ack_seen && (r || cs->sent_msgs)) {
      // The peer speaks the protocol: what it did not acknowledge, then what this channel did
      // not get to send again yet, from the stream index of the first. (A channel that sent
      // nothing, e.g. an offer's default channel, leaves nothing: the next starts from 0 too.)
      carry = std::make_shared<Resend>();
      carry->from = cs->stream_base + (cs->kept.empty() ? cs->sent_msgs : cs->kept_from);
      for (auto *b : cs->kept) carry->push(g_bytes_ref(b));
      if (r) {
        while (!r->msgs.empty()) {
          carry->push(g_bytes_ref(r->msgs.front()));
          r->pop();
        }
        r->next = carry;
      }
    }
    if (!carry) continue; // a peer that does not acknowledge: counted in the warning
    cs->carry_to = carry;
    cs->carried = carry->msgs.size();
    auto &slot = p->resends[{peer, cs->label}];
    if (slot && slot != carry) { // not taken up by a channel of this label: older, superseded
      GST_WARNING_OBJECT(self, "'%s' on '%s': %zu older messages to send again dropped",
                         peer.c_str(), cs->label.c_str(), slot->msgs.size());
      slot->abandoned = true;
    }
    slot = carry;
    GST_INFO_OBJECT(self,
                    "'%s' on '%s' (%s): %zu messages from %" G_GUINT64_FORMAT
                    " on wait for the next connection",
                    peer.c_str(), cs->label.c_str(), why.c_str(), carry->msgs.size(), carry->from);
  }
}

void forget_peer(GstRtcPeer *self, const std::string &peer, const std::string &why)
{
  auto *p = self->priv;
  guint64 n = 0;
  std::string labels;
  {
    std::lock_guard rl(p->resend_lock);
    for (auto it = p->resends.begin(); it != p->resends.end();) {
      if (!peer.empty() && it->first.first != peer) {
        ++it;
        continue;
      }
      Resend *r = it->second.get();
      if (!r->abandoned && !r->msgs.empty()) {
        n += r->msgs.size();
        if (labels.size() < 1000) labels += (labels.empty() ? "'" : ", '") + it->first.second + "'";
      }
      r->abandoned = true;
      while (!r->msgs.empty()) r->pop();
      it = p->resends.erase(it);
    }
    for (auto it = p->in_streams.begin(); it != p->in_streams.end();)
      it = peer.empty() || it->first.first == peer ? p->in_streams.erase(it) : std::next(it);
  }
  bool stopping;
  {
    std::lock_guard lk(p->lock);
    stopping = p->flushing;
  }
  if (!n) return;
  if (stopping)
    GST_INFO_OBJECT(self, "stopping: %" G_GUINT64_FORMAT " messages to '%s' not sent again", n,
                    peer.c_str());
  else
    GST_ELEMENT_WARNING(self, RESOURCE, WRITE,
                        ("%" G_GUINT64_FORMAT " data channel messages to peer '%s' were not sent "
                         "again",
                         n, peer.c_str()),
                        ("channel %s: not acknowledged on its lost connection, and it has no new "
                         "connection (%s)",
                         labels.c_str(), why.c_str()));
}

gboolean data_sink_event(GstPad *pad, GstObject *parent, GstEvent *event)
{
  auto *self = GST_RTC_PEER(parent);
  auto *sink = static_cast<DataSink *>(gst_pad_get_element_private(pad));
  switch (GST_EVENT_TYPE(event)) {
  case GST_EVENT_EOS: {
    guint32 seqnum = gst_event_get_seqnum(event);
    {
      std::lock_guard lk(self->priv->lock);
      sink->eos = true;
    }
    gst_event_unref(event);
    maybe_post_eos(self, seqnum);
    return TRUE;
  }
  case GST_EVENT_FLUSH_STOP: {
    std::lock_guard lk(self->priv->lock);
    sink->eos = false;
    self->priv->eos_posted = false;
    break;
  }
  default: break;
  }
  gst_event_unref(event);
  return TRUE;
}

} // namespace pointcast::rtc
