// SPDX-License-Identifier: LGPL-2.1-or-later
/* Small helpers shared by the signallers (header only).
 *
 * Threading model of the tcp:// and http:// transports: every GIO/libsoup operation is started
 * inside the GMainContext given to Signaller::start() with that context pushed as thread-default,
 * so their callbacks run there too. Public calls from other threads (send_sdp from webrtcbin's
 * thread) are marshalled with g_main_context_invoke. One recursive mutex guards the state and is
 * held while an event is delivered, so that once stop() returns no event is delivered any more. */
#pragma once

#include "signaller.h"
#include "rtc/mainctx.h"

#include <glib.h>
#include <gio/gio.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace pointcast::sigutil {

/* Creates a transport's debug category the first time one of its signallers is made (not in
 * plugin_init: test programs build and use the signallers without the plugin). */
inline void debug_category_once(GstDebugCategory **cat, const char *name, const char *description)
{
  if (g_once_init_enter(cat)) {
    GstDebugCategory *made = nullptr;
    GST_DEBUG_CATEGORY_INIT(made, name, 0, description);
    g_once_init_leave(cat, made);
  }
}

// Sets *error (when asked for) to "bad signaling URI 'URI': WHY"; returns nullptr to return on.
inline std::nullptr_t bad_uri(std::string *error, const std::string &uri, std::string_view why)
{
  if (error) *error = "bad signaling URI '" + uri + "': " + std::string(why);
  return nullptr;
}

// The parts of a signaling URI the transports look at.
struct SignalingUri {
  std::string scheme;
  std::string host; // empty when the URI has none
  int port = -1;    // -1 when the URI has none
  std::string path;
};

// Parses a signaling URI; nullopt on failure, with bad_uri()'s message carrying GLib's reason.
inline std::optional<SignalingUri> parse_signaling_uri(const std::string &text, GUriFlags flags,
                                                       std::string *error)
{
  GError *err = nullptr;
  GUri *uri = g_uri_parse(text.c_str(), flags, &err);
  if (!uri) {
    bad_uri(error, text, err->message);
    g_error_free(err);
    return std::nullopt;
  }
  SignalingUri out;
  out.scheme = g_uri_get_scheme(uri);
  out.host = g_uri_get_host(uri) ? g_uri_get_host(uri) : "";
  out.port = g_uri_get_port(uri);
  out.path = g_uri_get_path(uri);
  g_uri_unref(uri);
  return out;
}

using mainctx::invoke;
using mainctx::timeout;

/* The state and lifecycle the tcp:// and http:// transports share (threading model above): the
 * context and events given to start(), a cancellable for pending I/O, one retry timer, and the
 * recursive mutex over all of it. Derived (made by std::make_shared) provides on_started(), run
 * in ctx with the mutex held unless stopped by then, and may provide on_stopping(), run once by
 * stop() with the mutex held. */
template <class Derived>
class Transport : public std::enable_shared_from_this<Derived> {
public:
  void start(GMainContext *ctx, SignallerEvents ev)
  {
    std::lock_guard lk(mu_);
    if (ctx_) return;
    ctx_ = g_main_context_ref(ctx);
    ev_ = std::move(ev);
    cancel_ = g_cancellable_new();
    std::shared_ptr<Derived> self = this->shared_from_this();
    invoke(ctx_, [self] {
      std::lock_guard lk(self->mu_);
      if (!self->stopped_) self->on_started();
    });
  }

  void stop()
  {
    std::lock_guard lk(mu_);
    if (stopped_) return;
    stopped_ = true;
    if (cancel_) g_cancellable_cancel(cancel_);
    if (retry_) {
      g_source_destroy(retry_);
      g_source_unref(retry_);
      retry_ = nullptr;
    }
    static_cast<Derived *>(this)->on_stopping();
  }

protected:
  Transport() = default;
  ~Transport()
  {
    if (cancel_) g_object_unref(cancel_);
    if (ctx_) g_main_context_unref(ctx_);
  }
  void on_stopping() {}

  // Runs (self->*again)() in ctx after ms, unless a retry is pending already or we stopped.
  void retry_after(unsigned ms, void (Derived::*again)())
  {
    if (stopped_ || retry_) return;
    std::weak_ptr<Derived> weak = this->shared_from_this();
    retry_ = timeout(ctx_, ms, [weak, again] {
      std::shared_ptr<Derived> self = weak.lock();
      if (!self) return;
      std::lock_guard lk(self->mu_);
      if (self->retry_) {
        g_source_unref(self->retry_);
        self->retry_ = nullptr;
      }
      if (!self->stopped_) (self.get()->*again)();
    });
  }

  std::recursive_mutex mu_;
  GMainContext *ctx_ = nullptr;
  SignallerEvents ev_;
  GCancellable *cancel_ = nullptr;
  GSource *retry_ = nullptr;
  bool stopped_ = false;
};

// One JSON object from text; nullopt and *why on anything else.
struct JsonObj {
  JsonParser *parser = nullptr;
  JsonObject *obj = nullptr; // owned by parser
  JsonObj() = default;
  JsonObj(const JsonObj &) = delete;
  JsonObj &operator=(const JsonObj &) = delete;
  JsonObj(JsonObj &&o) noexcept : parser(std::exchange(o.parser, nullptr)), obj(o.obj) {}
  ~JsonObj()
  {
    if (parser) g_object_unref(parser);
  }

  // A string member, or nullopt when absent / not a string.
  std::optional<std::string> str(const char *name) const
  {
    JsonNode *n = json_object_get_member(obj, name);
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
      return std::nullopt;
    return std::string(json_node_get_string(n));
  }
  bool is_null(const char *name) const
  {
    JsonNode *n = json_object_get_member(obj, name);
    return !n || JSON_NODE_HOLDS_NULL(n);
  }
  // An integer member, or nullopt.
  std::optional<gint64> integer(const char *name) const
  {
    JsonNode *n = json_object_get_member(obj, name);
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
      return std::nullopt;
    return json_node_get_int(n);
  }
};

inline std::optional<JsonObj> parse_object(const char *data, gssize len, std::string *why)
{
  JsonObj o;
  o.parser = json_parser_new();
  GError *err = nullptr;
  if (!json_parser_load_from_data(o.parser, data, len, &err)) {
    *why = std::string("not JSON: ") + err->message;
    g_error_free(err);
    return std::nullopt;
  }
  JsonNode *root = json_parser_get_root(o.parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    *why = "not a JSON object";
    return std::nullopt;
  }
  o.obj = json_node_get_object(root);
  return o;
}

// Serialises a builder's root on one line (no newlines inside: JSON escapes them).
inline std::string to_line(JsonBuilder *b)
{
  JsonNode *root = json_builder_get_root(b);
  JsonGenerator *gen = json_generator_new();
  json_generator_set_root(gen, root);
  gchar *text = json_generator_to_data(gen, nullptr);
  std::string out(text);
  g_free(text);
  g_object_unref(gen);
  json_node_unref(root);
  return out;
}

} // namespace pointcast::sigutil
