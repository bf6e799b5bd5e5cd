// SPDX-License-Identifier: LGPL-2.1-or-later
/* npy: the NumPy .npy header, written and parsed in plain C++ (no GObject).
 *
 * Writer: exactly the bytes numpy.save (NumPy 1.24) writes for a little-endian float32 array
 * of shape (rows, columns) or (columns,), format 1.0.
 * Parser: what numpy.save writes for 1-D and 2-D C-order arrays of <f4, <f8, <i4, <i8 in format
 * 1.0, 2.0 and 3.0; everything else is rejected with a reason (see Error). */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace npy {

enum class DType { F4, F8, I4, I8 };

/* Item size in bytes of a dtype. */
std::size_t item_size(DType t);
/* Canonical numpy descr ("<f4", ...). */
const char *descr(DType t);

enum class Error {
  None,
  BadMagic,         // does not start with "\x93NUMPY"
  UnknownVersion,   // format version other than 1.0, 2.0, 3.0
  TruncatedHeader,  // the buffer ends inside the fixed preamble (magic, version, length)
  OversizedHeader,  // header length above kMaxHeaderLen
  HeaderPastBuffer, // header length points past the end of the buffer
  BadDict,          // header is not a dict with exactly descr, fortran_order, shape
  FortranOrder,     // fortran_order True
  BigEndian,        // '>' byte order
  UnsupportedDtype, // anything but f4, f8, i4, i8
  UnsupportedShape, // 0-D, 3-D or more, or zero columns
  ShapeMismatch,    // payload size differs from product(shape) * item size
  ShapeOverflow,    // product(shape) * item size does not fit in 64 bits
  TooManyColumns,   // more columns than the caller's limit (parse's max_columns)
};

/* Short human-readable reason, e.g. "bad magic". */
const char *error_name(Error e);

/* NumPy's own default limit (numpy.lib.format, max_header_size) is 10000 bytes. */
constexpr std::size_t kMaxHeaderLen = 10000;

struct Header {
  int major = 1;
  int minor = 0;
  DType dtype = DType::F4;
  bool fortran_order = false;
  std::vector<std::uint64_t> shape;
  std::size_t data_offset = 0; // first payload byte
  std::uint64_t rows = 0;      // shape[0] for 2-D, 1 for 1-D
  std::uint64_t columns = 0;   // shape[1] for 2-D, shape[0] for 1-D
  std::uint64_t payload_bytes = 0;
};

struct ParseResult {
  Error error = Error::None;
  std::string detail; // reason with specifics, for warnings
  Header header;
  bool ok() const { return error == Error::None; }
};

/* Parses and validates one complete .npy file held in data[0..size): preamble, header dict, that
 * the column count is at most max_columns, and that the payload is exactly
 * product(shape) * item size bytes (so the row count agrees with it). Every product is
 * overflow-checked. Never reads outside the range. */
ParseResult parse(const std::uint8_t *data, std::size_t size,
                  std::uint64_t max_columns = UINT64_MAX);

/* Writes the header numpy.save writes for a <f4 C-order array of the given shape (2-D when
 * one_d is false: (rows, columns); 1-D: (columns,)). Returns its length (a multiple of 64). */
std::string make_header_f32(std::uint64_t rows, std::uint64_t columns, bool one_d = false);

/* Length make_header_f32 would return, without building it. */
std::size_t header_size_f32(std::uint64_t rows, std::uint64_t columns, bool one_d = false);

/* Converts count items of dtype t at src (any alignment, little-endian) into float32 at dst. */
void convert_to_f32(DType t, const std::uint8_t *src, float *dst, std::size_t count);

} // namespace npy
