// SPDX-License-Identifier: LGPL-2.1-or-later
/* CHECK(cond, fmt, ...) for the harness's plain C++ model tests: a failed condition is printed
 * with its line and a message, and counted; main() returns net_check_failures() != 0. */
#pragma once

#include <cstdio>

inline int &net_check_failures()
{
  static int n = 0;
  return n;
}

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                         \
      std::fprintf(stderr, __VA_ARGS__);                                                           \
      std::fprintf(stderr, "\n");                                                                  \
      net_check_failures()++;                                                                      \
    }                                                                                              \
  } while (0)
