// SPDX-License-Identifier: LGPL-2.1-or-later
/* A C application on the pointcast plugin: loads libgstpointcast.so by path (no GST_PLUGIN_PATH
 * needed), builds pointsrc ! npypack ! rtcpeer in code, watches rtcpeer's bus messages and reads
 * its connected-peers property.
 *
 *   rtcpeer-app PLUGIN SIGNALING ROOM [SECONDS]
 *   build/examples/rtcpeer-app build/gst/libgstpointcast.so ws://127.0.0.1:8765/ws lab
 *
 * It sends a (10, 3) float32 array (pointsrc pattern=counter) four times a second on the data
 * channel "points" to every peer in ROOM (run points-receiver there), and ends SECONDS (default
 * 3) after the first peer connected: exit status 0 if one did, 1 if none did within 60 s. */
#include <gst/gst.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  GMainLoop *loop;
  GstElement *rtc;
  guint seconds;
  gboolean connected;
  guint channels_open;
} App;

static gboolean quit_cb(gpointer data)
{
  g_main_loop_quit(((App *)data)->loop);
  return G_SOURCE_REMOVE;
}

static gboolean on_bus(GstBus *bus, GstMessage *msg, gpointer data)
{
  App *app = data;
  switch (GST_MESSAGE_TYPE(msg)) {
  case GST_MESSAGE_ERROR: {
    GError *err = NULL;
    gchar *dbg = NULL;
    gst_message_parse_error(msg, &err, &dbg);
    fprintf(stderr, "error from %s: %s\n", GST_OBJECT_NAME(msg->src), err->message);
    g_clear_error(&err);
    g_free(dbg);
    g_main_loop_quit(app->loop);
    break;
  }
  case GST_MESSAGE_WARNING: {
    GError *err = NULL;
    gst_message_parse_warning(msg, &err, NULL);
    fprintf(stderr, "warning from %s: %s\n", GST_OBJECT_NAME(msg->src), err->message);
    g_clear_error(&err);
    break;
  }
  case GST_MESSAGE_EOS: g_main_loop_quit(app->loop); break;
  case GST_MESSAGE_ELEMENT: {
    const GstStructure *s = gst_message_get_structure(msg);
    const char *name = s ? gst_structure_get_name(s) : "";
    if (!g_str_has_prefix(name, "rtcpeer-")) break;
    const char *peer = gst_structure_get_string(s, "peer-id");
    printf("%s%s%s\n", name, peer ? " peer-id=" : "", peer ? peer : "");
    if (!strcmp(name, "rtcpeer-peer-connected")) {
      guint n = 0;
      g_object_get(app->rtc, "connected-peers", &n, NULL);
      printf("connected-peers=%u\n", n);
      if (!app->connected) g_timeout_add_seconds(app->seconds, quit_cb, app);
      app->connected = TRUE;
    } else if (!strcmp(name, "rtcpeer-channel-open")) {
      app->channels_open++;
    } else if (!strcmp(name, "rtcpeer-peer-left")) {
      guint n = 0;
      g_object_get(app->rtc, "connected-peers", &n, NULL);
      printf("connected-peers=%u (reason: %s)\n", n, gst_structure_get_string(s, "reason"));
    }
    fflush(stdout);
    break;
  }
  default: break;
  }
  return TRUE;
}

int main(int argc, char **argv)
{
  gst_init(&argc, &argv);
  if (argc < 4) {
    fprintf(stderr, "usage: %s PLUGIN SIGNALING ROOM [SECONDS]\n", argv[0]);
    return 2;
  }
  GError *err = NULL;
  GstPlugin *plugin = gst_plugin_load_file(argv[1], &err);
  if (!plugin) {
    fprintf(stderr, "cannot load %s: %s\n", argv[1], err->message);
    g_clear_error(&err);
    return 1;
  }
  printf("loaded plugin %s %s\n", gst_plugin_get_name(plugin), gst_plugin_get_version(plugin));
  gst_object_unref(plugin);

  App app = {0};
  app.seconds = argc > 4 ? (guint)atoi(argv[4]) : 3;
  GstElement *pipe = gst_pipeline_new("app");
  GstElement *src = gst_element_factory_make("pointsrc", NULL);
  GstElement *pack = gst_element_factory_make("npypack", NULL);
  app.rtc = gst_element_factory_make("rtcpeer", "rtc");
  if (!src || !pack || !app.rtc) {
    fprintf(stderr, "the plugin's elements are missing\n");
    return 1;
  }
  g_object_set(src, "rate", 4.0, "points", 10u, NULL); /* a gdouble and a guint, as varargs need */
  gst_util_set_object_arg(G_OBJECT(src), "pattern", "counter");
  g_object_set(app.rtc, "signaling", argv[2], "room", argv[3], "peer-id", "c-app", "peer-type",
               "c-app", "wait-for-peers", 1u, NULL);
  gst_bin_add_many(GST_BIN(pipe), src, pack, app.rtc, NULL);
  /* rtcpeer's data sink pads are request pads: the name after data_ is the channel label. */
  GstPad *sink = gst_element_request_pad_simple(app.rtc, "data_points");
  GstPad *out = gst_element_get_static_pad(pack, "src");
  if (!gst_element_link(src, pack) || gst_pad_link(out, sink) != GST_PAD_LINK_OK) {
    fprintf(stderr, "cannot link pointsrc ! npypack ! rtcpeer\n");
    return 1;
  }
  gst_object_unref(out);

  app.loop = g_main_loop_new(NULL, FALSE);
  GstBus *bus = gst_element_get_bus(pipe);
  gst_bus_add_watch(bus, on_bus, &app);
  guint timeout = g_timeout_add_seconds(60, quit_cb, &app);
  gst_element_set_state(pipe, GST_STATE_PLAYING);
  g_main_loop_run(app.loop);

  printf("peer connected: %s, channels opened: %u\n", app.connected ? "yes" : "no",
         app.channels_open);
  gst_element_set_state(pipe, GST_STATE_NULL);
  g_source_remove(timeout);
  gst_bus_remove_watch(bus);
  gst_object_unref(bus);
  gst_element_release_request_pad(app.rtc, sink);
  gst_object_unref(sink);
  gst_object_unref(pipe);
  g_main_loop_unref(app.loop);
  return app.connected ? 0 : 1;
}
