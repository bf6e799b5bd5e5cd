// SPDX-License-Identifier: LGPL-2.1-or-later
/* Running code on a GMainContext: the one set of helpers the context thread and the signallers
 * use (GLib only, header only). */
#pragma once

#include <glib.h>

#include <functional>
#include <utility>

namespace pointcast::mainctx {

// Makes src call fn once, then attaches it to ctx; returns its id. The caller keeps its ref.
inline guint attach_once(GSource *src, GMainContext *ctx, std::function<void()> fn)
{
  auto *f = new std::function<void()>(std::move(fn));
  g_source_set_callback(
      src,
      [](gpointer d) -> gboolean {
        (*static_cast<std::function<void()> *>(d))();
        return G_SOURCE_REMOVE;
      },
      f, [](gpointer d) { delete static_cast<std::function<void()> *>(d); });
  return g_source_attach(src, ctx);
}

// Adds a one-shot timeout on ctx; returns the source (owned by the caller, destroy to cancel).
inline GSource *timeout(GMainContext *ctx, guint ms, std::function<void()> fn)
{
  GSource *src = g_timeout_source_new(ms);
  attach_once(src, ctx, std::move(fn));
  return src;
}

// A one-shot timeout on ctx, by id (cancel with clear_source).
inline guint timeout_id(GMainContext *ctx, guint ms, std::function<void()> fn)
{
  GSource *src = timeout(ctx, ms, std::move(fn));
  guint id = g_source_get_id(src);
  g_source_unref(src);
  return id;
}

// The same after s seconds, on a seconds source (GLib batches their wake-ups: for keepalives).
inline guint timeout_seconds_id(GMainContext *ctx, guint s, std::function<void()> fn)
{
  GSource *src = g_timeout_source_new_seconds(s);
  guint id = attach_once(src, ctx, std::move(fn));
  g_source_unref(src);
  return id;
}

// Destroys the source *id of ctx, if still there, and sets *id to 0.
inline void clear_source(GMainContext *ctx, guint *id)
{
  if (*id && ctx)
    if (GSource *src = g_main_context_find_source_by_id(ctx, *id)) g_source_destroy(src);
  *id = 0;
}

// Runs fn on ctx (at once when this thread already owns ctx), with ctx as thread-default.
inline void invoke(GMainContext *ctx, std::function<void()> fn)
{
  struct Call {
    GMainContext *ctx;
    std::function<void()> fn;
  };
  auto *call = new Call{g_main_context_ref(ctx), std::move(fn)};
  g_main_context_invoke_full(
      ctx, G_PRIORITY_DEFAULT,
      [](gpointer data) -> gboolean {
        auto *c = static_cast<Call *>(data);
        g_main_context_push_thread_default(c->ctx);
        c->fn();
        g_main_context_pop_thread_default(c->ctx);
        return G_SOURCE_REMOVE;
      },
      call,
      [](gpointer data) {
        auto *c = static_cast<Call *>(data);
        g_main_context_unref(c->ctx);
        delete c;
      });
}

} // namespace pointcast::mainctx
