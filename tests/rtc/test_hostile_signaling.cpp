// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer's signallers against a malicious server (issue 11), through make_signaller as rtcpeer
 * uses them: over-long tcp:// lines, deep JSON, NUL and control characters in SDP and
 * candidates, candidate floods, connection floods, an http:// server sending an endless or a
 * trickling body, a ws:// server sending oversized messages and dropping us again and again, a
 * janus:// server with an endless publisher list, bad ids and candidates, and oversized messages.
 * Each case checks the warning, that nothing bad reached the events, that what is valid still
 * does, and that memory stayed bounded. */
#include "rtc/signaller.h"
#include "sigrecorder.h"
#include "rtc/sigcheck.h"
#include "rtc/tcpwire.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gio/gio.h>
#include <gst/check/gstcheck.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

using namespace pointcast;

namespace {

using sigtest::Event;
using sigtest::Recorder;
using sigtest::wait_for;

long status_kib(const char *field)
{
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field)));
  return -1;
}

// Under AddressSanitizer freed memory stays resident in its quarantine: peak RSS says nothing
// about what the code keeps, so the memory bounds are checked in normal builds only.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssMeaningful = false;
#else
constexpr bool kRssMeaningful = true;
#endif

void reset_peak_rss()
{
  std::ofstream("/proc/self/clear_refs") << "5";
}

std::unique_ptr<Signaller> make(const std::string &uri, Role role)
{
  SignallerConfig cfg;
  cfg.uri = uri;
  cfg.role = role;
  cfg.peer_id = "me";
  std::string err;
  auto s = make_signaller(cfg, &err);
  fail_unless(s != nullptr, "%s: %s", uri.c_str(), err.c_str());
  return s;
}

const std::string kSdp =
    "v=0\\r\\no=- 1 0 IN IP4 0.0.0.0\\r\\ns=-\\r\\nt=0 0\\r\\n"; // JSON-escaped
const std::string kCand = "candidate:1 1 UDP 2015363327 127.0.0.1 40000 typ host";

} // namespace

GST_START_TEST(tcp_line_decoder)
{
  using K = tcpwire::Message::Kind;
  fail_unless(tcpwire::parse_line("  \r").kind == K::Blank);
  auto m = tcpwire::parse_line("{\"sdp\": \"" + kSdp + "\", \"type\": \"answer\"}");
  fail_unless(m.kind == K::Sdp && m.type == "answer" && m.sdp.rfind("v=0\r\n", 0) == 0);
  m = tcpwire::parse_line(
      "{\"candidate\": \"1 1 UDP 1 127.0.0.1 9 typ host\", \"id\": \"0\", \"label\": 0, "
      "\"type\": \"candidate\"}");
  fail_unless(m.kind == K::Candidate && m.candidate == "candidate:1 1 UDP 1 127.0.0.1 9 typ host" &&
              m.mid == "0");
  fail_unless(tcpwire::parse_line("{\"type\": \"bye\"}").kind == K::Bye);
  // refused, each with its reason
  struct Case {
    std::string line, why;
  } cases[] = {
      {std::string(60000, '['), "bad_json"}, // deep nesting: no recursion crash
      {std::string(30000, '[') + std::string(30000, ']'), ""},
      {"{\"type\":\"offer\",\"sdp\":\"v=0\\u0000\"}", "escaped NUL"},
      {"{\"type\":\"candidate\",\"candidate\":\"" + kCand + "\",\"label\":99999}", "small integer"},
      {"{\"type\":\"candidate\",\"candidate\":5,\"id\":\"0\"}", "not a string"},
      {"{\"type\":\"offer\",\"sdp\":7}", "no \"sdp\""},
      {"[\"type\",\"offer\"]", ""},
      {"{\"type\":\"offer\"", "bad_json"},
      {"'single quotes'", ""},
  };
  for (const auto &c : cases) {
    m = tcpwire::parse_line(c.line);
    fail_unless(m.kind == K::Bad, "accepted %s", sigcheck::printable(c.line, 60).c_str());
    fail_unless(!m.why.empty() && m.why.find(c.why) != std::string::npos, "%s: %s",
                sigcheck::printable(c.line, 60).c_str(), m.why.c_str());
  }
}
GST_END_TEST;

/* A malicious aiortc-style offerer: rtcpeer's answerer connects to it and gets this stream. */
GST_START_TEST(tcp_malicious_offerer)
{
  GSocketListener *listener = g_socket_listener_new();
  guint16 port = g_socket_listener_add_any_inet_port(listener, nullptr, nullptr);
  fail_unless(port > 0);
  std::thread server([listener] {
    GSocketConnection *c = g_socket_listener_accept(listener, nullptr, nullptr, nullptr);
    fail_unless(c != nullptr);
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(c));
    auto send = [&](const std::string &s) {
      g_output_stream_write_all(out, s.data(), s.size(), nullptr, nullptr, nullptr);
    };
    // 8 MiB in one line, written from a 64 KiB block: the reader must not keep it
    std::string block(65536, 'x');
    for (int i = 0; i < 128; i++) send(block);
    send("\n");
    send(std::string(60000, '[') + "\n");
    send("{\"type\":\"offer\",\"sdp\":\"" + kSdp + "a=x:\\u001b[2J\\r\\n\"}\n");
    send("{\"type\":\"offer\",\"sdp\":\"" + kSdp + "a=x:\\u0000\\r\\n\"}\n");
    send("{\"type\":\"offer\",\"sdp\":\"" + kSdp + "s=\xed\xb0\x80\\r\\n\"}\n"); // a raw surrogate
    send("{\"type\":\"candidate\",\"candidate\":\"" + kCand +
         "\\r\\na=fingerprint:sha-256 00\",\"id\":\"0\",\"label\":0}\n");
    for (int i = 0; i < 1001; i++)
      send("{\"type\":\"candidate\",\"candidate\":\"" + kCand + "\",\"id\":\"0\",\"label\":0}\n");
    send("{\"type\":\"offer\",\"sdp\":\"" + kSdp + "\"}\n");
    // the answer comes back on the same connection: the stream is still in step
    GDataInputStream *in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(c)));
    gchar *line = g_data_input_stream_read_line(in, nullptr, nullptr, nullptr);
    fail_unless(line && std::string(line).find("\"type\":\"answer\"") != std::string::npos, "%s",
                line);
    g_free(line);
    g_object_unref(in);
    g_object_unref(c);
  });

  Recorder r;
  reset_peak_rss();
  long before = status_kib("VmHWM:");
  auto s = make("tcp://127.0.0.1:" + std::to_string(port), Role::Answerer);
  s->start(g_main_context_default(), r.hooks());
  fail_unless(wait_for([&] { return r.count("sdp") == 1; }, 30000), "%s", r.dump().c_str());
  long growth = status_kib("VmHWM:") - before;
  fail_unless(!kRssMeaningful || growth < 16 * 1024,
              "peak RSS grew by %ld KiB reading an 8 MiB line", growth);
  fail_unless(r.errors_with("ignoring a line of more than 65536 bytes") == 1, "%s",
              r.dump().c_str());
  // deep nesting and a raw surrogate: refused by protocol.h's parser before json-glib sees them
  fail_unless(r.errors_with("bad_json") == 2, "%s", r.dump().c_str());
  fail_unless(r.errors_with("ignored an SDP from tcp:127.0.0.1") == 1 &&
                  r.errors_with("control character") >= 1,
              "%s", r.dump().c_str());
  fail_unless(r.errors_with("escaped NUL") == 1, "%s", r.dump().c_str());
  fail_unless(r.errors_with("ignored a candidate from") == 1, "%s", r.dump().c_str());
  fail_unless(r.errors_with("more than 1000 for one SDP") == 1, "%s", r.dump().c_str());
  fail_unless(r.count("candidate") == 1000);
  for (const auto &e : r.events) {
    fail_if(e.fatal, "%s", e.a.c_str());
    fail_if(e.kind == "candidate" && e.b != kCand);
  }
  fail_unless(r.find("sdp")->a == "offer" && r.find("sdp")->b.find('\x1b') == std::string::npos);
  s->send_sdp(r.find("sdp")->peer, "answer", "v=0\r\n");
  server.join();
  s->stop();
  g_object_unref(listener);
}
GST_END_TEST;

GST_START_TEST(tcp_offerer_that_drops_us)
{
  // An offerer that accepts and closes at once: each connection is a new peer (a new peer
  // connection in rtcpeer), so the answerer's retries must slow down, not storm.
  GSocketListener *listener = g_socket_listener_new();
  guint16 port = g_socket_listener_add_any_inet_port(listener, nullptr, nullptr);
  GCancellable *cancel = g_cancellable_new();
  std::vector<gint64> times;
  std::thread server([&] {
    while (GSocketConnection *c = g_socket_listener_accept(listener, nullptr, cancel, nullptr)) {
      times.push_back(g_get_monotonic_time());
      g_io_stream_close(G_IO_STREAM(c), nullptr, nullptr);
      g_object_unref(c);
    }
  });
  Recorder r;
  auto s = make("tcp://127.0.0.1:" + std::to_string(port), Role::Answerer);
  s->start(g_main_context_default(), r.hooks());
  wait_for([] { return false; }, 4500);
  g_cancellable_cancel(cancel);
  server.join();
  s->stop();
  // 100, 200, 400, 800, 1600 ms: about 6 connections in 4.5 s (a retry every 100 ms: 40)
  fail_unless(times.size() >= 4 && times.size() <= 8, "%zu connections in 4.5 s", times.size());
  for (size_t i = 2; i < times.size(); i++)
    fail_unless(times[i] - times[i - 1] > times[i - 1] - times[i - 2], "retries did not slow down");
  for (const auto &e : r.events) fail_if(e.fatal, "%s", e.a.c_str());
  g_object_unref(cancel);
  g_object_unref(listener);
}
GST_END_TEST;

GST_START_TEST(tcp_connection_flood)
{
  // A listening offerer serves 16 answerers; the 17th connection is closed with a warning.
  GSocketListener *probe = g_socket_listener_new();
  guint16 port = g_socket_listener_add_any_inet_port(probe, nullptr, nullptr);
  g_socket_listener_close(probe);
  g_object_unref(probe);
  Recorder r;
  auto s = make("tcp://127.0.0.1:" + std::to_string(port), Role::Offerer);
  s->start(g_main_context_default(), r.hooks());
  fail_unless(wait_for([&] { return r.count("ready") == 1; }));
  GSocketClient *client = g_socket_client_new();
  std::vector<GSocketConnection *> conns;
  for (int i = 0; i < 17; i++) {
    // one at a time, letting the service accept: the listen backlog is small
    conns.push_back(g_socket_client_connect_to_host(
        client, ("127.0.0.1:" + std::to_string(port)).c_str(), 0, nullptr, nullptr));
    fail_unless(conns.back() != nullptr);
    fail_unless(wait_for([&] {
                  return r.count("joined") + r.errors_with("refused a connection") == size_t(i + 1);
                }),
                "%s", r.dump().c_str());
  }
  fail_unless(r.count("joined") == 16 &&
                  r.errors_with("refused a connection from tcp:127.0.0.1") == 1,
              "%s", r.dump().c_str());
  fail_unless(r.errors_with("already 16 answerers connected") == 1, "%s", r.dump().c_str());
  // the refused one reads end-of-stream; the others stay open
  char b;
  GSocket *last = g_socket_connection_get_socket(conns.back());
  g_socket_set_timeout(last, 5);
  fail_unless(g_socket_receive(last, &b, 1, nullptr, nullptr) == 0);
  for (auto *c : conns) g_object_unref(c);
  fail_unless(wait_for([&] { return r.count("left") == 16; }), "%s", r.dump().c_str());
  // room again for a new one
  GSocketConnection *again = g_socket_client_connect_to_host(
      client, ("127.0.0.1:" + std::to_string(port)).c_str(), 0, nullptr, nullptr);
  fail_unless(wait_for([&] { return r.count("joined") == 17; }), "%s", r.dump().c_str());
  g_object_unref(again);
  s->stop();
  g_object_unref(client);
}
GST_END_TEST;

namespace {
// An http:// "aiortc server" that misbehaves: /big answers 200 with an endless body (4 MiB),
// /slow answers a byte of JSON whitespace per second, never finishing in time.
struct BadHttp {
  SoupServer *server = soup_server_new(nullptr, nullptr);
  int port = 0;
  int requests = 0;
  std::vector<SoupServerMessage *> slow;
  guint tick = 0;

  BadHttp()
  {
    soup_server_add_handler(server, "/big", &BadHttp::big, this, nullptr);
    soup_server_add_handler(server, "/slow", &BadHttp::on_slow, this, nullptr);
    fail_unless(soup_server_listen_local(server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, nullptr));
    GSList *uris = soup_server_get_uris(server);
    port = g_uri_get_port(static_cast<GUri *>(uris->data));
    g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
    tick = g_timeout_add(
        1000,
        [](gpointer d) -> gboolean {
          auto *self = static_cast<BadHttp *>(d);
          for (auto *m : self->slow) {
            soup_message_body_append(soup_server_message_get_response_body(m), SOUP_MEMORY_STATIC,
                                     " ", 1);
            soup_server_message_unpause(m);
          }
          return G_SOURCE_CONTINUE;
        },
        this);
  }
  ~BadHttp()
  {
    g_source_remove(tick);
    g_object_unref(server);
  }
  std::string url(const char *path) const
  {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }

  static void big(SoupServer *, SoupServerMessage *msg, const char *, GHashTable *, gpointer d)
  {
    static_cast<BadHttp *>(d)->requests++;
    std::string body = "{\"type\":\"answer\",\"sdp\":\"" + std::string(4 << 20, 'v') + "\"}";
    soup_server_message_set_status(msg, 200, nullptr);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, body.data(),
                                     body.size());
  }
  static void on_slow(SoupServer *, SoupServerMessage *msg, const char *, GHashTable *, gpointer d)
  {
    auto *self = static_cast<BadHttp *>(d);
    self->requests++;
    soup_server_message_set_status(msg, 200, nullptr);
    SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
    soup_message_headers_set_encoding(h, SOUP_ENCODING_CHUNKED);
    soup_message_headers_set_content_type(h, "application/json", nullptr);
    self->slow.push_back(msg);
    g_signal_connect(msg, "finished", G_CALLBACK(+[](SoupServerMessage *m, gpointer d) {
                       auto &v = static_cast<BadHttp *>(d)->slow;
                       v.erase(std::remove(v.begin(), v.end(), m), v.end());
                     }),
                     self);
  }
};
} // namespace

GST_START_TEST(http_oversized_answer)
{
  BadHttp srv;
  Recorder r;
  reset_peak_rss();
  long before = status_kib("VmHWM:");
  auto s = make(srv.url("/big"), Role::Offerer);
  s->start(g_main_context_default(), r.hooks());
  fail_unless(wait_for([&] { return r.count("joined") == 1; }));
  s->send_sdp(r.find("joined")->peer, "offer", "v=0\r\n");
  fail_unless(wait_for([&] { return r.count("error") == 1; }), "%s", r.dump().c_str());
  fail_unless(r.find("error")->fatal);
  fail_unless(r.errors_with("the response body is larger than 65536 bytes") == 1, "%s",
              r.dump().c_str());
  fail_unless(r.count("sdp") == 0 && srv.requests == 1);
  s->stop();
  // the server's own 4 MiB copy is most of the growth; the signaller kept at most 64 KiB of it
  long growth = status_kib("VmHWM:") - before;
  fail_unless(!kRssMeaningful || growth < 24 * 1024, "peak RSS grew by %ld KiB", growth);
}
GST_END_TEST;

GST_START_TEST(http_trickling_answer)
{
  // a byte per second keeps the 30 s idle timeout happy; the 40 s deadline ends the request
  BadHttp srv;
  Recorder r;
  auto s = make(srv.url("/slow"), Role::Offerer);
  s->start(g_main_context_default(), r.hooks());
  fail_unless(wait_for([&] { return r.count("joined") == 1; }));
  gint64 t0 = g_get_monotonic_time();
  s->send_sdp(r.find("joined")->peer, "offer", "v=0\r\n");
  fail_unless(wait_for([&] { return r.count("error") == 1; }, 60000), "%s", r.dump().c_str());
  double took = (g_get_monotonic_time() - t0) / 1e6;
  fail_unless(took > 39 && took < 50, "%.1f s", took);
  fail_unless(r.errors_with("no complete answer within 40 s; retrying") == 1, "%s",
              r.dump().c_str());
  fail_if(r.find("error")->fatal);
  s->stop();
  size_t n = r.events.size();
  wait_for([] { return false; }, 1500);
  fail_unless(r.events.size() == n, "no retry after stop()");
}
GST_END_TEST;

namespace {
// A room server that registers us with a bad peer id next to a good one, sends an SDP with a
// control character, then a message over the size limit (the client must close, 1009), on every
// connection.
struct BadWs {
  SoupServer *server = soup_server_new(nullptr, nullptr);
  int port = 0;
  std::vector<gint64> connected; // monotonic times
  std::vector<SoupWebsocketConnection *> conns;

  BadWs()
  {
    soup_server_add_websocket_handler(server, "/ws", nullptr, nullptr, &BadWs::on_ws, this,
                                      nullptr);
    fail_unless(soup_server_listen_local(server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, nullptr));
    GSList *uris = soup_server_get_uris(server);
    port = g_uri_get_port(static_cast<GUri *>(uris->data));
    g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
  }
  ~BadWs()
  {
    for (auto *c : conns) g_object_unref(c);
    g_object_unref(server);
  }
  static void on_ws(SoupServer *, SoupServerMessage *, const char *, SoupWebsocketConnection *conn,
                    gpointer d)
  {
    auto *self = static_cast<BadWs *>(d);
    self->connected.push_back(g_get_monotonic_time());
    self->conns.push_back(SOUP_WEBSOCKET_CONNECTION(g_object_ref(conn)));
    g_signal_connect(
        conn, "message", G_CALLBACK(+[](SoupWebsocketConnection *c, gint, GBytes *, gpointer) {
          soup_websocket_connection_send_text(
              c,
              "{\"type\":\"registered\",\"client_id\":\"me\",\"room_id\":\"default\",\"peers\":["
              "\"good\",\"bad\\u001bid\"],"
              "\"peer_types\":{\"good\":\"browser\",\"bad\\u001bid\":\"browser\"}}");
          soup_websocket_connection_send_text(
              c,
              ("{\"type\":\"offer\",\"from_id\":\"good\",\"sdp\":{\"type\":\"offer\",\"sdp\":\"" +
               kSdp + "a=x:\\u0007\\r\\n\"}}")
                  .c_str());
          soup_websocket_connection_send_text(
              c,
              ("{\"type\":\"offer\",\"from_id\":\"good\",\"sdp\":{\"type\":\"offer\",\"sdp\":\"" +
               kSdp + "a=x:\\u0000\\r\\n\"}}")
                  .c_str());
          soup_websocket_connection_send_text(
              c,
              ("{\"type\":\"peer_left\",\"client_id\":\"" + std::string(70000, 'x') + "\"}")
                  .c_str());
        }),
        nullptr);
  }
};
} // namespace

GST_START_TEST(ws_malicious_server)
{
  BadWs srv;
  Recorder r;
  auto s = make("ws://127.0.0.1:" + std::to_string(srv.port) + "/ws", Role::Auto);
  s->start(g_main_context_default(), r.hooks());
  fail_unless(wait_for([&] { return srv.connected.size() >= 2; }), "%s", r.dump().c_str());
  // the bad id never reaches the events; the good one does
  const Event *ready = r.find("ready");
  fail_unless(ready && ready->a == "good,", "%s", r.dump().c_str());
  fail_unless(
      r.errors_with(
          "ignored a message about peer bad\\x1bid: peer id contains a control character") >= 1,
      "%s", r.dump().c_str());
  fail_unless(r.errors_with("ignored an SDP from good: SDP contains a control character") >= 1,
              "%s", r.dump().c_str());
  fail_unless(r.errors_with("escaped NUL") >= 1, "%s", r.dump().c_str()); // not a truncated SDP
  fail_unless(r.count("sdp") == 0 && r.count("left") == 0);
  // closed by us for the oversized message each time, and retried with a backoff that grows
  // (0.25, 0.5, 1, 2 s): a server dropping us at once does not get a reconnection storm
  wait_for([] { return false; }, 4500);
  size_t n = srv.connected.size();
  fail_unless(n >= 3 && n <= 6, "%zu connections in 4.5 s", n);
  for (size_t i = 2; i < n; i++) {
    gint64 gap = srv.connected[i] - srv.connected[i - 1],
           before = srv.connected[i - 1] - srv.connected[i - 2];
    fail_unless(gap > before, "gap %" G_GINT64_FORMAT " after %" G_GINT64_FORMAT " us", gap,
                before);
  }
  for (const auto &e : r.events) fail_if(e.fatal, "%s", e.a.c_str());
  fail_unless(r.count("disconnected") >= 2, "%s", r.dump().c_str());
  fail_unless(r.errors_with("signaling connection error:") >= 2, "%s", r.dump().c_str());
  s->stop();
}
GST_END_TEST;

namespace {
/* A Janus that answers every request of rtcpeer's janus:// signaller, but: its publisher list
 * holds 5000 entries (ids of the wrong type, a display with a control character, one good
 * publisher), a subscription's offer comes with a candidate carrying a CR LF, replies come for
 * transactions never sent, and then a message over the size limit. */
struct BadJanus {
  SoupServer *server = soup_server_new(nullptr, nullptr);
  int port = 0;
  int connections = 0;
  int attaches = 0;
  int sent_big = 0;
  std::vector<SoupWebsocketConnection *> conns;

  BadJanus()
  {
    static const char *protocols[] = {"janus-protocol", nullptr};
    soup_server_add_websocket_handler(server, "/", nullptr, (char **)protocols, &BadJanus::on_ws,
                                      this, nullptr);
    fail_unless(soup_server_listen_local(server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, nullptr));
    GSList *uris = soup_server_get_uris(server);
    port = g_uri_get_port(static_cast<GUri *>(uris->data));
    g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
  }
  ~BadJanus()
  {
    for (auto *c : conns) g_object_unref(c);
    g_object_unref(server);
  }
  static void on_ws(SoupServer *, SoupServerMessage *, const char *, SoupWebsocketConnection *conn,
                    gpointer d)
  {
    auto *self = static_cast<BadJanus *>(d);
    self->connections++;
    self->conns.push_back(SOUP_WEBSOCKET_CONNECTION(g_object_ref(conn)));
    g_signal_connect(conn, "message", G_CALLBACK(&BadJanus::on_message), self);
  }
  static void on_message(SoupWebsocketConnection *c, gint, GBytes *msg, gpointer d)
  {
    auto *self = static_cast<BadJanus *>(d);
    gsize n = 0;
    const char *text = static_cast<const char *>(g_bytes_get_data(msg, &n));
    JsonParser *parser = json_parser_new();
    fail_unless(json_parser_load_from_data(parser, text, gssize(n), nullptr));
    JsonObject *o = json_node_get_object(json_parser_get_root(parser));
    std::string verb = json_object_get_string_member(o, "janus");
    std::string txn = json_object_get_string_member(o, "transaction");
    auto send = [c](const std::string &s) { soup_websocket_connection_send_text(c, s.c_str()); };
    std::string head = "{\"janus\":\"success\",\"transaction\":\"" + txn + "\"";
    if (verb == "create") send(head + ",\"data\":{\"id\":1}}");
    if (verb == "claim")
      send("{\"janus\":\"error\",\"transaction\":\"" + txn +
           "\",\"error\":{\"code\":458,\"reason\":\"No such session\"}}");
    if (verb == "attach")
      send(head + ",\"data\":{\"id\":" + std::to_string(100 + self->attaches++) + "}}");
    if (verb == "message") {
      JsonObject *body = json_object_get_object_member(o, "body");
      std::string req = json_object_get_string_member(body, "request");
      gint64 handle = json_object_get_int_member(o, "handle_id");
      std::string ev = "{\"janus\":\"event\",\"transaction\":\"" + txn +
          "\",\"sender\":" + std::to_string(handle) +
          ",\"plugindata\":{\"plugin\":\"janus.plugin.videoroom\",\"data\":";
      if (req == "create") send(head + ",\"sender\":100,\"plugindata\":{\"data\":{}}}");
      if (req == "join" &&
          std::string(json_object_get_string_member(body, "ptype")) == "publisher") {
        std::string pubs = "{\"id\":\"\"},{\"id\":-5},{\"id\":7,\"display\":\"bad\\u001bname\"},"
                           "{\"id\":8,\"display\":\"good\"}";
        for (int i = 0; i < 5000; i++) pubs += ",{\"id\":" + std::to_string(1000 + i) + "}";
        send(ev + "{\"videoroom\":\"joined\",\"room\":1,\"id\":1,\"publishers\":[" + pubs + "]}}}");
        send("{\"janus\":\"success\",\"transaction\":\"nobody-sent-this\"}");
        send(
            "{\"janus\":\"event\",\"sender\":99999,\"jsep\":{\"type\":\"offer\",\"sdp\":\"v=0\"}}");
      }
      if (req == "join" &&
          std::string(json_object_get_string_member(body, "ptype")) == "subscriber") {
        send(ev + "{\"videoroom\":\"attached\"}},\"jsep\":{\"type\":\"offer\",\"sdp\":\"" + kSdp +
             "\"}}");
        send("{\"janus\":\"trickle\",\"sender\":" + std::to_string(handle) +
             ",\"candidate\":{\"sdpMid\":\"0\",\"sdpMLineIndex\":0,\"candidate\":\"" + kCand +
             "\\r\\na=evil\"}}");
        if (self->connections == 1 && self->attaches > 60 && !self->sent_big++)
          send("{\"janus\":\"event\",\"x\":\"" + std::string(70000, 'x') + "\"}");
      }
    }
    g_object_unref(parser);
  }
};
} // namespace

GST_START_TEST(janus_malicious_server)
{
  BadJanus srv;
  Recorder r;
  reset_peak_rss();
  long rss0 = status_kib("VmHWM:");
  auto s = make("janus://127.0.0.1:" + std::to_string(srv.port) + "/1", Role::Answerer);
  s->start(g_main_context_default(), r.hooks());
  // Past the oversized message: closed by us, reconnected, the old session refused, a new one
  // (whose peers are named anew: good-1).
  fail_unless(wait_for([&] { return srv.connections >= 2 && r.count("ready") >= 2; }, 20000), "%s",
              r.dump().c_str());
  // Subscriptions are bounded; the bad display never names a peer; the good one does.
  auto joined_good = [&] {
    for (const auto &e : r.events)
      if (e.kind == "joined" && (e.peer == "good" || e.peer == "good-1")) return true;
    return false;
  };
  fail_unless(wait_for(joined_good, 10000), "%s", r.dump().c_str());
  fail_unless(r.errors_with("not subscribing to more than 64 Janus publishers") >= 1, "%s",
              r.dump().c_str());
  bool good = false;
  for (const auto &e : r.events) {
    fail_if(e.peer.find('\x1b') != std::string::npos, "%s", r.dump().c_str());
    good |= e.kind == "joined" && (e.peer == "good" || e.peer == "good-1");
    fail_if(e.kind == "candidate", "a candidate with CR LF got through");
    fail_if(e.fatal, "%s", e.a.c_str());
  }
  fail_unless(good, "%s", r.dump().c_str());
  fail_unless(r.find("sdp") && r.find("sdp")->a == "offer", "%s", r.dump().c_str());
  fail_unless(r.errors_with("candidate contains a control character") >= 1, "%s", r.dump().c_str());
  fail_unless(r.count("disconnected") >= 1 && r.count("left") >= 1, "%s", r.dump().c_str());
  if (kRssMeaningful) {
    long grew = status_kib("VmHWM:") - rss0;
    fail_unless(grew < 16 * 1024, "peak RSS grew by %ld KiB", grew);
  }
  s->stop();
}
GST_END_TEST;

static Suite *hostile_suite()
{
  Suite *s = suite_create("hostile_signaling");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, tcp_line_decoder);
  tcase_add_test(tc, tcp_malicious_offerer);
  tcase_add_test(tc, tcp_offerer_that_drops_us);
  tcase_add_test(tc, tcp_connection_flood);
  tcase_add_test(tc, http_oversized_answer);
  tcase_add_test(tc, http_trickling_answer);
  tcase_add_test(tc, ws_malicious_server);
  tcase_add_test(tc, janus_malicious_server);
  return s;
}

GST_CHECK_MAIN(hostile);
