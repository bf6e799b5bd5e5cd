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

void set_level(Level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }
Level level() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

std::optional<Level> parse_level(std::string_view name) {
  std::string n(name);
  if (!strcasecmp(n.c_str(), "DEBUG")) return Level::Debug;
  if (!strcasecmp(n.c_str(), "INFO")) return Level::Info;
  if (!strcasecmp(n.c_str(), "WARNING") || !strcasecmp(n.c_str(), "WARN")) return Level::Warning;
  if (!strcasecmp(n.c_str(), "ERROR")) return Level::Error;
  return std::nullopt;
}

void write(Level l, const char *module, const char *fmt, ...) {
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
  std::fprintf(stderr, "%s [%s] %s: %s\n", when, names[static_cast<int>(l)], module, msg);
  g_free(msg);
}

} // namespace pointcast::log
