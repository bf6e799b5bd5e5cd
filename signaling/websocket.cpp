// SPDX-License-Identifier: LGPL-2.1-or-later
#include "websocket.h"

#include "protocol.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cstring>

namespace pointcast::signaling {

namespace {
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kReadBudget =
    512 * 1024; // per wake-up, so one busy peer cannot starve others
constexpr guint kCloseWaitMs = 3000;

} // namespace

WsConn::WsConn(GIOStream *stream, int poll_fd, WsListener *listener, std::uint64_t handle,
               std::size_t max_payload, std::size_t max_buffered)
    : stream_(G_IO_STREAM(g_object_ref(stream))),
      in_(G_POLLABLE_INPUT_STREAM(g_io_stream_get_input_stream(stream))),
      out_(G_POLLABLE_OUTPUT_STREAM(g_io_stream_get_output_stream(stream))), listener_(listener),
      handle_(handle), max_buffered_(max_buffered), decoder_(max_payload)
{
  poll_fd_ = poll_fd;
  last_rx_us_ = g_get_monotonic_time();
}

/* All plain-TCP connections share one epoll set, which is one fd in the GMainContext. GLib's
 * own poll() walks every source's fd on every iteration; with 10,000 idle clients that cost
 * would dominate each relayed message. epoll only reports the connections that are ready. */
struct EpollSource {
  GSource base;
  int ep;

  static EpollSource *get()
  {
    static thread_local EpollSource *self = [] {
      static GSourceFuncs funcs = {nullptr, nullptr, dispatch, nullptr, nullptr, nullptr};
      auto *s = reinterpret_cast<EpollSource *>(g_source_new(&funcs, sizeof(EpollSource)));
      s->ep = epoll_create1(EPOLL_CLOEXEC);
      g_source_add_unix_fd(&s->base, s->ep, G_IO_IN);
      g_source_set_can_recurse(&s->base, TRUE); // never blocked, so never re-added per dispatch
      g_source_attach(&s->base, g_main_context_get_thread_default());
      return s;
    }();
    return self;
  }

  static gboolean dispatch(GSource *src, GSourceFunc, gpointer)
  {
    // Connections closed in here are only freed after dispatch (the server's graveyard), so
    // the pointers in this batch stay valid; closed ones ignore their events.
    epoll_event evs[256];
    int n = epoll_wait(reinterpret_cast<EpollSource *>(src)->ep, evs, 256, 0);
    for (int i = 0; i < n; i++) static_cast<WsConn *>(evs[i].data.ptr)->on_epoll(evs[i].events);
    return G_SOURCE_CONTINUE;
  }
};

void WsConn::on_epoll(std::uint32_t events)
{
  if (state_ == State::Closed) return;
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_some();
  if ((events & EPOLLOUT) && state_ != State::Closed) flush();
}

void WsConn::stop_sources()
{
  if (in_epoll_) {
    epoll_ctl(EpollSource::get()->ep, EPOLL_CTL_DEL, poll_fd_, nullptr);
    in_epoll_ = false;
  }
  for (GSource **s : {&read_src_, &write_src_}) {
    if (*s) {
      g_source_destroy(*s);
      g_source_unref(*s);
      *s = nullptr;
    }
  }
}

void WsConn::watch_output(bool on)
{
  if (on == want_out_ || !in_epoll_) return;
  want_out_ = on;
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? unsigned(EPOLLOUT) : 0u);
  ev.data.ptr = this;
  epoll_ctl(EpollSource::get()->ep, EPOLL_CTL_MOD, poll_fd_, &ev);
}

WsConn::~WsConn()
{
  stop_sources();
  if (close_timer_) g_source_remove(close_timer_);
  if (!g_io_stream_is_closed(stream_))
    g_io_stream_close_async(stream_, G_PRIORITY_DEFAULT, nullptr, nullptr, nullptr);
  g_object_unref(stream_);
}

void WsConn::start()
{
  if (poll_fd_ >= 0) {
    // Plain TCP: the fd goes into the shared epoll set. (A pollable-stream source would also
    // have a child source that GLib blocks and unblocks around every dispatch, each time
    // waking the main context through its eventfd: two extra syscalls per read.)
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = this;
    if (epoll_ctl(EpollSource::get()->ep, EPOLL_CTL_ADD, poll_fd_, &ev) == 0) {
      in_epoll_ = true;
    } else {
      teardown(1011, "cannot watch the socket");
      return;
    }
    // libsoup may hold bytes it read past the handshake; the fd will not announce those.
    if (g_pollable_input_stream_is_readable(in_)) read_some();
    return;
  }
  read_src_ = g_pollable_input_stream_create_source(in_, nullptr);
  g_source_set_callback(read_src_, G_SOURCE_FUNC(on_readable), this, nullptr);
  // GLib otherwise "blocks" a source around each dispatch, removing and re-adding its fd, and
  // each of those wakes the main context through its eventfd: two syscalls per read. The
  // callbacks never iterate the main context, so recursion cannot happen.
  g_source_set_can_recurse(read_src_, TRUE);
  g_source_attach(read_src_, g_main_context_get_thread_default());
  // Bytes may already be buffered (TLS records, a frame sent right behind the handshake).
  if (g_pollable_input_stream_is_readable(in_)) read_some();
}

gboolean WsConn::on_readable(GObject *, gpointer self)
{
  static_cast<WsConn *>(self)->read_some();
  return G_SOURCE_CONTINUE;
}

void WsConn::read_some()
{
  // One scratch buffer for every connection: an idle connection keeps no 64 KiB read buffer.
  static thread_local char scratch[kReadChunk];
  std::size_t budget = kReadBudget;
  while (state_ != State::Closed && budget > 0) {
    GError *err = nullptr;
    gssize n = g_pollable_input_stream_read_nonblocking(in_, scratch, kReadChunk, nullptr, &err);
    if (n < 0) {
      if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        g_error_free(err);
        break;
      }
      std::string why = err->message;
      g_error_free(err);
      teardown(1006, why.c_str());
      return;
    }
    if (n == 0) {
      teardown(1006, "connection closed by peer");
      return;
    }
    in_buf_.append(scratch, n);
    last_rx_us_ = g_get_monotonic_time();
    ping_outstanding_ = false;
    if (probing_) {
      probing_ = false;
      listener_->ws_alive(*this);
      if (state_ == State::Closed) return;
    }
    budget -= std::min<std::size_t>(budget, n);
    parse();
    if ((std::size_t)n < kReadChunk) break;
  }
}

void WsConn::parse()
{
  WsDecoder::Event ev;
  while (state_ != State::Closed && decoder_.next(in_buf_, in_off_, ev)) {
    switch (ev.kind) {
    case WsDecoder::Kind::Error: return fail(ev.code, ev.why);
    case WsDecoder::Kind::Close: {
      if (!close_sent_) {
        std::uint16_t code = ev.code == 1005 ? 1000 : ev.code;
        char echo[2] = {char(code >> 8), char(code & 0xff)};
        queue_frame(0x8, std::string_view(echo, 2));
        close_sent_ = true;
      }
      flush();
      teardown(ev.code, "closed by peer");
      return;
    }
    case WsDecoder::Kind::Ping: queue_frame(0xA, ev.data); break;
    case WsDecoder::Kind::Pong: break; // liveness already noted on read
    case WsDecoder::Kind::Text:
      if (state_ == State::Open) listener_->ws_text(*this, ev.data);
      break;
    case WsDecoder::Kind::Binary:
      if (state_ == State::Open) listener_->ws_binary(*this, ev.data.size());
      break;
    }
  }
  if (in_off_ == in_buf_.size()) {
    in_buf_.clear();
    in_off_ = 0;
    if (in_buf_.capacity() > 4096)
      in_buf_.shrink_to_fit(); // a big message passed; idle connections stay small
  } else if (in_off_ > kReadChunk) {
    in_buf_.erase(0, in_off_);
    in_off_ = 0;
  }
}

void WsConn::queue_frame(int opcode, std::string_view payload)
{
  if (state_ == State::Closed || close_sent_) return;
  unsigned char h[10];
  std::size_t n = 0, len = payload.size();
  h[n++] = 0x80 | opcode;
  if (len < 126) {
    h[n++] = len;
  } else if (len < 65536) {
    h[n++] = 126;
    h[n++] = len >> 8;
    h[n++] = len & 0xff;
  } else {
    h[n++] = 127;
    for (int i = 7; i >= 0; i--) h[n++] = (std::uint64_t(len) >> (8 * i)) & 0xff;
  }
  out_buf_.append(reinterpret_cast<char *>(h), n);
  out_buf_.append(payload);
  if (out_buf_.size() - out_off_ > max_buffered_) {
    // The peer stopped reading: keeping its backlog would grow without bound.
    teardown(1008, "peer does not read its messages");
    return;
  }
  if (!dirty) {
    dirty = true;
    listener_->ws_dirty(*this);
  }
}

void WsConn::send_text(std::string_view text)
{
  if (state_ == State::Open) queue_frame(0x1, text);
}

void WsConn::close(std::uint16_t code, std::string_view reason)
{
  if (state_ != State::Open) return;
  std::string payload;
  payload.push_back(char(code >> 8));
  payload.push_back(char(code & 0xff));
  payload.append(reason.substr(0, 123));
  queue_frame(0x8, payload);
  close_sent_ = true;
  state_ = State::Closing;
  close_timer_ = g_timeout_add(kCloseWaitMs, on_close_timeout, this);
}

gboolean WsConn::on_close_timeout(gpointer self)
{
  auto *c = static_cast<WsConn *>(self);
  c->close_timer_ = 0;
  c->teardown(1006, "no close reply");
  return G_SOURCE_REMOVE;
}

void WsConn::fail(std::uint16_t code, const char *why)
{
  if (state_ == State::Closed) return;
  if (!close_sent_) {
    char payload[2] = {char(code >> 8), char(code & 0xff)};
    queue_frame(0x8, std::string_view(payload, 2));
    close_sent_ = true;
  }
  flush();
  teardown(code, why);
}

void WsConn::flush()
{
  while (state_ != State::Closed && out_off_ < out_buf_.size()) {
    GError *err = nullptr;
    gssize n = g_pollable_output_stream_write_nonblocking(
        out_, out_buf_.data() + out_off_, out_buf_.size() - out_off_, nullptr, &err);
    if (n < 0) {
      if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        g_error_free(err);
        if (in_epoll_) {
          watch_output(true);
        } else if (!write_src_) {
          write_src_ = g_pollable_output_stream_create_source(out_, nullptr);
          g_source_set_callback(write_src_, G_SOURCE_FUNC(on_writable), this, nullptr);
          g_source_set_can_recurse(write_src_, TRUE);
          g_source_attach(write_src_, g_main_context_get_thread_default());
        }
        return;
      }
      std::string why = err->message;
      g_error_free(err);
      teardown(1006, why.c_str());
      return;
    }
    out_off_ += n;
  }
  out_buf_.clear();
  out_off_ = 0;
  if (out_buf_.capacity() > 65536) out_buf_.shrink_to_fit();
  if (in_epoll_) watch_output(false);
  if (write_src_) {
    g_source_destroy(write_src_);
    g_source_unref(write_src_);
    write_src_ = nullptr;
  }
}

gboolean WsConn::on_writable(GObject *, gpointer self)
{
  auto *c = static_cast<WsConn *>(self);
  // flush() destroys write_src_ once drained; keep the source alive until this returns.
  GSource *src = c->write_src_ ? g_source_ref(c->write_src_) : nullptr;
  c->flush();
  bool keep = c->write_src_ != nullptr;
  if (src) g_source_unref(src);
  return keep ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

bool WsConn::keepalive(std::int64_t now_us, std::int64_t interval_us)
{
  if (state_ != State::Open || interval_us <= 0) return state_ != State::Closed;
  if (ping_outstanding_ && now_us - ping_sent_us_ >= interval_us) {
    teardown(1006, "no pong to the keep-alive ping");
    return false;
  }
  if (!ping_outstanding_ && now_us - last_rx_us_ >= interval_us) {
    ping_outstanding_ = true;
    ping_sent_us_ = now_us;
    queue_frame(0x9, "pc");
  }
  return true;
}

void WsConn::probe()
{
  if (state_ != State::Open) return;
  probing_ = true;
  queue_frame(0x9, "pc-probe");
}

void WsConn::teardown(std::uint16_t code, const char *why)
{
  if (state_ == State::Closed) return;
  state_ = State::Closed;
  stop_sources();
  if (close_timer_) {
    g_source_remove(close_timer_);
    close_timer_ = 0;
  }
  // The server closes the TCP connection first (RFC 6455 7.1.1); async so TLS never blocks.
  g_io_stream_close_async(stream_, G_PRIORITY_DEFAULT, nullptr, nullptr, nullptr);
  listener_->ws_closed(*this, code, why);
}

} // namespace pointcast::signaling
