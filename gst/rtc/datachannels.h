// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer's data channels: the data_%s sink pads send each buffer as one message to every peer
 * that has the channel open (waiting while a peer's queue is above high water, in pieces when the
 * message is larger than the remote accepts); received messages are reassembled and come out of
 * one data_%s src pad per label, from all peers. */
#pragma once

#include "rtc/ackproto.h"
#include "rtc/framing.h"
#include "rtc/gstrtcpeer.h"
#include "rtc/pathwatch.h"

#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

G_BEGIN_DECLS
/* The data_%s sink pad: its properties choose the reliability of the channels it opens (set them
 * before the pad's channels open, e.g. in gst-launch `rtcpeer name=rtc data_x::ordered=false`). */
#define GST_TYPE_RTC_DATA_PAD (gst_rtc_data_pad_get_type())
G_DECLARE_FINAL_TYPE(GstRtcDataPad, gst_rtc_data_pad, GST, RTC_DATA_PAD, GstPad)
G_END_DECLS

namespace pointcast::rtc {

using namespace std::chrono_literals;

struct Session;

constexpr guint64 kHighWater = 4 << 20; // bytes queued on a channel before the sender waits
constexpr guint64 kLowWater = 1 << 20;
/* A peer taking nothing for this long loses messages (counted in the error at EOS); while it is
 * still heard from (any packet, e.g. its acknowledgements below), for up to kLiveStallLimit: SCTP
 * backs off its retransmission timeout up to 60 s through a burst of losses. */
constexpr auto kStallLimit = 10s;
constexpr auto kLiveStallLimit = 150s;
/* webrtcbin 1.22's SCTP send buffer (sctpassociation.c: SO_SNDBUF 1 MiB): usrsctp frees a message
 * only once the peer acknowledged it cumulatively, and takes no more than this, so all but the
 * last kSctpSendBuffer bytes it took have arrived. */
constexpr guint64 kSctpSendBuffer = 1 << 20;
/* Channels we open carry this sub-protocol: each side that is an rtcpeer then acknowledges every
 * whole message it received from the other, {"pointcast":"ack","received":N} on the same channel,
 * within kAckDelay of a message and every kAckKeepalive while the channel is open (the opener
 * once the other side's first acknowledgement showed that it speaks the protocol); so either side
 * may send on it and have its messages sent again on a new connection. Other peers ignore the
 * protocol and are sent nothing but data. */
constexpr const char *kAckProtocol = "pointcast-ack2";
/* What rtcpeers before kAckProtocol opened (and still take from a peer): only the opener's
 * messages are acknowledged, and only the opener sends resume messages. */
constexpr const char *kAckProtocolV1 = "pointcast-ack";
/* Partially reliable channels we open (max-retransmits, max-packet-lifetime) carry this instead:
 * kAckProtocol's rules, and once the peer acknowledged on it (an rtcpeer that knows this), each
 * message up to kTwiceMaxSize goes as a tagged text message twice, the copy kTwiceDelay later, and
 * the receiver delivers the first to arrive (rtc/ackproto.h): a single loss no longer loses it
 * (2 % loss + 25 ms each way: the ball loop's detections lost for good from 1.9 % to 0.04 %, see
 * docs/networks.md). A new name, not kAckProtocol: an older rtcpeer would acknowledge
 * kAckProtocol and then deliver both copies, as text; it ignores this one (no acknowledgements,
 * so it is sent plain messages once), as browsers and aiortc do. Copies cost at most kTwiceRate
 * bytes per second per channel (a bucket of kTwiceRate bytes), and none is made while more than
 * kTwiceQueue bytes wait in the channel (the copy would wait behind them too). */
constexpr const char *kAckProtocolTwice = "pointcast-ack3";
// Its copy (base64, 4/3 the size, and ~40 bytes) fits one SCTP packet (webrtcbin: 1200-byte path MTU).
constexpr size_t kTwiceMaxSize = 800;
constexpr auto kTwiceDelay = 6ms; // a lost packet's neighbour 6 ms on is lost alone at random loss
constexpr guint64 kTwiceRate = 16 << 10;
constexpr guint64 kTwiceQueue = 64 << 10;
constexpr auto kAckDelay = 50ms;
constexpr auto kAckKeepalive = 1s;
/* Re-sending (rtc/ackproto.h): our ordered reliable pointcast-ack channels keep every message
 * until its peer acknowledged it, for a sending thread at most kKeepLimit bytes of them (then it
 * waits for acknowledgements, as for room below high water), plus the one message being sent.
 * When the connection is rebuilt or the peer restarted, the new connection's channel of that
 * label waits for the peer's first acknowledgement (sent as the channel opens, so the new peer
 * speaks the protocol), at most kResumeWait, then sends {"pointcast":"resume","from":S} and the
 * kept messages before any new one. */
constexpr guint64 kKeepLimit = 8 << 20;
constexpr auto kResumeWait = 3s;
/* At EOS, for messages waiting for a peer's new connection: while the peer is still expected
 * back (a rebuilt session connects within 10 s, or is given up on, see rtc/pathwatch.cpp). */
constexpr auto kResendWait = 15s;
constexpr auto kSaturatedWarn = 2s; // above high water this long: a warning
constexpr auto kEosLinger = 1500ms; // at EOS, after the channels drained (see drain_channels)
constexpr auto kEosQuiet = 300ms; // at EOS, replies still arriving: until the peers are this quiet
/* At EOS, from the start of the drain: for the peers to confirm closing the channels, which they
 * do once they have received everything sent before. Plus twice as long as the channels took to
 * drain, up to kCloseWaitMore: SCTP may still hold most of a megabyte then (18 s at 300 kbit/s,
 * after a 55 s drain), while some peers never confirm (ball-tracker's detections channels, whose
 * wait ends at kCloseWait as before). */
constexpr auto kCloseWait = 10s;
constexpr auto kCloseWaitMore = 120s;
// After the close, for a stream still queued at EOS whose association is up: one of usrsctp's
// maximum retransmission timeouts (60 s).
constexpr auto kRtoBackoffWait = 60s;
constexpr auto kPeerCloseLinger = 8s; // a peer closed all its channels: its session ends then
constexpr const char *kDefaultChannel = "pointcast";
constexpr uint64_t kMinChunk = 256; // a piece must hold the fragment announcement
// What one remote peer may open: channels on its connection, and distinct labels (each becomes a
// src pad of this element) across all peers.
constexpr size_t kMaxChannels = 64;
constexpr size_t kMaxDataSrcs = 64;

/* Messages to send again on the next connection to one peer on one label: what a lost
 * connection's channel had not had acknowledged, from stream index `from` on (rtc/ackproto.h).
 * Under RtcPeerPrivate::resend_lock. */
struct Resend {
  Resend() = default;
  Resend(const Resend &) = delete;
  Resend &operator=(const Resend &) = delete;
  ~Resend();
  guint64 from = 0; // stream index of msgs.front() (of the next message when empty)
  std::deque<GBytes *> msgs;
  guint64 bytes = 0;
  // Handed on (to a later lost connection's Resend): messages still arriving here go there.
  std::shared_ptr<Resend> next;
  bool abandoned = false; // the peer is gone, or its new connection does not speak the protocol
  void push(GBytes *b);   // takes the reference
  void pop();
};

/* The receiving side of a stream (rtc/ackproto.h), per peer and label, across its channels. */
struct InStream {
  std::mutex mu;
  ackproto::Stream st;
};

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
  framing::Reassembler reasm; // the channel's SCTP receive thread only
  std::atomic<bool> open{false};
  std::atomic<bool> ever_open{false};
  // The session's piece size: the remote's max-message-size arrives with its SDP, often after
  // the channel was created.
  std::shared_ptr<std::atomic<uint64_t>> chunk;
  std::shared_ptr<PathWatch> watch; // the session's: counts the messages sent on it
  std::weak_ptr<Session> session;
  std::atomic<bool> warned_send{false};
  // Sending (the data sink pad's streaming thread, then EOS): above high water since the last
  // warning; messages given up on.
  std::atomic<bool> saturated{false};
  std::atomic<guint64> dropped{0};
  // Under acct: what was handed to the channel, and what of it is known to have arrived.
  std::mutex acct;
  guint64 sent_bytes = 0;
  guint64 sent_msgs = 0;    // whole messages handed to the channel
  std::deque<guint64> ends; // end offset of each message not yet known to have arrived
  guint64 known = 0;        // messages known to have arrived (acknowledged, or let go by SCTP)
  bool reliable = true;     // no max-retransmits / max-packet-lifetime (set up once)
  /* Acknowledgements (set up once). acks_in: the peer's acks of what we send arrive on it
   * (ack_seen once one did): we opened it (either protocol), or the peer did with kAckProtocol.
   * acks_for_peer: we acknowledge what the peer sends and take its resume messages: the peer
   * opened it (either protocol), or we did with kAckProtocol. acks_out: we send acks now (on our
   * own channel only once ack_seen: a browser would take them as data). */
  bool acks_in = false, acks_for_peer = false;
  bool both_ways = false; // kAckProtocol (not an older rtcpeer's kAckProtocolV1)
  std::atomic<bool> acks_out{false};
  std::atomic<bool> ack_seen{false};
  std::atomic<guint64> acked{0};    // messages the peer says it received
  std::atomic<guint64> received{0}; // acks_for_peer: whole messages received
  std::atomic<bool> ack_pending{false};

  /* kAckProtocolTwice (set up once). twice: our send channel, partially reliable: small messages
   * go tagged, twice, once ack_seen. tagged_in: the peer's tagged messages are taken (deduplicated
   * by `seen`, the SCTP receive thread only). */
  bool twice = false, tagged_in = false;
  guint64 next_seq = 0; // under turn, with `bucket`
  ackproto::Bucket bucket{kTwiceRate, kTwiceRate};
  std::atomic<guint64> copies{0}, once{0}; // copies sent; small messages sent once (bucket, queue)
  ackproto::Window seen;
  std::atomic<guint64> copies_dropped{0};
  bool warned_tagged = false;

  // Re-sending (kKeepLimit). keeps: our send channel for the label, acks_in, ordered and reliable
  // (set up once).
  bool keeps = false;
  // Why the channel does not keep (for the warning counting what a lost connection left on it).
  const char *no_keep_reason = nullptr;
  // Under acct: the messages sent not yet acknowledged (until the peer acknowledges at all:
  // not yet let go by SCTP), kept_from the channel index of the first.
  std::deque<GBytes *> kept;
  guint64 kept_from = 0, kept_bytes = 0;
  // One whole message at a time, in order: the sending thread's and the re-sent ones.
  std::mutex turn;
  // A send call and its accounting, against the snapshot of a session being removed.
  std::mutex send_mu;
  bool gone = false;                  // under send_mu: removed; sends go to carry_to
  std::atomic<bool> gone_flag{false}; // the same, for waits
  std::shared_ptr<Resend> carry_to;   // under send_mu: what this channel left for the next
  guint64 carried = 0;                // under send_mu: how many messages it handed over
  // What this channel sends first (set before the channel is published), and whether its resume
  // message went out (under send_mu) at stream index stream_base.
  std::shared_ptr<Resend> resume;
  bool resume_sent = false;
  guint64 stream_base = 0;
  std::atomic<gint64> open_us{0};    // monotonic time it opened
  std::atomic<bool> resuming{false}; // a context-thread re-send step is scheduled
  // Receiving (acks_for_peer, ordered and reliable): the stream it continues, and where it is in it
  // (the SCTP receive thread only, under in->mu).
  std::shared_ptr<InStream> in;
  ackproto::Cursor cursor;
  guint64 skipped = 0; // duplicates dropped (for the debugger)
  bool warned_resume = false;
  ~ChannelState();
};

/* Messages handed to the channel that the peer is not known to have received (the rest are
 * known: acknowledged by a receiving rtcpeer, or let go by SCTP), given its buffered-amount. */
guint64 unconfirmed_messages(ChannelState *cs, guint64 buffered_amount);

// The ChannelState of a channel set up by setup_channel, or null.
ChannelState *channel_state(GstWebRTCDataChannel *ch);

// The create-data-channel options of a data sink pad (null: webrtcbin's defaults).
GstStructure *channel_options(GstPad *pad);

// A data_%s sink pad (its element private).
struct DataSink {
  std::string label;
  GstPad *pad = nullptr;  // not a reference: the pad owns this
  bool eos = false;       // under priv->lock
  bool warned_in = false; // under priv->lock: a peer sent on this label (no src pad of that name)
};

// A data_%s src pad.
struct DataSrc {
  GstPad *pad = nullptr;
  std::mutex push;
  guint64 dropped = 0; // under push: messages nobody linked the pad for
};

/* Src pads whose data comes from no sink pad of ours (data, and media made only to end): their
 * query function and internal links. */
gboolean data_src_query(GstPad *pad, GstObject *parent, GstQuery *query);
GstIterator *no_internal_links(GstPad *, GstObject *);

// The src pad for a label, made (and announced with pad-added) on first use; null when flushing
// or past kMaxDataSrcs labels. Any thread.
DataSrc *ensure_data_src(GstRtcPeer *self, const std::string &label);

// Any thread (webrtcbin's, for remote-created channels). Takes a reference to ch. A channel the
// remote created (remote=true) comes out as the session's data_label when it has one.
void setup_channel(GstRtcPeer *self, const std::shared_ptr<Session> &s, GstWebRTCDataChannel *ch,
                   bool remote = false);
// webrtcbin's on-data-channel (user data: a SessionHandle).
void on_data_channel(GstElement *webrtc, GstWebRTCDataChannel *ch, gpointer user_data);
/* ctx: opens our channel for each data sink label the session lacks; always: even with no data
 * sink (an offer needs a data section so that the answerer can open channels of its own). */
void create_channels(GstRtcPeer *self, const std::shared_ptr<Session> &s, bool always);
// ctx: the answerer's channels, once SCTP is up.
void open_channels_when_ready(GstRtcPeer *self, std::weak_ptr<Session> weak, int tries);
// session.cpp: offers the tracks the remote's offer left out (once connected).
void renegotiate_if_needed(GstRtcPeer *self, const std::shared_ptr<Session> &s);
// end-with-peers: EOS on data_<label> once no peer has that channel open any more. Any thread.
void maybe_end_src(GstRtcPeer *self, const std::string &label);

// The data_%s sink pad's chain and event functions.
GstFlowReturn data_chain(GstPad *pad, GstObject *parent, GstBuffer *buf);
gboolean data_sink_event(GstPad *pad, GstObject *parent, GstEvent *event);

// At EOS, on the thread that ends the last sink: everything sent out, then the channels closed.
void drain_channels(GstRtcPeer *self);

/* A session is removed (remove_session, before its channels are let go): a warning naming the
 * messages sent on them not known to have arrived, unless none, or we are stopping or at EOS (the
 * drain counted them). A lost path (`why` starts with kLostPrefix) is always warned about. */
constexpr const char *kLostPrefix = "connection lost: ";
void warn_unconfirmed(GstRtcPeer *self, const std::string &peer,
                      const std::vector<GstWebRTCDataChannel *> &channels, const std::string &why);
/* A session is removed (remove_session, first): its channels send nothing more; with `keep` (a
 * new connection to the peer is coming: lost path, restart) each of our channels towards a peer
 * that acknowledges leaves what it has not had acknowledged for the next channel of its label
 * (without, the peer is gone: remove_session then calls forget_peer). */
void hand_over_channels(GstRtcPeer *self, const std::string &peer,
                        const std::vector<GstWebRTCDataChannel *> &channels, bool keep,
                        const std::string &why);
/* The peer is gone for good (removed without a new connection coming, or it left while one was
 * being made; "": every peer, when stopping): what waited for its new connection is counted in a
 * warning (`why`) and dropped, and what we knew of the streams it sent us is forgotten. */
void forget_peer(GstRtcPeer *self, const std::string &peer, const std::string &why);

} // namespace pointcast::rtc
