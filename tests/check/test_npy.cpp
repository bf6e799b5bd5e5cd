// SPDX-License-Identifier: LGPL-2.1-or-later
/* The plain-C++ .npy header code: exact numpy.save bytes, every accepted form, every refusal. */
#include "helpers.h"
#include "npy.h"

#include <cstdint>

namespace {

/* What numpy 1.24's numpy.save writes (captured from numpy, see tests/python for the live check). */
std::string numpy_header(const std::string &shape)
{
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  return dict;
}

std::string preamble(int major, std::size_t hlen)
{
  std::string s("\x93NUMPY", 6);
  s.push_back(static_cast<char>(major));
  s.push_back('\0');
  s.push_back(static_cast<char>(hlen & 0xff));
  s.push_back(static_cast<char>((hlen >> 8) & 0xff));
  if (major >= 2) {
    s.push_back(static_cast<char>((hlen >> 16) & 0xff));
    s.push_back(static_cast<char>((hlen >> 24) & 0xff));
  }
  return s;
}

/* A .npy file with an arbitrary header dict text and payload. */
std::string npy_file(const std::string &dict, const std::string &payload, int major = 1)
{
  std::size_t pre = major == 1 ? 10 : 12;
  std::string h = dict;
  while ((pre + h.size() + 1) % 64) h.push_back(' ');
  h.push_back('\n');
  return preamble(major, h.size()) + h + payload;
}

std::string dict_for(const std::string &descr, const std::string &shape,
                     const char *fortran = "False")
{
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}

npy::ParseResult parse(const std::string &s)
{
  return npy::parse(reinterpret_cast<const std::uint8_t *>(s.data()), s.size());
}

template <typename T>
std::string payload(std::initializer_list<T> v)
{
  std::string s(v.size() * sizeof(T), '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

} // namespace

GST_START_TEST(test_header_matches_numpy)
{
  // numpy.save(np.zeros((5, 3), '<f4')): 128-byte header, dict + 21-digit growth room + padding
  std::string h = npy::make_header_f32(5, 3);
  std::string expect = std::string("\x93NUMPY\x01\x00v\x00", 10) + numpy_header("(5, 3)");
  expect.append(128 - 1 - expect.size(), ' ');
  expect.push_back('\n');
  fail_unless_equals_int(h.size(), 128);
  fail_unless(h == expect);

  fail_unless_equals_int(npy::make_header_f32(1000000, 3).size(), 128);
  fail_unless_equals_int(npy::make_header_f32(0, 3).size(), 128);
  std::string one_d = npy::make_header_f32(0, 3, true);
  fail_unless(one_d.find("'shape': (3,), }") != std::string::npos);
  for (std::uint64_t rows : {0ull, 1ull, 99ull, 123456789012ull, 18446744073709551615ull}) {
    for (std::uint64_t cols : {1ull, 3ull, 1000000ull}) {
      std::string hh = npy::make_header_f32(rows, cols);
      fail_unless_equals_int(hh.size() % 64, 0);
      fail_unless_equals_int(hh.size(), npy::header_size_f32(rows, cols));
      fail_unless_equals_int(hh.back(), '\n');
    }
  }
}
GST_END_TEST;

GST_START_TEST(test_parse_own_output)
{
  std::string f = npy::make_header_f32(2, 3) + payload<float>({1, 2, 3, 4, 5, 6});
  auto r = parse(f);
  fail_unless(r.ok(), "%s", r.detail.c_str());
  fail_unless_equals_int(r.header.rows, 2);
  fail_unless_equals_int(r.header.columns, 3);
  fail_unless_equals_int(r.header.data_offset, 128);
  fail_unless_equals_int(r.header.payload_bytes, 24);
  fail_unless(r.header.dtype == npy::DType::F4);

  auto z = parse(npy::make_header_f32(0, 3));
  fail_unless(z.ok(), "%s", z.detail.c_str());
  fail_unless_equals_int(z.header.rows, 0);
}
GST_END_TEST;

GST_START_TEST(test_parse_versions_and_dtypes)
{
  for (int major : {1, 2, 3}) {
    auto r = parse(npy_file(dict_for("<f4", "(1, 2)"), payload<float>({1.5f, -2.5f}), major));
    fail_unless(r.ok(), "v%d: %s", major, r.detail.c_str());
    fail_unless_equals_int(r.header.major, major);
    fail_unless_equals_int(r.header.data_offset % 64, 0);
  }
  struct Case {
    const char *descr;
    std::string data;
    npy::DType type;
  } cases[] = {
      {"<f8", payload<double>({1.5, -2.25, 1e10}), npy::DType::F8},
      {"<i4", payload<std::int32_t>({-7, 0, 2147483647}), npy::DType::I4},
      {"<i8", payload<std::int64_t>({-7, 1ll << 40, 3}), npy::DType::I8},
      {"=f4", payload<float>({1, 2, 3}), npy::DType::F4},
      {"|i4", payload<std::int32_t>({1, 2, 3}), npy::DType::I4},
      {"f8", payload<double>({1, 2, 3}), npy::DType::F8},
  };
  for (auto &c : cases) {
    auto r = parse(npy_file(dict_for(c.descr, "(3,)"), c.data));
    fail_unless(r.ok(), "%s: %s", c.descr, r.detail.c_str());
    fail_unless(r.header.dtype == c.type, "%s", c.descr);
    fail_unless_equals_int(r.header.rows, 1);
    fail_unless_equals_int(r.header.columns, 3);
    float out[3];
    npy::convert_to_f32(r.header.dtype, reinterpret_cast<const std::uint8_t *>(c.data.data()), out,
                        3);
    if (c.type == npy::DType::F8 && std::string(c.descr) == "<f8") {
      fail_unless_equals_float(out[0], 1.5f);
      fail_unless_equals_float(out[1], -2.25f);
      fail_unless_equals_float(out[2], 1e10f);
    }
    if (std::string(c.descr) == "<i4") fail_unless(out[0] == -7.0f && out[2] == 2147483648.0f);
    if (std::string(c.descr) == "<i8") fail_unless(out[1] == 1099511627776.0f);
  }
  // keys in another order, double quotes, no trailing comma, extra spaces: still a dict
  auto r = parse(npy_file("{ \"shape\" : ( 2 , 1 ) , 'fortran_order':False,'descr':'<f4'}",
                          payload<float>({1, 2})));
  fail_unless(r.ok(), "%s", r.detail.c_str());
  fail_unless_equals_int(r.header.rows, 2);
  fail_unless_equals_int(r.header.columns, 1);
}
GST_END_TEST;

GST_START_TEST(test_parse_refusals)
{
  const std::string ok_dict = dict_for("<f4", "(1, 3)");
  const std::string ok_payload = payload<float>({1, 2, 3});
  std::string good = npy_file(ok_dict, ok_payload);
  fail_unless(parse(good).ok());

  std::string bad_magic = good;
  bad_magic[1] = 'X';
  std::string bad_version = good;
  bad_version[6] = 4;
  std::string bad_minor = good;
  bad_minor[7] = 1;
  std::string oversized = preamble(2, 1u << 20) + std::string(64, ' ');
  std::string past = preamble(1, 500) + ok_dict;
  std::string too_big_dim = npy_file(dict_for("<f4", "(99999999999999999999999, 3)"), "");

  struct Case {
    const char *name;
    std::string data;
    npy::Error expect;
  } cases[] = {
      {"bad magic", bad_magic, npy::Error::BadMagic},
      {"short bad magic", std::string("PK\x03", 3), npy::Error::BadMagic},
      {"unknown version", bad_version, npy::Error::UnknownVersion},
      {"unknown minor", bad_minor, npy::Error::UnknownVersion},
      {"truncated", good.substr(0, 9), npy::Error::TruncatedHeader},
      {"truncated v2", preamble(2, 64).substr(0, 10), npy::Error::TruncatedHeader},
      {"empty", std::string(), npy::Error::TruncatedHeader},
      {"oversized", oversized, npy::Error::OversizedHeader},
      {"past buffer", past, npy::Error::HeaderPastBuffer},
      {"not a dict", npy_file("[1, 2]", ok_payload), npy::Error::BadDict},
      {"garbage", npy_file("{'descr': <f4", ok_payload), npy::Error::BadDict},
      {"missing key", npy_file("{'descr': '<f4', 'shape': (1, 3)}", ok_payload),
       npy::Error::BadDict},
      {"extra key",
       npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), 'x': 1}", ok_payload),
       npy::Error::BadDict},
      {"duplicate key",
       npy_file("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1, 3)}",
                ok_payload),
       npy::Error::BadDict},
      {"shape not tuple", npy_file(dict_for("<f4", "[1, 3]"), ok_payload), npy::Error::BadDict},
      {"shape (3) is an int", npy_file(dict_for("<f4", "(3)"), ok_payload), npy::Error::BadDict},
      {"fortran", npy_file(dict_for("<f4", "(1, 3)", "True"), ok_payload),
       npy::Error::FortranOrder},
      {"big-endian", npy_file(dict_for(">f4", "(1, 3)"), ok_payload), npy::Error::BigEndian},
      {"f2", npy_file(dict_for("<f2", "(1, 3)"), ok_payload), npy::Error::UnsupportedDtype},
      {"u1", npy_file(dict_for("|u1", "(1, 12)"), ok_payload), npy::Error::UnsupportedDtype},
      {"structured",
       npy_file("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (3,)}", ok_payload),
       npy::Error::UnsupportedDtype},
      {"3-D", npy_file(dict_for("<f4", "(1, 1, 3)"), ok_payload), npy::Error::UnsupportedShape},
      {"0-D", npy_file(dict_for("<f4", "()"), ok_payload.substr(0, 4)),
       npy::Error::UnsupportedShape},
      {"zero columns", npy_file(dict_for("<f4", "(3, 0)"), ""), npy::Error::UnsupportedShape},
      {"negative", npy_file(dict_for("<f4", "(-1, 3)"), ok_payload), npy::Error::UnsupportedShape},
      {"mismatch short", npy_file(dict_for("<f4", "(2, 3)"), ok_payload),
       npy::Error::ShapeMismatch},
      {"mismatch long", npy_file(ok_dict, ok_payload + "xxxx"), npy::Error::ShapeMismatch},
      {"overflow", npy_file(dict_for("<f4", "(4294967296, 4294967296)"), ""),
       npy::Error::ShapeOverflow},
      {"overflow itemsize", npy_file(dict_for("<f8", "(2305843009213693952, 2)"), ""),
       npy::Error::ShapeOverflow},
      {"overflow digits", too_big_dim, npy::Error::ShapeOverflow},
  };
  for (auto &c : cases) {
    auto r = parse(c.data);
    fail_unless(r.error == c.expect, "%s: got '%s' (%s), expected '%s'", c.name,
                npy::error_name(r.error), r.detail.c_str(), npy::error_name(c.expect));
    // every refusal names its reason
    fail_unless(r.detail.rfind(npy::error_name(c.expect), 0) == 0, "%s: %s", c.name,
                r.detail.c_str());
  }
}
GST_END_TEST;

GST_START_TEST(test_parse_column_limit)
{
  // the column bound applies even when an empty payload agrees with the shape
  std::string wide = npy::make_header_f32(0, 2147483647);
  fail_unless_equals_int(wide.size(), 128);
  fail_unless(parse(wide).ok()); // no limit asked for
  auto r = npy::parse(reinterpret_cast<const std::uint8_t *>(wide.data()), wide.size(), 4096);
  fail_unless(r.error == npy::Error::TooManyColumns, "%s", r.detail.c_str());
  fail_unless_equals_string(
      r.detail.c_str(),
      "too many columns: (0, 2147483647) has 2147483647 columns, more than the limit of 4096");
  // 1-D: the columns are the only axis
  std::string one_d = npy::make_header_f32(1, 5000, true) + std::string(5000 * 4, '\0');
  r = npy::parse(reinterpret_cast<const std::uint8_t *>(one_d.data()), one_d.size(), 4096);
  fail_unless(r.error == npy::Error::TooManyColumns, "%s", r.detail.c_str());
  r = npy::parse(reinterpret_cast<const std::uint8_t *>(one_d.data()), one_d.size(), 5000);
  fail_unless(r.ok() && r.header.columns == 5000 && r.header.rows == 1);
  // rows are bounded by the payload: a huge row count with zero bytes is a mismatch, not a shape
  std::string rows = npy::make_header_f32(1000000000, 3);
  r = npy::parse(reinterpret_cast<const std::uint8_t *>(rows.data()), rows.size(), 4096);
  fail_unless(r.error == npy::Error::ShapeMismatch, "%s", r.detail.c_str());
}
GST_END_TEST;

GST_START_TEST(test_parse_never_reads_past_end)
{
  // every prefix of a valid file is refused without reading outside it (ASan checks the reads)
  std::string good = npy_file(dict_for("<f8", "(2, 2)"), payload<double>({1, 2, 3, 4}));
  for (std::size_t n = 0; n < good.size(); ++n) {
    std::vector<std::uint8_t> exact(good.begin(), good.begin() + n);
    auto r = npy::parse(exact.data(), exact.size());
    fail_if(r.ok(), "prefix of %zu bytes accepted", n);
  }
}
GST_END_TEST;

static Suite *npy_suite(void)
{
  Suite *s = suite_create("npy");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_header_matches_numpy);
  tcase_add_test(tc, test_parse_own_output);
  tcase_add_test(tc, test_parse_versions_and_dtypes);
  tcase_add_test(tc, test_parse_refusals);
  tcase_add_test(tc, test_parse_never_reads_past_end);
  tcase_add_test(tc, test_parse_column_limit);
  return s;
}

GST_CHECK_MAIN(npy);
