// SPDX-License-Identifier: LGPL-2.1-or-later
/* Daemon log lines: `YYYY-MM-DD HH:MM:SS [LEVEL] module: message` on stderr. */
#pragma once

#include <glib.h>

#include <optional>
#include <string>
#include <string_view>

namespace pointcast::log {

enum class Level { Debug = 0, Info = 1, Warning = 2, Error = 3 };

void set_level(Level level);
Level level();
inline bool enabled(Level l)
{
  return static_cast<int>(l) >= static_cast<int>(level());
}
// "DEBUG", "INFO", "WARNING"/"WARN", "ERROR", any case; nullopt otherwise.
std::optional<Level> parse_level(std::string_view name);

// s with control characters, invalid UTF-8 and bidi overrides escaped (\n, \x1b, \u202e).
std::string printable(std::string_view s);

// Writes one line; the formatted message goes through printable().
void write(Level l, const char *module, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

} // namespace pointcast::log

#define PC_LOG(lvl, module, ...)                                                                   \
  do {                                                                                             \
    if (::pointcast::log::enabled(::pointcast::log::Level::lvl))                                   \
      ::pointcast::log::write(::pointcast::log::Level::lvl, module, __VA_ARGS__);                  \
  } while (0)
