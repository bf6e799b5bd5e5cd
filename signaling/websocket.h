// SPDX-License-Identifier: LGPL-2.1-or-later
/* Server side of one WebSocket connection (RFC 6455 framing) over the GIOStream that libsoup
 * hands over after it has answered the upgrade handshake. The daemon does its own framing rather
 * than use SoupWebsocketConnection because relaying is its hot path: frames for a connection are
 * appended to one buffer and written with one call per main-loop iteration (libsoup writes every
 * frame separately), and pongs are visible, so keep-alive can drop peers that stopped answering. */
#pragma once

#include "wsframe.h"

#include <gio/gio.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace pointcast::signaling {

class WsConn;

struct WsListener {
  virtual void ws_text(WsConn &c, std::string_view text) = 0;
  virtual void ws_binary(WsConn &c, std::size_t size) = 0;
  // Bytes arrived after probe(): the peer is alive. Called once per probe().
  virtual void ws_alive(WsConn &c) = 0;
  // Output was queued: flush() should be called before the loop sleeps.
  virtual void ws_dirty(WsConn &c) = 0;
  // The connection is gone (close handshake done, error, or dropped). Called once; the listener
  // must not destroy `c` from inside this call.
  virtual void ws_closed(WsConn &c, std::uint16_t code, const char *why) = 0;

protected:
  ~WsListener() = default;
};

class WsConn {
public:
  // poll_fd: the plain TCP socket under `stream`, watched directly (fast path); -1 for streams
  // whose readiness the fd does not tell (TLS), which are watched as pollable streams.
  WsConn(GIOStream *stream, int poll_fd, WsListener *listener, std::uint64_t handle,
         std::size_t max_payload, std::size_t max_buffered);
  ~WsConn();
  WsConn(const WsConn &) = delete;
  WsConn &operator=(const WsConn &) = delete;

  void start(); // attach to the thread-default main context and start reading

  void send_text(std::string_view text);
  // Starts the close handshake (the peer has a few seconds to answer before the socket closes).
  void close(std::uint16_t code, std::string_view reason);
  // Writes what is queued, as far as the socket takes it.
  void flush();
  // Keep-alive: pings after `interval_us` of silence; gives up on a peer silent for a further
  // interval after a ping. Returns false when the connection was dropped.
  bool keepalive(std::int64_t now_us, std::int64_t interval_us);
  // Pings now; the next bytes read from the peer (any frame) are reported as ws_alive().
  void probe();

  bool is_open() const { return state_ == State::Open; }
  std::uint64_t handle() const { return handle_; }
  bool dirty = false; // owned by the listener's flush bookkeeping

private:
  enum class State { Open, Closing, Closed };
  static gboolean on_readable(GObject *, gpointer self);
  static gboolean on_writable(GObject *, gpointer self);
  static gboolean on_close_timeout(gpointer self);
  void read_some();
  void parse();
  void queue_frame(int opcode, std::string_view payload);
  void fail(std::uint16_t code, const char *why);
  void teardown(std::uint16_t code, const char *why);

  GIOStream *stream_;
  GPollableInputStream *in_;
  GPollableOutputStream *out_;
  GSource *read_src_ = nullptr; // pollable-stream sources (TLS) ...
  GSource *write_src_ = nullptr;
  int poll_fd_ = -1; // ... or the fd in the shared epoll set (plain TCP, fast path)
  bool in_epoll_ = false;
  bool want_out_ = false;
  void watch_output(bool on);
  void stop_sources();
  friend struct EpollSource;
  void on_epoll(std::uint32_t events);
  guint close_timer_ = 0;
  WsListener *listener_;
  std::uint64_t handle_;
  std::size_t max_buffered_;
  State state_ = State::Open;
  bool close_sent_ = false;
  std::string in_buf_;
  std::size_t in_off_ = 0;
  std::string out_buf_;
  std::size_t out_off_ = 0;
  WsDecoder decoder_;
  std::int64_t last_rx_us_ = 0;
  std::int64_t ping_sent_us_ = 0;
  bool ping_outstanding_ = false;
  bool probing_ = false;
};

} // namespace pointcast::signaling
