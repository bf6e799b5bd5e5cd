/* make_signaller: picks the transport by the URI's scheme. */
#include "rtc/signaller.h"

namespace pointcast {

std::unique_ptr<Signaller> make_signaller(const SignallerConfig &cfg, std::string *error)
{
  const std::string &uri = cfg.uri;
  auto scheme_end = uri.find("://");
  if (scheme_end == std::string::npos || scheme_end == 0) {
    *error = "signaling URI '" + uri + "' has no scheme (expected ws://, wss://, tcp://, http://, "
             "https:// or local://)";
    return nullptr;
  }
  std::string scheme = uri.substr(0, scheme_end);
  for (auto &c : scheme)
    c = char(g_ascii_tolower(c));
  if (scheme == "ws" || scheme == "wss")
    return make_ws_signaller(cfg, error);
  if (scheme == "local")
    return make_local_signaller(cfg, error);
  if (scheme == "tcp")
    return make_tcp_signaller(cfg, error);
  if (scheme == "http" || scheme == "https")
    return make_http_signaller(cfg, error);
  *error = "unsupported signaling URI scheme '" + scheme + "' in '" + uri + "'";
  return nullptr;
}

} // namespace pointcast
