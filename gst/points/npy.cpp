// SPDX-License-Identifier: LGPL-2.1-or-later
/* npy: .npy header writer and parser. See npy.h. */
#include "npy.h"

#include <bit>
#include <cctype>
#include <cstring>
#include <optional>

namespace npy {

static_assert(
    std::endian::native == std::endian::little,
    "payloads are little-endian and used in place; a big-endian port needs byte swapping");

namespace {

constexpr std::uint8_t kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr std::size_t kMagicLen = sizeof(kMagic);
constexpr std::size_t kAlign = 64;            // numpy.lib.format.ARRAY_ALIGN
constexpr std::size_t kGrowthAxisDigits = 21; // numpy.lib.format.GROWTH_AXIS_MAX_DIGITS
constexpr int kMaxDepth = 16;                 // nesting limit for the literal parser

/* The subset of Python literals numpy headers use: strings, True/False, integers, tuples,
 * lists and dicts (the last two only so that structured dtypes are recognised and refused). */
struct Value {
  enum class Kind { Str, Bool, Int, Tuple, List, Dict, None } kind = Kind::None;
  std::string str;
  bool boolean = false;
  bool negative = false;
  bool too_big = false; // integer does not fit in 64 bits
  std::uint64_t integer = 0;
  std::vector<Value> items; // Tuple, List; Dict values
  std::vector<Value> keys;  // Dict keys, parallel to items
};

class LiteralParser {
public:
  LiteralParser(const char *p, const char *end) : p_(p), end_(end) {}

  std::optional<Value> parse_all()
  {
    auto v = value(0);
    if (!v) return std::nullopt;
    skip_ws();
    if (p_ != end_) return std::nullopt;
    return v;
  }

private:
  const char *p_;
  const char *end_;

  void skip_ws()
  {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  bool eat(char c)
  {
    skip_ws();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }

  bool keyword(const char *kw)
  {
    std::size_t n = std::strlen(kw);
    if (static_cast<std::size_t>(end_ - p_) >= n && std::memcmp(p_, kw, n) == 0) {
      const char *after = p_ + n;
      if (after == end_ || !(std::isalnum(static_cast<unsigned char>(*after)) || *after == '_')) {
        p_ = after;
        return true;
      }
    }
    return false;
  }

  std::optional<Value> value(int depth)
  {
    if (depth > kMaxDepth) return std::nullopt;
    skip_ws();
    if (p_ >= end_) return std::nullopt;
    char c = *p_;
    if (c == '\'' || c == '"') return string();
    if (c == '(' || c == '[') return sequence(depth);
    if (c == '{') return dict(depth);
    if (c == '-' || (c >= '0' && c <= '9')) return integer();
    Value v;
    if (keyword("True")) {
      v.kind = Value::Kind::Bool;
      v.boolean = true;
      return v;
    }
    if (keyword("False")) {
      v.kind = Value::Kind::Bool;
      return v;
    }
    return std::nullopt;
  }

  std::optional<Value> string()
  {
    char quote = *p_++;
    Value v;
    v.kind = Value::Kind::Str;
    while (p_ < end_ && *p_ != quote) {
      if (*p_ == '\\' || *p_ == '\n') // escapes never occur in numpy headers
        return std::nullopt;
      v.str.push_back(*p_++);
    }
    if (p_ >= end_) return std::nullopt;
    ++p_;
    return v;
  }

  std::optional<Value> integer()
  {
    Value v;
    v.kind = Value::Kind::Int;
    if (*p_ == '-') {
      v.negative = true;
      ++p_;
    }
    if (p_ >= end_ || *p_ < '0' || *p_ > '9') return std::nullopt;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
      std::uint64_t d = static_cast<std::uint64_t>(*p_ - '0');
      if (__builtin_mul_overflow(v.integer, 10u, &v.integer) ||
          __builtin_add_overflow(v.integer, d, &v.integer))
        v.too_big = true;
      ++p_;
    }
    if (p_ < end_ && (*p_ == 'L' || *p_ == 'l')) // Python 2 longs in old headers
      ++p_;
    return v;
  }

  std::optional<Value> sequence(int depth)
  {
    char close = *p_ == '(' ? ')' : ']';
    Value v;
    v.kind = close == ')' ? Value::Kind::Tuple : Value::Kind::List;
    ++p_;
    bool saw_comma = false;
    if (eat(close)) {
      return v; // () or []
    }
    for (;;) {
      auto item = value(depth + 1);
      if (!item) return std::nullopt;
      v.items.push_back(std::move(*item));
      if (eat(',')) {
        saw_comma = true;
        if (eat(close)) break;
        continue;
      }
      if (eat(close)) break;
      return std::nullopt;
    }
    if (v.kind == Value::Kind::Tuple && v.items.size() == 1 && !saw_comma)
      return std::move(v.items[0]); // (x) is just x in Python
    return v;
  }

  std::optional<Value> dict(int depth)
  {
    Value v;
    v.kind = Value::Kind::Dict;
    ++p_;
    if (eat('}')) return v;
    for (;;) {
      auto key = value(depth + 1);
      if (!key || !eat(':')) return std::nullopt;
      auto val = value(depth + 1);
      if (!val) return std::nullopt;
      v.keys.push_back(std::move(*key));
      v.items.push_back(std::move(*val));
      if (eat(',')) {
        if (eat('}')) break;
        continue;
      }
      if (eat('}')) break;
      return std::nullopt;
    }
    return v;
  }
};

ParseResult fail(Error e, std::string detail)
{
  ParseResult r;
  r.error = e;
  r.detail = std::string(error_name(e)) + ": " + detail;
  return r;
}

std::uint16_t read_le16(const std::uint8_t *p)
{
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
std::uint32_t read_le32(const std::uint8_t *p)
{
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
      (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

/* descr string to dtype; sets err when refused. */
std::optional<DType> parse_descr(const std::string &d, Error &err, std::string &why)
{
  std::string body = d;
  char order = '=';
  if (!body.empty() && (body[0] == '<' || body[0] == '>' || body[0] == '|' || body[0] == '=')) {
    order = body[0];
    body.erase(0, 1);
  }
  std::optional<DType> t;
  if (body == "f4")
    t = DType::F4;
  else if (body == "f8")
    t = DType::F8;
  else if (body == "i4")
    t = DType::I4;
  else if (body == "i8")
    t = DType::I8;
  if (t && order == '>') {
    err = Error::BigEndian;
    why = "descr '" + d + "' is big-endian";
    return std::nullopt;
  }
  if (!t) {
    err = Error::UnsupportedDtype;
    why = "descr '" + d + "' (accepted: <f4, <f8, <i4, <i8)";
    return std::nullopt;
  }
  // '<' is what numpy writes; '=' (native) and '|' (no order) mean little-endian on this host.
  return t;
}

std::string shape_repr(const std::vector<std::uint64_t> &s)
{
  std::string r = "(";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  if (s.size() == 1) r += ",";
  return r + ")";
}

} // namespace

std::size_t item_size(DType t)
{
  switch (t) {
  case DType::F4:
  case DType::I4: return 4;
  case DType::F8:
  case DType::I8: return 8;
  }
  return 0;
}

const char *descr(DType t)
{
  switch (t) {
  case DType::F4: return "<f4";
  case DType::F8: return "<f8";
  case DType::I4: return "<i4";
  case DType::I8: return "<i8";
  }
  return "?";
}

const char *error_name(Error e)
{
  switch (e) {
  case Error::None: return "ok";
  case Error::BadMagic: return "bad magic";
  case Error::UnknownVersion: return "unknown format version";
  case Error::TruncatedHeader: return "truncated header";
  case Error::OversizedHeader: return "oversized header";
  case Error::HeaderPastBuffer: return "header length past end of buffer";
  case Error::BadDict: return "unparsable header dict";
  case Error::FortranOrder: return "fortran_order is True";
  case Error::BigEndian: return "big-endian dtype";
  case Error::UnsupportedDtype: return "unsupported dtype";
  case Error::UnsupportedShape: return "unsupported shape";
  case Error::ShapeMismatch: return "shape does not match payload";
  case Error::ShapeOverflow: return "shape product overflows";
  case Error::TooManyColumns: return "too many columns";
  }
  return "unknown error";
}

ParseResult parse(const std::uint8_t *data, std::size_t size, std::uint64_t max_columns)
{
  if (size < kMagicLen + 2) {
    if (size > 0 && std::memcmp(data, kMagic, size < kMagicLen ? size : kMagicLen) != 0)
      return fail(Error::BadMagic, "does not start with \\x93NUMPY");
    return fail(Error::TruncatedHeader, std::to_string(size) + " bytes, shorter than the preamble");
  }
  if (std::memcmp(data, kMagic, kMagicLen) != 0)
    return fail(Error::BadMagic, "does not start with \\x93NUMPY");
  int major = data[6], minor = data[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0))
    return fail(Error::UnknownVersion, std::to_string(major) + "." + std::to_string(minor));
  std::size_t len_bytes = major == 1 ? 2 : 4;
  std::size_t preamble = kMagicLen + 2 + len_bytes;
  if (size < preamble)
    return fail(Error::TruncatedHeader, std::to_string(size) + " bytes, shorter than the preamble");
  std::uint64_t hlen = major == 1 ? read_le16(data + 8) : read_le32(data + 8);
  if (hlen > kMaxHeaderLen)
    return fail(Error::OversizedHeader,
                std::to_string(hlen) + " bytes (limit " + std::to_string(kMaxHeaderLen) + ")");
  if (hlen > size - preamble)
    return fail(Error::HeaderPastBuffer,
                "header of " + std::to_string(hlen) + " bytes, buffer has " +
                    std::to_string(size - preamble) + " after the preamble");

  const char *text = reinterpret_cast<const char *>(data + preamble);
  auto dict = LiteralParser(text, text + hlen).parse_all();
  if (!dict || dict->kind != Value::Kind::Dict)
    return fail(Error::BadDict, "not a Python dict literal");
  const Value *descr_v = nullptr, *fortran_v = nullptr, *shape_v = nullptr;
  for (std::size_t i = 0; i < dict->keys.size(); ++i) {
    const Value &k = dict->keys[i];
    const Value &v = dict->items[i];
    if (k.kind != Value::Kind::Str) return fail(Error::BadDict, "non-string key");
    const Value **slot = k.str == "descr" ? &descr_v
        : k.str == "fortran_order"        ? &fortran_v
        : k.str == "shape"                ? &shape_v
                                          : nullptr;
    if (!slot) return fail(Error::BadDict, "unexpected key '" + k.str + "'");
    if (*slot) return fail(Error::BadDict, "duplicate key '" + k.str + "'");
    *slot = &v;
  }
  if (!descr_v || !fortran_v || !shape_v)
    return fail(Error::BadDict, "needs the keys descr, fortran_order and shape");
  if (fortran_v->kind != Value::Kind::Bool)
    return fail(Error::BadDict, "fortran_order is not a bool");
  if (shape_v->kind != Value::Kind::Tuple) return fail(Error::BadDict, "shape is not a tuple");
  for (const auto &d : shape_v->items)
    if (d.kind != Value::Kind::Int) return fail(Error::BadDict, "shape holds a non-integer");

  ParseResult r;
  Header &h = r.header;
  h.major = major;
  h.minor = minor;
  h.data_offset = preamble + hlen;

  if (descr_v->kind != Value::Kind::Str) return fail(Error::UnsupportedDtype, "structured dtype");
  Error derr = Error::None;
  std::string why;
  auto dt = parse_descr(descr_v->str, derr, why);
  if (!dt) return fail(derr, why);
  h.dtype = *dt;
  h.fortran_order = fortran_v->boolean;
  if (h.fortran_order) return fail(Error::FortranOrder, "only C-order arrays are accepted");

  std::size_t ndim = shape_v->items.size();
  if (ndim != 1 && ndim != 2)
    return fail(Error::UnsupportedShape, std::to_string(ndim) + "-D (accepted: (N, C) and (C,))");
  for (const auto &d : shape_v->items) {
    if (d.negative && (d.integer != 0 || d.too_big))
      return fail(Error::UnsupportedShape, "negative dimension");
    if (d.too_big) return fail(Error::ShapeOverflow, "a dimension does not fit in 64 bits");
    h.shape.push_back(d.integer);
  }
  std::uint64_t count = 1;
  for (auto d : h.shape)
    if (__builtin_mul_overflow(count, d, &count))
      return fail(Error::ShapeOverflow, shape_repr(h.shape));
  if (__builtin_mul_overflow(count, static_cast<std::uint64_t>(item_size(h.dtype)),
                             &h.payload_bytes))
    return fail(Error::ShapeOverflow, shape_repr(h.shape) + " of " + descr_v->str);
  h.rows = ndim == 2 ? h.shape[0] : 1;
  h.columns = ndim == 2 ? h.shape[1] : h.shape[0];
  if (h.columns == 0)
    return fail(Error::UnsupportedShape, shape_repr(h.shape) + " has zero columns");
  // Checked even when the payload agrees: (0, 2147483647) is 128 bytes, and downstream sizes
  // per-column state from it.
  if (h.columns > max_columns)
    return fail(Error::TooManyColumns,
                shape_repr(h.shape) + " has " + std::to_string(h.columns) +
                    " columns, more than the limit of " + std::to_string(max_columns));
  std::uint64_t have = size - h.data_offset;
  if (h.payload_bytes != have)
    return fail(Error::ShapeMismatch,
                shape_repr(h.shape) + " of " + descr_v->str + " needs " +
                    std::to_string(h.payload_bytes) + " payload bytes, buffer has " +
                    std::to_string(have));
  return r;
}

namespace {
std::string dict_text(std::uint64_t rows, std::uint64_t columns, bool one_d)
{
  std::vector<std::uint64_t> shape;
  if (!one_d) shape.push_back(rows);
  shape.push_back(columns);
  // numpy writes the keys sorted, each as "'key': repr(value), ", then room for the first axis
  // to grow in place.
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_repr(shape) + ", }";
  std::size_t digits = std::to_string(shape[0]).size();
  if (digits < kGrowthAxisDigits) h.append(kGrowthAxisDigits - digits, ' ');
  return h;
}
} // namespace

std::size_t header_size_f32(std::uint64_t rows, std::uint64_t columns, bool one_d)
{
  std::size_t hlen = dict_text(rows, columns, one_d).size() + 1;
  std::size_t pad = kAlign - ((kMagicLen + 2 + 2 + hlen) % kAlign);
  return kMagicLen + 2 + 2 + hlen + pad;
}

std::string make_header_f32(std::uint64_t rows, std::uint64_t columns, bool one_d)
{
  std::string dict = dict_text(rows, columns, one_d);
  std::size_t hlen = dict.size() + 1;
  std::size_t pad = kAlign - ((kMagicLen + 2 + 2 + hlen) % kAlign);
  std::size_t total_hlen = hlen + pad; // always < 65536 for this dict: format 1.0
  std::string out(reinterpret_cast<const char *>(kMagic), kMagicLen);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(total_hlen & 0xff));
  out.push_back(static_cast<char>((total_hlen >> 8) & 0xff));
  out += dict;
  out.append(pad, ' ');
  out.push_back('\n');
  return out;
}

namespace {
template <typename T>
void convert_items(const std::uint8_t *src, float *dst, std::size_t count)
{
  for (std::size_t i = 0; i < count; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    dst[i] = static_cast<float>(v);
  }
}
} // namespace

void convert_to_f32(DType t, const std::uint8_t *src, float *dst, std::size_t count)
{
  if (count == 0) // dst/src may be null for empty arrays; memcpy must not see them
    return;
  switch (t) {
  case DType::F4: std::memcpy(dst, src, count * sizeof(float)); break;
  case DType::F8: convert_items<double>(src, dst, count); break;
  case DType::I4: convert_items<std::int32_t>(src, dst, count); break;
  case DType::I8: convert_items<std::int64_t>(src, dst, count); break;
  }
}

} // namespace npy
