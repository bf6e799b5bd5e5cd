// SPDX-License-Identifier: LGPL-2.1-or-later
/* janus://host:port/ROOM (januss:// over TLS) — a Janus VideoRoom through Janus's WebSocket API
 * (subprotocol "janus-protocol"). Janus is mapped onto the Signaller's virtual peers:
 *
 * - Publishing (role offerer/auto, no target): one session, one videoroom handle joined as a
 *   publisher; ready() announces one peer, "janus", of type "answerer". rtcpeer offers to it; the
 *   first offer goes out as a "publish" request (later ones as "configure"), and the jsep answer
 *   in Janus's event comes back as that peer's answer.
 * - Subscribing (role answerer, or a target): the first handle joins as a (silent) publisher only
 *   to learn the room's publishers; each publisher that matches the target (its display name or
 *   feed id; every publisher when there is no target) gets a subscriber handle and becomes a
 *   peer named by its display. Janus's jsep offer arrives as that peer's offer, rtcpeer's answer
 *   goes back in a "start" request. A publisher that leaves becomes peer_left.
 *
 * Candidates both ways are "trickle" messages; a keepalive goes every 25 s (Janus drops a session
 * after 60 s of silence). After the WebSocket drops we reconnect and "claim" the old session, so
 * its peer connections keep flowing; if Janus no longer knows it, everything starts afresh.
 *
 * Janus may be malicious: a message over sigcheck::kMaxMessageBytes closes the connection before
 * any JSON is parsed; every field is type-checked; only replies to our own transactions and
 * events from our own handles are acted on; the publishers we subscribe to are bounded. */
#include "rtc/signaller.h"
#include "rtc/sigcheck.h"
#include "rtc/sigutil.h"
#include "rtc/wsclient.h"

#include <gst/gst.h>
#include <libsoup/soup.h>

#include <functional>
#include <map>
#include <optional>

GST_DEBUG_CATEGORY_STATIC(pc_janus_debug);
#define GST_CAT_DEFAULT pc_janus_debug

namespace pointcast {
namespace {

constexpr guint kKeepaliveS = 25;
constexpr size_t kMaxFeeds = 64;        // subscriptions one rtcpeer keeps
constexpr size_t kMaxPending = 256;     // transactions waiting for a reply
constexpr size_t kMaxPublishers = 1024; // entries looked at in one publisher list
constexpr const char *kPublisherPeer = "janus";
constexpr const char *kPlugin = "janus.plugin.videoroom";

// A Janus id (session, handle, room, feed): an integer, or a string with string_ids.
struct JanusId {
  std::optional<gint64> num;
  std::string str;
  bool empty() const { return !num && str.empty(); }
  std::string text() const { return num ? std::to_string(*num) : str; }
  bool operator==(const JanusId &o) const { return num == o.num && str == o.str; }
};

std::optional<JanusId> id_of(JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member(o, name) : nullptr;
  if (!n || !JSON_NODE_HOLDS_VALUE(n)) return std::nullopt;
  if (json_node_get_value_type(n) == G_TYPE_INT64) {
    gint64 v = json_node_get_int(n);
    if (v <= 0) return std::nullopt;
    return JanusId{v, ""};
  }
  if (json_node_get_value_type(n) == G_TYPE_STRING) {
    std::string s = json_node_get_string(n);
    if (s.empty() || sigcheck::check_id("janus id", s)) return std::nullopt;
    return JanusId{std::nullopt, s};
  }
  return std::nullopt;
}

void add_id(JsonBuilder *b, const char *name, const JanusId &id)
{
  json_builder_set_member_name(b, name);
  if (id.num)
    json_builder_add_int_value(b, *id.num);
  else
    json_builder_add_string_value(b, id.str.c_str());
}

std::optional<std::string> str_of(JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member(o, name) : nullptr;
  if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
    return std::nullopt;
  return std::string(json_node_get_string(n));
}

JsonObject *obj_of(JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member(o, name) : nullptr;
  return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : nullptr;
}

JsonArray *arr_of(JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member(o, name) : nullptr;
  return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : nullptr;
}

class JanusSignaller final : public WsClient {
public:
  JanusSignaller(const SignallerConfig &cfg, std::string ws_uri, JanusId room, std::string channel)
      : WsClient(pc_janus_debug,
                 {"Janus", "Janus at " + ws_uri, "Janus connection closed", "message from Janus"},
                 {ws_uri, "janus-protocol", "", sigcheck::kMaxMessageBytes, 0}),
        cfg_(cfg), room_(std::move(room)), channel_(std::move(channel)),
        subscribe_(cfg.role == Role::Answerer || !cfg.target.empty())
  {
  }
  ~JanusSignaller() override { stop(); }

  void send_sdp(const std::string &peer, const std::string &type, const std::string &sdp) override
  {
    GST_LOG("%s to %s:\n%s", type.c_str(), peer.c_str(), sdp.c_str());
    if (!subscribe_ && peer == pub_peer_ && type == "offer" && !pub_handle_.empty()) {
      // "publish" once; renegotiations of a running publisher are "configure".
      bool first = !published_;
      published_ = true;
      message(pub_handle_, first ? "publish" : "configure", type, sdp, [](JsonBuilder *b) {
        // data channels are relayed only when the publisher asks for them
        json_builder_set_member_name(b, "data");
        json_builder_add_boolean_value(b, TRUE);
      });
      return;
    }
    if (subscribe_ && type == "answer") {
      if (Feed *f = feed_by_peer(peer); f && !f->handle.empty()) {
        message(f->handle, "start", type, sdp, nullptr);
        return;
      }
    }
    report_error("cannot send a " + type + " to '" + peer + "' through Janus", false);
  }

  void send_candidate(const std::string &peer, const std::string &mid, int mline,
                      const std::string &candidate) override
  {
    JanusId handle;
    if (!subscribe_ && peer == pub_peer_)
      handle = pub_handle_;
    else if (Feed *f = feed_by_peer(peer))
      handle = f->handle;
    if (handle.empty() || !conn_) return;
    JsonBuilder *b = begin("trickle", session_id_);
    add_id(b, "handle_id", handle);
    json_builder_set_member_name(b, "candidate");
    json_builder_begin_object(b);
    if (candidate.empty()) {
      json_builder_set_member_name(b, "completed");
      json_builder_add_boolean_value(b, TRUE);
    } else {
      json_builder_set_member_name(b, "candidate");
      json_builder_add_string_value(b, candidate.c_str());
      if (!mid.empty()) {
        json_builder_set_member_name(b, "sdpMid");
        json_builder_add_string_value(b, mid.c_str());
      }
      if (mline >= 0) {
        json_builder_set_member_name(b, "sdpMLineIndex");
        json_builder_add_int_value(b, mline);
      }
    }
    json_builder_end_object(b);
    send_text(finish(b));
  }

  bool trickles() const override { return true; }

  bool answerer_opens_channel(const std::string &peer) const override
  {
    // Janus relays a publisher's data to a subscriber only once the subscriber's SCTP is in
    // use (janus.js opens a default channel for the same reason).
    for (auto &f : feeds_)
      if (f.peer == peer) return true;
    return false;
  }

  std::string data_label(const std::string &peer) const override
  {
    return feed_by_peer(peer) ? channel_ : "";
  }

  Role resolve_role(Role requested) const override
  {
    return subscribe_ ? Role::Answerer : Role::Offerer;
  }

private:
  struct Feed {
    JanusId id;
    std::string peer;
    JanusId handle; // empty until attached
    bool announced = false;
  };
  using Reply = std::function<void(JsonObject *msg)>;

  void clear_source(guint *id) { mainctx::clear_source(ctx_, id); }

  void on_open() override
  {
    if (!session_id_.empty())
      claim_session();
    else
      create_session();
  }

  void on_stopping() override
  {
    clear_source(&keepalive_);
    if (conn_ && !session_id_.empty()) send_text(finish(begin("destroy", session_id_)));
  }

  void on_dropped() override
  {
    clear_source(&keepalive_);
    pending_.clear();
  }

  /* --- requests --- */

  // {"janus": verb, "transaction": T[, "session_id": S]} left open for more members.
  JsonBuilder *begin(const char *verb, const JanusId &session, std::string *txn = nullptr)
  {
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "janus");
    json_builder_add_string_value(b, verb);
    std::string t = "pc" + std::to_string(++next_txn_);
    json_builder_set_member_name(b, "transaction");
    json_builder_add_string_value(b, t.c_str());
    if (!session.empty()) add_id(b, "session_id", session);
    if (txn) *txn = t;
    return b;
  }

  std::string finish(JsonBuilder *b)
  {
    json_builder_end_object(b);
    std::string text = sigutil::to_line(b);
    g_object_unref(b);
    return text;
  }

  void request(JsonBuilder *b, const std::string &txn, Reply reply)
  {
    if (pending_.size() >= kMaxPending) pending_.erase(pending_.begin());
    if (reply) pending_[txn] = std::move(reply);
    send_text(finish(b));
  }

  // A videoroom request on a handle, with an optional jsep; the reply (sync "success" or async
  // "event") goes to `reply`.
  void message(const JanusId &handle, const char *req, const std::string &jsep_type,
               const std::string &sdp, std::function<void(JsonBuilder *)> body_extra,
               Reply reply = nullptr)
  {
    std::string txn;
    JsonBuilder *b = begin("message", session_id_, &txn);
    add_id(b, "handle_id", handle);
    json_builder_set_member_name(b, "body");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "request");
    json_builder_add_string_value(b, req);
    if (body_extra) body_extra(b);
    json_builder_end_object(b);
    if (!sdp.empty()) {
      json_builder_set_member_name(b, "jsep");
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "type");
      json_builder_add_string_value(b, jsep_type.c_str());
      json_builder_set_member_name(b, "sdp");
      json_builder_add_string_value(b, sdp.c_str());
      json_builder_end_object(b);
    }
    request(b, txn, std::move(reply));
  }

  void create_session()
  {
    std::string txn;
    JsonBuilder *b = begin("create", {}, &txn);
    request(b, txn, [this](JsonObject *m) {
      auto id = id_of(obj_of(m, "data"), "id");
      if (!id) return fail("Janus did not create a session", m);
      session_id_ = *id;
      start_keepalive();
      attach([this](JanusId h) {
        pub_handle_ = h;
        // Either side may come first: whoever does creates the room.
        create_room();
      });
    });
  }

  void claim_session()
  {
    std::string txn;
    JsonBuilder *b = begin("claim", session_id_, &txn);
    request(b, txn, [this](JsonObject *m) {
      if (str_of(m, "janus") != std::string("success")) {
        // Janus has dropped it (timeout, restart): its peer connections are gone too.
        GST_INFO("Janus no longer knows session %s; starting a new one",
                 session_id_.text().c_str());
        forget_session();
        create_session();
        return;
      }
      start_keepalive();
      set_ready();
      std::vector<std::pair<std::string, std::string>> present;
      if (!subscribe_) present.emplace_back(pub_peer_, "answerer");
      if (events_.ready) events_.ready(present);
    });
  }

  void forget_session()
  {
    session_id_ = {};
    pub_handle_ = {};
    published_ = false;
    if (!subscribe_ && events_.peer_left) events_.peer_left(pub_peer_);
    auto feeds = std::move(feeds_);
    feeds_.clear();
    for (auto &f : feeds)
      if (f.announced && events_.peer_left) events_.peer_left(f.peer);
    // The peer connections of the old session are gone with it: the next session's peers get
    // new names, so that rtcpeer makes new connections instead of renegotiating dead ones.
    generation_++;
    pub_peer_ = std::string(kPublisherPeer) + "-" + std::to_string(generation_);
  }

  void attach(std::function<void(JanusId)> done)
  {
    std::string txn;
    JsonBuilder *b = begin("attach", session_id_, &txn);
    json_builder_set_member_name(b, "plugin");
    json_builder_add_string_value(b, kPlugin);
    request(b, txn, [this, done](JsonObject *m) {
      auto id = id_of(obj_of(m, "data"), "id");
      if (!id) return fail("Janus did not attach the VideoRoom plugin", m);
      done(*id);
    });
  }

  void start_keepalive()
  {
    clear_source(&keepalive_);
    keepalive_ = mainctx::timeout_seconds_id(ctx_, kKeepaliveS, [this] {
      keepalive_ = 0;
      if (!conn_ || session_id_.empty()) return;
      send_text(finish(begin("keepalive", session_id_)));
      start_keepalive();
    });
  }

  void create_room()
  {
    // The room may exist already (error 427), which is as good.
    message(
        pub_handle_, "create", "", "",
        [this](JsonBuilder *b) {
          add_id(b, "room", room_);
          json_builder_set_member_name(b, "publishers");
          json_builder_add_int_value(b, 16);
          json_builder_set_member_name(b, "videocodec");
          json_builder_add_string_value(b, "vp8,vp9,h264");
        },
        [this](JsonObject *) { join_room(); });
  }

  void join_room()
  {
    message(
        pub_handle_, "join", "", "",
        [this](JsonBuilder *b) {
          add_id(b, "room", room_);
          json_builder_set_member_name(b, "ptype");
          json_builder_add_string_value(b, "publisher");
          json_builder_set_member_name(b, "display");
          json_builder_add_string_value(b, cfg_.peer_id.c_str());
        },
        [this](JsonObject *m) {
          JsonObject *data = obj_of(obj_of(m, "plugindata"), "data");
          if (str_of(data, "videoroom") != std::string("joined"))
            return fail("could not join Janus room " + room_.text(), m);
          set_ready();
          std::vector<std::pair<std::string, std::string>> present;
          if (!subscribe_) present.emplace_back(pub_peer_, "answerer");
          if (events_.ready) events_.ready(present);
          publishers(arr_of(data, "publishers"));
        });
  }

  // A list of publishers (in "joined" or a "publishers" event): subscribe to those we want.
  void publishers(JsonArray *list)
  {
    if (!subscribe_ || !list) return;
    guint n = std::min<guint>(json_array_get_length(list), kMaxPublishers);
    for (guint i = 0; i < n; i++) {
      JsonNode *node = json_array_get_element(list, i);
      if (!JSON_NODE_HOLDS_OBJECT(node)) continue;
      JsonObject *pub = json_node_get_object(node);
      auto id = id_of(pub, "id");
      if (!id) continue;
      std::string display = str_of(pub, "display").value_or("");
      if (!cfg_.target.empty() && display != cfg_.target && id->text() != cfg_.target) continue;
      if (feed_by_id(*id)) continue;
      if (feeds_.size() >= kMaxFeeds) {
        report_error("not subscribing to more than " + std::to_string(kMaxFeeds) +
                         " Janus publishers",
                     false);
        return;
      }
      Feed f;
      f.id = *id;
      // The peer is named by the publisher's display (a pointcast peer id), else by its feed.
      bool usable = !display.empty() && !sigcheck::check_id("peer id", display) &&
          display.rfind(kPublisherPeer, 0) != 0 && !feed_by_peer(display);
      f.peer = usable ? display : "janus-feed-" + id->text();
      if (generation_) f.peer += "-" + std::to_string(generation_);
      feeds_.push_back(f);
      subscribe(*id);
    }
  }

  void subscribe(JanusId feed)
  {
    attach([this, feed](JanusId h) {
      Feed *f = feed_by_id(feed);
      if (!f) return; // left meanwhile
      f->handle = h;
      message(h, "join", "", "", [this, feed](JsonBuilder *b) {
        add_id(b, "room", room_);
        json_builder_set_member_name(b, "ptype");
        json_builder_add_string_value(b, "subscriber");
        add_id(b, "feed", feed);
      });
    });
  }

  void unpublished(const JanusId &feed)
  {
    for (auto it = feeds_.begin(); it != feeds_.end(); ++it) {
      if (!(it->id == feed)) continue;
      Feed f = *it;
      feeds_.erase(it);
      if (!f.handle.empty()) {
        JsonBuilder *b = begin("detach", session_id_);
        add_id(b, "handle_id", f.handle);
        send_text(finish(b));
      }
      if (f.announced && events_.peer_left) events_.peer_left(f.peer);
      return;
    }
  }

  Feed *feed_by_id(const JanusId &id)
  {
    for (auto &f : feeds_)
      if (f.id == id) return &f;
    return nullptr;
  }
  Feed *feed_by_peer(const std::string &peer)
  {
    for (auto &f : feeds_)
      if (f.peer == peer) return &f;
    return nullptr;
  }
  const Feed *feed_by_peer(const std::string &peer) const
  {
    for (auto &f : feeds_)
      if (f.peer == peer) return &f;
    return nullptr;
  }
  Feed *feed_by_handle(const JanusId &h)
  {
    for (auto &f : feeds_)
      if (f.handle == h) return &f;
    return nullptr;
  }

  void fail(const std::string &what, JsonObject *m)
  {
    std::string why;
    if (JsonObject *e = obj_of(m, "error")) why = str_of(e, "reason").value_or("");
    JsonObject *data = obj_of(obj_of(m, "plugindata"), "data");
    if (why.empty()) why = str_of(data, "error").value_or("");
    report_error(what + (why.empty() ? "" : ": " + sigcheck::printable(why, 200)) + " (retrying)",
                 false);
    // Start over on a fresh connection after the backoff.
    forget_session();
    drop_connection(true);
    connection_lost("Janus refused a request");
  }

  /* --- incoming --- */

  void on_text(std::string_view text) override
  {
    std::string why;
    auto parsed = sigutil::parse_object(text.data(), gssize(text.size()), &why);
    if (!parsed) return malformed(why, text);
    handle(parsed->obj, text);
  }

  void handle(JsonObject *m, std::string_view text)
  {
    auto verb = str_of(m, "janus");
    if (!verb) return malformed("no \"janus\" member", text);
    if (*verb == "ack") return; // an async request was queued; its event comes later
    if (*verb == "timeout") {
      // Janus expired our session: its peer connections are gone.
      forget_session();
      return connection_lost("Janus session timed out");
    }
    auto sender = id_of(m, "sender");
    if (*verb == "event" && sender) event(*sender, m);
    if (*verb == "trickle" && sender) return trickle(*sender, obj_of(m, "candidate"));
    if ((*verb == "hangup" || *verb == "detached") && sender) {
      if (Feed *f = feed_by_handle(*sender)) {
        GST_INFO("Janus hung up the subscription to %s", f->peer.c_str());
        JanusId feed = f->id;
        unpublished(feed);
      }
      return;
    }
    // Replies to our transactions: success / error / event with a transaction.
    if (auto txn = str_of(m, "transaction")) {
      auto it = pending_.find(*txn);
      if (it == pending_.end()) return;
      if (*verb == "error") {
        JsonObject *e = obj_of(m, "error");
        report_error("Janus error: " + sigcheck::printable(str_of(e, "reason").value_or("?"), 200),
                     false);
      }
      if (*verb == "success" || *verb == "error" || *verb == "event") {
        Reply reply = std::move(it->second);
        pending_.erase(it);
        reply(m);
      }
    }
  }

  void event(const JanusId &sender, JsonObject *m)
  {
    JsonObject *data = obj_of(obj_of(m, "plugindata"), "data");
    JsonObject *jsep = obj_of(m, "jsep");
    if (sender == pub_handle_) {
      if (data) {
        publishers(arr_of(data, "publishers"));
        for (const char *k : {"unpublished", "leaving"})
          if (auto feed = id_of(data, k)) unpublished(*feed);
        if (auto err = str_of(data, "error"); err && !str_of(m, "transaction"))
          report_error("Janus: " + sigcheck::printable(*err, 200), false);
      }
      if (jsep && !subscribe_) {
        auto type = str_of(jsep, "type");
        auto sdp = str_of(jsep, "sdp");
        if (type == std::string("answer") && sdp && events_.sdp)
          events_.sdp(pub_peer_, *type, *sdp);
      }
      return;
    }
    Feed *f = feed_by_handle(sender);
    if (!f) return;
    if (data && str_of(data, "error")) {
      report_error("Janus refused the subscription to " + f->peer + ": " +
                       sigcheck::printable(*str_of(data, "error"), 200),
                   false);
      return;
    }
    if (jsep) {
      auto type = str_of(jsep, "type");
      auto sdp = str_of(jsep, "sdp");
      if (type != std::string("offer") || !sdp) return;
      if (!f->announced) {
        f->announced = true;
        if (events_.peer_joined) events_.peer_joined(f->peer, "janus");
        f = feed_by_handle(sender); // the handler may have changed feeds_
        if (!f) return;
      }
      if (events_.sdp) events_.sdp(f->peer, *type, *sdp);
    }
  }

  void trickle(const JanusId &sender, JsonObject *c)
  {
    if (!c || !events_.candidate) return;
    std::string peer;
    if (sender == pub_handle_ && !subscribe_)
      peer = pub_peer_;
    else if (Feed *f = feed_by_handle(sender))
      peer = f->peer;
    else
      return;
    if (JsonNode *done = json_object_get_member(c, "completed");
        done && JSON_NODE_HOLDS_VALUE(done) && json_node_get_value_type(done) == G_TYPE_BOOLEAN) {
      events_.candidate(peer, "", 0, "");
      return;
    }
    auto cand = str_of(c, "candidate");
    if (!cand) return;
    std::string mid = str_of(c, "sdpMid").value_or("");
    int mline = -1;
    if (JsonNode *n = json_object_get_member(c, "sdpMLineIndex");
        n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64) {
      gint64 v = json_node_get_int(n);
      if (v >= 0 && v <= sigcheck::kMaxMLine) mline = int(v);
    }
    events_.candidate(peer, mid, mline, *cand);
  }

  SignallerConfig cfg_;
  JanusId room_;
  std::string channel_; // the label a subscription's data comes out as
  bool subscribe_;
  bool published_ = false;
  guint keepalive_ = 0;
  guint64 next_txn_ = 0;
  JanusId session_id_;
  JanusId pub_handle_;
  std::string pub_peer_ = kPublisherPeer; // the publishing peer connection's name
  unsigned generation_ = 0;               // Janus sessions lost so far
  std::map<std::string, Reply> pending_;
  std::vector<Feed> feeds_;
};

} // namespace

std::unique_ptr<Signaller> make_janus_signaller(const SignallerConfig &cfg, std::string *error)
{
  sigutil::debug_category_once(&pc_janus_debug, "rtcpeer-janus", "rtcpeer Janus signaller");
  auto uri = sigutil::parse_signaling_uri(cfg.uri, G_URI_FLAGS_NONE, nullptr);
  if (!uri || uri->host.empty())
    return sigutil::bad_uri(error, cfg.uri, "expected janus://host:port/ROOM");
  std::string room = uri->path;
  while (!room.empty() && room.front() == '/') room.erase(0, 1);
  if (room.empty() || room.find('/') != std::string::npos || sigcheck::check_id("room", room))
    return sigutil::bad_uri(error, cfg.uri,
                            "expected one room after the port: janus://host:port/ROOM");
  JanusId id;
  // Numeric rooms are integers for Janus (its default); others need string_ids in its config.
  if (room.find_first_not_of("0123456789") == std::string::npos && room.size() <= 15)
    id.num = g_ascii_strtoll(room.c_str(), nullptr, 10);
  else
    id.str = room;
  if (id.num && *id.num <= 0) return sigutil::bad_uri(error, cfg.uri, "room 0 is not a room");
  // ?channel=NAME: the src pad (data_NAME) a subscription's data comes out of; Janus merges
  // all of a publisher's channels into one and drops their labels.
  std::string channel = "points";
  if (GUri *g = g_uri_parse(cfg.uri.c_str(), G_URI_FLAGS_NONE, nullptr)) {
    if (const char *q = g_uri_get_query(g)) {
      if (GHashTable *params = g_uri_parse_params(q, -1, "&", G_URI_PARAMS_NONE, nullptr)) {
        if (auto *c = static_cast<const char *>(g_hash_table_lookup(params, "channel")))
          channel = c;
        g_hash_table_unref(params);
      }
    }
    g_uri_unref(g);
  }
  if (channel.empty() || sigcheck::check_id("channel", channel))
    return sigutil::bad_uri(error, cfg.uri, "bad ?channel= label");
  bool tls = uri->scheme == "januss";
  std::string ws = std::string(tls ? "wss://" : "ws://") +
      (uri->host.find(':') != std::string::npos ? "[" + uri->host + "]" : uri->host) + ":" +
      std::to_string(uri->port > 0 ? uri->port : 8188) + "/";
  return std::make_unique<JanusSignaller>(cfg, ws, id, channel);
}

} // namespace pointcast
