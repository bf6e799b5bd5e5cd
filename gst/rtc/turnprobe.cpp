// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/turnprobe.h"

#include <gio/gio.h>

#include <cstring>

namespace pointcast::rtc::turnprobe {

namespace {

constexpr uint32_t kMagic = 0x2112A442;
constexpr uint16_t kUsername = 0x0006, kIntegrity = 0x0008, kErrorCode = 0x0009, kLifetime = 0x000D,
                   kRealm = 0x0014, kNonce = 0x0015, kTransport = 0x0019;

void put16(Bytes &b, uint16_t v)
{
  b.push_back(uint8_t(v >> 8));
  b.push_back(uint8_t(v));
}
void put32(Bytes &b, uint32_t v)
{
  put16(b, uint16_t(v >> 16));
  put16(b, uint16_t(v));
}
uint16_t get16(const Bytes &b, size_t at)
{
  return uint16_t(b[at] << 8 | b[at + 1]);
}

void attribute(Bytes &b, uint16_t type, const void *data, size_t len)
{
  put16(b, type);
  put16(b, uint16_t(len));
  auto *p = static_cast<const uint8_t *>(data);
  b.insert(b.end(), p, p + len);
  while (b.size() % 4) b.push_back(0);
}
void set_length(Bytes &b, size_t body) // the header's length field: bytes after the header
{
  b[2] = uint8_t(body >> 8);
  b[3] = uint8_t(body);
}

} // namespace

Bytes long_term_key(const std::string &user, const std::string &realm, const std::string &password)
{
  std::string text = user + ":" + realm + ":" + password;
  Bytes out(16);
  gsize len = out.size();
  GChecksum *md5 = g_checksum_new(G_CHECKSUM_MD5);
  g_checksum_update(md5, reinterpret_cast<const guchar *>(text.data()), gssize(text.size()));
  g_checksum_get_digest(md5, out.data(), &len);
  g_checksum_free(md5);
  return out;
}

Bytes hmac_sha1(const Bytes &key, const Bytes &data)
{
  Bytes out(20);
  gsize len = out.size();
  GHmac *h = g_hmac_new(G_CHECKSUM_SHA1, key.data(), key.size());
  g_hmac_update(h, data.data(), gssize(data.size()));
  g_hmac_get_digest(h, out.data(), &len);
  g_hmac_unref(h);
  return out;
}

Bytes request(uint16_t method, const uint8_t txid[12], const Auth *auth, uint32_t lifetime)
{
  Bytes b;
  put16(b, method); // class "request": no class bits
  put16(b, 0);
  put32(b, kMagic);
  b.insert(b.end(), txid, txid + 12);
  if (method == kAllocate) {
    const uint8_t udp[4] = {17, 0, 0, 0};
    attribute(b, kTransport, udp, sizeof udp);
  } else {
    uint8_t v[4] = {uint8_t(lifetime >> 24), uint8_t(lifetime >> 16), uint8_t(lifetime >> 8),
                    uint8_t(lifetime)};
    attribute(b, kLifetime, v, sizeof v);
  }
  if (auth) {
    attribute(b, kUsername, auth->user.data(), auth->user.size());
    attribute(b, kRealm, auth->realm.data(), auth->realm.size());
    attribute(b, kNonce, auth->nonce.data(), auth->nonce.size());
    // The HMAC covers the message up to MESSAGE-INTEGRITY, its length already counting it.
    set_length(b, b.size() - 20 + 24);
    Bytes mac = hmac_sha1(auth->key, b);
    attribute(b, kIntegrity, mac.data(), mac.size());
  }
  set_length(b, b.size() - 20);
  return b;
}

size_t message_size(const Bytes &buf)
{
  return buf.size() < 20 ? 0 : 20 + get16(buf, 2);
}

std::optional<Response> parse(const Bytes &msg, const uint8_t txid[12])
{
  if (msg.size() < 20 || message_size(msg) != msg.size() || msg.size() % 4) return std::nullopt;
  uint16_t type = get16(msg, 0);
  uint32_t magic = uint32_t(get16(msg, 4)) << 16 | get16(msg, 6);
  if (magic != kMagic || std::memcmp(&msg[8], txid, 12) != 0) return std::nullopt;
  Response r;
  uint16_t cls = type & 0x0110;
  if (cls == 0x0100)
    r.success = true;
  else if (cls != 0x0110)
    return std::nullopt;
  for (size_t at = 20; at + 4 <= msg.size();) {
    uint16_t atype = get16(msg, at), len = get16(msg, at + 2);
    if (at + 4 + len > msg.size()) return std::nullopt;
    const char *v = reinterpret_cast<const char *>(&msg[at + 4]);
    if (atype == kErrorCode && len >= 4) {
      r.error = (msg[at + 6] & 7) * 100 + msg[at + 7];
      r.reason.assign(v + 4, len - 4);
    } else if (atype == kRealm) {
      r.realm.assign(v, len);
    } else if (atype == kNonce) {
      r.nonce.assign(v, len);
    }
    at += 4 + ((len + 3u) & ~3u);
  }
  if (!r.success && r.error == 0) return std::nullopt;
  return r;
}

namespace {

struct Exchange {
  GSocket *sock = nullptr;
  bool udp = true;
  std::string failure; // set when the exchange itself failed
  ~Exchange()
  {
    if (sock) g_object_unref(sock);
  }

  std::optional<Response> ask(const Bytes &req, const uint8_t txid[12])
  {
    for (int attempt = 0; attempt < (udp ? 3 : 1); attempt++) {
      GError *err = nullptr;
      if (g_socket_send(sock, reinterpret_cast<const gchar *>(req.data()), req.size(), nullptr,
                        &err) < 0) {
        failure = std::string("cannot reach it over ") + (udp ? "udp: " : "tcp: ") + err->message;
        g_clear_error(&err);
        return std::nullopt;
      }
      Bytes buf;
      while (true) {
        gchar chunk[4096];
        gssize n = g_socket_receive(sock, chunk, sizeof chunk, nullptr, &err);
        if (n < 0 && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
          g_clear_error(&err);
          break;
        }
        if (n <= 0) {
          failure = std::string("cannot reach it over ") + (udp ? "udp: " : "tcp: ") +
              (err ? err->message : "the server closed the connection");
          g_clear_error(&err);
          return std::nullopt;
        }
        if (udp) buf.clear();
        buf.insert(buf.end(), chunk, chunk + n);
        size_t size = message_size(buf);
        if (size && buf.size() >= size) {
          Bytes msg(buf.begin(), buf.begin() + long(size));
          if (auto r = parse(msg, txid)) return r;
          if (!udp) buf.erase(buf.begin(), buf.begin() + long(size));
        }
      }
    }
    failure = udp ? "no answer over udp within 3 s" : "no answer over tcp within 3 s";
    return std::nullopt;
  }
};

void new_txid(uint8_t txid[12])
{
  for (int i = 0; i < 12; i += 4) {
    guint32 r = g_random_int();
    std::memcpy(txid + i, &r, 4);
  }
}

} // namespace

std::string probe(const std::string &host, int port, const std::string &transport,
                  const std::string &user, const std::string &password)
{
  GError *err = nullptr;
  GResolver *resolver = g_resolver_get_default();
  GList *addrs = g_resolver_lookup_by_name(resolver, host.c_str(), nullptr, &err);
  g_object_unref(resolver);
  if (!addrs) {
    std::string why = std::string("cannot resolve ") + host + ": " + err->message;
    g_clear_error(&err);
    return why;
  }
  GInetAddress *ip = G_INET_ADDRESS(g_object_ref(addrs->data));
  g_resolver_free_addresses(addrs);
  Exchange ex;
  ex.udp = transport != "tcp";
  ex.sock = g_socket_new(g_inet_address_get_family(ip),
                         ex.udp ? G_SOCKET_TYPE_DATAGRAM : G_SOCKET_TYPE_STREAM,
                         ex.udp ? G_SOCKET_PROTOCOL_UDP : G_SOCKET_PROTOCOL_TCP, &err);
  GSocketAddress *to = ex.sock ? g_inet_socket_address_new(ip, guint16(port)) : nullptr;
  g_object_unref(ip);
  if (ex.sock) g_socket_set_timeout(ex.sock, ex.udp ? 1 : 3);
  if (!ex.sock || !g_socket_connect(ex.sock, to, nullptr, &err)) {
    std::string why = std::string("cannot reach it over ") + (ex.udp ? "udp" : "tcp") + ": " +
        (err ? err->message : "no socket");
    g_clear_error(&err);
    if (to) g_object_unref(to);
    return why;
  }
  g_object_unref(to);
  uint8_t txid[12];
  new_txid(txid);
  auto first = ex.ask(request(kAllocate, txid, nullptr), txid);
  if (!first) return ex.failure;
  if (first->success) return "it allocates without credentials";
  if (first->error != 401 || first->realm.empty() || first->nonce.empty())
    return "it refused the allocation: " + std::to_string(first->error) + " " + first->reason;
  Auth auth{user, first->realm, first->nonce, long_term_key(user, first->realm, password)};
  for (int stale = 0; stale < 2; stale++) {
    new_txid(txid);
    auto r = ex.ask(request(kAllocate, txid, &auth), txid);
    if (!r) return ex.failure;
    if (r->error == 438 && !r->nonce.empty()) { // stale nonce: once more with the new one
      auth.nonce = r->nonce;
      continue;
    }
    if (r->success) {
      new_txid(txid);
      ex.ask(request(kRefresh, txid, &auth, 0), txid); // frees the allocation
      return "it allocates with these credentials";
    }
    if (r->error == 401 || r->error == 441)
      return "it refused the user or password (" + std::to_string(r->error) + " " + r->reason + ")";
    return "it refused the allocation: " + std::to_string(r->error) + " " + r->reason;
  }
  return "it kept answering 438 Stale Nonce";
}

} // namespace pointcast::rtc::turnprobe
