// SPDX-License-Identifier: LGPL-2.1-or-later
/* http://host:port/offer (and https://) — the offer/answer POST of aiortc's server example and of
 * the pointcast daemon's POST /offer.
 *
 * Always the offerer: the server behind the URL is reported as one remote peer (named by the URL)
 * as soon as start() runs; the element offers to it, and once ICE gathering is complete (this
 * transport cannot trickle) send_sdp() POSTs {"sdp": ..., "type": "offer"} as JSON. A 2xx answer
 * ({"sdp": ..., "type": "answer"}, or an application/sdp body as WHIP servers send) comes back as
 * the sdp("answer") event.
 *
 * Failures carry the HTTP status and the server's reason (its JSON "error"/"message"/"reason"
 * field or the start of the body). A server that is not reachable or answers 502/503/504 (e.g.
 * the daemon with no answerer in the room yet) is retried a few times with backoff and reported
 * as a non-fatal error each time; any other status, a malformed answer or the last failed retry
 * is fatal.
 *
 * The server is untrusted: its body is read in pieces and refused past sigcheck::kMaxMessageBytes
 * (never buffered whole), a request that has not completed within kDeadlineS is abandoned like
 * an unreachable server (a slow server cannot hold it by trickling bytes), and JSON is parsed
 * only after protocol.h's bounded parser accepted it. */
#include "signaller.h"
#include "sigcheck.h"
#include "sigutil.h"
#include "tcpwire.h"

#include <gst/gst.h>
#include <libsoup/soup.h>

#include <memory>
#include <mutex>

GST_DEBUG_CATEGORY_STATIC(pc_httpsig_debug);
#define GST_CAT_DEFAULT pc_httpsig_debug

namespace pointcast {
namespace {

constexpr unsigned kAttempts = 5; // first try + 4 retries: 0.5 + 1 + 2 + 4 s of waits
constexpr unsigned kFirstBackoffMs = 500;
constexpr guint kTimeoutS = 30;  // the daemon may wait a while for an answerer
constexpr guint kDeadlineS = 40; // a whole request, however slowly the bytes come
constexpr gsize kReadChunk = 16 * 1024;

// JSON object text parsed once tcpwire::json_refusal lets it through; nullopt and *why otherwise.
std::optional<sigutil::JsonObj> parse_bounded(const char *p, gsize n, std::string *why)
{
  if (auto refusal = tcpwire::json_refusal(std::string_view(p, n))) {
    *why = *refusal;
    return std::nullopt;
  }
  return sigutil::parse_object(p, gssize(n), why);
}

// The server's reason from an error body: a JSON field when there is one, else its start.
std::string body_reason(GBytes *body)
{
  if (!body || g_bytes_get_size(body) == 0) return "";
  gsize n;
  auto *p = static_cast<const char *>(g_bytes_get_data(body, &n));
  std::string why;
  if (auto obj = parse_bounded(p, n, &why)) {
    for (const char *field : {"error", "message", "reason", "detail"})
      if (auto s = obj->str(field)) return *s;
  }
  std::string_view text(p, std::min<gsize>(n, 200));
  if (!g_utf8_validate(p, std::min<gsize>(n, 200), nullptr)) return "(binary body)";
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.remove_suffix(1);
  return sigcheck::printable(text, 200) + (n > 200 ? "..." : "");
}

class Impl : public sigutil::Transport<Impl> {
public:
  explicit Impl(std::string uri) : uri_(std::move(uri)) {}
  ~Impl()
  {
    if (session_) g_object_unref(session_);
  }

  void offer(const std::string &sdp)
  {
    std::lock_guard lk(mu_);
    if (stopped_ || !ctx_) return;
    auto self = shared_from_this();
    sigutil::invoke(ctx_, [self, sdp] {
      std::lock_guard lk(self->mu_);
      if (self->stopped_) return;
      self->offer_ = sdp;
      self->attempt_ = 0;
      self->post();
    });
  }

  void error(const std::string &reason, bool fatal)
  {
    std::lock_guard lk(mu_);
    emit_error(reason, fatal);
  }

private:
  friend class sigutil::Transport<Impl>;

  void on_started()
  {
    // Created here, with ctx as thread-default, so its callbacks come back on ctx.
    session_ = soup_session_new_with_options("timeout", kTimeoutS, "user-agent",
                                             "pointcast-rtcpeer", nullptr);
    if (ev_.ready) ev_.ready({});
    if (!stopped_ && ev_.peer_joined) ev_.peer_joined(uri_, "http");
  }

  void emit_error(const std::string &reason, bool fatal)
  {
    GST_WARNING("%s", reason.c_str());
    if (!stopped_ && ev_.error) ev_.error(reason, fatal);
  }

  void post()
  {
    SoupMessage *msg = soup_message_new("POST", uri_.c_str());
    if (!msg) {
      emit_error("http signaling: cannot POST to '" + uri_ + "': not a valid http(s) URL", true);
      return;
    }
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "sdp");
    json_builder_add_string_value(b, offer_.c_str());
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, "offer");
    json_builder_end_object(b);
    std::string body = sigutil::to_line(b);
    g_object_unref(b);
    GBytes *bytes = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, "application/json", bytes);
    g_bytes_unref(bytes);
    soup_message_headers_replace(soup_message_get_request_headers(msg), "Accept",
                                 "application/json, application/sdp");
    attempt_++;
    GST_INFO("POST offer to %s (attempt %u)", uri_.c_str(), attempt_);
    auto *op = new Op{shared_from_this(), msg, nullptr, {}, g_cancellable_new()};
    req_cancel_ = op->cancel;
    timed_out_ = false;
    std::weak_ptr<Impl> weak = shared_from_this();
    GCancellable *cancel = op->cancel;
    deadline_ = sigutil::timeout(ctx_, kDeadlineS * 1000, [weak, cancel] {
      auto self = weak.lock();
      if (!self) return;
      std::lock_guard lk(self->mu_);
      if (self->req_cancel_ == cancel) {
        self->timed_out_ = true;
        g_cancellable_cancel(cancel);
      }
    });
    soup_session_send_async(session_, msg, G_PRIORITY_DEFAULT, op->cancel, &Impl::on_sent, op);
  }

  struct Op {
    std::shared_ptr<Impl> self;
    SoupMessage *msg;
    GInputStream *in;
    std::string body;
    GCancellable *cancel;
    ~Op()
    {
      if (in) g_object_unref(in);
      g_object_unref(msg);
      g_object_unref(cancel);
    }
  };

  static void on_sent(GObject *src, GAsyncResult *res, gpointer data)
  {
    std::unique_ptr<Op> op(static_cast<Op *>(data));
    GError *err = nullptr;
    op->in = soup_session_send_finish(SOUP_SESSION(src), res, &err);
    if (!op->in) return op->self->finish(*op, &err);
    read_more(std::move(op));
  }

  static void read_more(std::unique_ptr<Op> op)
  {
    GInputStream *in = op->in;
    GCancellable *cancel = op->cancel;
    g_input_stream_read_bytes_async(in, kReadChunk, G_PRIORITY_DEFAULT, cancel, &Impl::on_read,
                                    op.release());
  }

  static void on_read(GObject *src, GAsyncResult *res, gpointer data)
  {
    std::unique_ptr<Op> op(static_cast<Op *>(data));
    GError *err = nullptr;
    GBytes *bytes = g_input_stream_read_bytes_finish(G_INPUT_STREAM(src), res, &err);
    if (!bytes) return op->self->finish(*op, &err);
    gsize n = 0;
    auto *p = static_cast<const char *>(g_bytes_get_data(bytes, &n));
    if (n == 0) {
      g_bytes_unref(bytes);
      return op->self->finish(*op, nullptr);
    }
    if (op->body.size() + n > sigcheck::kMaxMessageBytes) {
      g_bytes_unref(bytes);
      g_set_error(&err, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                  "the response body is larger than %zu bytes", sigcheck::kMaxMessageBytes);
      return op->self->finish(*op, &err, true);
    }
    op->body.append(p, n);
    g_bytes_unref(bytes);
    read_more(std::move(op));
  }

  // The request ended: with the whole body, or with err (taken). too_large: a refusal, not a
  // transport failure, so it is not retried.
  void finish(Op &op, GError **err, bool too_large = false)
  {
    std::unique_lock lk(mu_);
    if (req_cancel_ == op.cancel) {
      req_cancel_ = nullptr;
      if (deadline_) {
        g_source_destroy(deadline_);
        g_source_unref(deadline_);
        deadline_ = nullptr;
      }
    }
    if (stopped_) {
      g_clear_error(err);
      return;
    }
    if (err && *err && g_error_matches(*err, G_IO_ERROR, G_IO_ERROR_CANCELLED) && timed_out_) {
      g_clear_error(err);
      g_set_error(err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "no complete answer within %u s",
                  kDeadlineS);
    }
    if (too_large) {
      std::string why = (*err)->message;
      g_clear_error(err);
      return emit_error("http signaling: POST " + uri_ + ": " + why, true);
    }
    GBytes *reply = err && *err ? nullptr : g_bytes_new(op.body.data(), op.body.size());
    on_reply(op.msg, reply, err ? *err : nullptr);
    if (reply) g_bytes_unref(reply);
    g_clear_error(err);
  }

  void on_stopping()
  {
    if (req_cancel_) g_cancellable_cancel(req_cancel_);
    if (deadline_) {
      g_source_destroy(deadline_);
      g_source_unref(deadline_);
      deadline_ = nullptr;
    }
  }

  void on_reply(SoupMessage *msg, GBytes *reply, GError *err)
  {
    std::lock_guard lk(mu_);
    if (stopped_) return;
    std::string where = "http signaling: POST " + uri_;
    if (!reply) {
      return retry_or_fail(where + " failed: " + err->message);
    }
    guint status = soup_message_get_status(msg);
    if (!SOUP_STATUS_IS_SUCCESSFUL(status)) {
      std::string reason = body_reason(reply);
      const char *phrase = soup_message_get_reason_phrase(msg);
      std::string what = where + " failed: " + std::to_string(status) + " " +
          (phrase ? phrase : "") + (reason.empty() ? "" : ": " + reason);
      if (status == 502 || status == 503 || status == 504) return retry_or_fail(what);
      return emit_error(what, true);
    }
    gsize n;
    auto *p = static_cast<const char *>(g_bytes_get_data(reply, &n));
    const char *ctype =
        soup_message_headers_get_content_type(soup_message_get_response_headers(msg), nullptr);
    std::string answer;
    if (ctype && g_ascii_strcasecmp(ctype, "application/sdp") == 0) {
      answer.assign(p, n);
    } else {
      std::string why;
      auto obj = parse_bounded(p, n, &why);
      if (!obj) return emit_error(where + ": the answer is " + why, true);
      auto type = obj->str("type");
      auto sdp = obj->str("sdp");
      if (!sdp) return emit_error(where + ": the reply has no \"sdp\" string", true);
      if (type && *type != "answer")
        return emit_error(where + ": the reply is of type \"" + *type + "\", not \"answer\"", true);
      answer = *sdp;
    }
    if (answer.rfind("v=0", 0) != 0)
      return emit_error(where + ": the answer is not SDP (it does not start with v=0)", true);
    GST_INFO("answer from %s (%zu bytes)", uri_.c_str(), answer.size());
    if (ev_.sdp) ev_.sdp(uri_, "answer", answer);
  }

  void retry_or_fail(const std::string &what)
  {
    if (attempt_ >= kAttempts)
      return emit_error(what + "; giving up after " + std::to_string(attempt_) + " attempts", true);
    unsigned ms = kFirstBackoffMs << (attempt_ - 1);
    emit_error(what + "; retrying in " + std::to_string(ms) + " ms", false);
    retry_after(ms, &Impl::post);
  }

  std::string uri_;
  SoupSession *session_ = nullptr;
  std::string offer_;
  unsigned attempt_ = 0;
  GCancellable *req_cancel_ = nullptr; // the request in flight (owned by its Op)
  GSource *deadline_ = nullptr;
  bool timed_out_ = false;
};

class HttpSignaller final : public Signaller {
public:
  explicit HttpSignaller(const std::string &uri) : impl_(std::make_shared<Impl>(uri)) {}
  ~HttpSignaller() override { impl_->stop(); }

  void start(GMainContext *ctx, SignallerEvents events) override
  {
    impl_->start(ctx, std::move(events));
  }
  void stop() override { impl_->stop(); }
  void send_sdp(const std::string &peer, const std::string &type, const std::string &sdp) override
  {
    if (type != "offer") {
      impl_->error("http signaling: only offers can be POSTed (got " + type +
                       "); with http:// rtcpeer is the offerer",
                   false);
      return;
    }
    impl_->offer(sdp);
  }
  void send_candidate(const std::string &, const std::string &, int, const std::string &) override
  {
    // Nothing to do: the offer is only sent with every candidate inside (trickles() is false).
  }
  bool trickles() const override { return false; }
  Role resolve_role(Role) const override { return Role::Offerer; }

private:
  std::shared_ptr<Impl> impl_;
};

} // namespace

std::unique_ptr<Signaller> make_http_signaller(const SignallerConfig &cfg, std::string *error)
{
  sigutil::debug_category_once(&pc_httpsig_debug, "rtcpeer-http",
                               "rtcpeer HTTP offer/answer transport");
  auto uri = sigutil::parse_signaling_uri(cfg.uri, G_URI_FLAGS_NONE, error);
  if (!uri) return nullptr;
  const std::string &scheme = uri->scheme;
  if (scheme != "http" && scheme != "https")
    return sigutil::bad_uri(error, cfg.uri, "not http:// or https://");
  if (uri->host.empty()) return sigutil::bad_uri(error, cfg.uri, "no host");
  if (cfg.role == Role::Answerer) {
    if (error)
      *error = "role=answerer does not work with " + scheme +
          "://: the HTTP offer/answer exchange is always started by the offerer";
    return nullptr;
  }
  return std::make_unique<HttpSignaller>(cfg.uri);
}

} // namespace pointcast
