// SPDX-License-Identifier: LGPL-2.1-or-later
/* tcp://host:port — aiortc's TcpSocketSignaling (aiortc/contrib/signaling.py, aiortc 1.4.0).
 *
 * Wire format: one JSON object per line (UTF-8, '\n'):
 *   {"sdp": "...", "type": "offer"|"answer"}
 *   {"candidate": "candidate:...", "id": sdpMid, "label": sdpMLineIndex, "type": "candidate"}
 *   {"type": "bye"}
 * aiortc builds RTCSessionDescription(**message), so SDP lines carry exactly "sdp" and "type".
 *
 * Roles, as in aiortc: the offerer listens (aiortc starts its server on its first send()) and the
 * answerer connects (on its first receive()). aiortc's answerer fails at once when nobody listens
 * yet; ours retries with backoff (100 ms doubling to 2 s) until the offerer is up, and connects
 * again after the offerer goes away, ready for the next one (the backoff starts over only after
 * a connection that lasted 5 s). Our offerer accepts any number of
 * connections, one remote peer each, and offers to each.
 *
 * resolve_role(auto): answerer (connect to host:port), unless host is a wildcard address
 * (0.0.0.0, ::) — one can only listen there — which makes it the offerer. The signaller follows
 * resolve_role(cfg.role) itself, so the element must pass its role property in the config.
 *
 * aiortc does not trickle: trickles() is false (complete SDP); candidates the remote sends anyway
 * are accepted. A bad line is reported (error, not fatal) and skipped; the connection stays.
 *
 * The remote is untrusted: lines are at most sigcheck::kMaxMessageBytes (a longer one is reported
 * and skipped without being buffered), decoded by tcpwire::parse_line, and a listening offerer
 * keeps at most kMaxConnections answerers (one peer connection each); more are refused. */
#include "signaller.h"
#include "sigcheck.h"
#include "sigutil.h"
#include "tcpwire.h"

#include <gio/gio.h>
#include <gst/gst.h>

#include <deque>
#include <map>
#include <memory>
#include <mutex>

GST_DEBUG_CATEGORY_STATIC(pc_tcpsig_debug);
#define GST_CAT_DEFAULT pc_tcpsig_debug

namespace pointcast {
namespace {

constexpr int kDefaultPort = 1234;       // aiortc's --signaling-port default
constexpr unsigned kMaxConnections = 16; // answerers one listening offerer serves at once
constexpr unsigned kRetryFirstMs = 100, kRetryMaxMs = 2000;
constexpr gint64 kStableMs = 5000; // a connection this long resets the reconnect backoff

bool is_wildcard(const std::string &host)
{
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "*";
}

struct Conn {
  std::string peer;
  GSocketConnection *conn = nullptr;
  sigcheck::LineSplitter lines;
  std::deque<std::string> outq;
  bool writing = false;
  bool closed = false;

  ~Conn()
  {
    if (conn) g_object_unref(conn);
  }
};

class Impl : public sigutil::Transport<Impl> {
public:
  Impl(std::string host, int port, bool listen)
      : host_(std::move(host)), port_(port), listen_(listen)
  {
  }

  void send_line(const std::string &peer, std::string line)
  {
    std::lock_guard lk(mu_);
    if (stopped_ || !ctx_) return;
    auto self = shared_from_this();
    sigutil::invoke(ctx_, [self, peer, line = std::move(line)]() mutable {
      std::lock_guard lk(self->mu_);
      if (self->stopped_) return;
      auto it = self->conns_.find(peer);
      if (it == self->conns_.end() || it->second->closed) {
        self->emit_error("tcp signaling: cannot send to " + peer + ": not connected", false);
        return;
      }
      it->second->outq.push_back(std::move(line) + "\n");
      self->pump(it->second);
    });
  }

private:
  friend class sigutil::Transport<Impl>;

  void on_started()
  {
    if (listen_)
      start_listening();
    else
      connect_now();
  }

  // Closes every connection and the listener (stop(), mutex held).
  void on_stopping()
  {
    for (auto &[peer, c] : conns_) close_conn(*c, true);
    conns_.clear();
    if (service_) {
      g_socket_service_stop(service_);
      g_socket_listener_close(G_SOCKET_LISTENER(service_));
      g_signal_handlers_disconnect_by_data(service_, this);
      g_object_unref(service_);
      service_ = nullptr;
    }
    if (client_) {
      g_object_unref(client_);
      client_ = nullptr;
    }
  }

  // ---- events (called with mu_ held, in ctx) ----
  void emit_error(const std::string &reason, bool fatal)
  {
    GST_WARNING("%s", reason.c_str());
    if (!stopped_ && ev_.error) ev_.error(reason, fatal);
  }

  // ---- offerer: listen ----
  void start_listening()
  {
    service_ = g_socket_service_new();
    GError *err = nullptr;
    bool ok;
    std::string where = authority();
    if (is_wildcard(host_)) {
      ok = g_socket_listener_add_inet_port(G_SOCKET_LISTENER(service_), port_, nullptr, &err);
    } else {
      // Listening needs a literal address ("localhost" is the one name worth accepting).
      std::string lit = host_ == "localhost" ? "127.0.0.1" : host_;
      GSocketAddress *addr = g_inet_socket_address_new_from_string(lit.c_str(), port_);
      if (!addr) {
        emit_error("tcp signaling: cannot listen on " + where +
                       ": the offerer listens, so the host must be an IP address of this machine",
                   true);
        return;
      }
      GSocketAddress *effective = nullptr;
      ok = g_socket_listener_add_address(G_SOCKET_LISTENER(service_), addr, G_SOCKET_TYPE_STREAM,
                                         G_SOCKET_PROTOCOL_TCP, nullptr, &effective, &err);
      g_object_unref(addr);
      if (effective) {
        GST_INFO("listening on port %u",
                 g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(effective)));
        g_object_unref(effective);
      }
    }
    if (!ok) {
      emit_error("tcp signaling: cannot listen on " + where + ": " + err->message, true);
      g_error_free(err);
      return;
    }
    g_signal_connect(service_, "incoming", G_CALLBACK(&Impl::on_incoming), this);
    g_socket_service_start(service_);
    GST_INFO("offerer listening on %s", where.c_str());
    if (ev_.ready) ev_.ready({});
  }

  static gboolean on_incoming(GSocketService *, GSocketConnection *connection, GObject *,
                              gpointer data)
  {
    auto *self = static_cast<Impl *>(data);
    std::lock_guard lk(self->mu_);
    if (self->stopped_) return FALSE;
    std::string peer = "tcp:" + describe_remote(connection);
    if (self->conns_.size() >= kMaxConnections) {
      // Each answerer costs a peer connection: a flood of sockets must not become one.
      self->emit_error("tcp signaling: refused a connection from " + peer + ": already " +
                           std::to_string(kMaxConnections) + " answerers connected",
                       false);
      g_io_stream_close(G_IO_STREAM(connection), nullptr, nullptr);
      return TRUE;
    }
    auto c = std::make_shared<Conn>();
    c->peer = peer;
    c->conn = G_SOCKET_CONNECTION(g_object_ref(connection));
    self->conns_[peer] = c;
    GST_INFO("answerer connected: %s", peer.c_str());
    self->read_more(c);
    if (self->ev_.peer_joined) self->ev_.peer_joined(peer, "tcp");
    return TRUE;
  }

  static std::string describe_remote(GSocketConnection *connection)
  {
    std::string out = "?";
    GSocketAddress *a = g_socket_connection_get_remote_address(connection, nullptr);
    if (a && G_IS_INET_SOCKET_ADDRESS(a)) {
      gchar *ip =
          g_inet_address_to_string(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(a)));
      std::string s(ip);
      g_free(ip);
      if (s.find(':') != std::string::npos) s = "[" + s + "]";
      out = s + ":" + std::to_string(g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(a)));
    }
    if (a) g_object_unref(a);
    return out;
  }

  // ---- answerer: connect, retrying ----
  void connect_now()
  {
    if (!client_) {
      client_ = g_socket_client_new();
      g_socket_client_set_timeout(client_, 5);
    }
    GSocketConnectable *addr = g_network_address_new(host_.c_str(), port_);
    auto *keep = new std::shared_ptr<Impl>(shared_from_this());
    g_socket_client_connect_async(client_, addr, cancel_, &Impl::on_connected, keep);
    g_object_unref(addr);
  }

  static void on_connected(GObject *src, GAsyncResult *res, gpointer data)
  {
    std::unique_ptr<std::shared_ptr<Impl>> keep(static_cast<std::shared_ptr<Impl> *>(data));
    Impl *self = keep->get();
    GError *err = nullptr;
    GSocketConnection *connection = g_socket_client_connect_finish(G_SOCKET_CLIENT(src), res, &err);
    std::lock_guard lk(self->mu_);
    if (self->stopped_) {
      if (connection) g_object_unref(connection);
      g_clear_error(&err);
      return;
    }
    if (!connection) {
      // Reported once per streak: the offerer may simply not be up yet (aiortc only listens
      // once its offer is ready).
      if (self->failures_++ == 0)
        self->emit_error(std::string("tcp signaling: cannot connect to the offerer at tcp://") +
                             self->authority() + ": " + err->message + "; retrying",
                         false);
      else
        GST_DEBUG("connect attempt %u failed: %s", self->failures_, err->message);
      g_error_free(err);
      self->schedule_retry();
      return;
    }
    // The client's timeout bounds connecting; the signaling socket itself may idle forever.
    g_socket_set_timeout(g_socket_connection_get_socket(connection), 0);
    self->failures_ = 0;
    self->connected_at_ = g_get_monotonic_time();
    std::string peer = "tcp:" + self->authority() + "/" + std::to_string(++self->connections_);
    auto c = std::make_shared<Conn>();
    c->peer = peer;
    c->conn = connection;
    self->conns_[peer] = c;
    GST_INFO("connected to the offerer: %s", peer.c_str());
    self->read_more(c);
    if (self->ev_.ready) self->ev_.ready({});
    if (!self->stopped_ && self->ev_.peer_joined) self->ev_.peer_joined(peer, "tcp");
  }

  void schedule_retry()
  {
    if (retry_ || stopped_) return;
    unsigned ms = backoff_ms_;
    backoff_ms_ = std::min(backoff_ms_ * 2, kRetryMaxMs);
    retry_after(ms, &Impl::connect_now);
  }

  std::string authority() const
  {
    return (host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_) + ":" +
        std::to_string(port_);
  }

  // ---- reading lines ----
  struct Op {
    std::shared_ptr<Impl> self;
    std::shared_ptr<Conn> conn;
  };

  void read_more(const std::shared_ptr<Conn> &c)
  {
    GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(c->conn));
    g_input_stream_read_bytes_async(in, 64 * 1024, G_PRIORITY_DEFAULT, cancel_, &Impl::on_read,
                                    new Op{shared_from_this(), c});
  }

  static void on_read(GObject *src, GAsyncResult *res, gpointer data)
  {
    std::unique_ptr<Op> op(static_cast<Op *>(data));
    Impl *self = op->self.get();
    Conn &c = *op->conn;
    GError *err = nullptr;
    GBytes *bytes = g_input_stream_read_bytes_finish(G_INPUT_STREAM(src), res, &err);
    std::lock_guard lk(self->mu_);
    if (self->stopped_ || c.closed) {
      if (bytes) g_bytes_unref(bytes);
      g_clear_error(&err);
      return;
    }
    if (!bytes || g_bytes_get_size(bytes) == 0) {
      std::string why = err ? err->message : "connection closed by the remote";
      g_clear_error(&err);
      if (bytes) g_bytes_unref(bytes);
      self->lost(op->conn, why);
      return;
    }
    gsize n;
    auto *p = static_cast<const char *>(g_bytes_get_data(bytes, &n));
    self->feed(op->conn, p, n);
    g_bytes_unref(bytes);
    if (!self->stopped_ && !c.closed) self->read_more(op->conn);
  }

  void feed(const std::shared_ptr<Conn> &cp, const char *p, gsize n)
  {
    Conn &c = *cp;
    c.lines.feed(
        p, n,
        [&](std::string &line) {
          handle_line(cp, line);
          return !c.closed && !stopped_;
        },
        [&] {
          emit_error("tcp signaling: ignoring a line of more than " +
                         std::to_string(sigcheck::kMaxMessageBytes) + " bytes from " + c.peer,
                     false);
          return !c.closed && !stopped_;
        });
  }

  void handle_line(const std::shared_ptr<Conn> &cp, const std::string &line)
  {
    const std::string &peer = cp->peer;
    tcpwire::Message m = tcpwire::parse_line(line);
    switch (m.kind) {
    case tcpwire::Message::Kind::Blank: return;
    case tcpwire::Message::Kind::Bad:
      emit_error("tcp signaling: ignoring bad message from " + peer + " (" + m.why +
                     "): " + sigcheck::printable(line, 80),
                 false);
      return;
    case tcpwire::Message::Kind::Sdp:
      GST_DEBUG("%s from %s", m.type.c_str(), peer.c_str());
      if (ev_.sdp) ev_.sdp(peer, m.type, m.sdp);
      return;
    case tcpwire::Message::Kind::Candidate:
      if (ev_.candidate) ev_.candidate(peer, m.mid, m.mline, m.candidate);
      return;
    case tcpwire::Message::Kind::Bye:
      GST_INFO("bye from %s", peer.c_str());
      lost(cp, "");
      return;
    }
  }

  // The remote said bye or went away: its session is over. An answerer waits for the next
  // offerer.
  void lost(const std::shared_ptr<Conn> &c, const std::string &why)
  {
    if (c->closed) return;
    GST_INFO("%s gone%s%s", c->peer.c_str(), why.empty() ? "" : ": ", why.c_str());
    close_conn(*c, false);
    conns_.erase(c->peer);
    if (ev_.peer_left) ev_.peer_left(c->peer);
    if (!listen_ && !stopped_) {
      if (!why.empty() && ev_.disconnected)
        ev_.disconnected("tcp signaling connection to " + c->peer + " lost: " + why);
      failures_ = 1; // already reported: reconnect quietly, for the next offerer
      // An offerer that keeps accepting and dropping us (each time a new peer connection) is
      // retried with growing backoff; a real session ends the streak.
      if (g_get_monotonic_time() - connected_at_ >= kStableMs * 1000) backoff_ms_ = kRetryFirstMs;
      schedule_retry();
    }
  }

  // ---- writing ----
  void pump(const std::shared_ptr<Conn> &c)
  {
    if (c->writing || c->outq.empty() || c->closed) return;
    c->writing = true;
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(c->conn));
    const std::string &head = c->outq.front();
    g_output_stream_write_all_async(out, head.data(), head.size(), G_PRIORITY_DEFAULT, cancel_,
                                    &Impl::on_written, new Op{shared_from_this(), c});
  }

  static void on_written(GObject *src, GAsyncResult *res, gpointer data)
  {
    std::unique_ptr<Op> op(static_cast<Op *>(data));
    Impl *self = op->self.get();
    GError *err = nullptr;
    gboolean ok = g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, nullptr, &err);
    std::lock_guard lk(self->mu_);
    op->conn->writing = false;
    if (self->stopped_ || op->conn->closed) {
      g_clear_error(&err);
      return;
    }
    if (!ok) {
      std::string why = err->message;
      g_error_free(err);
      self->emit_error("tcp signaling: cannot write to " + op->conn->peer + ": " + why, false);
      self->lost(op->conn, why);
      return;
    }
    op->conn->outq.pop_front();
    self->pump(op->conn);
  }

  // Closes the socket; with say_bye, first writes what is queued and a bye (blocking, bounded
  // by a 1 s socket timeout) unless an asynchronous write is half done.
  void close_conn(Conn &c, bool say_bye)
  {
    if (c.closed) return;
    c.closed = true;
    GSocket *sock = g_socket_connection_get_socket(c.conn);
    if (say_bye && !c.writing) {
      c.outq.push_back("{\"type\": \"bye\"}\n");
      g_socket_set_timeout(sock, 1);
      for (const auto &m : c.outq) {
        gsize off = 0;
        while (off < m.size()) {
          gssize w = g_socket_send(sock, m.data() + off, m.size() - off, nullptr, nullptr);
          if (w <= 0) break;
          off += w;
        }
        if (off < m.size()) break;
      }
    }
    c.outq.clear();
    g_socket_close(sock, nullptr);
  }

  std::string host_;
  int port_;
  bool listen_;
  GSocketService *service_ = nullptr;
  GSocketClient *client_ = nullptr;
  unsigned backoff_ms_ = kRetryFirstMs;
  unsigned failures_ = 0;
  unsigned connections_ = 0;
  gint64 connected_at_ = 0;
  std::map<std::string, std::shared_ptr<Conn>> conns_;
};

std::string sdp_line(const std::string &type, const std::string &sdp)
{
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "sdp");
  json_builder_add_string_value(b, sdp.c_str());
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, type.c_str());
  json_builder_end_object(b);
  std::string s = sigutil::to_line(b);
  g_object_unref(b);
  return s;
}

std::string candidate_line(const std::string &mid, int mline, const std::string &candidate)
{
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "candidate");
  json_builder_add_string_value(b, candidate.c_str());
  json_builder_set_member_name(b, "id");
  json_builder_add_string_value(b, mid.c_str());
  json_builder_set_member_name(b, "label");
  json_builder_add_int_value(b, mline);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, "candidate");
  json_builder_end_object(b);
  std::string s = sigutil::to_line(b);
  g_object_unref(b);
  return s;
}

class TcpSignaller final : public Signaller {
public:
  TcpSignaller(const std::string &host, int port, Role role)
      : host_(host), impl_(std::make_shared<Impl>(host, port, resolve(role, host) == Role::Offerer))
  {
  }
  ~TcpSignaller() override { impl_->stop(); }

  static Role resolve(Role requested, const std::string &host)
  {
    if (requested != Role::Auto) return requested;
    return is_wildcard(host) ? Role::Offerer : Role::Answerer;
  }

  void start(GMainContext *ctx, SignallerEvents events) override
  {
    impl_->start(ctx, std::move(events));
  }
  void stop() override { impl_->stop(); }
  void send_sdp(const std::string &peer, const std::string &type, const std::string &sdp) override
  {
    impl_->send_line(peer, sdp_line(type, sdp));
  }
  void send_candidate(const std::string &peer, const std::string &mid, int mline,
                      const std::string &candidate) override
  {
    // aiortc parses every candidate it gets; end-of-candidates has no line of its own.
    if (candidate.empty()) return;
    std::string c = candidate.rfind("candidate:", 0) == 0 ? candidate : "candidate:" + candidate;
    impl_->send_line(peer, candidate_line(mid, mline, c));
  }
  bool trickles() const override { return false; }
  Role resolve_role(Role requested) const override { return resolve(requested, host_); }

private:
  std::string host_;
  std::shared_ptr<Impl> impl_;
};

} // namespace

std::unique_ptr<Signaller> make_tcp_signaller(const SignallerConfig &cfg, std::string *error)
{
  sigutil::debug_category_once(&pc_tcpsig_debug, "rtcpeer-tcp",
                               "rtcpeer aiortc TcpSocketSignaling transport");
  auto uri = sigutil::parse_signaling_uri(cfg.uri, G_URI_FLAGS_NON_DNS, error);
  if (!uri) return nullptr;
  if (uri->scheme != "tcp") return sigutil::bad_uri(error, cfg.uri, "not tcp://");
  if (uri->path != "" && uri->path != "/")
    return sigutil::bad_uri(error, cfg.uri, "tcp://host:port takes no path");
  const std::string &host = uri->host;
  int port = uri->port < 0 ? kDefaultPort : uri->port;
  if (port > 65535) return sigutil::bad_uri(error, cfg.uri, "port out of range");
  Role role = TcpSignaller::resolve(cfg.role, host);
  if (role == Role::Answerer && is_wildcard(host))
    return sigutil::bad_uri(error, cfg.uri,
                            "the answerer connects to the offerer, so it needs the offerer's host");
  return std::make_unique<TcpSignaller>(host, port, cfg.role);
}

} // namespace pointcast
