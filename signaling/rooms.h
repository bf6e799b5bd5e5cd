// SPDX-License-Identifier: LGPL-2.1-or-later
/* The signaling daemon's protocol handling as a pure state machine: no sockets, no clock of its
 * own, no main loop. The transport (server.cpp) feeds it events for opaque client handles and
 * carries out what it asks for (send text to a handle, close a handle, answer an HTTP offer).
 * Tests drive it directly.
 *
 * The /offer bridge: an HTTP offer becomes a virtual peer "http-<n>" in the room. Its offer goes
 * to one answering client, chosen in this order:
 *   1. the client named by the request's target (when given and registered in the room);
 *   2. the earliest registered client whose client_type is "answerer" or "receiver";
 *   3. the earliest registered client whose client_type is not "browser".
 * The answering client gets {"type":"offer","from_id":"http-<n>","sdp":{..},"trickle":false} and
 * replies {"type":"answer","target_id":"http-<n>",...}. Candidates it trickles to "http-<n>"
 * (before or up to `candidate_grace` after the answer) are merged into the returned SDP; an answer
 * with trickle=false, an a=end-of-candidates line or an end-of-candidates message completes at
 * once. In a cluster (set_cluster) the virtual peer is "http-<n>-<instance>", and answerers on
 * other daemons are chosen in the same order after the local ones of each tier. */
#pragma once

#include "protocol.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pointcast::signaling {

using Handle = std::uint64_t;
using Clock = std::chrono::steady_clock;
using Time = Clock::time_point;

struct Limits {
  std::size_t max_message_bytes = 64 * 1024; // text frame size; larger: error
  std::size_t max_peers_per_room = 100;
  double max_messages_per_second = 100; // sustained, per client; 0 = unlimited
  double burst_seconds = 2;             // the rate bucket holds this many seconds' worth
  std::size_t max_clients = 50000;      // WebSocket connections; 0 = unlimited
  std::size_t max_connections_per_address =
      256;                             // WebSocket connections from one address; 0 = unlimited
  std::size_t max_pending_offers = 64; // HTTP /offer requests waiting for an answer; 0 = unlimited
  std::size_t max_pending_offers_per_address = 8; // ... from one address; 0 = unlimited
  double max_strikes = 50; // rejected messages (decaying 1/s) before disconnect
  std::chrono::milliseconds register_timeout{30000}; // connected but never registered: closed
  std::chrono::milliseconds offer_timeout{10000};    // /offer: answerer must answer within this
  std::chrono::milliseconds candidate_grace{1000};   // /offer: trickled candidates after the answer
  // A register for an id that a connection holds: that connection is pinged and must be heard
  // from within this, or it is dropped and the id goes to the newcomer (a restarted peer whose
  // old connection vanished without a close). 0: refuse at once, as before.
  std::chrono::milliseconds duplicate_probe{2000};
};

// WebSocket close codes the state machine asks for.
inline constexpr std::uint16_t kClosePolicy = 1008;   // abuse: too many rejected messages
inline constexpr std::uint16_t kCloseTryAgain = 1013; // server full
inline constexpr std::uint16_t kCloseIdle = 4000;     // never registered
inline constexpr std::uint16_t kCloseReplaced = 4001; // silent; its id was registered again

struct Metrics {
  std::uint64_t connections_total = 0;
  std::uint64_t registrations_total = 0;
  std::uint64_t messages_received_total = 0;
  std::uint64_t messages_relayed_total = 0; // deliveries of offer/answer/ice_candidate
  std::uint64_t errors_total = 0;           // error replies sent
  std::uint64_t abuse_disconnects_total = 0;
  std::uint64_t address_limit_total = 0; // connections refused by the per-address limit
  std::uint64_t http_offers_total = 0;
  std::uint64_t http_offers_answered_total = 0;
  std::uint64_t http_offers_failed_total = 0;
  std::uint64_t duplicate_probes_total = 0;   // registrations of a held id that pinged its holder
  std::uint64_t duplicate_replaced_total = 0; // ... whose holder did not answer: id taken over
};

struct OfferResult { // outcome of an HTTP offer, reported once per offer id
  std::uint64_t offer_id = 0;
  int status = 200;       // 200 answered; 503 nobody answered / answerer left
  std::string answer_sdp; // complete SDP when status == 200
  std::string reason;     // why, when status != 200
};

struct Actions {
  struct Send {
    Handle to;
    std::uint32_t text; // index into texts (a broadcast shares one text)
  };
  struct Close {
    Handle client;
    std::uint16_t code;
    std::string reason;
  };
  std::vector<std::string> texts;
  std::vector<Send> sends;
  std::vector<Close> closes;
  std::vector<OfferResult> offers;
  // Ping these connections now; report any frame that arrives from them after it as alive().
  std::vector<Handle> probes;

  void clear()
  {
    texts.clear();
    sends.clear();
    closes.clear();
    offers.clear();
    probes.clear();
  }
  bool empty() const { return sends.empty() && closes.empty() && offers.empty() && probes.empty(); }
};

/* What Rooms tells the other daemons of a cluster (cluster.h implements it over Redis). Called
 * synchronously from the events; the implementation queues its own I/O. Ids and texts are
 * validated before they get here. */
class ClusterLink {
public:
  virtual ~ClusterLink() = default;
  virtual const std::string &instance() const = 0;
  /* A local client wants to enter a room (or, hidden, an HTTP offer's virtual peer with a remote
   * answerer was made): claims the id cluster-wide and, once it holds, announces the member.
   * True: the outcome comes back as Rooms::claim_done(client, ...); false: Redis is away, the
   * member is announced when it is back. */
  virtual bool claim(const std::string &room, const std::string &id, const std::string &type,
                     bool hidden, Handle client) = 0;
  virtual void left(const std::string &room, const std::string &id) = 0;
  // The first local member entered a room / the last one left it.
  virtual void room_used(const std::string &room, bool used) = 0;
  // Relayed text (validated protocol JSON, from_id set) for one remote client / a whole room.
  virtual void send(const std::string &instance, const std::string &room, const std::string &to,
                    const std::string &text) = 0;
  virtual void broadcast(const std::string &room, const std::string &text) = 0;
  /* A duplicate id's holder on another daemon (see Rooms): alive=false asks that daemon to ping
   * its client `id` (it answers alive=true if heard from, else drops it: the member's leave
   * frees the id); arrives there as Rooms::remote_probe. */
  virtual void probe(const std::string &instance, const std::string &room, const std::string &id,
                     bool alive) = 0;
  virtual std::string prometheus() const = 0;
};

struct OfferStart {
  std::uint64_t offer_id = 0; // 0: failed to start, see status/reason
  std::string peer_id;        // the virtual peer, "http-<n>"
  std::string answerer;
  int status = 0;
  std::string reason;
};

class Rooms {
public:
  explicit Rooms(Limits limits = {});
  ~Rooms();
  Rooms(const Rooms &) = delete;
  Rooms &operator=(const Rooms &) = delete;

  // Clients that connect unauthenticated must send this token in their register message.
  void set_token(std::string token) { token_ = std::move(token); }

  /* Events. Each appends what to do to actions(); the caller drains and clear()s it.
   * remote: for log lines ("addr:port"); address: the client's IP, which the per-address limits
   * and the rate-limit state (kept across reconnects) are keyed by; authenticated: the upgrade
   * request carried the token (or none is needed), else the register message must. */
  void connect(Handle h, Time now, std::string_view remote = {}, std::string_view address = {},
               bool authenticated = true);
  void text(Handle h, std::string_view text, Time now);
  void binary(Handle h, std::size_t size, Time now);
  void disconnect(Handle h, Time now);
  // A frame arrived from a connection asked for in Actions::probes (since that ping was sent).
  void alive(Handle h, Time now);
  void tick(Time now); // timeouts; call every few hundred ms

  /* Cluster (set_cluster: nullptr, the default, is one daemon on its own). Rooms keeps a view of
   * the other daemons' members; the link feeds it with what arrives from them, and every input
   * is checked as untrusted (another daemon may be buggy): bad ones are dropped and counted. */
  void set_cluster(ClusterLink *link) { cluster_ = link; }
  // Returns false (dropped) when the announcement is invalid or conflicts.
  bool remote_joined(std::string_view instance, std::string_view room, std::string_view id,
                     std::string_view type, bool hidden);
  void remote_left(std::string_view instance, std::string_view room, std::string_view id);
  // Every member of a daemon that died (or whose state is being replaced) leaves.
  void remote_gone(std::string_view instance);
  // The full member list of a daemon (room, id, type, hidden), replacing what was known of it.
  struct RemoteEntry {
    std::string room, id, type;
    bool hidden = false;
  };
  void remote_sync(std::string_view instance, const std::vector<RemoteEntry> &members);
  // Relayed text from a client on another daemon, to one local client (to non-empty) or to
  // every local member of the room. False: invalid, dropped.
  bool remote_text(std::string_view instance, std::string_view room, std::string_view to,
                   std::string_view text, Time now);
  // Another daemon asks us to probe our client `id` (alive=false), or says its client answered
  // our request (alive=true). False: invalid or unexpected, dropped.
  bool remote_probe(std::string_view instance, std::string_view room, std::string_view id,
                    bool alive, Time now);
  // Outcome of claim(): ok, the registration completes; else duplicate_client_id.
  void claim_done(Handle client, std::string_view room, std::string_view id, bool ok, Time now);
  // A re-announcement found another daemon holding a local client's id: that client loses it.
  void claim_lost(std::string_view room, std::string_view id);
  // Local clients (room, id, type) and announced virtual peers (type "http", hidden), for a
  // re-announcement after Redis came back.
  std::vector<RemoteEntry> local_members() const;
  std::vector<std::string> local_rooms() const;
  std::vector<std::string> remote_instances() const;
  std::size_t remote_clients() const { return remote_visible_; }
  std::size_t cluster_rooms() const;
  std::uint64_t cluster_dropped() const { return cluster_dropped_; }
  // Counts (and logs, at most once a second) a dropped input from the cluster; returns false.
  bool drop_remote(const char *why);

  // HTTP /offer bridge.
  OfferStart begin_offer(std::string_view room, std::string_view sdp, std::string_view target,
                         Time now, std::string_view address = {});
  // The HTTP side gave up (client went away); the answerer is told the virtual peer left.
  void end_offer(std::uint64_t offer_id);
  // WHIP DELETE of a finished offer's resource: tells the answerer the virtual peer left.
  bool end_session(std::string_view peer_id);

  Actions &actions() { return actions_; }
  const Metrics &metrics() const { return metrics_; }
  const Limits &limits() const { return limits_; }
  std::size_t clients() const;
  std::size_t registered_clients() const;
  std::size_t rooms() const;
  std::size_t pending_offers() const;
  // Prometheus text exposition of the gauges and counters above.
  std::string prometheus() const;

  struct Client;
  struct Room;
  struct Bridge;
  struct Address;

private:
  void reply_error(Client &c, const char *code, std::string message);
  void strike(Client &c, Time now, const char *why);
  void on_register(Client &c, protocol::Register &reg, Time now);
  enum class ProbeEnd { Alive, Silent, Gone, Unanswered };
  struct Probe;
  void start_probe(Client &c, protocol::Register &reg, Probe p, const std::string &holder);
  void end_probe(std::string key, ProbeEnd how, Time now); // key by value: callers pass map keys
  void complete_register(Client &c, std::string room_id, std::string id, std::string type);
  void relay(Client &c, std::string_view raw, const protocol::Message &msg,
             const std::optional<std::string> &target, bool has_from, Time now);
  void to_bridge(Client *c, Bridge &b, const protocol::Message &msg, Time now);
  void finish_bridge(Bridge &b, int status, std::string reason);
  void leave_room(Client &c);
  void close(Client &c, std::uint16_t code, std::string reason);
  std::uint32_t push_text(std::string s);

  Limits limits_;
  Metrics metrics_;
  Actions actions_;
  std::unordered_map<Handle, std::unique_ptr<Client>> clients_;
  std::unordered_map<std::string, std::unique_ptr<Room>> rooms_;
  std::map<std::uint64_t, std::unique_ptr<Bridge>> bridges_;     // by offer id
  std::unordered_map<std::string, std::uint64_t> bridge_by_peer; // virtual peer id -> offer id
  std::uint64_t next_offer_ = 1;
  std::size_t registered_ = 0;
  std::string token_;
  // Per client IP: open connections, pending offers, and the rate/strike state of its last
  // closed connection (so reconnecting does not refill the bucket). Idle entries expire in tick().
  std::unordered_map<std::string, std::unique_ptr<Address>> addresses_;
  Address &address(const std::string &ip);
  void erase_bridge(Bridge &b);
  void tell_answerer_left(Bridge &b);

  struct RemoteMember {
    std::string instance;
    std::string type;
    bool hidden = false;
  };
  // Other daemons' members by room, then by client id.
  std::unordered_map<std::string, std::map<std::string, RemoteMember>> remote_;
  std::size_t remote_visible_ = 0, remote_total_ = 0;
  std::unordered_map<std::string, Handle> claiming_; // room + '\n' + id -> registering client
  // Registrations of an id held by a connection that was pinged (room + '\n' + id): the holder
  // keeps the id if it is heard from by the deadline. One newcomer per id; others are refused.
  // The holder is a local client (holder != 0) or on daemon holder_instance; the newcomer a
  // local client (newcomer != 0) or a registration on daemon asker that asked us.
  struct Probe {
    Handle holder = 0, newcomer = 0;
    std::string room, id, holder_instance, asker;
    Time deadline;
  };
  std::map<std::string, Probe> probes_;
  std::unordered_map<Handle, std::string> probed_; // holder -> its probe's key
  // room + '\n' + a remote HTTP offer's virtual peer -> the local client it was offered to
  std::unordered_map<std::string, Handle> remote_bridge_answerer_;
  std::uint64_t cluster_dropped_ = 0;
  Time now_{}; // of the last event that had a time: for the events from the cluster that have none
  Time last_drop_log_{};
  ClusterLink *cluster_ = nullptr;
  void offer_settled(Bridge &b);
};

/* The answer of a POST /offer with what the answerer trickled: sdp::with_candidates (Merge) puts
 * each candidate into its m-section (by sdpMLineIndex, else by mid), once. */
std::string merge_candidates(std::string_view sdp,
                             const std::vector<protocol::IceCandidate> &cands);

} // namespace pointcast::signaling
