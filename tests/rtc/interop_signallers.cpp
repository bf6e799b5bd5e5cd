// SPDX-License-Identifier: LGPL-2.1-or-later
/* The tcp:// (aiortc TcpSocketSignaling) and http:// (POST /offer) signallers on their own, on
 * loopback: each other, raw sockets speaking the wire format, a SoupServer standing in for an
 * aiortc server example, and aiortc's own TcpSocketSignaling class in a Python child. */
#include "rtc/signaller.h"
#include "sigrecorder.h"

#include <gio/gio.h>
#include <gst/check/gstcheck.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include <atomic>
#include <string>
#include <vector>

using namespace pointcast;

namespace {

using sigtest::Event;
using sigtest::Recorder;
using sigtest::wait_for;

int free_port()
{
  GSocket *s =
      g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, nullptr);
  GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress *a = g_inet_socket_address_new(lo, 0);
  g_socket_bind(s, a, TRUE, nullptr);
  GSocketAddress *bound = g_socket_get_local_address(s, nullptr);
  int port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  g_object_unref(bound);
  g_object_unref(a);
  g_object_unref(lo);
  g_socket_close(s, nullptr);
  g_object_unref(s);
  return port;
}

// Dispatches by scheme without the rest of rtcpeer (signaller.cpp belongs to the element).
std::unique_ptr<Signaller> make(const std::string &uri, Role role)
{
  SignallerConfig cfg;
  cfg.uri = uri;
  cfg.role = role;
  std::string err;
  auto s =
      uri.rfind("tcp:", 0) == 0 ? make_tcp_signaller(cfg, &err) : make_http_signaller(cfg, &err);
  fail_unless(s != nullptr, "%s: %s", uri.c_str(), err.c_str());
  return s;
}

const char *kOffer =
    "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP "
    "webrtc-datachannel\r\na=mid:0\r\n";
const char *kAnswer = "v=0\r\no=- 2 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\"quoted\" \\ é\r\n";

} // namespace

GST_START_TEST(tcp_roles_and_retry)
{
  int port = free_port();
  std::string uri = "tcp://127.0.0.1:" + std::to_string(port);
  fail_unless(make(uri, Role::Auto)->resolve_role(Role::Auto) == Role::Answerer);
  fail_unless(make("tcp://0.0.0.0:" + std::to_string(port), Role::Auto)->resolve_role(Role::Auto) ==
              Role::Offerer);
  std::string err;
  SignallerConfig bad;
  bad.uri = "tcp://0.0.0.0:1";
  bad.role = Role::Answerer;
  fail_unless(make_tcp_signaller(bad, &err) == nullptr &&
              err.find("offerer's host") != std::string::npos);
  bad.uri = "tcp://127.0.0.1:1/path";
  fail_unless(make_tcp_signaller(bad, &err) == nullptr);

  // The answerer starts first, as aiortc's offerer only listens once its offer is ready.
  Recorder ra, ro;
  auto answerer = make(uri, Role::Answerer);
  answerer->start(g_main_context_default(), ra.hooks());
  fail_unless(wait_for([&] { return ra.count("error") == 1; }));
  fail_if(ra.find("error")->fatal);
  fail_unless(ra.find("error")->a.find("retrying") != std::string::npos, "%s",
              ra.find("error")->a.c_str());
  fail_unless(!answerer->trickles());

  auto offerer = make(uri, Role::Offerer);
  offerer->start(g_main_context_default(), ro.hooks());
  fail_unless(wait_for([&] { return ro.find("joined") && ra.find("joined"); }));
  fail_unless(ro.find("ready") != nullptr);
  std::string to_answerer = ro.find("joined")->peer, to_offerer = ra.find("joined")->peer;
  fail_unless(ra.count("error") == 1, "a failed retry streak is reported once");

  offerer->send_sdp(to_answerer, "offer", kOffer);
  fail_unless(wait_for([&] { return ra.find("sdp") != nullptr; }));
  fail_unless(ra.find("sdp")->a == "offer" && ra.find("sdp")->b == kOffer);
  fail_unless(ra.find("sdp")->peer == to_offerer);

  answerer->send_sdp(to_offerer, "answer", kAnswer);
  answerer->send_candidate(to_offerer, "0", 0,
                           "candidate:1 1 UDP 2122252543 127.0.0.1 40000 typ host");
  fail_unless(wait_for([&] { return ro.find("candidate") != nullptr; }));
  fail_unless(ro.find("sdp")->a == "answer" && ro.find("sdp")->b == kAnswer);
  fail_unless(ro.find("candidate")->a == "0/0");
  fail_unless(ro.find("candidate")->b == "candidate:1 1 UDP 2122252543 127.0.0.1 40000 typ host");

  // The answerer leaving says bye: the offerer's session for it ends.
  answerer->stop();
  fail_unless(wait_for([&] { return ro.find("left") != nullptr; }));
  fail_unless(ro.find("left")->peer == to_answerer);
  size_t before = ra.events.size();
  offerer->stop();
  offerer->stop(); // idempotent
  wait_for([] { return false; }, 100);
  fail_unless(ra.events.size() == before, "no event after stop()");
}
GST_END_TEST;

// An answerer outlives its offerer: after the bye it connects to the next one, quietly.
GST_START_TEST(tcp_answerer_serves_next_offerer)
{
  int port = free_port();
  std::string uri = "tcp://127.0.0.1:" + std::to_string(port);
  Recorder ra, r1, r2;
  auto first = make(uri, Role::Offerer);
  first->start(g_main_context_default(), r1.hooks());
  fail_unless(wait_for([&] { return r1.find("ready") != nullptr; }));
  auto answerer = make(uri, Role::Auto);
  answerer->start(g_main_context_default(), ra.hooks());
  fail_unless(wait_for([&] { return ra.find("joined") && r1.find("joined"); }));
  first->stop();
  fail_unless(wait_for([&] { return ra.find("left") != nullptr; }));
  fail_unless(ra.find("left")->peer == ra.find("joined")->peer);
  first.reset();

  auto second = make(uri, Role::Offerer);
  second->start(g_main_context_default(), r2.hooks());
  fail_unless(wait_for([&] { return ra.count("joined") == 2 && r2.find("joined"); }));
  std::string again = ra.find("joined", 1)->peer;
  fail_unless(again != ra.find("joined")->peer, "a new connection is a new peer");
  second->send_sdp(r2.find("joined")->peer, "offer", kOffer);
  fail_unless(wait_for([&] { return ra.find("sdp") != nullptr; }));
  fail_unless(ra.find("sdp")->peer == again);
  fail_unless(ra.count("error") == 0, "a bye is not an error: %s",
              ra.count("error") ? ra.find("error")->a.c_str() : "");
  answerer->stop();
  second->stop();
}
GST_END_TEST;

// A raw client speaking lines, as aiortc does: bad lines are reported and skipped, good ones work.
GST_START_TEST(tcp_bad_lines_and_wire_format)
{
  int port = free_port();
  Recorder ro;
  auto offerer = make("tcp://127.0.0.1:" + std::to_string(port), Role::Offerer);
  offerer->start(g_main_context_default(), ro.hooks());
  fail_unless(wait_for([&] { return ro.find("ready") != nullptr; }));

  GSocketClient *client = g_socket_client_new();
  GSocketConnection *conn = g_socket_client_connect_to_host(
      client, ("127.0.0.1:" + std::to_string(port)).c_str(), 0, nullptr, nullptr);
  fail_unless(conn != nullptr);
  fail_unless(wait_for([&] { return ro.find("joined") != nullptr; }));
  std::string peer = ro.find("joined")->peer;

  std::string lines = std::string("not json\n") + "[1,2]\n" + "{\"type\":\"dance\"}\n" +
      "{\"type\":\"answer\"}\n" + "\n" +
      "{\"type\":\"candidate\",\"candidate\":\"candidate:9 1 udp 1 127.0.0.1 9 typ "
      "host\",\"id\":\"0\",\"label\":0}\r\n" +
      "{\"sdp\": \"v=0\\r\\n\", \"type\": \"answer\"}\n";
  // Split mid-line to check reassembly across reads.
  GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
  g_output_stream_write_all(out, lines.data(), 30, nullptr, nullptr, nullptr);
  wait_for([] { return false; }, 50);
  g_output_stream_write_all(out, lines.data() + 30, lines.size() - 30, nullptr, nullptr, nullptr);
  fail_unless(wait_for([&] { return ro.find("sdp") != nullptr; }));
  fail_unless(ro.count("error") == 4, "4 bad lines, got %zu errors", ro.count("error"));
  for (size_t i = 0; i < 4; i++) fail_if(ro.find("error", i)->fatal);
  fail_unless(ro.find("error", 2)->a.find("dance") != std::string::npos);
  fail_unless(ro.find("candidate")->a == "0/0");
  fail_unless(ro.find("sdp")->b == "v=0\r\n");

  // What the offerer writes is one JSON line with exactly "sdp" and "type" (aiortc does
  // RTCSessionDescription(**message)).
  offerer->send_sdp(peer, "offer", kAnswer);
  GDataInputStream *in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(conn)));
  struct Read {
    GDataInputStream *in;
    std::atomic<bool> done{false};
    gchar *line = nullptr;
  } rd{in};
  GThread *reader = g_thread_new(
      "reader",
      [](gpointer d) -> gpointer {
        auto *r = static_cast<Read *>(d);
        gsize len;
        r->line = g_data_input_stream_read_line(r->in, &len, nullptr, nullptr);
        r->done = true;
        return nullptr;
      },
      &rd);
  fail_unless(wait_for([&] { return rd.done.load(); })); // the write happens on this context
  g_thread_join(reader);
  gchar *line = rd.line;
  fail_unless(line != nullptr);
  JsonParser *p = json_parser_new();
  fail_unless(json_parser_load_from_data(p, line, -1, nullptr));
  JsonObject *o = json_node_get_object(json_parser_get_root(p));
  fail_unless(json_object_get_size(o) == 2);
  fail_unless(g_str_equal(json_object_get_string_member(o, "type"), "offer"));
  fail_unless(json_object_get_string_member(o, "sdp") == std::string(kAnswer));
  g_object_unref(p);
  g_free(line);

  // stop() says bye before closing.
  offerer->stop();
  gsize len;
  line = g_data_input_stream_read_line(in, &len, nullptr, nullptr);
  fail_unless(line && g_str_equal(line, "{\"type\": \"bye\"}"), "%s", line);
  g_free(line);
  g_object_unref(in);
  g_object_unref(conn);
  g_object_unref(client);
}
GST_END_TEST;

// aiortc's own TcpSocketSignaling on the other end, in both roles.
static void run_aiortc(const char *role, int port, Recorder &r, Signaller &s)
{
  const char *root = g_getenv("POINTCAST_SOURCE_ROOT");
  fail_unless(root != nullptr);
  std::string script = std::string(root) + "/tests/rtc/interop_tcpsig_peer.py";
  GError *err = nullptr;
  // aiortc's answerer connects at once and does not retry: listen first. Our answerer retries, so
  // aiortc's offerer may come up after it.
  if (g_str_equal(role, "answer")) {
    s.start(g_main_context_default(), r.hooks());
    fail_unless(wait_for([&] { return r.find("ready") != nullptr; }));
  }
  GSubprocess *proc = g_subprocess_new(
      GSubprocessFlags(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE), &err,
      "/usr/bin/python3", script.c_str(), role, std::to_string(port).c_str(), nullptr);
  fail_unless(proc != nullptr, "%s", err ? err->message : "");
  if (g_str_equal(role, "offer")) s.start(g_main_context_default(), r.hooks());
  if (g_str_equal(role, "answer")) {
    // We offer: wait for aiortc to connect, then send; it answers with its own SDP + bye.
    fail_unless(wait_for([&] { return r.find("joined") != nullptr; }, 20000));
    s.send_sdp(r.find("joined")->peer, "offer", kOffer);
  }
  fail_unless(wait_for([&] { return r.find("sdp") != nullptr; }, 20000));
  if (g_str_equal(role, "offer")) {
    fail_unless(r.find("sdp")->a == "offer");
    s.send_sdp(r.find("sdp")->peer, "answer", kAnswer);
  } else {
    fail_unless(r.find("sdp")->a == "answer");
  }
  fail_unless(r.find("sdp")->b.rfind("v=0", 0) == 0);
  // Both scripts end with a candidate and a bye.
  fail_unless(wait_for([&] { return r.find("left") != nullptr; }, 20000));
  fail_unless(r.find("candidate") && r.find("candidate")->a == "0/0", "candidate");
  fail_unless(r.find("candidate")->b.rfind("candidate:", 0) == 0);
  GBytes *stdout_bytes = nullptr;
  fail_unless(g_subprocess_communicate(proc, nullptr, nullptr, &stdout_bytes, nullptr, &err));
  gsize n = 0;
  auto *data = static_cast<const char *>(g_bytes_get_data(stdout_bytes, &n));
  std::string outs(data ? data : "", n);
  g_bytes_unref(stdout_bytes);
  fail_unless(g_subprocess_get_if_exited(proc) && g_subprocess_get_exit_status(proc) == 0,
              "aiortc side failed: %s", outs.c_str());
  fail_unless(outs.find("OK") != std::string::npos, "n=%zu out=%s", n, outs.c_str());
  for (const auto &e : r.events) fail_if(e.kind == "error" && e.fatal, "%s", e.a.c_str());
  g_object_unref(proc);
}

GST_START_TEST(tcp_with_aiortc_offerer)
{
  int port = free_port();
  Recorder r;
  auto s = make("tcp://127.0.0.1:" + std::to_string(port), Role::Auto);
  run_aiortc("offer", port, r, *s);
  s->stop();
}
GST_END_TEST;

GST_START_TEST(tcp_with_aiortc_answerer)
{
  int port = free_port();
  Recorder r;
  auto s = make("tcp://127.0.0.1:" + std::to_string(port), Role::Offerer);
  run_aiortc("answer", port, r, *s);
  s->stop();
}
GST_END_TEST;

// ---- http ----
struct Server {
  SoupServer *server = nullptr;
  int port = 0;
  std::vector<guint> statuses; // replies in order; the last one repeats
  std::string body_for_error = "{\"error\": \"no answerer in room lab\"}";
  std::vector<std::string> requests;
  std::string ctype;
  const char *answer_ctype = "application/json";

  Server()
  {
    server = soup_server_new(nullptr, nullptr);
    soup_server_add_handler(server, "/offer", &Server::handle, this, nullptr);
    GError *err = nullptr;
    fail_unless(soup_server_listen_local(server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &err));
    GSList *uris = soup_server_get_uris(server);
    port = g_uri_get_port(static_cast<GUri *>(uris->data));
    g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
  }
  ~Server() { g_object_unref(server); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/offer"; }

  static void handle(SoupServer *, SoupServerMessage *msg, const char *, GHashTable *, gpointer d)
  {
    auto *self = static_cast<Server *>(d);
    SoupMessageBody *body = soup_server_message_get_request_body(msg);
    GBytes *b = soup_message_body_flatten(body);
    gsize n = 0;
    auto *data = static_cast<const char *>(g_bytes_get_data(b, &n));
    self->requests.emplace_back(data ? data : "", n);
    g_bytes_unref(b);
    const char *ct = soup_message_headers_get_content_type(
        soup_server_message_get_request_headers(msg), nullptr);
    self->ctype = ct ? ct : "";
    size_t i = std::min(self->requests.size(), self->statuses.size()) - 1;
    guint status = self->statuses[i];
    if (status == 200) {
      std::string reply;
      if (g_str_equal(self->answer_ctype, "application/sdp")) {
        reply = kAnswer;
      } else {
        JsonBuilder *jb = json_builder_new();
        json_builder_begin_object(jb);
        json_builder_set_member_name(jb, "sdp");
        json_builder_add_string_value(jb, kAnswer);
        json_builder_set_member_name(jb, "type");
        json_builder_add_string_value(jb, "answer");
        json_builder_end_object(jb);
        JsonGenerator *g = json_generator_new();
        JsonNode *root = json_builder_get_root(jb);
        json_generator_set_root(g, root);
        gchar *t = json_generator_to_data(g, nullptr);
        reply = t;
        g_free(t);
        json_node_unref(root);
        g_object_unref(g);
        g_object_unref(jb);
      }
      soup_server_message_set_status(msg, 200, nullptr);
      soup_server_message_set_response(msg, self->answer_ctype, SOUP_MEMORY_COPY, reply.data(),
                                       reply.size());
    } else {
      soup_server_message_set_status(msg, status, nullptr);
      soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY,
                                       self->body_for_error.data(), self->body_for_error.size());
    }
  }
};

GST_START_TEST(http_offer_answer)
{
  Server srv;
  srv.statuses = {200};
  Recorder r;
  auto s = make(srv.url(), Role::Auto);
  fail_unless(s->resolve_role(Role::Auto) == Role::Offerer);
  fail_unless(!s->trickles());
  s->start(g_main_context_default(), r.hooks());
  fail_unless(wait_for([&] { return r.find("joined") != nullptr; }));
  fail_unless(r.find("joined")->peer == srv.url());
  s->send_sdp(r.find("joined")->peer, "offer", kOffer);
  fail_unless(wait_for([&] { return r.find("sdp") != nullptr; }));
  fail_unless(r.find("sdp")->a == "answer" && r.find("sdp")->b == kAnswer);
  fail_unless(srv.ctype == "application/json");
  JsonParser *p = json_parser_new();
  fail_unless(
      json_parser_load_from_data(p, srv.requests[0].data(), srv.requests[0].size(), nullptr));
  JsonObject *o = json_node_get_object(json_parser_get_root(p));
  fail_unless(g_str_equal(json_object_get_string_member(o, "type"), "offer"));
  fail_unless(json_object_get_string_member(o, "sdp") == std::string(kOffer));
  g_object_unref(p);
  fail_unless(r.count("error") == 0);

  // WHIP-style servers answer with application/sdp.
  Server whip;
  whip.statuses = {200};
  whip.answer_ctype = "application/sdp";
  Recorder r2;
  auto s2 = make(whip.url(), Role::Offerer);
  s2->start(g_main_context_default(), r2.hooks());
  fail_unless(wait_for([&] { return r2.find("joined") != nullptr; }));
  s2->send_sdp(whip.url(), "offer", kOffer);
  fail_unless(wait_for([&] { return r2.find("sdp") != nullptr; }));
  fail_unless(r2.find("sdp")->b == kAnswer);

  std::string err;
  SignallerConfig cfg;
  cfg.uri = srv.url();
  cfg.role = Role::Answerer;
  fail_unless(make_http_signaller(cfg, &err) == nullptr &&
              err.find("offerer") != std::string::npos);
}
GST_END_TEST;

GST_START_TEST(http_errors)
{
  // 503 (no answerer yet) is retried, then the answer arrives.
  Server srv;
  srv.statuses = {503, 200};
  Recorder r;
  auto s = make(srv.url(), Role::Offerer);
  s->start(g_main_context_default(), r.hooks());
  fail_unless(wait_for([&] { return r.find("joined") != nullptr; }));
  s->send_sdp(srv.url(), "offer", kOffer);
  fail_unless(wait_for([&] { return r.find("sdp") != nullptr; }));
  fail_unless(r.count("error") == 1);
  const Event *e = r.find("error");
  fail_if(e->fatal);
  fail_unless(e->a.find("503") != std::string::npos &&
                  e->a.find("no answerer in room lab") != std::string::npos,
              "%s", e->a.c_str());
  fail_unless(srv.requests.size() == 2);

  // 400 is fatal at once, with the status and the server's reason.
  Server bad;
  bad.statuses = {400};
  bad.body_for_error = "offer has no data channel\n";
  Recorder rb;
  auto sb = make(bad.url(), Role::Offerer);
  sb->start(g_main_context_default(), rb.hooks());
  fail_unless(wait_for([&] { return rb.find("joined") != nullptr; }));
  sb->send_sdp(bad.url(), "offer", kOffer);
  fail_unless(wait_for([&] { return rb.find("error") != nullptr; }));
  fail_unless(rb.find("error")->fatal);
  fail_unless(rb.find("error")->a.find("400") != std::string::npos &&
                  rb.find("error")->a.find("offer has no data channel") != std::string::npos,
              "%s", rb.find("error")->a.c_str());
  fail_unless(bad.requests.size() == 1);

  // Nobody listening: retried, non-fatal errors naming the URL, then stop() ends it quietly.
  int port = free_port();
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/offer";
  Recorder rn;
  auto sn = make(url, Role::Offerer);
  sn->start(g_main_context_default(), rn.hooks());
  fail_unless(wait_for([&] { return rn.find("joined") != nullptr; }));
  sn->send_sdp(url, "offer", kOffer);
  fail_unless(wait_for([&] { return rn.find("error") != nullptr; }));
  fail_if(rn.find("error")->fatal);
  fail_unless(rn.find("error")->a.find(url) != std::string::npos, "%s",
              rn.find("error")->a.c_str());
  sn->stop();
  size_t n = rn.events.size();
  wait_for([] { return false; }, 1500);
  fail_unless(rn.events.size() == n, "no retry after stop()");
}
GST_END_TEST;

static Suite *signallers_suite()
{
  Suite *s = suite_create("interop_signallers");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, tcp_roles_and_retry);
  tcase_add_test(tc, tcp_answerer_serves_next_offerer);
  tcase_add_test(tc, tcp_bad_lines_and_wire_format);
  tcase_add_test(tc, http_offer_answer);
  tcase_add_test(tc, http_errors);
  const char *py = "/usr/bin/python3";
  if (g_file_test(py, G_FILE_TEST_IS_EXECUTABLE)) {
    tcase_add_test(tc, tcp_with_aiortc_offerer);
    tcase_add_test(tc, tcp_with_aiortc_answerer);
  }
  return s;
}

GST_CHECK_MAIN(signallers);
