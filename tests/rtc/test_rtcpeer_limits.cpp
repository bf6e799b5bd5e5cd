// SPDX-License-Identifier: LGPL-2.1-or-later
/* rtcpeer against a malicious room server (issue 11): however many peers the server announces,
 * in its registered list or in a peer_joined flood, rtcpeer makes at most max-peers peer
 * connections, says so once per run of refusals, and takes new peers again once one leaves. */
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>
#include <libsoup/soup.h>

namespace {

// A room server that answers the register message with `listed` peers (all browsers, so that
// rtcpeer offers to each) and then announces `joined` more; send() adds messages later.
struct FloodWs {
  SoupServer *server = soup_server_new(nullptr, nullptr);
  int port = 0;
  int listed, joined;
  std::string pad, type = "browser"; // listed ids get pad appended, and this type
  SoupWebsocketConnection *conn = nullptr;

  FloodWs(int listed_peers, int joined_peers) : listed(listed_peers), joined(joined_peers)
  {
    soup_server_add_websocket_handler(server, "/ws", nullptr, nullptr, &FloodWs::on_ws, this,
                                      nullptr);
    fail_unless(soup_server_listen_local(server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, nullptr));
    GSList *uris = soup_server_get_uris(server);
    port = g_uri_get_port(static_cast<GUri *>(uris->data));
    g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
  }
  ~FloodWs()
  {
    if (conn) g_object_unref(conn);
    g_object_unref(server);
  }
  void send(const std::string &text)
  {
    fail_unless(conn != nullptr);
    soup_websocket_connection_send_text(conn, text.c_str());
  }
  void join(const std::string &id)
  {
    send("{\"type\":\"peer_joined\",\"client_id\":\"" + id + "\",\"client_type\":\"browser\"}");
  }
  static void on_message(SoupWebsocketConnection *, gint, GBytes *msg, gpointer d)
  {
    auto *self = static_cast<FloodWs *>(d);
    gsize n = 0;
    auto *text = static_cast<const char *>(g_bytes_get_data(msg, &n));
    if (std::string(text, n).find("\"register\"") == std::string::npos) return;
    std::string peers, types;
    for (int i = 0; i < self->listed; i++) {
      std::string id = "\"p" + std::to_string(i) + self->pad + "\"";
      peers += (i ? "," : "") + id;
      types += (i ? "," : "") + id + ":\"" + self->type + "\"";
    }
    self->send("{\"type\":\"registered\",\"client_id\":\"me\",\"room_id\":\"default\",\"peers\":[" +
               peers + "],\"peer_types\":{" + types + "}}");
    for (int i = 0; i < self->joined; i++) self->join("j" + std::to_string(i));
  }
  static void on_ws(SoupServer *, SoupServerMessage *, const char *, SoupWebsocketConnection *c,
                    gpointer d)
  {
    auto *self = static_cast<FloodWs *>(d);
    if (self->conn) return; // one connection is enough here
    self->conn = SOUP_WEBSOCKET_CONNECTION(g_object_ref(c));
    g_signal_connect(c, "message", G_CALLBACK(on_message), self);
  }
};

struct Watch {
  GstElement *pipeline, *rtc;
  GstBus *bus;
  int created = 0, left = 0, too_many = 0, too_many_mlines = 0, lost = 0;
  guint registered_peers = 0;

  explicit Watch(const std::string &uri, guint max_peers)
  {
    pipeline = gst_pipeline_new(nullptr);
    rtc = gst_element_factory_make("rtcpeer", nullptr);
    fail_unless(rtc != nullptr);
    g_object_set(rtc, "signaling", uri.c_str(), "receive-video", FALSE, "max-peers", max_peers,
                 nullptr);
    gst_bin_add(GST_BIN(pipeline), rtc);
    bus = gst_element_get_bus(pipeline);
    fail_if(gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE);
  }
  ~Watch()
  {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(pipeline);
  }
  // Runs the default context (the server's) and counts what the bus said, for ms.
  void run(int ms)
  {
    gint64 end = g_get_monotonic_time() + gint64(ms) * 1000;
    while (g_get_monotonic_time() < end) {
      while (g_main_context_iteration(nullptr, FALSE)) {}
      while (GstMessage *m = gst_bus_pop(bus)) {
        const GstStructure *s = gst_message_get_structure(m);
        if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT && s) {
          created += gst_structure_has_name(s, "rtcpeer-session-created");
          left += gst_structure_has_name(s, "rtcpeer-peer-left");
          if (gst_structure_has_name(s, "rtcpeer-registered"))
            gst_structure_get_uint(s, "peers", &registered_peers);
          lost += gst_structure_has_name(s, "rtcpeer-signaling-disconnected");
        } else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING) {
          GError *err = nullptr;
          gst_message_parse_warning(m, &err, nullptr);
          too_many += g_str_has_prefix(err->message, "Too many peers");
          too_many_mlines +=
              g_str_has_prefix(err->message, "Ignored an offer with too many m-lines");
          g_error_free(err);
        }
        gst_message_unref(m);
      }
      g_usleep(2000);
    }
  }
  int sessions() const
  {
    // Each session is one webrtcbin child.
    int n = 0;
    GstIterator *it = gst_bin_iterate_elements(GST_BIN(rtc));
    GValue v = G_VALUE_INIT;
    while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
      auto *e = GST_ELEMENT(g_value_get_object(&v));
      GstElementFactory *f = gst_element_get_factory(e);
      n += f && !g_strcmp0(gst_plugin_feature_get_name(GST_PLUGIN_FEATURE(f)), "webrtcbin");
      g_value_reset(&v);
    }
    g_value_unset(&v);
    gst_iterator_free(it);
    return n;
  }
};

} // namespace

GST_START_TEST(test_peer_flood_bounded)
{
  FloodWs srv(50, 100);
  Watch w("ws://127.0.0.1:" + std::to_string(srv.port) + "/ws", 4);
  w.run(4000);
  fail_unless_equals_int(w.created, 4);
  fail_unless_equals_int(w.sessions(), 4);
  fail_unless_equals_int(w.too_many, 1); // one warning for the whole flood
  // One of them leaves: a new peer is taken again, and the next flood warns again.
  srv.send("{\"type\":\"peer_left\",\"client_id\":\"p0\"}");
  w.run(500);
  srv.join("late");
  w.run(1500);
  fail_unless_equals_int(w.created, 5);
  fail_unless_equals_int(w.sessions(), 4);
  for (int i = 0; i < 20; i++) srv.join("again" + std::to_string(i));
  w.run(1000);
  fail_unless_equals_int(w.sessions(), 4);
  fail_unless_equals_int(w.too_many, 2);
}
GST_END_TEST;

// 2000 m-lines fit in the 64 KiB an SDP may have: refused before webrtcbin sees them (it would
// make a transceiver and transport per section), and no peer connection is made for them.
GST_START_TEST(test_offer_with_many_mlines)
{
  FloodWs srv(0, 0);
  Watch w("ws://127.0.0.1:" + std::to_string(srv.port) + "/ws", 4);
  w.run(1000);
  std::string sdp = "v=0\\r\\no=- 1 1 IN IP4 0.0.0.0\\r\\ns=-\\r\\nt=0 0\\r\\n";
  for (int i = 0; i < 2000; i++) sdp += "m=audio 9 UDP/TLS/RTP/SAVPF 0\\r\\n";
  fail_unless(sdp.size() < 64 * 1024 + 2000 * 2);
  srv.send("{\"type\":\"offer\",\"from_id\":\"x\",\"sdp\":{\"type\":\"offer\",\"sdp\":\"" + sdp +
           "\"}}");
  w.run(1500);
  fail_unless_equals_int(w.too_many_mlines, 1);
  fail_unless_equals_int(w.created, 0);
  fail_unless_equals_int(w.sessions(), 0);
}
GST_END_TEST;

// The reply to register lists every member: 99 with 256-byte ids and types are 77 KB, past the
// 65 KiB any other message may have. It is taken (the members of a room could otherwise keep
// rtcpeer out of it: closed with 1009 on every reconnect).
GST_START_TEST(test_big_room_list)
{
  FloodWs srv(99, 0);
  srv.pad = std::string(250, 'x');
  srv.type = std::string(256, 't'); // not a type rtcpeer offers to: no sessions needed here
  Watch w("ws://127.0.0.1:" + std::to_string(srv.port) + "/ws", 4);
  w.run(2000);
  fail_unless_equals_int(w.registered_peers, 99);
  fail_unless_equals_int(w.lost, 0);
  // After it, the 65 KiB bound holds again: a bigger message closes the connection.
  srv.send("{\"type\":\"peer_left\",\"client_id\":\"" + std::string(70000, 'y') + "\"}");
  w.run(1500);
  fail_unless_equals_int(w.lost, 1);
}
GST_END_TEST;

GST_START_TEST(test_default_bound)
{
  GstElement *rtc = gst_element_factory_make("rtcpeer", nullptr);
  guint max = 0;
  g_object_get(rtc, "max-peers", &max, nullptr);
  fail_unless_equals_int(max, 256);
  gst_object_unref(rtc);
}
GST_END_TEST;

static Suite *limits_suite()
{
  Suite *s = suite_create("rtcpeer_limits");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_default_bound);
  tcase_add_test(tc, test_peer_flood_bounded);
  tcase_add_test(tc, test_offer_with_many_mlines);
  tcase_add_test(tc, test_big_room_list);
  return s;
}

GST_CHECK_MAIN(limits);
