// SPDX-License-Identifier: LGPL-2.1-or-later
/* The WebSocket client lifecycle of the ws:// and janus:// signallers (wsclient.h). */
#include "rtc/wsclient.h"
#include "rtc/mainctx.h"
#include "rtc/sigcheck.h"

#include <algorithm>
#include <utility>

#define GST_CAT_DEFAULT cat_

namespace pointcast {

constexpr guint kFirstRetryMs = 250;
constexpr guint kMaxRetryMs = 4000;
constexpr guint kPingS = 5; // a silently dead server is noticed by the missing pongs

WsClient::WsClient(GstDebugCategory *cat, Names names, Options opts)
    : cat_(cat), names_(std::move(names)), opts_(std::move(opts)), backoff_ms_(kFirstRetryMs)
{
}

// Only the base's hooks run from here: a transport with its own on_stopping() stops first.
WsClient::~WsClient()
{
  stop();
}

void WsClient::start(GMainContext *ctx, SignallerEvents events)
{
  ctx_ = ctx;
  events_ = std::move(events);
  stopped_ = false;
  session_ = soup_session_new();
  connect();
}

void WsClient::stop()
{
  if (stopped_) return;
  stopped_ = true;
  mainctx::clear_source(ctx_, &retry_);
  if (cancel_) {
    g_cancellable_cancel(cancel_);
    g_clear_object(&cancel_);
  }
  // A cancelled connect's callback returns before it touches `this`: the message is ours to drop.
  g_clear_object(&msg_);
  on_stopping();
  drop_connection(true);
  g_clear_object(&session_);
}

void WsClient::connect()
{
  if (stopped_) return;
  SoupMessage *msg = soup_message_new("GET", opts_.ws_uri.c_str());
  if (!msg) {
    report_error("invalid " + names_.what + " URI '" + opts_.ws_uri + "'", true);
    return;
  }
  if (!opts_.bearer.empty())
    soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
                                 ("Bearer " + opts_.bearer).c_str());
  msg_ = msg;
  cancel_ = g_cancellable_new();
  const char *protocols[] = {opts_.protocol, nullptr};
  GST_DEBUG("connecting to %s", opts_.ws_uri.c_str());
  soup_session_websocket_connect_async(session_, msg, nullptr,
                                       opts_.protocol ? const_cast<char **>(protocols) : nullptr,
                                       G_PRIORITY_DEFAULT, cancel_, on_connected, this);
}

void WsClient::on_connected(GObject *source, GAsyncResult *res, gpointer data)
{
  GError *err = nullptr;
  SoupWebsocketConnection *conn =
      soup_session_websocket_connect_finish(SOUP_SESSION(source), res, &err);
  if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_error_free(err);
    return; // stopped; `this` may be gone
  }
  std::string reason = conn ? "" : err ? err->message : "unknown error";
  g_clear_error(&err);
  auto *self = static_cast<WsClient *>(data);
  SoupMessage *msg = std::exchange(self->msg_, nullptr);
  guint status = msg ? soup_message_get_status(msg) : 0;
  if (msg) g_object_unref(msg);
  g_clear_object(&self->cancel_);
  if (!conn) {
    if (self->on_refused(status)) return;
    if (!self->unreachable_reported_) {
      self->unreachable_reported_ = true;
      self->report_error("cannot reach " + self->names_.server + ": " + reason + " (retrying)",
                         false);
    }
    self->schedule_retry();
    return;
  }
  self->unreachable_reported_ = false;
  self->conn_ = conn;
  soup_websocket_connection_set_keepalive_interval(conn, kPingS);
  soup_websocket_connection_set_max_incoming_payload_size(conn, self->opts_.max_incoming);
  g_signal_connect(conn, "message", G_CALLBACK(on_message), self);
  g_signal_connect(conn, "closed", G_CALLBACK(on_closed), self);
  g_signal_connect(conn, "error", G_CALLBACK(on_error), self);
  self->on_open();
}

// Protocol errors, e.g. a message over the size limit: libsoup closes with 1009 after this.
void WsClient::on_error(SoupWebsocketConnection *, GError *error, gpointer data)
{
  auto *self = static_cast<WsClient *>(data);
  self->report_error(
      self->names_.what + " connection error: " + (error ? error->message : "unknown"), false);
}

void WsClient::on_closed(SoupWebsocketConnection *conn, gpointer data)
{
  auto *self = static_cast<WsClient *>(data);
  gushort code = soup_websocket_connection_get_close_code(conn);
  const char *why = soup_websocket_connection_get_close_data(conn);
  std::string reason = self->names_.closed;
  if (code)
    reason += " (code " + std::to_string(code) + (why && *why ? std::string(": ") + why : "") + ")";
  self->connection_lost(reason);
}

void WsClient::on_message(SoupWebsocketConnection *, gint type, GBytes *message, gpointer data)
{
  auto *self = static_cast<WsClient *>(data);
  gsize size = 0;
  const char *text = static_cast<const char *>(g_bytes_get_data(message, &size));
  std::string_view view(text ? text : "", size);
  if (type != SOUP_WEBSOCKET_DATA_TEXT) return self->malformed("binary frame", "");
  // json-glib would cut such a string short (an SDP silently truncated)
  if (sigcheck::has_escaped_nul(view))
    return self->malformed("escaped NUL (\\u0000) in the message", view);
  GST_CAT_LOG(self->cat_, "received: %.*s", int(std::min<size_t>(view.size(), 4096)), view.data());
  self->on_text(view);
}

void WsClient::set_ready()
{
  ready_ = true;
  ready_at_ = g_get_monotonic_time();
}

void WsClient::connection_lost(const std::string &reason)
{
  drop_connection(false);
  on_dropped();
  bool was_ready = ready_;
  ready_ = false;
  // A server that accepts and drops us at once is retried ever more slowly.
  if (was_ready && g_get_monotonic_time() - ready_at_ >= opts_.stable_ms * 1000)
    backoff_ms_ = kFirstRetryMs;
  if (stopped_) return;
  if (was_ready && events_.disconnected) events_.disconnected(reason);
  schedule_retry();
}

void WsClient::drop_connection(bool close)
{
  if (!conn_) return;
  g_signal_handlers_disconnect_by_data(conn_, this);
  if (close && soup_websocket_connection_get_state(conn_) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close(conn_, SOUP_WEBSOCKET_CLOSE_NORMAL, "bye");
  g_clear_object(&conn_);
}

void WsClient::schedule_retry()
{
  if (stopped_ || retry_) return;
  guint delay = backoff_ms_;
  backoff_ms_ = std::min(backoff_ms_ * 2, kMaxRetryMs);
  GST_DEBUG("reconnecting in %u ms", delay);
  retry_ = mainctx::timeout_id(ctx_, delay, [this] {
    retry_ = 0;
    connect();
  });
}

bool WsClient::send_text(const std::string &text)
{
  if (!conn_ || soup_websocket_connection_get_state(conn_) != SOUP_WEBSOCKET_STATE_OPEN)
    return false;
  soup_websocket_connection_send_text(conn_, text.c_str());
  return true;
}

void WsClient::report_error(const std::string &reason, bool fatal)
{
  GST_WARNING("%s", reason.c_str());
  if (events_.error) events_.error(reason, fatal);
}

void WsClient::malformed(const std::string &why, std::string_view text)
{
  report_error("ignored a malformed " + names_.messages + " (" + why +
                   "): " + sigcheck::printable(text, 120),
               false);
}

} // namespace pointcast
