// SPDX-License-Identifier: LGPL-2.1-or-later
/* The context thread of one rtcpeer: a GMainContext with its own loop and thread. Signaller
 * events, negotiation and session set-up and tear-down run there; every other thread hands it work
 * with post(), the one way into it. */
#pragma once

#include <glib-object.h>

#include <atomic>
#include <functional>

namespace pointcast::rtc {

class ContextThread {
public:
  ContextThread() = default;
  ContextThread(const ContextThread &) = delete;
  ContextThread &operator=(const ContextThread &) = delete;
  ~ContextThread() { stop(); }

  // Starts the thread and returns once its loop runs (a stop() right after cannot hang).
  void start(const char *name);
  // Quits the loop from inside it and joins the thread. Not from the context thread itself.
  void stop();

  // The context, null while stopped. Any thread.
  GMainContext *context() const { return ctx_.load(); }
  // Whether the calling thread is the context thread.
  bool is_current() const;

  /* Runs fn on the context thread, soon. `keep` (may be null) is referenced until fn has run or
   * been dropped with the context. Does nothing while stopped. Any thread. */
  void post(GObject *keep, std::function<void()> fn) const;
  // Runs fn on the context thread and waits for it; inline when called from that thread.
  void run_sync(std::function<void()> fn) const;
  // fn once after ms on the context thread; the id is for cancel_timeout. Any thread.
  guint add_timeout(guint ms, std::function<void()> fn) const;
  // Cancels a timeout and sets *id to 0 (nothing when it is 0 already). Any thread.
  void cancel_timeout(guint *id) const;

private:
  std::atomic<GMainContext *> ctx_{nullptr};
  GMainLoop *loop_ = nullptr; // start/stop only (the element's state changes)
  GThread *thread_ = nullptr;
};

// Aborts with the function's name when not called on the context thread.
void assert_ctx_thread(const ContextThread &t, const char *where);

} // namespace pointcast::rtc
