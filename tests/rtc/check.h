// SPDX-License-Identifier: LGPL-2.1-or-later
/* CHECK for the plain C++ tests (no GStreamer check framework): a failed condition is printed
 * with its line and counted; main() returns check_failures() != 0. */
#pragma once

#include <cstdio>

inline int &check_failures()
{
  static int n = 0;
  return n;
}

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                \
      check_failures()++;                                                                          \
    }                                                                                              \
  } while (0)
