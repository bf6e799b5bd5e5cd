// SPDX-License-Identifier: LGPL-2.1-or-later
/* The lifecycle the WebSocket signallers (ws:// in wssignaller.cpp, janus:// in
 * janussignaller.cpp) share: connect, watch the connection (pings every 5 s, a size limit checked
 * before any JSON is parsed), drop it, and reconnect with backoff (250 ms doubling to 4 s; back to
 * 250 ms only after a ready phase that lasted stable_ms). A transport says what to do once the
 * socket is open, with each text message, and when the connection is lost.
 *
 * Everything runs in the GMainContext given to start(), which is where the signaller's public
 * calls come from too: no lock. */
#pragma once

#include "rtc/signaller.h"

#include <gst/gst.h>
#include <libsoup/soup.h>

#include <string>
#include <string_view>

namespace pointcast {

class WsClient : public Signaller {
public:
  ~WsClient() override;

  void start(GMainContext *ctx, SignallerEvents events) override;
  // Idempotent. A transport with an on_stopping() calls this from its own destructor.
  void stop() override;

protected:
  // How a transport's errors name it.
  struct Names {
    std::string what;     // "invalid WHAT URI", "WHAT connection error: ..."
    std::string server;   // "cannot reach SERVER: ..."
    std::string closed;   // the reason given when the server closes: "CLOSED (code N: why)"
    std::string messages; // "ignored a malformed MESSAGES (why): ..."
  };
  struct Options {
    std::string ws_uri;             // what is connected to
    const char *protocol = nullptr; // WebSocket subprotocol, or none
    std::string bearer;             // Authorization: Bearer TOKEN, or none
    gsize max_incoming = 0;         // bytes; a larger message closes the connection (1009)
    gint64 stable_ms = 0;           // a ready phase this long resets the backoff
  };
  WsClient(GstDebugCategory *cat, Names names, Options opts);

  // The socket is open and watched: register, claim a session, ...
  virtual void on_open() = 0;
  // A text message (not binary, no escaped NUL, within max_incoming).
  virtual void on_text(std::string_view text) = 0;
  // The connection is gone (dropped already); called before ready is cleared and a reconnect
  // is scheduled.
  virtual void on_dropped() {}
  // In stop(), while the connection is still open: say goodbye.
  virtual void on_stopping() {}
  // The HTTP status of a refused WebSocket handshake; true: handled (fatal), do not retry.
  virtual bool on_refused(guint status) { return false; }

  // The transport is registered (or has its session): events flow. A loss after this reports
  // `disconnected`.
  void set_ready();
  bool ready() const { return ready_; }
  // Drops the connection, reports `disconnected` when it was ready, and reconnects after the
  // backoff (unless stopped).
  void connection_lost(const std::string &reason);
  void drop_connection(bool close);
  void schedule_retry();
  // The delay the next schedule_retry() waits (250 ms doubling to 4 s; reset once stable).
  guint retry_delay_ms() const { return backoff_ms_; }
  // false when there is no open connection to send on.
  bool send_text(const std::string &text);
  void report_error(const std::string &reason, bool fatal);
  void malformed(const std::string &why, std::string_view text);

  GMainContext *ctx_ = nullptr;
  SignallerEvents events_;
  SoupWebsocketConnection *conn_ = nullptr;
  bool stopped_ = true;

private:
  void connect();
  static void on_connected(GObject *source, GAsyncResult *res, gpointer data);
  static void on_message(SoupWebsocketConnection *, gint type, GBytes *message, gpointer data);
  static void on_closed(SoupWebsocketConnection *conn, gpointer data);
  static void on_error(SoupWebsocketConnection *, GError *error, gpointer data);

  GstDebugCategory *cat_;
  Names names_;
  Options opts_;
  SoupSession *session_ = nullptr;
  SoupMessage *msg_ = nullptr;
  GCancellable *cancel_ = nullptr;
  guint retry_ = 0;
  guint backoff_ms_;
  bool ready_ = false;
  gint64 ready_at_ = 0;
  bool unreachable_reported_ = false;
};

} // namespace pointcast
