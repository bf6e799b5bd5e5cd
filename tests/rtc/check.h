// SPDX-License-Identifier: LGPL-2.1-or-later
/* CHECK for the plain C++ rtc tests: a failed check prints where and what, counts in `failures`,
 * and the test goes on (main returns non-zero when failures is not 0). */
#pragma once

#include <cstdio>

static int failures = 0;
#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)
