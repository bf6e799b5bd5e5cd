// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/contextthread.h"
#include "rtc/mainctx.h"

#include <condition_variable>
#include <mutex>

namespace pointcast::rtc {

namespace {
struct Call {
  GObject *keep;
  std::function<void()> fn;
};

gboolean run_call(gpointer d)
{
  static_cast<Call *>(d)->fn();
  return G_SOURCE_REMOVE;
}

void free_call(gpointer d)
{
  auto *c = static_cast<Call *>(d);
  if (c->keep) g_object_unref(c->keep);
  delete c;
}

gpointer loop_main(gpointer data)
{
  auto *loop = static_cast<GMainLoop *>(data);
  GMainContext *ctx = g_main_loop_get_context(loop);
  g_main_context_push_thread_default(ctx);
  g_main_loop_run(loop);
  g_main_context_pop_thread_default(ctx);
  return nullptr;
}
} // namespace

void ContextThread::start(const char *name)
{
  if (ctx_.load()) return;
  GMainContext *ctx = g_main_context_new();
  loop_ = g_main_loop_new(ctx, FALSE);
  ctx_.store(ctx);
  thread_ = g_thread_new(name, loop_main, loop_);
  // Wait until the loop runs: a stop right after this (another element of the pipeline failing
  // to start, e.g. v4l2src without a camera) otherwise hung in g_thread_join.
  run_sync([] {});
}

void ContextThread::stop()
{
  GMainContext *ctx = ctx_.load();
  if (!ctx) return;
  g_assert(!is_current());
  // Quit from inside the loop: a quit before the thread entered g_main_loop_run() would be lost.
  GMainLoop *loop = loop_;
  post(nullptr, [loop] { g_main_loop_quit(loop); });
  g_thread_join(thread_);
  ctx_.store(nullptr);
  g_main_loop_unref(loop_);
  g_main_context_unref(ctx);
  thread_ = nullptr;
  loop_ = nullptr;
}

bool ContextThread::is_current() const
{
  GMainContext *ctx = ctx_.load();
  return ctx && g_main_context_is_owner(ctx);
}

void ContextThread::post(GObject *keep, std::function<void()> fn) const
{
  GMainContext *ctx = ctx_.load();
  if (!ctx) return;
  auto *call = new Call{keep ? G_OBJECT(g_object_ref(keep)) : nullptr, std::move(fn)};
  GSource *src = g_idle_source_new();
  g_source_set_callback(src, run_call, call, free_call);
  g_source_attach(src, ctx);
  g_source_unref(src);
}

void ContextThread::run_sync(std::function<void()> fn) const
{
  if (is_current()) {
    fn();
    return;
  }
  std::mutex m;
  std::condition_variable c;
  bool done = false;
  post(nullptr, [&] {
    fn();
    std::lock_guard lk(m);
    done = true;
    c.notify_all();
  });
  std::unique_lock lk(m);
  c.wait(lk, [&] { return done; });
}

guint ContextThread::add_timeout(guint ms, std::function<void()> fn) const
{
  GMainContext *ctx = ctx_.load();
  return ctx ? mainctx::timeout_id(ctx, ms, std::move(fn)) : 0;
}

void ContextThread::cancel_timeout(guint *id) const
{
  mainctx::clear_source(ctx_.load(), id);
}

void assert_ctx_thread(const ContextThread &t, const char *where)
{
  if (!t.is_current()) g_error("rtcpeer: %s must run on the context thread", where);
}

} // namespace pointcast::rtc
