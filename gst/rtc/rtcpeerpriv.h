// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer's private state, shared by the element (gstrtcpeer.cpp) and its parts (session,
 * datachannels, mediasend, mediarecv, eos, contextthread). Threads and lock order: gstrtcpeer.h. */
#pragma once

#include "rtc/contextthread.h"
#include "rtc/datachannels.h"
#include "rtc/gstrtcpeer.h"
#include "rtc/mediasend.h"
#include "rtc/session.h"
#include "rtc/signaller.h"
#include "rtc/turntls.h"

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

GST_DEBUG_CATEGORY_EXTERN(gst_rtc_peer_debug);
#define GST_CAT_DEFAULT gst_rtc_peer_debug

namespace pointcast::rtc {

// ms of jitterbuffer: room for a retransmission at 50 ms RTT (with 10 ms, the default before NACK
// and RTX, a repaired packet always came too late). Only frames behind a loss wait for it.
constexpr guint kDefaultLatency = 200;
constexpr guint kDefaultVideoBitrate = 2000;    // kbit/s, where congestion control starts
constexpr guint kDefaultVideoBitrateMin = 100;  // kbit/s; below 150 the frame rate goes down
constexpr guint kDefaultVideoBitrateMax = 4000; // kbit/s
// kbit/s: below it, fewer frames (cc::frame_fraction). Not higher: the ball loop's own video is
// 150-200 kbit/s, and a target pulled a little under 300 by a busy receiver dropped its frames.
constexpr guint kFrameRateFloor = 150;
constexpr const char *kDefaultPeerType = "gstreamer";
// Remote peers (webrtcbin sessions) at most: a signaling server announcing thousands of peers, or
// offering on behalf of them, must not make thousands of peer connections.
constexpr guint kDefaultMaxPeers = 256;

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

struct RtcPeerPrivate {
  std::mutex props_lock; // the properties below, up to end_with_peers
  std::string signaling = kSignalingDefault.value();
  std::string room = kRoomDefault.value();
  std::string peer_id = kPeerIdDefault.value();
  std::string peer_type = kDefaultPeerType;
  std::string target, stun_server, turn_server;
  std::string turn_tls_ca; // PEM file of CAs trusted for turns:// ("" = the system's)
  bool relay_only = false; // ice-transport-policy=relay: TURN relay candidates only
  std::string token = kTokenDefault.value();
  std::string video_codec = "vp8";
  Role role = Role::Auto;
  guint latency = kDefaultLatency;
  guint wait_for_peers = 0;
  guint video_bitrate = kDefaultVideoBitrate;
  guint video_bitrate_min = kDefaultVideoBitrateMin, video_bitrate_max = kDefaultVideoBitrateMax;
  gint fec_percentage = -1; // -1: from the reported loss (rtc/fec.h)
  gboolean receive_video = TRUE, receive_audio = FALSE;
  gboolean end_with_peers = FALSE;
  guint max_peers = kDefaultMaxPeers;

  // Signaller events and session management run on this thread (READY and above).
  ContextThread ctx;
  std::unique_ptr<Signaller> signaller; // ctx thread
  bool signaling_lost = false;          // ctx thread
  guint refused_peers = 0;              // ctx thread: new peers ignored past max-peers
  guint expire_timer = 0;               // ctx thread: drops stalled fragmented messages
  /* ctx thread, per peer: its connections in a row that went silent soon after connecting
   * (rtc/pathwatch.cpp); outlives the sessions that replace each other, forgotten with the peer. */
  std::map<std::string, guint> silent_losses;
  // ctx thread: peers removed for that, whose offers are not answered until they register again.
  std::set<std::string> given_up;
  // ctx thread, from start to stop: the TLS tunnel of each turns:// URI (rtc/turntls.h).
  std::map<std::string, std::unique_ptr<TurnTlsTunnel>> turn_tunnels;

  std::mutex lock; // sessions, pads, channel maps, and the fields below
  std::condition_variable cond;
  // Waiting for a channel to drain: never held while calling into webrtcbin, whose threads take
  // it (briefly) to wake the waiter.
  std::mutex wake_lock;
  std::condition_variable wake;
  std::map<std::string, std::shared_ptr<Session>> sessions;
  std::map<std::string, std::unique_ptr<DataSink>> data_sinks;
  std::map<std::string, std::unique_ptr<DataSrc>> data_srcs;
  // Re-sending (rtc/datachannels.h), per (peer, label): what lost connections left for the next
  // one, and the streams received; under resend_lock (taken after a channel's acct, never with
  // `lock` held).
  std::mutex resend_lock;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Resend>> resends;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<InStream>> in_streams;
  std::atomic<gint64> last_message_in_us{0}; // monotonic time a message last came out of them
  std::vector<std::unique_ptr<MediaSend>> media_sends;
  std::mutex src_create_lock;
  guint64 refused_labels = 0; // messages on labels past kMaxDataSrcs
  bool flushing = true;
  bool eos_posted = false;
  // The EOS message itself (after the drain), under eos_msg_lock: re-posted by restore_flags if
  // a child's removal had cleared our SINK flag meanwhile (the pipeline ignores a non-sink's EOS).
  std::mutex eos_msg_lock;
  bool eos_msg_sent = false;
  guint32 eos_msg_seqnum = GST_SEQNUM_INVALID;
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
  // Src pads of a rebuilt connection's tracks, per peer, waiting for the new connection's
  // (rtc/mediarecv.h): each ref'd, in the order they were made.
  std::map<std::string, std::vector<GstPad *>> parked_srcs;
  guint next_video = 0, next_audio = 0, next_src_video = 0, next_src_audio = 0, next_session = 0;
};

// The one way onto the context thread: fn runs there soon, with the element kept alive.
void run_async(GstRtcPeer *self, std::function<void()> fn);
// fn once after ms on the context thread (the element is not kept alive).
guint add_timeout(GstRtcPeer *self, guint ms, std::function<void()> fn);
void cancel_timeout(GstRtcPeer *self, guint *id);
// Functions that may only run on the context thread start with this.
#define ASSERT_CTX(self) ::pointcast::rtc::assert_ctx_thread((self)->priv->ctx, G_STRFUNC)

// An element message naming a peer (and one more string field).
void post_peer_message(GstRtcPeer *self, const char *name, const std::string &peer,
                       const char *extra_key = nullptr, const std::string &extra = "");
// GstBin recomputes SINK/SOURCE from its children: put ours back.
void restore_flags(GstRtcPeer *self);
// Takes a child out of a bin that may be changing state in another thread at the same time.
void shut_down(GstRtcPeer *self, GstElement *e);
// A new element, or an error posted naming the missing factory.
GstElement *make(GstRtcPeer *self, const char *factory);
// fn on each element made by FACTORY anywhere inside BIN.
void for_each_element(GstBin *bin, const char *factory,
                      const std::function<void(GstElement *)> &fn);

extern GstStaticPadTemplate data_src_template;
extern GstStaticPadTemplate video_src_template;
extern GstStaticPadTemplate audio_src_template;

} // namespace pointcast::rtc

struct _GstRtcPeer {
  GstBin parent;
  pointcast::rtc::RtcPeerPrivate *priv;
};
