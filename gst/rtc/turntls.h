// SPDX-License-Identifier: LGPL-2.1-or-later
/* TURN over TLS for webrtcbin 1.22 (turns://). libnice 0.1.21 takes NICE_RELAY_TYPE_TURN_TLS but
 * wraps the TCP socket in TLS only in its Google and MSOC modes; in webrtcbin's RFC 5245 mode it
 * speaks plain TCP to the TLS port, which a TLS TURN server closes at once (coturn: "TLS/TCP socket
 * buffer operation error"), so no relay candidate came. rtcpeer gives libnice a loopback TCP port
 * instead (turn://...@127.0.0.1:PORT?transport=tcp) and carries each connection to the server in
 * TLS here: the server's certificate is verified against the system's CAs, or the CA file given. */
#pragma once

#include <gio/gio.h>

#include <functional>
#include <memory>
#include <string>

namespace pointcast::rtc {

class TurnTlsTunnel {
public:
  // Called on the main context the tunnel was started in, once per different failure.
  using OnError = std::function<void(const std::string &message, bool certificate)>;
  /* Listens on 127.0.0.1 (a free port) in the thread-default main context; each connection
   * accepted there is forwarded to HOST:PORT over TLS. CA_FILE: PEM certificates to trust instead
   * of the system's ("" = the system's). Null and *error when it cannot. */
  static std::unique_ptr<TurnTlsTunnel> start(const std::string &host, int port,
                                              const std::string &ca_file, OnError on_error,
                                              std::string *error);
  ~TurnTlsTunnel();
  TurnTlsTunnel(const TurnTlsTunnel &) = delete;
  TurnTlsTunnel &operator=(const TurnTlsTunnel &) = delete;

  int local_port() const;
  guint64 connections() const; // forwarded so far (TLS established)

  struct State;

private:
  TurnTlsTunnel() = default;
  std::shared_ptr<State> state_;
};

} // namespace pointcast::rtc
