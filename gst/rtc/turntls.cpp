// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/turntls.h"

namespace pointcast::rtc {

struct TurnTlsTunnel::State {
  std::string host;
  int port = 0;
  GSocketService *service = nullptr;
  GTlsDatabase *database = nullptr; // null: the system's
  GCancellable *cancel = g_cancellable_new();
  OnError on_error;
  std::string last_error;
  guint64 connections = 0;
  int local_port = 0;
  ~State()
  {
    g_clear_object(&database);
    g_clear_object(&cancel);
  }
};

namespace {

using StatePtr = std::shared_ptr<TurnTlsTunnel::State>;

struct Pending {
  StatePtr state;
  GSocketConnection *local;
};

void report(const StatePtr &st, const std::string &message, bool certificate)
{
  if (message == st->last_error) return;
  st->last_error = message;
  if (st->on_error) st->on_error(message, certificate);
}

// The handshake is about to start: trust the CA file instead of the system's database.
void on_client_event(GSocketClient *, GSocketClientEvent event, GSocketConnectable *,
                     GIOStream *connection, gpointer user_data)
{
  auto *st = static_cast<TurnTlsTunnel::State *>(user_data);
  if (event == G_SOCKET_CLIENT_TLS_HANDSHAKING && st->database && G_IS_TLS_CONNECTION(connection))
    g_tls_connection_set_database(G_TLS_CONNECTION(connection), st->database);
}

void on_spliced(GObject *, GAsyncResult *res, gpointer user_data)
{
  auto *pending = static_cast<Pending *>(user_data);
  g_io_stream_splice_finish(res, nullptr); // either side closing ends both; nothing to report
  g_object_unref(pending->local);
  delete pending;
}

void on_connected(GObject *client, GAsyncResult *res, gpointer user_data)
{
  auto *pending = static_cast<Pending *>(user_data);
  GError *err = nullptr;
  GSocketConnection *remote = g_socket_client_connect_finish(G_SOCKET_CLIENT(client), res, &err);
  g_object_unref(client);
  if (!remote) {
    if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      bool cert = err->domain == G_TLS_ERROR && err->code == G_TLS_ERROR_BAD_CERTIFICATE;
      report(pending->state, err->message, cert);
    }
    g_clear_error(&err);
    g_io_stream_close(G_IO_STREAM(pending->local), nullptr, nullptr);
    g_object_unref(pending->local);
    delete pending;
    return;
  }
  pending->state->connections++;
  pending->state->last_error.clear();
  g_io_stream_splice_async(
      G_IO_STREAM(pending->local), G_IO_STREAM(remote),
      GIOStreamSpliceFlags(G_IO_STREAM_SPLICE_CLOSE_STREAM1 | G_IO_STREAM_SPLICE_CLOSE_STREAM2),
      G_PRIORITY_DEFAULT, pending->state->cancel, on_spliced, pending);
  g_object_unref(remote); // the splice holds it
}

gboolean on_incoming(GSocketService *, GSocketConnection *local, GObject *, gpointer user_data)
{
  auto *weak = static_cast<std::weak_ptr<TurnTlsTunnel::State> *>(user_data);
  StatePtr st = weak->lock();
  if (!st) return FALSE;
  GSocketClient *client = g_socket_client_new();
  g_socket_client_set_tls(client, TRUE);
  g_socket_client_set_timeout(client, 10);
  g_signal_connect(client, "event", G_CALLBACK(on_client_event), st.get());
  GSocketConnectable *addr = g_network_address_new(st->host.c_str(), guint16(st->port));
  auto *pending = new Pending{st, G_SOCKET_CONNECTION(g_object_ref(local))};
  g_socket_client_connect_async(client, addr, st->cancel, on_connected, pending);
  g_object_unref(addr);
  return TRUE;
}

void free_weak(gpointer data, GClosure *)
{
  delete static_cast<std::weak_ptr<TurnTlsTunnel::State> *>(data);
}

} // namespace

std::unique_ptr<TurnTlsTunnel> TurnTlsTunnel::start(const std::string &host, int port,
                                                    const std::string &ca_file, OnError on_error,
                                                    std::string *error)
{
  auto st = std::make_shared<State>();
  st->host = host;
  st->port = port;
  st->on_error = std::move(on_error);
  GError *err = nullptr;
  if (!ca_file.empty()) {
    st->database = g_tls_file_database_new(ca_file.c_str(), &err);
    if (!st->database) {
      if (error) *error = std::string("cannot read CA file '") + ca_file + "': " + err->message;
      g_clear_error(&err);
      return nullptr;
    }
  }
  st->service = g_socket_service_new();
  GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress *any_port = g_inet_socket_address_new(lo, 0);
  g_object_unref(lo);
  GSocketAddress *bound = nullptr;
  gboolean ok =
      g_socket_listener_add_address(G_SOCKET_LISTENER(st->service), any_port, G_SOCKET_TYPE_STREAM,
                                    G_SOCKET_PROTOCOL_TCP, nullptr, &bound, &err);
  g_object_unref(any_port);
  if (!ok) {
    if (error) *error = std::string("cannot listen on 127.0.0.1: ") + err->message;
    g_clear_error(&err);
    g_object_unref(st->service);
    st->service = nullptr;
    return nullptr;
  }
  st->local_port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  g_object_unref(bound);
  g_signal_connect_data(st->service, "incoming", G_CALLBACK(on_incoming),
                        new std::weak_ptr<State>(st), free_weak, GConnectFlags(0));
  g_socket_service_start(st->service);
  std::unique_ptr<TurnTlsTunnel> t(new TurnTlsTunnel);
  t->state_ = std::move(st);
  return t;
}

TurnTlsTunnel::~TurnTlsTunnel()
{
  if (!state_) return;
  g_cancellable_cancel(state_->cancel);
  state_->on_error = nullptr;
  if (state_->service) {
    g_socket_service_stop(state_->service);
    g_socket_listener_close(G_SOCKET_LISTENER(state_->service));
    g_object_unref(state_->service);
    state_->service = nullptr;
  }
}

int TurnTlsTunnel::local_port() const
{
  return state_->local_port;
}
guint64 TurnTlsTunnel::connections() const
{
  return state_->connections;
}

} // namespace pointcast::rtc
