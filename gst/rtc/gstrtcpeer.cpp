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
#include "rtc/framing.h"
#include "rtc/negotiation.h"
#include "rtc/sdputil.h"
#include "rtc/signaller.h"

#include <gst/sdp/sdp.h>
#include <gst/video/video.h>
#include <gst/webrtc/webrtc.h>

#include <openssl/crypto.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

GST_DEBUG_CATEGORY_STATIC(gst_rtc_peer_debug);
#define GST_CAT_DEFAULT gst_rtc_peer_debug

using namespace pointcast;
using namespace std::chrono_literals;

namespace {

constexpr guint kDefaultLatency = 10; // ms of jitterbuffer; webrtcbin's 200 ms is far too much
constexpr guint kDefaultVideoBitrate = 2000; // kbit/s
constexpr guint64 kHighWater = 4 << 20;      // bytes queued on a channel before the sender waits
constexpr guint64 kLowWater = 1 << 20;
constexpr auto kStallLimit = 10s;        // a peer not draining for this long loses messages
constexpr guint kSrcEosWaitMs = 5000;    // gst-launch -e: longest wait for our sinks to end
constexpr auto kEosLinger = 1500ms;      // at EOS, after the channels drained (see drain_channels)
constexpr guint kLeftGraceMs = 5000;     // a connected peer whose signaling dropped may return
constexpr guint kGatherTimeoutMs = 5000; // non-trickle: send what we have after this
constexpr const char *kDefaultChannel = "pointcast";
constexpr const char *kDefaultPeerType = "gstreamer";
constexpr uint64_t kMinChunk = 256; // a piece must hold the fragment announcement
// What one remote peer may open: channels on its connection, and distinct labels (each becomes a
// src pad of this element) across all peers.
constexpr size_t kMaxChannels = 64;
constexpr size_t kMaxDataSrcs = 64;
constexpr size_t kMaxMedia = 32; // m-lines in one remote description

GQuark channel_quark()
{
  static GQuark q = g_quark_from_static_string("pointcast-channel-state");
  return q;
}

/* The one source of the signaling / room / peer-id defaults: the environment variable that
 * `./pointcast launch` exports, else a fixed value. */
struct EnvDefault {
  const char *env;
  const char *fallback;
  std::string value() const
  {
    const char *v = g_getenv(env);
    return v && *v ? v : fallback;
  }
};
constexpr EnvDefault kSignalingDefault{"POINTCAST_SIGNALING", "ws://127.0.0.1:8765/ws"};
constexpr EnvDefault kRoomDefault{"POINTCAST_ROOM", "default"};
constexpr EnvDefault kPeerIdDefault{"POINTCAST_PEER_ID", ""};
constexpr EnvDefault kTokenDefault{"POINTCAST_TOKEN", ""};

struct Session;

/* Per data channel state, attached to the GstWebRTCDataChannel as qdata so it lives exactly as long
 * as the channel. Receive callbacks run on the channel's SCTP thread. */
struct ChannelState {
  // Every channel of one peer reassembles against that peer's budget (Session::reasm_budget).
  explicit ChannelState(std::shared_ptr<framing::Budget> budget)
      : reasm(framing::Limits{}, std::move(budget))
  {
  }
  GstRtcPeer *self = nullptr;
  std::string peer, label;
  framing::Reassembler reasm;
  std::atomic<bool> open{false};
  std::atomic<bool> ever_open{false};
  // The session's piece size: the remote's max-message-size arrives with its SDP, often after
  // the channel was created.
  std::shared_ptr<std::atomic<uint64_t>> chunk;
  bool warned_send = false;
};

struct DataSink {
  std::string label;
  bool eos = false;
};

struct DataSrc {
  GstPad *pad = nullptr;
  std::mutex push;
  guint64 dropped = 0; // under push: messages nobody linked the pad for
};

/* A video_%u / audio_%u sink pad: ghost -> identity -> (built on caps: convert ! encoder ! pay) ->
 * tee; each session hangs a queue off the tee. */
struct MediaSend {
  bool video = true;
  std::string name;
  GstPad *ghost = nullptr;
  GstElement *head = nullptr;
  GstElement *tee = nullptr;
  GstElement *encoder = nullptr; // null when the input was already encoded
  GstCaps *rtp_caps = nullptr;   // what webrtcbin is told we send
  guint pt = 96;                 // payload type, distinct per pad (see alloc_payload_type)
  std::vector<GstElement *> chain;
  bool built = false;
  bool eos = false; // guarded by the element's lock
};

struct MediaLink {
  MediaSend *send = nullptr;
  GstPad *tee_pad = nullptr;
  GstElement *queue = nullptr;
  GstPad *webrtc_pad = nullptr;
  guint remote_pt = 0; // the payload type the remote offered for our codec, when not ours
  std::vector<GstElement *> repay; // depay, pay for remote_pt (see repayload)
};

struct Session {
  GstRtcPeer *self = nullptr;
  std::string id, type;
  // Bytes of partial (announced, incomplete) messages this peer may hold over all its channels.
  std::shared_ptr<framing::Budget> reasm_budget =
      std::make_shared<framing::Budget>(framing::Limits{}.max_message);
  GstElement *webrtc = nullptr;
  // ctx thread: who offers when (perfect negotiation), and the descriptions webrtcbin made that
  // it still has to be given (our offer may be applied only when its answer comes).
  std::unique_ptr<negotiation::Negotiator> neg;
  GstWebRTCSessionDescription *offer = nullptr, *answer = nullptr;
  // Written on the context thread, read from others (get_property, streaming threads).
  std::atomic<bool> removed{false};
  std::atomic<bool> connected{false};
  bool remote_set = false;  // ctx thread
  bool trickle = true;      // ctx thread
  std::string data_label;   // non-empty: the label the channels this peer opens come out as
  std::string waiting_type; // non-trickle: local description waiting for gathering to finish
  std::string waiting_sdp;
  guint gather_timer = 0, left_timer = 0;
  struct RemoteCandidate {
    int mline;
    std::string candidate;
  };
  std::vector<RemoteCandidate> pending_candidates;
  std::vector<sdp::Candidate> local_candidates;
  std::vector<std::string> mids;
  std::shared_ptr<std::atomic<uint64_t>> chunk = std::make_shared<std::atomic<uint64_t>>(65536);
  // Channels the remote opened beyond kMaxChannels (closed at once), counted for one warning.
  std::atomic<guint> refused_channels{0};
  // Under priv->lock: the channel used to send each label, and every channel of this session.
  std::map<std::string, GstWebRTCDataChannel *> send_channels;
  std::vector<GstWebRTCDataChannel *> channels;
  std::vector<MediaLink> media;
  std::vector<GstElement *> decoders;
  std::vector<GstPad *> media_srcs;
};

// Signal user data for webrtcbin callbacks: keeps only a weak reference to its session.
struct SessionHandle {
  GstRtcPeer *self;
  std::weak_ptr<Session> session;
};

} // namespace

/* Threads: the context thread (ctx) runs signaller events, negotiation and session set-up and
 * tear-down (functions marked "ctx" assert it); webrtcbin's threads (promises, ICE, SCTP receive,
 * decodebin's pad-added) hand work to it with run_async; streaming threads run the sink pads.
 * Lock order, outer first: src_create_lock -> lock -> props_lock. DataSrc::push and wake_lock are
 * leaves (nothing else is taken while holding them). No lock is held while calling into a
 * webrtcbin: its threads call back into this element and take `lock`. */
struct RtcPeerPrivate {
  std::mutex props_lock;
  std::string signaling = kSignalingDefault.value();
  std::string room = kRoomDefault.value();
  std::string peer_id = kPeerIdDefault.value();
  std::string peer_type = kDefaultPeerType;
  std::string target, stun_server, turn_server;
  std::string token = kTokenDefault.value();
  std::string video_codec = "vp8";
  Role role = Role::Auto;
  guint latency = kDefaultLatency;
  guint wait_for_peers = 0;
  guint video_bitrate = kDefaultVideoBitrate;
  gboolean receive_video = TRUE, receive_audio = FALSE;
  gboolean end_with_peers = FALSE;

  // The context thread: signaller events and session management run here.
  GMainContext *ctx = nullptr;
  GMainLoop *loop = nullptr;
  GThread *thread = nullptr;
  std::unique_ptr<Signaller> signaller;
  bool signaling_lost = false;

  std::mutex lock; // sessions, pads, channel maps
  std::condition_variable cond;
  // Waiting for a channel to drain: never held while calling into webrtcbin, whose threads take
  // it (briefly) to wake the waiter.
  std::mutex wake_lock;
  std::condition_variable wake;
  std::map<std::string, std::shared_ptr<Session>> sessions;
  std::map<std::string, std::unique_ptr<DataSink>> data_sinks;
  std::map<std::string, std::unique_ptr<DataSrc>> data_srcs;
  std::vector<std::unique_ptr<MediaSend>> media_sends;
  std::mutex src_create_lock;
  guint64 refused_labels = 0; // messages on labels past kMaxDataSrcs
  bool flushing = true;
  bool eos_posted = false;
  // EOS sent to the element (gst-launch -e) while its sink pads still carry data: the src pads end
  // only after the sinks have ended and drained, so replies to what was sent last still come out.
  GstEvent *pending_src_eos = nullptr;
  guint src_eos_timer = 0;
  /* Src pads the pipeline links to before they exist (gst-launch's `rtc.data_x ! ...`): its first
   * try requests the name, gets one of our request sink pads and releases it; we keep the name so
   * that at EOS a pad that never came (no peer sent on it) is made and ended, or the sinks behind
   * it would never get EOS and gst-launch -e would wait forever. A name is one pad, so such a
   * label is never also a data sink pad. */
  std::set<std::string> awaited_srcs;
  std::vector<GstPad *> ended_srcs; // media src pads made only to carry that EOS
  // What a departed peer's media src pads were linked to: EOS goes there directly at the end.
  std::vector<GstPad *> orphaned_sinks;
  guint next_video = 0, next_audio = 0, next_src_video = 0, next_src_audio = 0, next_session = 0;
};

struct _GstRtcPeer {
  GstBin parent;
  RtcPeerPrivate *priv;
};

G_DEFINE_TYPE(GstRtcPeer, gst_rtc_peer, GST_TYPE_BIN);
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
  PROP_LATENCY,
  PROP_VIDEO_CODEC,
  PROP_VIDEO_BITRATE,
  PROP_WAIT_FOR_PEERS,
  PROP_RECEIVE_VIDEO,
  PROP_RECEIVE_AUDIO,
  PROP_CONNECTED_PEERS,
  PROP_END_WITH_PEERS,
};

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
static GstStaticPadTemplate data_src_template =
    GST_STATIC_PAD_TEMPLATE("src_data_%s", GST_PAD_SRC, GST_PAD_SOMETIMES, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate video_src_template = GST_STATIC_PAD_TEMPLATE(
    "src_video_%u", GST_PAD_SRC, GST_PAD_SOMETIMES, GST_STATIC_CAPS("video/x-raw"));
static GstStaticPadTemplate audio_src_template = GST_STATIC_PAD_TEMPLATE(
    "src_audio_%u", GST_PAD_SRC, GST_PAD_SOMETIMES, GST_STATIC_CAPS("audio/x-raw"));

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

/* ---------------------------------------------------------------------------------------------
 * Context thread helpers */

// Functions that may only run on the context thread start with this.
#define ASSERT_CTX(self) g_assert(g_main_context_is_owner((self)->priv->ctx))

static void run_async(GstRtcPeer *self, std::function<void()> fn)
{
  auto *p = self->priv;
  if (!p->ctx) return;
  struct Call {
    GstRtcPeer *self;
    std::function<void()> fn;
  };
  auto *call = new Call{GST_RTC_PEER(gst_object_ref(self)), std::move(fn)};
  GSource *src = g_idle_source_new();
  g_source_set_callback(
      src,
      [](gpointer d) -> gboolean {
        static_cast<Call *>(d)->fn();
        return G_SOURCE_REMOVE;
      },
      call,
      [](gpointer d) {
        auto *c = static_cast<Call *>(d);
        gst_object_unref(c->self);
        delete c;
      });
  g_source_attach(src, p->ctx);
  g_source_unref(src);
}

static void run_sync(GstRtcPeer *self, std::function<void()> fn)
{
  auto *p = self->priv;
  if (g_main_context_is_owner(p->ctx)) {
    fn();
    return;
  }
  std::mutex m;
  std::condition_variable c;
  bool done = false;
  run_async(self, [&] {
    fn();
    std::lock_guard lk(m);
    done = true;
    c.notify_all();
  });
  std::unique_lock lk(m);
  c.wait(lk, [&] { return done; });
}

static guint add_timeout(GstRtcPeer *self, guint ms, std::function<void()> fn)
{
  auto *f = new std::function<void()>(std::move(fn));
  GSource *src = g_timeout_source_new(ms);
  g_source_set_callback(
      src,
      [](gpointer d) -> gboolean {
        (*static_cast<std::function<void()> *>(d))();
        return G_SOURCE_REMOVE;
      },
      f, [](gpointer d) { delete static_cast<std::function<void()> *>(d); });
  guint id = g_source_attach(src, self->priv->ctx);
  g_source_unref(src);
  return id;
}

static void cancel_timeout(GstRtcPeer *self, guint *id)
{
  if (*id) {
    GSource *src = g_main_context_find_source_by_id(self->priv->ctx, *id);
    if (src) g_source_destroy(src);
    *id = 0;
  }
}

static void post_peer_message(GstRtcPeer *self, const char *name, const std::string &peer,
                              const char *extra_key = nullptr, const std::string &extra = "")
{
  GstStructure *s = gst_structure_new(name, "peer-id", G_TYPE_STRING, peer.c_str(), nullptr);
  if (extra_key) gst_structure_set(s, extra_key, G_TYPE_STRING, extra.c_str(), nullptr);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

/* ---------------------------------------------------------------------------------------------
 * Received data: one src pad per label */

static gboolean data_src_query(GstPad *pad, GstObject *parent, GstQuery *query)
{
  switch (GST_QUERY_TYPE(query)) {
  case GST_QUERY_LATENCY: gst_query_set_latency(query, TRUE, 0, GST_CLOCK_TIME_NONE); return TRUE;
  default: return gst_pad_query_default(pad, parent, query);
  }
}

/* What a data src pad (or a media one made only to end, make_ended_media_src) carries comes from
 * no sink pad of ours: upstream events and queries go nowhere. The default (every sink pad) sent
 * a reconfigure from ball-tracker's data_detections back round its own loop without end. */
static GstIterator *no_internal_links(GstPad *, GstObject *)
{
  return nullptr;
}

static DataSrc *ensure_data_src(GstRtcPeer *self, const std::string &label)
{
  auto *p = self->priv;
  {
    std::lock_guard lk(p->lock);
    auto it = p->data_srcs.find(label);
    if (it != p->data_srcs.end()) return it->second.get();
    if (p->flushing) return nullptr;
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

static void push_message(GstRtcPeer *self, const std::string &label, GstBuffer *buf)
{
  DataSrc *src = ensure_data_src(self, label);
  if (!src) {
    gst_buffer_unref(buf);
    return;
  }
  std::lock_guard lk(src->push); // several peers' SCTP threads may deliver to one pad
  GstFlowReturn ret = gst_pad_push(src->pad, buf);
  if (ret == GST_FLOW_NOT_LINKED && src->dropped++ == 0)
    GST_ELEMENT_WARNING(
        self, STREAM, DEMUX, ("Nothing is linked to data_%s", label.c_str()),
        ("messages on channel '%s' are dropped until something links it", label.c_str()));
  else if (ret != GST_FLOW_OK)
    GST_LOG_OBJECT(self, "pushing on data_%s: %s", label.c_str(), gst_flow_get_name(ret));
}

static void on_message_data(GstWebRTCDataChannel *ch, GBytes *data, gpointer user_data)
{
  auto *cs = static_cast<ChannelState *>(g_object_get_qdata(G_OBJECT(ch), channel_quark()));
  if (!cs) return;
  gsize size = 0;
  const void *bytes = data ? g_bytes_get_data(data, &size) : nullptr;
  switch (cs->reasm.on_binary(bytes, size)) {
  case framing::Reassembler::Status::Plain:
    push_message(cs->self, cs->label, data ? gst_buffer_new_wrapped_bytes(data) : gst_buffer_new());
    break;
  case framing::Reassembler::Status::Complete: {
    size_t n = 0;
    void *msg = cs->reasm.take(&n);
    push_message(cs->self, cs->label,
                 gst_buffer_new_wrapped_full(GstMemoryFlags(0), msg, n, 0, n, msg, g_free));
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
  auto *cs = static_cast<ChannelState *>(g_object_get_qdata(G_OBJECT(ch), channel_quark()));
  if (!cs) return;
  std::string_view text = str ? str : "";
  switch (cs->reasm.on_text(text)) {
  case framing::Reassembler::Status::Plain:
    push_message(cs->self, cs->label, gst_buffer_new_memdup(text.data(), text.size()));
    break;
  case framing::Reassembler::Status::Error:
    GST_ELEMENT_WARNING(cs->self, STREAM, DECODE, ("Dropped a broken fragmented message"),
                        ("channel '%s' from peer '%s': %s", cs->label.c_str(), cs->peer.c_str(),
                         cs->reasm.error().c_str()));
    break;
  default: break;
  }
}

/* ---------------------------------------------------------------------------------------------
 * Sessions (context thread unless noted) */

static void remove_session(GstRtcPeer *self, const std::string &peer, const std::string &reason);
static void create_channels(GstRtcPeer *self, const std::shared_ptr<Session> &s, bool always);
static void connect_pending_media(GstRtcPeer *self, const std::shared_ptr<Session> &s);

static void restore_flags(GstRtcPeer *self)
{
  // GstBin recomputes SINK/SOURCE from its children when one is removed; rtcpeer is both an end
  // of its pipeline's data flow (it posts EOS itself) and a live source.
  auto *p = self->priv;
  bool sinks;
  {
    std::lock_guard lk(p->lock);
    sinks = !p->data_sinks.empty() || !p->media_sends.empty();
  }
  GST_OBJECT_LOCK(self);
  if (sinks)
    GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK);
  else
    GST_OBJECT_FLAG_UNSET(self, GST_ELEMENT_FLAG_SINK);
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SOURCE);
  GST_OBJECT_UNLOCK(self);
}

static void maybe_end_src(GstRtcPeer *self, const std::string &label);

static void on_ready_state(GstWebRTCDataChannel *ch, GParamSpec *, gpointer user_data)
{
  auto *cs = static_cast<ChannelState *>(g_object_get_qdata(G_OBJECT(ch), channel_quark()));
  if (!cs) return;
  GstWebRTCDataChannelState state;
  g_object_get(ch, "ready-state", &state, nullptr);
  GstRtcPeer *self = cs->self;
  auto *p = self->priv;
  {
    std::lock_guard lk(p->lock);
    cs->open = state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN;
    if (cs->open) cs->ever_open = true;
  }
  p->cond.notify_all();
  if (state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) {
    GST_INFO_OBJECT(self, "channel '%s' with peer '%s' open", cs->label.c_str(), cs->peer.c_str());
    post_peer_message(self, "rtcpeer-channel-open", cs->peer, "label", cs->label);
  } else if (state == GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED) {
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
            auto *o = static_cast<ChannelState *>(g_object_get_qdata(G_OBJECT(c), channel_quark()));
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
      if (s && !draining && !any_open && !has_media)
        remove_session(self, peer, "the peer closed its data channels");
    });
  }
}

// end-with-peers: EOS on data_<label> once no peer has that channel open any more.
static void maybe_end_src(GstRtcPeer *self, const std::string &label)
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
    auto *cs = static_cast<ChannelState *>(g_object_get_qdata(G_OBJECT(c), channel_quark()));
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
  auto *cs = static_cast<ChannelState *>(g_object_get_qdata(G_OBJECT(ch), channel_quark()));
  GST_ELEMENT_WARNING(static_cast<GstRtcPeer *>(user_data), RESOURCE, WRITE, ("Data channel error"),
                      ("channel '%s' with peer '%s': %s", cs ? cs->label.c_str() : "?",
                       cs ? cs->peer.c_str() : "?", error ? error->message : "unknown"));
}

// Any thread. Takes a reference to ch.
static void setup_channel(GstRtcPeer *self, const std::shared_ptr<Session> &s,
                          GstWebRTCDataChannel *ch, bool remote = false)
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
  g_object_set_qdata_full(G_OBJECT(ch), channel_quark(), cs,
                          [](gpointer d) { delete static_cast<ChannelState *>(d); });
  g_object_set(ch, "buffered-amount-low-threshold", guint64(kLowWater), nullptr);
  g_signal_connect(ch, "on-message-data", G_CALLBACK(on_message_data), self);
  g_signal_connect(ch, "on-message-string", G_CALLBACK(on_message_string), self);
  g_signal_connect(ch, "notify::ready-state", G_CALLBACK(on_ready_state), self);
  g_signal_connect(ch, "on-buffered-amount-low", G_CALLBACK(on_buffered_amount_low), self);
  g_signal_connect(ch, "on-error", G_CALLBACK(on_channel_error), self);
  {
    std::lock_guard lk(p->lock);
    s->channels.push_back(GST_WEBRTC_DATA_CHANNEL(gst_object_ref(ch)));
    if (!s->send_channels.count(label)) s->send_channels[label] = ch;
  }
  // The channel may already be open (remote-created channels arrive open).
  on_ready_state(ch, nullptr, self);
}

static void on_data_channel(GstElement *webrtc, GstWebRTCDataChannel *ch, gpointer user_data)
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

static void create_channels(GstRtcPeer *self, const std::shared_ptr<Session> &s, bool always)
{
  auto *p = self->priv;
  std::vector<std::string> labels;
  {
    std::lock_guard lk(p->lock);
    for (auto &[label, sink] : p->data_sinks)
      if (!s->send_channels.count(label)) labels.push_back(label);
    // An offer needs a data section so that the answerer can open channels of its own.
    if (always && p->data_sinks.empty() && s->send_channels.empty())
      labels.push_back(kDefaultChannel);
  }
  for (auto &label : labels) {
    GstWebRTCDataChannel *ch = nullptr;
    g_signal_emit_by_name(s->webrtc, "create-data-channel", label.c_str(), nullptr, &ch);
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

static void send_local_description(GstRtcPeer *self, const std::shared_ptr<Session> &s,
                                   const std::string &type, const std::string &sdp_text);

/* The answerer opens its own channels once SCTP is up: channels created earlier sometimes never
 * open with webrtcbin 1.22 when the DTLS role is not settled yet. Polled on the context thread. */
static void open_channels_when_ready(GstRtcPeer *self, std::weak_ptr<Session> weak, int tries)
{
  auto s = weak.lock();
  if (!s || s->removed) return;
  GstWebRTCSCTPTransport *t = nullptr;
  g_object_get(s->webrtc, "sctp-transport", &t, nullptr);
  GstWebRTCSCTPTransportState st = GST_WEBRTC_SCTP_TRANSPORT_STATE_NEW;
  if (t) {
    g_object_get(t, "state", &st, nullptr);
    gst_object_unref(t);
  }
  if (st == GST_WEBRTC_SCTP_TRANSPORT_STATE_CONNECTED) {
    auto *p = self->priv;
    create_channels(self, s, p->signaller && p->signaller->answerer_opens_channel(s->id));
    return;
  }
  if (tries > 600) { // 30 s: the connection has failed long since and reported it
    GST_WARNING_OBJECT(self, "SCTP with '%s' never came up; no channels of ours", s->id.c_str());
    return;
  }
  add_timeout(self, 50, [self, weak, tries] { open_channels_when_ready(self, weak, tries + 1); });
}

static void finish_gathering(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  auto *p = self->priv;
  if (s->removed || s->waiting_type.empty()) return;
  cancel_timeout(self, &s->gather_timer);
  std::string sdp_text = sdp::with_candidates(s->waiting_sdp, s->local_candidates);
  std::string type = s->waiting_type;
  s->waiting_type.clear();
  s->waiting_sdp.clear();
  GST_DEBUG_OBJECT(self, "sending complete %s to '%s'", type.c_str(), s->id.c_str());
  if (p->signaller) p->signaller->send_sdp(s->id, type, sdp_text);
}

static void send_local_description(GstRtcPeer *self, const std::shared_ptr<Session> &s,
                                   const std::string &type, const std::string &sdp_text)
{
  auto *p = self->priv;
  if (s->removed || !p->signaller) return;
  GST_LOG_OBJECT(self, "%s to '%s':\n%s", type.c_str(), s->id.c_str(), sdp_text.c_str());
  s->mids = sdp::mids(sdp_text);
  if (s->trickle) {
    p->signaller->send_sdp(s->id, type, sdp_text);
    return;
  }
  // Non-trickle peers (aiortc) need every candidate inside the SDP.
  s->waiting_type = type;
  s->waiting_sdp = sdp_text;
  GstWebRTCICEGatheringState gs;
  g_object_get(s->webrtc, "ice-gathering-state", &gs, nullptr);
  if (gs == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) {
    finish_gathering(self, s);
    return;
  }
  std::weak_ptr<Session> weak = s;
  s->gather_timer = add_timeout(self, kGatherTimeoutMs, [self, weak] {
    if (auto s = weak.lock()) {
      s->gather_timer = 0;
      GST_WARNING_OBJECT(self, "ICE gathering for '%s' did not finish; sending %zu candidates",
                         s->id.c_str(), s->local_candidates.size());
      finish_gathering(self, s);
    }
  });
}

static void negotiate(GstRtcPeer *self, std::shared_ptr<Session> s,
                      const std::vector<negotiation::Action> &actions,
                      GstWebRTCSessionDescription *remote = nullptr);

// webrtcbin's thread: hand the description to the context thread, where the negotiator decides.
static void on_description_created(GstPromise *promise, gpointer user_data, const char *field,
                                   const char *type)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstRtcPeer *self = h->self;
  std::weak_ptr<Session> weak = h->session;
  const GstStructure *reply = gst_promise_get_reply(promise);
  GstWebRTCSessionDescription *desc = nullptr;
  GError *err = nullptr;
  if (reply) {
    gst_structure_get(reply, field, GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, nullptr);
    if (!desc) gst_structure_get(reply, "error", G_TYPE_ERROR, &err, nullptr);
  }
  std::string error = err ? err->message : "no description";
  g_clear_error(&err);
  bool is_offer = std::string_view(type) == "offer";
  run_async(self, [self, weak, desc, error, is_offer] {
    auto s = weak.lock();
    if (!s || s->removed) { // from a webrtcbin that was replaced meanwhile
      if (desc) gst_webrtc_session_description_free(desc);
      return;
    }
    if (!desc) {
      GST_ELEMENT_WARNING(
          self, LIBRARY, FAILED,
          ("Could not create an %s for peer '%s'", is_offer ? "offer" : "answer", s->id.c_str()),
          ("%s", error.c_str()));
      s->neg->failed();
      remove_session(self, s->id,
                     std::string("could not create an ") + (is_offer ? "offer" : "answer"));
      return;
    }
    auto &slot = is_offer ? s->offer : s->answer;
    if (slot) gst_webrtc_session_description_free(slot);
    slot = desc;
    negotiate(self, s, is_offer ? s->neg->offer_created() : s->neg->answer_created());
  });
}

static void on_offer_created(GstPromise *promise, gpointer user_data)
{
  on_description_created(promise, user_data, "offer", "offer");
  gst_promise_unref(promise);
}

static void on_answer_created(GstPromise *promise, gpointer user_data)
{
  on_description_created(promise, user_data, "answer", "answer");
  gst_promise_unref(promise);
}

static SessionHandle *new_handle(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  return new SessionHandle{self, s};
}

static void free_handle(gpointer d, GClosure * = nullptr)
{
  delete static_cast<SessionHandle *>(d);
}

static void on_ice_candidate(GstElement *webrtc, guint mline, gchar *candidate, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstRtcPeer *self = h->self;
  std::weak_ptr<Session> weak = h->session;
  std::string cand = candidate ? candidate : "";
  run_async(self, [self, weak, mline, cand] {
    auto s = weak.lock();
    if (!s || s->removed) return;
    s->local_candidates.push_back({int(mline), cand});
    if (s->trickle && self->priv->signaller) {
      std::string mid = mline < s->mids.size() ? s->mids[mline] : std::to_string(mline);
      self->priv->signaller->send_candidate(s->id, mid, int(mline), cand);
    }
  });
}

static void on_gathering_state(GstElement *webrtc, GParamSpec *, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstWebRTCICEGatheringState gs;
  g_object_get(webrtc, "ice-gathering-state", &gs, nullptr);
  if (gs != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) return;
  GstRtcPeer *self = h->self;
  std::weak_ptr<Session> weak = h->session;
  run_async(self, [self, weak] {
    if (auto s = weak.lock()) finish_gathering(self, s);
  });
}

static void request_keyframes(GstRtcPeer *self)
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

static bool media_negotiated(const MediaLink &l);

/* The remote's offer had fewer m-lines than we send tracks (e.g. it offered to receive one video
 * track and we send two cameras): once connected, offer again with every track. */
static void renegotiate_if_needed(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  bool missing = false;
  for (auto &l : s->media) missing |= !media_negotiated(l);
  if (!missing) return;
  GST_INFO_OBJECT(self, "offering '%s' the tracks its offer left out", s->id.c_str());
  negotiate(self, s, s->neg->negotiation_needed());
}

static void on_connection_state(GstElement *webrtc, GParamSpec *, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstWebRTCPeerConnectionState state;
  g_object_get(webrtc, "connection-state", &state, nullptr);
  GstRtcPeer *self = h->self;
  std::weak_ptr<Session> weak = h->session;
  run_async(self, [self, weak, state] {
    auto s = weak.lock();
    if (!s || s->removed) return;
    switch (state) {
    case GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED:
      if (!s->connected) {
        s->connected = true;
        GST_INFO_OBJECT(self, "connected to '%s'", s->id.c_str());
        post_peer_message(self, "rtcpeer-peer-connected", s->id);
        g_object_notify(G_OBJECT(self), "connected-peers");
        // Start its media; a peer that joins late needs a keyframe to start decoding.
        connect_pending_media(self, s);
        renegotiate_if_needed(self, s);
        request_keyframes(self);
        // Again shortly: the first one can be dropped while the new path is still settling.
        for (guint ms : {300u, 1000u}) add_timeout(self, ms, [self] { request_keyframes(self); });
      }
      break;
    case GST_WEBRTC_PEER_CONNECTION_STATE_FAILED:
      GST_ELEMENT_WARNING(self, RESOURCE, OPEN_READ_WRITE,
                          ("Connection with peer '%s' failed", s->id.c_str()),
                          ("ICE or DTLS failed; removing this peer only"));
      remove_session(self, s->id, "connection failed");
      break;
    case GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED:
      remove_session(self, s->id, "connection closed");
      break;
    default: break;
    }
  });
}

static void on_ice_connection_state(GstElement *webrtc, GParamSpec *, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstWebRTCICEConnectionState state;
  g_object_get(webrtc, "ice-connection-state", &state, nullptr);
  if (state != GST_WEBRTC_ICE_CONNECTION_STATE_FAILED) return;
  GstRtcPeer *self = h->self;
  std::weak_ptr<Session> weak = h->session;
  run_async(self, [self, weak] {
    auto s = weak.lock();
    if (!s || s->removed) return;
    GST_ELEMENT_WARNING(self, RESOURCE, OPEN_READ_WRITE,
                        ("ICE failed with peer '%s'", s->id.c_str()),
                        ("no candidate pair works (firewall, or a STUN/TURN server is needed); "
                         "removing this peer only"));
    remove_session(self, s->id, "ICE failed");
  });
}

// Incoming media: decode and expose as video_%u / audio_%u.
static void on_decoded_pad(GstElement *decodebin, GstPad *pad, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstRtcPeer *self = h->self;
  auto s = h->session.lock();
  if (!s) return;
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  const char *media = gst_structure_get_name(gst_caps_get_structure(caps, 0));
  bool video = g_str_has_prefix(media, "video/");
  bool audio = g_str_has_prefix(media, "audio/");
  gst_caps_unref(caps);
  if (!video && !audio) return;
  auto *p = self->priv;
  std::string name;
  while (true) {
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
  GstPadTemplate *templ =
      gst_static_pad_template_get(video ? &video_src_template : &audio_src_template);
  GstPad *ghost = gst_ghost_pad_new_from_template(name.c_str(), tee_src, templ);
  gst_object_unref(templ);
  gst_object_unref(tee_src);
  gst_pad_set_active(ghost, TRUE);
  {
    std::lock_guard lk(p->lock);
    s->media_srcs.push_back(GST_PAD(gst_object_ref(ghost)));
    s->decoders.push_back(GST_ELEMENT(gst_object_ref(tee)));
  }
  gst_element_add_pad(GST_ELEMENT(self), ghost);
  post_peer_message(self, "rtcpeer-media-added", s->id, "pad", name);
  if (!gst_pad_is_linked(ghost))
    GST_ELEMENT_WARNING(self, STREAM, DEMUX, ("Nothing is linked to %s", name.c_str()),
                        ("the %s track from peer '%s' is dropped until something links it",
                         video ? "video" : "audio", s->id.c_str()));
}

// Depayloaders ask the sender for a keyframe (PLI) when they start without one or lose packets,
// instead of waiting for the next periodic keyframe.
static void on_decoder_element(GstBin *, GstBin *, GstElement *element, gpointer)
{
  GObjectClass *klass = G_OBJECT_GET_CLASS(element);
  if (g_object_class_find_property(klass, "request-keyframe"))
    g_object_set(element, "request-keyframe", TRUE, nullptr);
  if (g_object_class_find_property(klass, "wait-for-keyframe"))
    g_object_set(element, "wait-for-keyframe", TRUE, nullptr);
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
static void on_webrtc_element_added(GstBin *, GstElement *element, gpointer user_data)
{
  GstElementFactory *f = gst_element_get_factory(element);
  if (!f || g_strcmp0(GST_OBJECT_NAME(f), "clocksync") != 0) return;
  GstRtcPeer *self = GST_RTC_PEER(user_data);
  bool live = fed_live(self);
  GST_DEBUG_OBJECT(self, "%s source: %s sync %s", live ? "live" : "non-live",
                   GST_OBJECT_NAME(element), live ? "off" : "on");
  if (live) g_object_set(element, "sync", FALSE, nullptr);
}

static void on_webrtc_pad_added(GstElement *webrtc, GstPad *pad, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstRtcPeer *self = h->self;
  auto s = h->session.lock();
  if (!s || GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
  GstElement *dec = gst_element_factory_make("decodebin", nullptr);
  if (!dec) {
    GST_ELEMENT_WARNING(self, CORE, MISSING_PLUGIN, ("decodebin is missing"), (nullptr));
    return;
  }
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

static void connect_tee(GstRtcPeer *self, MediaLink &l)
{
  GstPad *tpad = gst_element_request_pad_simple(l.send->tee, "src_%u");
  GstPad *qsink = gst_element_get_static_pad(l.queue, "sink");
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
static void link_media(GstRtcPeer *self, const std::shared_ptr<Session> &s, MediaSend *m)
{
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
      gst_object_unref(trans);
    }
  }
  GstPad *qsrc = gst_element_get_static_pad(queue, "src");
  bool ok = wpad && gst_pad_link(qsrc, wpad) == GST_PAD_LINK_OK;
  gst_object_unref(qsrc);
  if (!ok)
    GST_ELEMENT_WARNING(self, CORE, NEGOTIATION,
                        ("Could not send %s to peer '%s'", m->name.c_str(), s->id.c_str()),
                        (nullptr));
  gst_element_sync_state_with_parent(queue);
  MediaLink l{m, nullptr, queue, wpad};
  std::lock_guard lk(self->priv->lock);
  s->media.push_back(l);
}

static bool media_negotiated(const MediaLink &l);

/* One encoder feeds every peer with one payload type. A peer that offered another one for the
 * codec (Firefox: VP8 as 120, aiortc: 97) gets the packets re-payloaded in its own branch:
 * queue ! depay ! pay pt=N ! webrtcbin; no decoding, and caps stay consistent on both sides (a
 * probe rewriting the payload type would leave the tee's caps queries disagreeing). Before the
 * session is connected, so nothing flows yet. */
static void configure_payloader(GstElement *pay, guint pt);

static void repayload(GstRtcPeer *self, const std::shared_ptr<Session> &s, MediaLink &l,
                      const std::string &codec)
{
  const codecs::Codec *c = codecs::by_encoding(codec);
  if (!c) return;
  {
    GstElement *depay = gst_element_factory_make(c->depayloader, nullptr);
    GstElement *pay = gst_element_factory_make(c->payloader, nullptr);
    if (!depay || !pay) {
      GST_ELEMENT_WARNING(self, CORE, MISSING_PLUGIN, ("Cannot re-payload %s", c->encoding),
                          (nullptr));
      if (depay) gst_object_unref(depay);
      if (pay) gst_object_unref(pay);
      return;
    }
    configure_payloader(pay, l.remote_pt);
    GstPad *qsrc = gst_element_get_static_pad(l.queue, "src");
    gst_pad_unlink(qsrc, l.webrtc_pad);
    gst_object_unref(qsrc);
    gst_bin_add_many(GST_BIN(self), depay, pay, nullptr);
    gst_element_sync_state_with_parent(depay);
    gst_element_sync_state_with_parent(pay);
    GstPad *psrc = gst_element_get_static_pad(pay, "src");
    bool ok = gst_element_link_many(l.queue, depay, pay, nullptr) &&
        gst_pad_link(psrc, l.webrtc_pad) == GST_PAD_LINK_OK;
    gst_object_unref(psrc);
    if (!ok)
      GST_ELEMENT_WARNING(
          self, CORE, NEGOTIATION,
          ("Could not re-payload %s for peer '%s'", l.send->name.c_str(), s->id.c_str()),
          (nullptr));
    l.repay = {depay, pay};
    return;
  }
}

/* Answering: each of our tracks not negotiated yet takes the payload type (and, through
 * webrtcbin's intersection with the offer, the parameters) the remote offered for its codec in
 * the first free m-line of its kind. */
static void adopt_remote_payload_types(GstRtcPeer *self, const std::shared_ptr<Session> &s,
                                       GstWebRTCSessionDescription *offer)
{
  gchar *t = gst_sdp_message_as_text(offer->sdp);
  std::string text = t;
  g_free(t);
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
      if (guint(c->pt) == l.send->pt) break;
      GST_INFO_OBJECT(self, "'%s' offered %s as payload type %d: sending %s with it", s->id.c_str(),
                      codec, c->pt, l.send->name.c_str());
      GstCaps *prefs = gst_caps_copy(l.send->rtp_caps);
      GstStructure *st = gst_caps_get_structure(prefs, 0);
      gst_structure_set(st, "payload", G_TYPE_INT, c->pt, nullptr);
      gst_structure_remove_field(st, "profile-level-id"); // the remote's, from its offer
      GstWebRTCRTPTransceiver *trans = nullptr;
      g_object_get(l.webrtc_pad, "transceiver", &trans, nullptr);
      if (trans) {
        g_object_set(trans, "codec-preferences", prefs, nullptr);
        gst_object_unref(trans);
      }
      gst_caps_unref(prefs);
      l.remote_pt = guint(c->pt);
      repayload(self, s, l, codec);
      break;
    }
  }
}

// Whether the track has an m-line in the negotiated session (an answer may leave some out).
static bool media_negotiated(const MediaLink &l)
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
static void connect_pending_media(GstRtcPeer *self, const std::shared_ptr<Session> &s)
{
  bool any = false;
  for (auto &l : s->media)
    if (!l.tee_pad && media_negotiated(l)) {
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

static void add_recv_transceiver(GstElement *webrtc, const char *caps_str)
{
  GstCaps *caps = gst_caps_from_string(caps_str);
  GstWebRTCRTPTransceiver *t = nullptr;
  g_signal_emit_by_name(webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY,
                        caps, &t);
  gst_caps_unref(caps);
  if (t) gst_object_unref(t);
}

/* A session for `peer`; offer_first: we make the first offer (role, target), which then carries
 * the receive-only tracks and a data section. */
static std::shared_ptr<Session> create_session(GstRtcPeer *self, const std::string &peer,
                                               const std::string &type, bool offer_first)
{
  ASSERT_CTX(self);
  auto *p = self->priv;
  auto s = std::make_shared<Session>();
  s->self = self;
  s->id = peer;
  s->type = type;
  s->trickle = p->signaller ? p->signaller->peer_trickles(peer) : true;
  if (p->signaller) s->data_label = p->signaller->data_label(peer);
  {
    std::lock_guard lk(p->props_lock);
    negotiation::Negotiator::Options o;
    o.polite = negotiation::is_polite(p->peer_id, peer);
    o.trickle = s->trickle;
    o.redo_withdrawn = false; // renegotiate_if_needed checks once connected
    s->neg = std::make_unique<negotiation::Negotiator>(o);
  }
  std::string stun, turn;
  guint latency;
  gboolean recv_video, recv_audio;
  {
    std::lock_guard lk(p->props_lock);
    stun = p->stun_server;
    turn = p->turn_server;
    latency = p->latency;
    recv_video = p->receive_video;
    recv_audio = p->receive_audio;
  }
  std::string name;
  {
    std::lock_guard lk(p->lock);
    name = "session" + std::to_string(p->next_session++);
  }
  s->webrtc = gst_element_factory_make("webrtcbin", name.c_str());
  if (!s->webrtc) {
    GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("webrtcbin is missing"),
                      ("install gstreamer1.0-plugins-bad and gstreamer1.0-nice"));
    return nullptr;
  }
  g_object_set(s->webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, "latency", latency,
               nullptr);
  if (!stun.empty()) g_object_set(s->webrtc, "stun-server", stun.c_str(), nullptr);
  if (!turn.empty()) g_object_set(s->webrtc, "turn-server", turn.c_str(), nullptr);
  auto connect = [&](const char *sig, GCallback cb) {
    g_signal_connect_data(s->webrtc, sig, cb, new_handle(self, s), free_handle, GConnectFlags(0));
  };
  connect("on-ice-candidate", G_CALLBACK(on_ice_candidate));
  connect("notify::ice-gathering-state", G_CALLBACK(on_gathering_state));
  connect("notify::connection-state", G_CALLBACK(on_connection_state));
  connect("notify::ice-connection-state", G_CALLBACK(on_ice_connection_state));
  connect("on-data-channel", G_CALLBACK(on_data_channel));
  connect("pad-added", G_CALLBACK(on_webrtc_pad_added));
  g_signal_connect(s->webrtc, "element-added", G_CALLBACK(on_webrtc_element_added), self);
  {
    std::lock_guard lk(p->lock);
    p->sessions[peer] = s;
  }
  gst_bin_add(GST_BIN(self), s->webrtc);
  restore_flags(self);
  std::vector<MediaSend *> sends;
  {
    std::lock_guard lk(p->lock);
    for (auto &m : p->media_sends) sends.push_back(m.get());
  }
  bool has_video = false, has_audio = false;
  for (auto *m : sends) {
    link_media(self, s, m);
    (m->video ? has_video : has_audio) = true;
  }
  if (offer_first) {
    if (recv_video && !has_video) add_recv_transceiver(s->webrtc, recv_caps(true).c_str());
    if (recv_audio && !has_audio) add_recv_transceiver(s->webrtc, recv_caps(false).c_str());
  }
  gst_element_sync_state_with_parent(s->webrtc);
  post_peer_message(self, "rtcpeer-session-created", peer, "role",
                    offer_first ? "offerer" : "answerer");
  if (offer_first) {
    create_channels(self, s, true);
    negotiate(self, s, s->neg->negotiation_needed());
  }
  return s;
}

// Takes a child out of a bin that may be changing state in another thread at the same time.
static void shut_down(GstRtcPeer *self, GstElement *e)
{
  gst_element_set_locked_state(e, TRUE);
  gst_element_set_state(e, GST_STATE_NULL);
  gst_bin_remove(GST_BIN(self), e);
}

// ctx
static void remove_session(GstRtcPeer *self, const std::string &peer, const std::string &reason)
{
  ASSERT_CTX(self);
  auto *p = self->priv;
  std::shared_ptr<Session> s;
  std::vector<GstWebRTCDataChannel *> channels;
  std::vector<MediaLink> media;
  std::vector<GstElement *> decoders;
  std::vector<GstPad *> media_srcs;
  {
    std::lock_guard lk(p->lock);
    auto it = p->sessions.find(peer);
    if (it == p->sessions.end()) return;
    s = it->second;
    p->sessions.erase(it);
    s->removed = true;
    channels.swap(s->channels);
    s->send_channels.clear();
    media.swap(s->media);
    decoders.swap(s->decoders);
    media_srcs.swap(s->media_srcs);
  }
  p->cond.notify_all();
  GST_INFO_OBJECT(self, "removing peer '%s': %s", peer.c_str(), reason.c_str());
  cancel_timeout(self, &s->gather_timer);
  cancel_timeout(self, &s->left_timer);
  std::vector<std::string> labels;
  for (auto *ch : channels) {
    if (auto *cs = static_cast<ChannelState *>(g_object_get_qdata(G_OBJECT(ch), channel_quark())))
      labels.push_back(cs->label);
    g_signal_handlers_disconnect_by_data(ch, self);
    GstWebRTCDataChannelState st;
    g_object_get(ch, "ready-state", &st, nullptr);
    if (st == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) gst_webrtc_data_channel_close(ch);
    gst_object_unref(ch);
  }
  // Cut the session off the shared tees, then stop its webrtcbin first: that flushes what the
  // session's queues are pushing into it, so the queues can stop without waiting on it.
  for (auto &m : media) {
    if (m.tee_pad) {
      GstPad *peer_pad = gst_pad_get_peer(m.tee_pad);
      if (peer_pad) {
        gst_pad_unlink(m.tee_pad, peer_pad);
        gst_object_unref(peer_pad);
      }
      gst_element_release_request_pad(m.send->tee, m.tee_pad);
      gst_object_unref(m.tee_pad);
    }
  }
  shut_down(self, s->webrtc);
  for (auto &m : media) {
    for (auto *e : m.repay) shut_down(self, e);
    shut_down(self, m.queue);
    if (m.webrtc_pad) gst_object_unref(m.webrtc_pad);
  }
  for (auto *pad : media_srcs) {
    if (GstPad *peer_pad = gst_pad_get_peer(pad)) {
      std::lock_guard lk(p->lock);
      p->orphaned_sinks.push_back(peer_pad);
    }
    gst_element_remove_pad(GST_ELEMENT(self), pad);
    gst_object_unref(pad);
  }
  for (auto *d : decoders) {
    shut_down(self, d);
    gst_object_unref(d);
  }

  s->webrtc = nullptr;
  if (s->offer) gst_webrtc_session_description_free(s->offer);
  if (s->answer) gst_webrtc_session_description_free(s->answer);
  s->offer = s->answer = nullptr;
  restore_flags(self);
  post_peer_message(self, "rtcpeer-peer-left", peer, "reason", reason);
  // end-with-peers: a sender that leaves (or fails) without closing its channels first ends
  // them too; not while we shut down ourselves.
  bool stopping;
  {
    std::lock_guard lk(p->lock);
    stopping = p->flushing || p->eos_posted;
  }
  if (!stopping)
    for (auto &label : labels) maybe_end_src(self, label);
  if (s->connected) g_object_notify(G_OBJECT(self), "connected-peers");
}

static std::shared_ptr<Session> find_session(GstRtcPeer *self, const std::string &peer)
{
  std::lock_guard lk(self->priv->lock);
  auto it = self->priv->sessions.find(peer);
  return it == self->priv->sessions.end() ? nullptr : it->second;
}

/* Who makes the first offer. role=answerer never does; a target gets one; role=offerer offers to
 * every peer. role=auto: whoever was in the room first offers to the newcomer, so between two
 * rtcpeers there is one offer and no glare; we also offer to present peers that may only answer
 * (client_type answerer or receiver) and to browsers, whose page role we cannot see (a page in
 * role answer waits for us; in role auto it offers too, and the polite rule settles the glare). */
static bool should_offer(GstRtcPeer *self, const std::string &peer, const std::string &type,
                         bool joined_after_us)
{
  auto *p = self->priv;
  std::lock_guard lk(p->props_lock);
  if (p->role == Role::Answerer) return false;
  if (!p->target.empty()) return peer == p->target;
  if (p->role == Role::Offerer) return true;
  return joined_after_us || type == "answerer" || type == "receiver" || type == "browser";
}

static void on_remote_set(GstPromise *promise, gpointer user_data)
{
  auto *h = static_cast<SessionHandle *>(user_data);
  GstRtcPeer *self = h->self;
  auto s = h->session.lock();
  const GstStructure *reply = gst_promise_get_reply(promise);
  GError *err = nullptr;
  if (reply && gst_structure_has_field(reply, "error"))
    gst_structure_get(reply, "error", G_TYPE_ERROR, &err, nullptr);
  gst_promise_unref(promise);
  if (!s) return;
  std::weak_ptr<Session> weak = s;
  std::string error = err ? err->message : "";
  g_clear_error(&err);
  run_async(self, [self, weak, error] {
    auto s = weak.lock();
    if (!s || s->removed) return;
    if (!error.empty()) {
      GST_ELEMENT_WARNING(self, STREAM, FORMAT,
                          ("Peer '%s' sent an unusable description", s->id.c_str()),
                          ("%s", error.c_str()));
      remove_session(self, s->id, "unusable description");
      return;
    }
    s->remote_set = true;
    for (auto &c : s->pending_candidates)
      g_signal_emit_by_name(s->webrtc, "add-ice-candidate", guint(c.mline), c.candidate.c_str());
    s->pending_candidates.clear();
    if (s->connected)
      connect_pending_media(self, s); // a renegotiation: the new tracks have m-lines
  });
}

static void handle_remote_sdp(GstRtcPeer *self, const std::string &peer, const std::string &type,
                              const std::string &received)
{
  ASSERT_CTX(self);
  const std::string text = sdp::drop_bundle_with_split_ice(received);
  bool offer = type == "offer";
  if (!offer && type != "answer") {
    GST_ELEMENT_WARNING(self, STREAM, FORMAT, ("Ignored a malformed signaling message"),
                        ("SDP of unknown type '%s' from '%s'", type.c_str(), peer.c_str()));
    return;
  }
  GstSDPMessage *msg = nullptr;
  gst_sdp_message_new_from_text(text.c_str(), &msg);
  if (sdp::media_count(text) > int(kMaxMedia)) {
    GST_ELEMENT_WARNING(
        self, STREAM, FORMAT, ("Ignored an offer with too many m-lines"),
        ("%d sections from '%s'; at most %zu", sdp::media_count(text), peer.c_str(), kMaxMedia));
    if (msg) gst_sdp_message_free(msg);
    return;
  }
  if (!msg || sdp::media_count(text) == 0) {
    GST_ELEMENT_WARNING(self, STREAM, FORMAT, ("Ignored a malformed signaling message"),
                        ("unparsable %s SDP from '%s'", type.c_str(), peer.c_str()));
    if (msg) gst_sdp_message_free(msg);
    return;
  }
  auto s = find_session(self, peer);
  if (!s) {
    if (!offer) {
      GST_ELEMENT_WARNING(self, STREAM, FORMAT, ("Ignored a malformed signaling message"),
                          ("answer from '%s', to which no offer was made", peer.c_str()));
      gst_sdp_message_free(msg);
      return;
    }
    s = create_session(self, peer, "", false);
    if (!s) {
      gst_sdp_message_free(msg);
      return;
    }
  }
  std::string fp = negotiation::fingerprint(text);
  auto actions = offer ? s->neg->remote_offer(fp) : s->neg->remote_answer(fp);
  if (actions.empty()) {
    // Glare we win (the polite side answers ours instead), or an answer to nothing pending.
    GST_INFO_OBJECT(self, "%s from '%s' ignored (%s)", type.c_str(), peer.c_str(),
                    offer ? "offer glare: the polite side answers ours" : "no offer pending");
    gst_sdp_message_free(msg);
    return;
  }
  // Pieces no larger than the remote accepts (0 = any size; webrtcbin itself takes 64 KiB).
  uint64_t mms = sdp::max_message_size(text);
  *s->chunk = (mms == 0 || mms > 65536) ? 65536 : std::max<uint64_t>(mms, kMinChunk);
  GstWebRTCSessionDescription *desc = gst_webrtc_session_description_new(
      offer ? GST_WEBRTC_SDP_TYPE_OFFER : GST_WEBRTC_SDP_TYPE_ANSWER, msg);
  negotiate(self, s, actions, desc);
  gst_webrtc_session_description_free(desc);
}

/* Carries out the negotiator's actions on the session's webrtcbin, in order (webrtcbin queues
 * them as tasks, so an answer can be asked for right after the remote offer is set). remote: the
 * description that came with the event, if any. Context thread. */
static void negotiate(GstRtcPeer *self, std::shared_ptr<Session> s,
                      const std::vector<negotiation::Action> &actions,
                      GstWebRTCSessionDescription *remote)
{
  ASSERT_CTX(self);
  using negotiation::Action;
  auto promise = [&](void (*fn)(GstPromise *, gpointer)) {
    return gst_promise_new_with_change_func(fn, new_handle(self, s),
                                            [](gpointer d) { free_handle(d); });
  };
  auto text_of = [](GstWebRTCSessionDescription *d) {
    gchar *t = gst_sdp_message_as_text(d->sdp);
    std::string out = t;
    g_free(t);
    return out;
  };
  for (Action a : actions) {
    if (s->removed) return;
    GST_DEBUG_OBJECT(self, "'%s': %s", s->id.c_str(), negotiation::action_name(a));
    switch (a) {
    case Action::CreateOffer:
      g_signal_emit_by_name(s->webrtc, "create-offer", nullptr, promise(on_offer_created));
      break;
    case Action::ApplyLocalOffer:
      if (s->offer) g_signal_emit_by_name(s->webrtc, "set-local-description", s->offer, nullptr);
      break;
    case Action::SendOffer:
      // Queued before any candidate: candidates reach this thread only after this call.
      // A re-offer keeps the live BUNDLE transport's port and DTLS role in every section (the
      // remote answers that; webrtcbin keeps its own copy, which only differs there).
      if (s->offer)
        send_local_description(self, s, "offer", sdp::keep_bundle_in_reoffer(text_of(s->offer)));
      break;
    case Action::ApplyRemoteOffer:
      if (remote) adopt_remote_payload_types(self, s, remote);
      [[fallthrough]];
    case Action::ApplyRemoteAnswer:
      if (remote)
        g_signal_emit_by_name(s->webrtc, "set-remote-description", remote, promise(on_remote_set));
      break;
    case Action::CreateAnswer:
      g_signal_emit_by_name(s->webrtc, "create-answer", nullptr, promise(on_answer_created));
      break;
    case Action::ApplyLocalAnswer:
      if (s->answer) g_signal_emit_by_name(s->webrtc, "set-local-description", s->answer, nullptr);
      break;
    case Action::SendAnswer:
      if (s->answer) send_local_description(self, s, "answer", text_of(s->answer));
      // Our own channels open once SCTP is up; a renegotiation keeps the ones it has.
      if (!s->connected) open_channels_when_ready(self, s, 0);
      break;
    case Action::Recreate: {
      // A restarted peer, or our applied offer withdrawn: a fresh webrtcbin for the same peer.
      GST_INFO_OBJECT(self, "'%s': new peer connection", s->id.c_str());
      auto neg = std::move(s->neg);
      std::string id = s->id, type = s->type;
      remove_session(self, id, "the peer restarted its connection");
      auto fresh = create_session(self, id, type, false);
      if (!fresh) return;
      fresh->neg = std::move(neg);
      s = fresh;
      break;
    }
    }
  }
}

static void handle_remote_candidate(GstRtcPeer *self, const std::string &peer,
                                    const std::string &mid, int mline, const std::string &cand)
{
  auto s = find_session(self, peer);
  if (!s) {
    GST_DEBUG_OBJECT(self, "candidate from '%s' without a session", peer.c_str());
    return;
  }
  if (cand.empty()) return; // end of candidates
  if (mline < 0) {
    // Only a mid was given: find its m-line in the local description.
    for (size_t i = 0; i < s->mids.size(); i++)
      if (s->mids[i] == mid) mline = int(i);
    if (mline < 0) mline = 0;
  }
  std::string text = g_str_has_prefix(cand.c_str(), "a=") ? cand.substr(2) : cand;
  if (s->neg->remote_candidate() == negotiation::CandidateFate::Drop) {
    GST_DEBUG_OBJECT(self, "candidate of the offer from '%s' we ignored", peer.c_str());
    return;
  }
  if (!s->remote_set) {
    s->pending_candidates.push_back({mline, text});
    return;
  }
  g_signal_emit_by_name(s->webrtc, "add-ice-candidate", guint(mline), text.c_str());
}

/* ---------------------------------------------------------------------------------------------
 * Signaller events (context thread) */

static SignallerEvents make_events(GstRtcPeer *self)
{
  SignallerEvents ev;
  ev.ready = [self](const std::vector<std::pair<std::string, std::string>> &present) {
    auto *p = self->priv;
    std::string room, target, my_id;
    {
      std::lock_guard lk(p->props_lock);
      room = p->room;
      target = p->target;
      my_id = p->peer_id;
    }
    if (p->signaling_lost)
      GST_ELEMENT_INFO(self, RESOURCE, OPEN_READ_WRITE, ("Signaling reconnected"),
                       ("registered again as '%s'", my_id.c_str()));
    p->signaling_lost = false;
    GST_INFO_OBJECT(self, "registered as '%s' in room '%s' with %zu peers", my_id.c_str(),
                    room.c_str(), present.size());
    GstStructure *st = gst_structure_new("rtcpeer-registered", "peer-id", G_TYPE_STRING,
                                         my_id.c_str(), "room", G_TYPE_STRING, room.c_str(),
                                         "peers", G_TYPE_UINT, guint(present.size()), nullptr);
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), st));
    bool target_present = target.empty();
    for (auto &[peer, type] : present) {
      target_present |= peer == target;
      auto s = find_session(self, peer);
      if (s) {
        cancel_timeout(self, &s->left_timer);
        continue;
      }
      if (should_offer(self, peer, type, false)) create_session(self, peer, type, true);
    }
    if (!target_present && p->role != Role::Answerer)
      GST_ELEMENT_WARNING(
          self, RESOURCE, NOT_FOUND, ("Unknown target peer '%s'", target.c_str()),
          ("'%s' is not in room '%s'; waiting for it to join", target.c_str(), room.c_str()));
  };
  ev.peer_joined = [self](const std::string &peer, const std::string &type) {
    GST_INFO_OBJECT(self, "peer '%s' (%s) joined", peer.c_str(), type.c_str());
    post_peer_message(self, "rtcpeer-peer-joined", peer, "peer-type", type);
    auto s = find_session(self, peer);
    if (s) {
      // Back after a signaling hiccup: the connection is still good.
      cancel_timeout(self, &s->left_timer);
      if (s->connected) return;
      remove_session(self, peer, "the peer joined again");
    }
    if (should_offer(self, peer, type, true)) create_session(self, peer, type, true);
  };
  ev.peer_left = [self](const std::string &peer) {
    auto s = find_session(self, peer);
    if (!s) return;
    if (!s->connected) {
      remove_session(self, peer, "the peer left");
      return;
    }
    // Its signaling went away but the media path may still be up (a signaling hiccup); wait a
    // little for it to come back or for the connection to close.
    cancel_timeout(self, &s->left_timer);
    std::weak_ptr<Session> weak = s;
    s->left_timer = add_timeout(self, kLeftGraceMs, [self, weak] {
      if (auto s = weak.lock()) {
        s->left_timer = 0;
        remove_session(self, s->id, "the peer left");
      }
    });
  };
  ev.sdp = [self](const std::string &peer, const std::string &type, const std::string &sdp) {
    handle_remote_sdp(self, peer, type, sdp);
  };
  ev.candidate = [self](const std::string &peer, const std::string &mid, int mline,
                        const std::string &cand) {
    handle_remote_candidate(self, peer, mid, mline, cand);
  };
  ev.error = [self](const std::string &reason, bool fatal) {
    if (fatal)
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ_WRITE, ("Signaling failed: %s", reason.c_str()),
                        (nullptr));
    else
      GST_ELEMENT_WARNING(self, RESOURCE, OPEN_READ_WRITE, ("Signaling: %s", reason.c_str()),
                          (nullptr));
  };
  ev.disconnected = [self](const std::string &reason) {
    self->priv->signaling_lost = true;
    GST_ELEMENT_WARNING(self, RESOURCE, READ, ("Signaling connection lost: %s", reason.c_str()),
                        ("reconnecting; established peer connections keep flowing"));
    GstStructure *st = gst_structure_new("rtcpeer-signaling-disconnected", "reason", G_TYPE_STRING,
                                         reason.c_str(), nullptr);
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), st));
  };
  return ev;
}

/* ---------------------------------------------------------------------------------------------
 * Sending data */

namespace {
struct MappedBuffer {
  GstBuffer *buf;
  GstMapInfo map;
};
} // namespace

static size_t open_count(RtcPeerPrivate *p, const std::string &label)
{
  size_t n = 0;
  for (auto &[id, s] : p->sessions) {
    auto it = s->send_channels.find(label);
    if (it == s->send_channels.end()) continue;
    auto *cs =
        static_cast<ChannelState *>(g_object_get_qdata(G_OBJECT(it->second), channel_quark()));
    n += cs && cs->open;
  }
  return n;
}

// Waits (bounded) until the channel has room; false when the peer stalls or we are flushing.
static bool wait_for_room(GstRtcPeer *self, GstWebRTCDataChannel *ch, ChannelState *cs)
{
  auto *p = self->priv;
  guint64 amount = 0;
  g_object_get(ch, "buffered-amount", &amount, nullptr);
  if (amount <= kHighWater) return true;
  auto deadline = std::chrono::steady_clock::now() + kStallLimit;
  while (true) {
    if (is_flushing(p) || !cs->open) return false;
    g_object_get(ch, "buffered-amount", &amount, nullptr);
    if (amount <= kLowWater) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    nap(p, 20ms);
  }
}

static void send_one(GstRtcPeer *self, GstWebRTCDataChannel *ch, GBytes *bytes)
{
  auto *cs = static_cast<ChannelState *>(g_object_get_qdata(G_OBJECT(ch), channel_quark()));
  if (!cs || !wait_for_room(self, ch, cs)) {
    if (cs && cs->open && !cs->warned_send) {
      cs->warned_send = true;
      GST_ELEMENT_WARNING(self, RESOURCE, WRITE, ("Peer '%s' is not keeping up", cs->peer.c_str()),
                          ("dropping messages on channel '%s' after %d s "
                           "without progress",
                           cs->label.c_str(), int(kStallLimit.count())));
    }
    return;
  }
  GError *err = nullptr;
  gsize size = g_bytes_get_size(bytes);
  uint64_t chunk = cs->chunk ? cs->chunk->load() : 65536;
  bool ok;
  if (size <= chunk) {
    ok = gst_webrtc_data_channel_send_data_full(ch, bytes, &err);
  } else {
    uint64_t count = framing::piece_count(size, chunk);
    ok = gst_webrtc_data_channel_send_string_full(ch, framing::announce(size, count).c_str(), &err);
    for (uint64_t off = 0; ok && off < size; off += chunk) {
      if (!wait_for_room(self, ch, cs)) {
        ok = false;
        break;
      }
      GBytes *piece = g_bytes_new_from_bytes(bytes, off, std::min<uint64_t>(chunk, size - off));
      ok = gst_webrtc_data_channel_send_data_full(ch, piece, &err);
      g_bytes_unref(piece);
    }
  }
  if (!ok) {
    GST_WARNING_OBJECT(self, "send on '%s' to '%s' failed: %s", cs->label.c_str(), cs->peer.c_str(),
                       err ? err->message : "peer stalled");
    if (!cs->warned_send) {
      cs->warned_send = true;
      GST_ELEMENT_WARNING(
          self, RESOURCE, WRITE, ("Could not send to peer '%s'", cs->peer.c_str()),
          ("channel '%s': %s", cs->label.c_str(), err ? err->message : "the peer stalled"));
    }
  }
  g_clear_error(&err);
}

static GstFlowReturn data_chain(GstPad *pad, GstObject *parent, GstBuffer *buf)
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
      auto *cs =
          static_cast<ChannelState *>(g_object_get_qdata(G_OBJECT(it->second), channel_quark()));
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
  auto *mb = new MappedBuffer{buf, {}};
  if (!gst_buffer_map(buf, &mb->map, GST_MAP_READ)) {
    delete mb;
    gst_buffer_unref(buf);
    for (auto *ch : targets) gst_object_unref(ch);
    GST_ELEMENT_ERROR(self, RESOURCE, READ, ("Could not map a buffer"), (nullptr));
    return GST_FLOW_ERROR;
  }
  GBytes *bytes = g_bytes_new_with_free_func(
      mb->map.data, mb->map.size,
      [](gpointer d) {
        auto *m = static_cast<MappedBuffer *>(d);
        gst_buffer_unmap(m->buf, &m->map);
        gst_buffer_unref(m->buf);
        delete m;
      },
      mb);
  for (auto *ch : targets) {
    send_one(self, ch, bytes);
    gst_object_unref(ch);
  }
  g_bytes_unref(bytes);
  return GST_FLOW_OK;
}

/* At EOS: a buffered-amount of 0 only means webrtcbin handed the data to SCTP, which may still
 * hold it unacknowledged. Closing a channel resets its SCTP stream, which the remote completes
 * only after it has received everything sent before; so wait for the channels to be closed. */
static void drain_channels(GstRtcPeer *self)
{
  auto *p = self->priv;
  std::vector<GstWebRTCDataChannel *> channels;
  {
    std::lock_guard lk(p->lock);
    for (auto &[id, s] : p->sessions)
      for (auto &[label, ch] : s->send_channels)
        if (p->data_sinks.count(label))
          channels.push_back(GST_WEBRTC_DATA_CHANNEL(gst_object_ref(ch)));
  }
  // First everything out of webrtcbin, then a moment for the remote to consume what its SCTP
  // stack holds: webrtcbin (1.22) drops messages still queued in its sctpdec when the stream is
  // reset, so closing right away can lose the last large message.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!is_flushing(p) && std::chrono::steady_clock::now() < deadline) {
    guint64 total = 0;
    for (auto *ch : channels) {
      guint64 amount = 0;
      g_object_get(ch, "buffered-amount", &amount, nullptr);
      total += amount;
    }
    if (total == 0) break;
    nap(p, 20ms);
  }
  bool connected = false;
  {
    std::lock_guard lk(p->lock);
    for (auto &[id, s] : p->sessions) connected |= s->connected;
  }
  if (connected || !channels.empty()) { // else no peer: nothing to drain or wait replies from
    std::unique_lock lk(p->wake_lock);
    p->wake.wait_for(lk, kEosLinger, [p] { return is_flushing(p); });
  }
  for (auto *ch : channels) {
    GstWebRTCDataChannelState st;
    g_object_get(ch, "ready-state", &st, nullptr);
    if (st == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) gst_webrtc_data_channel_close(ch);
  }
  while (!is_flushing(p) && std::chrono::steady_clock::now() < deadline) {
    bool all_closed = true;
    for (auto *ch : channels) {
      GstWebRTCDataChannelState st;
      g_object_get(ch, "ready-state", &st, nullptr);
      all_closed &= st == GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED;
    }
    if (all_closed) break;
    nap(p, 20ms);
  }
  for (auto *ch : channels) gst_object_unref(ch);
}

// A media src pad that no peer's track filled: made at EOS so the branch linked to it ends.
static GstPad *make_ended_media_src(GstRtcPeer *self, const std::string &name)
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

// Ends every data and media src pad with the EOS the application sent, once; pads the pipeline
// links to that no peer has filled yet are made first (awaited_srcs).
static void end_src_pads(GstRtcPeer *self)
{
  auto *p = self->priv;
  GstEvent *event = nullptr;
  std::vector<GstPad *> pads;
  std::vector<std::string> missing;
  std::vector<GstPad *> orphans;
  {
    std::lock_guard lk(p->lock);
    std::swap(event, p->pending_src_eos);
    if (!event) return;
    for (auto &[label, src] : p->data_srcs) pads.push_back(GST_PAD(gst_object_ref(src->pad)));
    for (auto &[id, s] : p->sessions)
      for (auto *pad : s->media_srcs) pads.push_back(GST_PAD(gst_object_ref(pad)));
    missing.assign(p->awaited_srcs.begin(), p->awaited_srcs.end());
    orphans.swap(p->orphaned_sinks);
  }
  for (auto *sink : orphans) {
    if (!gst_pad_is_linked(sink)) gst_pad_send_event(sink, gst_event_ref(event));
    gst_object_unref(sink);
  }
  for (auto &name : missing) {
    if (GstPad *have = gst_element_get_static_pad(GST_ELEMENT(self), name.c_str())) {
      gst_object_unref(have); // exists (and is in `pads` if it is a src pad of ours)
      continue;
    }
    GST_INFO_OBJECT(self, "%s never had data: made to carry the EOS", name.c_str());
    if (g_str_has_prefix(name.c_str(), "data_")) {
      if (DataSrc *src = ensure_data_src(self, name.substr(5)))
        pads.push_back(GST_PAD(gst_object_ref(src->pad)));
    } else if (GstPad *pad = make_ended_media_src(self, name)) {
      pads.push_back(pad);
    }
  }
  for (auto *pad : pads) {
    gst_pad_push_event(pad, gst_event_ref(event));
    gst_object_unref(pad);
  }
  gst_event_unref(event);
}

static void push_sink_pads(GstElement *e, std::vector<GstPad *> &out)
{
  GstIterator *it = gst_element_iterate_sink_pads(e);
  GValue v = G_VALUE_INIT;
  bool done = false;
  while (!done) {
    switch (gst_iterator_next(it, &v)) {
    case GST_ITERATOR_OK:
      out.push_back(GST_PAD(g_value_dup_object(&v)));
      g_value_reset(&v);
      break;
    case GST_ITERATOR_RESYNC: gst_iterator_resync(it); break;
    default: done = true;
    }
  }
  g_value_unset(&v);
  gst_iterator_free(it);
}

/* Names of our sink pads whose data comes from our own src pads (ball-tracker: video_0 src ->
 * balldetect -> data_detections sink). Those end only after our src pads do, so the EOS of the
 * src pads must not wait for them (it waited kSrcEosWaitMs). Walks the pipeline upstream. */
static std::set<std::string> sinks_fed_by_self(GstRtcPeer *self)
{
  std::set<std::string> fed;
  std::vector<GstPad *> ours;
  push_sink_pads(GST_ELEMENT(self), ours);
  for (GstPad *sink : ours) {
    std::vector<GstPad *> todo{GST_PAD(gst_object_ref(sink))};
    std::set<GstElement *> seen; // identity only
    bool found = false;
    for (int budget = 512; !todo.empty() && !found && budget > 0; budget--) {
      GstPad *pad = todo.back();
      todo.pop_back();
      GstPad *peer = gst_pad_get_peer(pad);
      gst_object_unref(pad);
      GstElement *up = peer ? gst_pad_get_parent_element(peer) : nullptr;
      if (peer) gst_object_unref(peer);
      if (!up) continue;
      if (up == GST_ELEMENT(self))
        found = true;
      else if (seen.insert(up).second)
        push_sink_pads(up, todo);
      gst_object_unref(up);
    }
    for (GstPad *pad : todo) gst_object_unref(pad);
    if (found) fed.insert(GST_PAD_NAME(sink));
    gst_object_unref(sink);
  }
  return fed;
}

// Under priv->lock: every sink pad that carries something has ended (but those in `except`).
static bool sinks_ended(RtcPeerPrivate *p, const std::set<std::string> &except = {})
{
  for (auto &[label, sink] : p->data_sinks)
    if (!sink->eos && !except.count("data_" + label)) return false;
  // A media pad that never got caps (e.g. a decodebin branch for audio the file lacks) carries
  // nothing and must not hold the end back.
  for (auto &m : p->media_sends)
    if (m->built && !m->eos && !except.count(m->name)) return false;
  return true;
}

static void maybe_post_eos(GstRtcPeer *self, guint32 seqnum)
{
  auto *p = self->priv;
  {
    std::lock_guard lk(p->lock);
    if (p->eos_posted || !sinks_ended(p)) return;
    p->eos_posted = true;
  }
  drain_channels(self);
  GstMessage *msg = gst_message_new_eos(GST_OBJECT(self));
  if (seqnum != GST_SEQNUM_INVALID) gst_message_set_seqnum(msg, seqnum);
  gst_element_post_message(GST_ELEMENT(self), msg);
  end_src_pads(self); // if the application asked for EOS, after the drain's linger
}

static gboolean data_sink_event(GstPad *pad, GstObject *parent, GstEvent *event)
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

/* ---------------------------------------------------------------------------------------------
 * Sending media: encode once, tee to every session */

static GstElement *make(GstRtcPeer *self, const char *factory)
{
  GstElement *e = gst_element_factory_make(factory, nullptr);
  if (!e)
    GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("Element '%s' is missing", factory), (nullptr));
  return e;
}

// Per-codec encoder settings (the rest of what a codec needs is its row in rtc/codecs.h).
static void configure_encoder(GstElement *encoder, const codecs::Codec &c, guint bitrate)
{
  std::string_view name = c.name;
  if (name == "h264") {
    gst_util_set_object_arg(G_OBJECT(encoder), "tune", "zerolatency");
    gst_util_set_object_arg(G_OBJECT(encoder), "speed-preset", "ultrafast");
    g_object_set(encoder, "bitrate", bitrate, "key-int-max", 120u, nullptr);
  } else if (name == "vp8" || name == "vp9") {
    // Real-time: no look-ahead, frames decodable on their own after a loss, the fastest
    // preset (VP8's 16 took a third less CPU than 8 in the ball loop and encodes faster,
    // at the same accuracy; VP9's real-time presets end at 9).
    // One thread: a real-time frame takes a few ms on one core, while libvpx's worker
    // threads on busy cores stalled frames by 100+ ms and lost two thirds of them.
    g_object_set(encoder, "deadline", gint64(1), "lag-in-frames", 0, "cpu-used",
                 name == "vp9" ? 9 : 16, "target-bitrate", gint(bitrate * 1000),
                 "keyframe-max-dist", 120, "threads", 1, nullptr);
    gst_util_set_object_arg(G_OBJECT(encoder), "error-resilient", "default");
    gst_util_set_object_arg(G_OBJECT(encoder), "end-usage", "cbr");
  } else if (name == "opus") {
    gst_util_set_object_arg(G_OBJECT(encoder), "frame-size", "10");
  }
}

static void configure_payloader(GstElement *pay, guint pt)
{
  g_object_set(pay, "pt", pt, nullptr);
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
  guint bitrate;
  {
    std::lock_guard lk(p->props_lock);
    codec_name = p->video_codec;
    bitrate = p->video_bitrate;
  }
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
    if (codec && (encoder = add(make(self, codec->encoder))))
      configure_encoder(encoder, *codec, bitrate);
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
  if (GstElement *pay = add(make(self, codec->payloader))) configure_payloader(pay, m->pt);
  // Pin the payloader's output to exactly what webrtcbin was told (payload type, codec name).
  GstElement *filter = add(gst_element_factory_make("capsfilter", nullptr));
  g_object_set(filter, "caps", m->rtp_caps, nullptr);
  for (auto *e : chain) ok &= e != nullptr;
  if (!ok || chain.empty()) {
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
  std::lock_guard lk(p->lock);
  m->encoder = encoder;
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
  // (Janus) routes incoming RTP by the SSRCs of the offer and drops what it cannot place.
  gst_caps_set_simple(caps, "ssrc", G_TYPE_UINT, g_random_int_range(1, G_MAXINT32), nullptr);
  return caps;
}

static GstPad *request_media_pad(GstRtcPeer *self, GstPadTemplate *templ, bool video,
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
  gst_pad_set_element_private(pad, sink.get());
  gst_pad_set_chain_function(pad, data_chain);
  gst_pad_set_event_function(pad, data_sink_event);
  {
    std::lock_guard lk(p->lock);
    p->data_sinks[label] = std::move(sink);
  }
  gst_pad_set_active(pad, TRUE);
  gst_element_add_pad(element, pad);
  restore_flags(self);
  // Sessions that already run open the new channel right away.
  if (p->ctx)
    run_async(self, [self] {
      std::vector<std::shared_ptr<Session>> all;
      {
        std::lock_guard lk(self->priv->lock);
        for (auto &[id, s] : self->priv->sessions) all.push_back(s);
      }
      for (auto &s : all)
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
    gst_element_remove_pad(element, pad);
    restore_flags(self);
    return;
  }
  // Media pads stay until the element is disposed (their encoders are shared by every session).
  gst_element_remove_pad(element, pad);
}

static gpointer loop_thread(gpointer data)
{
  auto *p = static_cast<RtcPeerPrivate *>(data);
  g_main_context_push_thread_default(p->ctx);
  g_main_loop_run(p->loop);
  g_main_context_pop_thread_default(p->ctx);
  return nullptr;
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
  run_sync(self, [&] {
    {
      std::lock_guard lk(p->props_lock);
      p->role = resolved;
    }
    p->signaller = std::move(sig);
    p->signaller->start(p->ctx, make_events(self));
  });
  return true;
}

static void stop_signaling(GstRtcPeer *self)
{
  auto *p = self->priv;
  run_sync(self, [&] {
    std::vector<std::string> peers;
    {
      std::lock_guard lk(p->lock);
      for (auto &[id, s] : p->sessions) peers.push_back(id);
    }
    for (auto &peer : peers) remove_session(self, peer, "shutting down");
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

/* webrtcbin's DTLS elements make one RSA-2048 certificate per process, on the first connection:
 * 0.2-0.5 s here, on the way to the first frame. Make it while signaling connects instead (the
 * dtls plugin keeps that certificate for every later element). */
static void prepare_dtls_certificate()
{
  static std::once_flag once;
  std::call_once(once, [] {
    g_thread_unref(g_thread_new(
        "rtcpeer-dtls",
        [](gpointer) -> gpointer {
          if (GstElement *dec = gst_element_factory_make("dtlsdec", nullptr))
            gst_object_unref(gst_object_ref_sink(dec));
          return nullptr;
        },
        nullptr));
  });
}

static GstStateChangeReturn gst_rtc_peer_change_state(GstElement *element,
                                                      GstStateChange transition)
{
  auto *self = GST_RTC_PEER(element);
  auto *p = self->priv;
  switch (transition) {
  case GST_STATE_CHANGE_NULL_TO_READY:
    p->ctx = g_main_context_new();
    p->loop = g_main_loop_new(p->ctx, FALSE);
    p->thread = g_thread_new("rtcpeer", loop_thread, p);
    // Wait until the loop runs: a READY -> NULL right after this (another element of the
    // pipeline failing to start, e.g. v4l2src without a camera) otherwise hung in g_thread_join.
    run_sync(self, [] {});
    break;
  case GST_STATE_CHANGE_READY_TO_PAUSED: {
    {
      std::lock_guard lk(p->lock);
      p->flushing = false;
      p->eos_posted = false;
      for (auto &[label, sink] : p->data_sinks) sink->eos = false;
      for (auto &m : p->media_sends) m->eos = false;
    }
    if (!start_signaling(self)) return GST_STATE_CHANGE_FAILURE;
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
  case GST_STATE_CHANGE_READY_TO_NULL:
    // Quit from inside the loop: a quit before the thread entered g_main_loop_run() would be lost.
    run_async(self, [p] { g_main_loop_quit(p->loop); });
    g_thread_join(p->thread);
    g_main_loop_unref(p->loop);
    g_main_context_unref(p->ctx);
    p->thread = nullptr;
    p->loop = nullptr;
    p->ctx = nullptr;
    break;
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
    gst_object_unref(child);
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
      for (auto &[id, sess] : p->sessions) connected |= sess->connected;
      sending = connected && !p->eos_posted && !sinks_ended(p, fed_by_self);
      if (sending && p->ctx) {
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
  case PROP_WAIT_FOR_PEERS: p->wait_for_peers = g_value_get_uint(value); break;
  case PROP_RECEIVE_VIDEO: p->receive_video = g_value_get_boolean(value); break;
  case PROP_RECEIVE_AUDIO: p->receive_audio = g_value_get_boolean(value); break;
  case PROP_END_WITH_PEERS: p->end_with_peers = g_value_get_boolean(value); break;
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
  case PROP_LATENCY: g_value_set_uint(value, p->latency); break;
  case PROP_VIDEO_CODEC: g_value_set_string(value, p->video_codec.c_str()); break;
  case PROP_VIDEO_BITRATE: g_value_set_uint(value, p->video_bitrate); break;
  case PROP_WAIT_FOR_PEERS: g_value_set_uint(value, p->wait_for_peers); break;
  case PROP_RECEIVE_VIDEO: g_value_set_boolean(value, p->receive_video); break;
  case PROP_RECEIVE_AUDIO: g_value_set_boolean(value, p->receive_audio); break;
  case PROP_END_WITH_PEERS: g_value_set_boolean(value, p->end_with_peers); break;
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
  G_OBJECT_CLASS(gst_rtc_peer_parent_class)->finalize(object);
}

static void gst_rtc_peer_init(GstRtcPeer *self)
{
  prepare_dtls_certificate(); // as early as possible: gst-launch parses long before PLAYING
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
      g_param_spec_string("stun-server", "STUN server",
                          "stun://host:port; empty (default): host candidates only", nullptr,
                          flags));
  g_object_class_install_property(
      gobject_class, PROP_TURN_SERVER,
      g_param_spec_string("turn-server", "TURN server",
                          "turn(s)://user:password@host:port; empty by default", nullptr, flags));
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
                                                    "Target video bitrate in kbit/s", 50, 100000,
                                                    kDefaultVideoBitrate, flags));
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
      gobject_class, PROP_CONNECTED_PEERS,
      g_param_spec_uint("connected-peers", "Connected peers",
                        "Number of peers with an established connection", 0, G_MAXUINT, 0,
                        GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  gst_element_class_add_static_pad_template(element_class, &data_sink_template);
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
