// SPDX-License-Identifier: LGPL-2.1-or-later
#include <glib.h>

#include "log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <string>
#include <strings.h>

namespace pointcast::log {

namespace {
std::atomic<int> g_level{static_cast<int>(Level::Info)};
const char *names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};
} // namespace

std::string printable(std::string_view s)
{
  std::string out;
  out.reserve(s.size());
  const char *p = s.data(), *end = p + s.size();
  while (p < end) {
    unsigned char c = static_cast<unsigned char>(*p);
    char buf[12];
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(char(c));
      p++;
    } else if (c == '\n' || c == '\r' || c == '\t') {
      out += c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t";
      p++;
    } else if (c < 0x80) {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
      p++;
    } else {
      gunichar u = g_utf8_get_char_validated(p, end - p);
      if (u == (gunichar)-1 || u == (gunichar)-2) {
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
        p++;
        continue;
      }
      const char *next = g_utf8_next_char(p);
      // C1 controls (U+0080-U+009F) act on terminals too; so do bidi overrides on screens.
      if (u < 0xa0 || (u >= 0x202a && u <= 0x202e) || (u >= 0x2066 && u <= 0x2069)) {
        std::snprintf(buf, sizeof buf, "\\u%04x", u);
        out += buf;
      } else {
        out.append(p, next - p);
      }
      p = next;
    }
  }
  return out;
}

void set_level(Level l)
{
  g_level.store(static_cast<int>(l), std::memory_order_relaxed);
}
Level level()
{
  return static_cast<Level>(g_level.load(std::memory_order_relaxed));
}

std::optional<Level> parse_level(std::string_view name)
{
  std::string n(name);
  if (!strcasecmp(n.c_str(), "DEBUG")) return Level::Debug;
  if (!strcasecmp(n.c_str(), "INFO")) return Level::Info;
  if (!strcasecmp(n.c_str(), "WARNING") || !strcasecmp(n.c_str(), "WARN")) return Level::Warning;
  if (!strcasecmp(n.c_str(), "ERROR")) return Level::Error;
  return std::nullopt;
}

void write(Level l, const char *module, const char *fmt, ...)
{
  char when[32];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  // One fprintf per line so lines from different threads never interleave.
  // Ids, room names and addresses come from clients: never a raw newline or terminal escape.
  std::string safe = printable(msg);
  std::fprintf(stderr, "%s [%s] %s: %s\n", when, names[static_cast<int>(l)], module, safe.c_str());
  g_free(msg);
}

} // namespace pointcast::log
