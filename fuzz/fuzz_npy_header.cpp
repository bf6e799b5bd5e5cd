// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target for the .npy header parser (gst/points/npy.cpp).
 * Whatever the bytes, parse() must not read outside them, must not crash or hit UB, and when it
 * accepts a buffer its header must describe exactly that buffer. */
#include "npy.h"

#include <cstdint>
#include <cstdlib>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
  // a private copy of exactly size bytes, so ASan catches any read past the end
  std::vector<std::uint8_t> buf(data, data + size);
  npy::ParseResult r = npy::parse(buf.data(), buf.size());
  if (!r.ok()) {
    if (r.detail.empty()) std::abort(); // every refusal has a reason
    return 0;
  }
  const npy::Header &h = r.header;
  if (h.data_offset + h.payload_bytes != size || h.columns == 0 || h.data_offset > size)
    std::abort();
  if (h.rows * h.columns * npy::item_size(h.dtype) != h.payload_bytes) std::abort();
  std::size_t count = h.payload_bytes / npy::item_size(h.dtype);
  if (count <= (1u << 20)) {
    std::vector<float> out(count);
    npy::convert_to_f32(h.dtype, buf.data() + h.data_offset, out.data(), count);
  }
  // our writer's header for the same shape parses back to the same shape
  std::string w = npy::make_header_f32(h.rows, h.columns, h.shape.size() == 1);
  npy::ParseResult back = npy::parse(reinterpret_cast<const std::uint8_t *>(w.data()), w.size());
  if (h.rows * h.columns == 0 && !back.ok()) std::abort();
  return 0;
}
