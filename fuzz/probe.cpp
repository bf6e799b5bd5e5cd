// SPDX-License-Identifier: LGPL-2.1-or-later
// Configure-time probe: can clang++ link a libFuzzer target?
#include <cstddef>
#include <cstdint>
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *, std::size_t)
{
  return 0;
}
