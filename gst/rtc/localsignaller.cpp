// SPDX-License-Identifier: LGPL-2.1-or-later
/* local://NAME — an in-process room, for tests of several rtcpeers in one process without any
 * server (like gst-plugins-bad's webrtcbin check tests). It follows the room protocol's rules:
 * register -> ready(peers present), the others get peer_joined; stop -> peer_left; messages to an
 * unknown peer report an error. `local://NAME?trickle=false` makes the peer ask for complete SDP,
 * to exercise the non-trickle path. */
#include "rtc/signaller.h"

#include <map>
#include <mutex>

namespace pointcast {
namespace {

struct Member {
  std::string id, type;
  bool trickle = true;
  GMainContext *ctx = nullptr; // not owned: valid only while the member is in its room
  SignallerEvents events;
  bool alive = true; // read and written only on ctx's thread
};

struct Registry {
  std::mutex lock;
  std::map<std::string, std::map<std::string, std::shared_ptr<Member>>> rooms;
};

Registry &registry()
{
  static Registry r;
  return r;
}

// Runs fn on m's context, later, if m is still registered then.
void post(const std::shared_ptr<Member> &m, std::function<void(Member &)> fn)
{
  struct Call {
    std::shared_ptr<Member> m;
    std::function<void(Member &)> fn;
  };
  auto *call = new Call{m, std::move(fn)};
  GSource *src = g_idle_source_new();
  g_source_set_callback(
      src,
      [](gpointer data) -> gboolean {
        auto *c = static_cast<Call *>(data);
        if (c->m->alive) c->fn(*c->m);
        return G_SOURCE_REMOVE;
      },
      call, [](gpointer data) { delete static_cast<Call *>(data); });
  g_source_attach(src, m->ctx);
  g_source_unref(src);
}

class LocalSignaller final : public Signaller {
public:
  LocalSignaller(const SignallerConfig &cfg, std::string room, bool trickle)
      : cfg_(cfg), room_(std::move(room)), trickle_(trickle)
  {
  }
  ~LocalSignaller() override { stop(); }

  void start(GMainContext *ctx, SignallerEvents events) override
  {
    me_ = std::make_shared<Member>();
    me_->id = cfg_.peer_id;
    me_->type = cfg_.peer_type;
    me_->trickle = trickle_;
    me_->ctx = ctx;
    me_->events = std::move(events);
    std::vector<std::pair<std::string, std::string>> present;
    std::string dup;
    {
      auto &reg = registry();
      std::lock_guard lk(reg.lock);
      auto &room = reg.rooms[room_];
      if (me_->id.empty()) {
        do me_->id = "local-" + std::to_string(g_random_int());
        while (room.count(me_->id));
      }
      if (room.count(me_->id)) {
        dup = me_->id;
      } else {
        for (auto &[id, m] : room) {
          present.emplace_back(id, m->type);
          post(m, [id = me_->id, type = me_->type](Member &to) {
            if (to.events.peer_joined) to.events.peer_joined(id, type);
          });
        }
        room[me_->id] = me_;
      }
    }
    if (!dup.empty()) {
      post(me_, [dup](Member &m) {
        if (m.events.error)
          m.events.error("peer id '" + dup + "' is already taken in this room", true);
      });
      return;
    }
    registered_ = true;
    post(me_, [present](Member &m) {
      if (m.events.ready) m.events.ready(present);
    });
  }

  void stop() override
  {
    if (!me_) return;
    me_->alive = false;
    if (registered_) {
      auto &reg = registry();
      std::lock_guard lk(reg.lock);
      auto &room = reg.rooms[room_];
      room.erase(me_->id);
      for (auto &[id, m] : room)
        post(m, [id = me_->id](Member &to) {
          if (to.events.peer_left) to.events.peer_left(id);
        });
      if (room.empty()) reg.rooms.erase(room_);
    }
    registered_ = false;
    me_.reset();
  }

  void send_sdp(const std::string &peer, const std::string &type, const std::string &sdp) override
  {
    deliver(peer, [from = me_->id, type, sdp](Member &to) {
      if (to.events.sdp) to.events.sdp(from, type, sdp);
    });
  }

  void send_candidate(const std::string &peer, const std::string &mid, int mline,
                      const std::string &candidate) override
  {
    deliver(peer, [from = me_->id, mid, mline, candidate](Member &to) {
      if (to.events.candidate) to.events.candidate(from, mid, mline, candidate);
    });
  }

  bool trickles() const override { return trickle_; }

  bool peer_trickles(const std::string &peer) const override
  {
    if (!trickle_) return false;
    auto &reg = registry();
    std::lock_guard lk(reg.lock);
    auto r = reg.rooms.find(room_);
    if (r == reg.rooms.end()) return true;
    auto m = r->second.find(peer);
    return m == r->second.end() || m->second->trickle;
  }

private:
  void deliver(const std::string &peer, std::function<void(Member &)> fn)
  {
    if (!me_) return;
    {
      // Posted under the lock: once a member has left (stop() takes this lock), its element may
      // free its context at any moment, and attaching a source to a freed context corrupts the
      // heap. A member still in the room has a live context.
      auto &reg = registry();
      std::lock_guard lk(reg.lock);
      auto r = reg.rooms.find(room_);
      if (r != reg.rooms.end()) {
        auto m = r->second.find(peer);
        if (m != r->second.end()) {
          post(m->second, std::move(fn));
          return;
        }
      }
    }
    post(me_, [peer](Member &m) {
      if (m.events.error) m.events.error("unknown target peer '" + peer + "'", false);
    });
  }

  SignallerConfig cfg_;
  std::string room_;
  bool trickle_;
  std::shared_ptr<Member> me_;
  bool registered_ = false;
};

} // namespace

std::unique_ptr<Signaller> make_local_signaller(const SignallerConfig &cfg, std::string *error)
{
  std::string rest = cfg.uri.substr(cfg.uri.find("://") + 3);
  bool trickle = true;
  auto q = rest.find('?');
  if (q != std::string::npos) {
    std::string query = rest.substr(q + 1);
    rest.resize(q);
    if (query == "trickle=false" || query == "trickle=0")
      trickle = false;
    else if (query != "trickle=true" && query != "trickle=1") {
      *error = "local:// signaling understands only '?trickle=false', not '?" + query + "'";
      return nullptr;
    }
  }
  if (rest.empty()) {
    *error = "local:// signaling needs a name: local://NAME";
    return nullptr;
  }
  return std::make_unique<LocalSignaller>(cfg, rest + "/" + cfg.room, trickle);
}

} // namespace pointcast
