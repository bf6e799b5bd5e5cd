// SPDX-License-Identifier: LGPL-2.1-or-later
/* Room protocol: JSON parse with json-glib, serialize with a small writer (the daemon serializes
 * on every relay and reply, and building a JsonNode tree only to print it costs more than the
 * message is worth). */
#include "protocol.h"

#include <json-glib/json-glib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <unordered_set>

namespace pointcast::protocol {

namespace {

constexpr int kMaxDepth = 32;

struct ParserDeleter {
  void operator()(JsonParser *p) const { g_object_unref(p); }
};

/* One parser per thread, reused: json_parser_load_from_data resets it, and creating a GObject
 * per message is measurable at relay rates. */
JsonParser *thread_parser()
{
  thread_local std::unique_ptr<JsonParser, ParserDeleter> parser{json_parser_new_immutable()};
  return parser.get();
}

} // namespace

void append_escaped(std::string &out, std::string_view s)
{
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    default:
      if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
  }
  out.push_back('"');
}

namespace {

class Writer {
public:
  explicit Writer(std::string_view type)
  {
    out_.reserve(128);
    out_ += "{\"type\":";
    append_escaped(out_, type);
  }
  Writer &str(std::string_view key, std::string_view value)
  {
    key_(key);
    append_escaped(out_, value);
    return *this;
  }
  Writer &opt(std::string_view key, const std::optional<std::string> &value)
  {
    if (value) str(key, *value);
    return *this;
  }
  Writer &raw(std::string_view key, std::string_view json)
  {
    key_(key);
    out_ += json;
    return *this;
  }
  std::string done()
  {
    out_.push_back('}');
    return std::move(out_);
  }

private:
  void key_(std::string_view key)
  {
    out_.push_back(',');
    append_escaped(out_, key);
    out_.push_back(':');
  }
  std::string out_;
};

std::string sdp_object(const SessionDescription &d)
{
  std::string s = "{\"type\":";
  append_escaped(s, d.type);
  s += ",\"sdp\":";
  append_escaped(s, d.sdp);
  s.push_back('}');
  return s;
}

std::string candidate_object(const IceCandidate &c)
{
  std::string s = "{\"candidate\":";
  append_escaped(s, c.candidate);
  s += ",\"sdpMid\":";
  if (c.sdp_mid)
    append_escaped(s, *c.sdp_mid);
  else
    s += "null";
  s += ",\"sdpMLineIndex\":";
  s += c.sdp_mline_index ? std::to_string(*c.sdp_mline_index) : std::string("null");
  s.push_back('}');
  return s;
}

// Field access with the protocol's error reporting. Each getter returns false and fills err.
class Fields {
public:
  Fields(JsonObject *obj, Error &err) : obj_(obj), err_(err) {}

  // Required string. non_empty: "" is a bad value; id: also bounded by kMaxIdLength.
  bool req_str(const char *name, std::string &out, bool id = false)
  {
    JsonNode *n = json_object_get_member(obj_, name);
    if (!n || JSON_NODE_HOLDS_NULL(n))
      return fail(code::kMissingField, std::string("missing field \"") + name + "\"");
    return take_str(name, n, out, id);
  }
  // Optional string: absent or null leaves out untouched.
  bool opt_str(const char *name, std::optional<std::string> &out, bool id = false)
  {
    JsonNode *n = json_object_get_member(obj_, name);
    if (!n || JSON_NODE_HOLDS_NULL(n)) return true;
    std::string v;
    if (!take_str(name, n, v, id)) return false;
    out = std::move(v);
    return true;
  }
  bool opt_str_default(const char *name, std::string &out, bool id)
  {
    std::optional<std::string> v;
    if (!opt_str(name, v, id)) return false;
    if (v) out = std::move(*v);
    return true;
  }
  bool fail(const char *c, std::string msg)
  {
    err_.code = c;
    err_.message = std::move(msg);
    return false;
  }
  JsonObject *obj() const { return obj_; }

private:
  bool take_str(const char *name, JsonNode *n, std::string &out, bool id)
  {
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
      return fail(code::kBadField, std::string("field \"") + name + "\" must be a string");
    out = json_node_get_string(n);
    if (id && out.empty())
      return fail(code::kBadField, std::string("field \"") + name + "\" must not be empty");
    if (id && out.size() > kMaxIdLength)
      return fail(code::kBadField,
                  std::string("field \"") + name + "\" is longer than " +
                      std::to_string(kMaxIdLength) + " bytes");
    return true;
  }
  JsonObject *obj_;
  Error &err_;
};

bool parse_sdp(Fields &f, const std::string &type, Sdp &out)
{
  if (!f.opt_str("target_id", out.target_id, true) || !f.opt_str("from_id", out.from_id, true))
    return false;
  JsonNode *n = json_object_get_member(f.obj(), "sdp");
  if (!n || JSON_NODE_HOLDS_NULL(n)) return f.fail(code::kMissingField, "missing field \"sdp\"");
  if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING) {
    out.sdp.type = type;
    out.sdp.sdp = json_node_get_string(n);
  } else if (JSON_NODE_HOLDS_OBJECT(n)) {
    Error inner;
    Fields sf(json_node_get_object(n), inner);
    if (!sf.req_str("sdp", out.sdp.sdp))
      return f.fail(inner.code.c_str(), "in \"sdp\": " + inner.message);
    std::optional<std::string> t;
    if (!sf.opt_str("type", t)) return f.fail(inner.code.c_str(), "in \"sdp\": " + inner.message);
    if (t && *t != type)
      return f.fail(code::kBadField,
                    "\"sdp\".type is \"" + *t + "\" in a message of type \"" + type + "\"");
    out.sdp.type = type;
  } else {
    return f.fail(code::kBadField,
                  "field \"sdp\" must be an object {\"type\",\"sdp\"} or a string");
  }
  if (out.sdp.sdp.empty()) return f.fail(code::kBadField, "field \"sdp\" holds an empty SDP");
  if (JsonNode *t = json_object_get_member(f.obj(), "trickle"); t && !JSON_NODE_HOLDS_NULL(t)) {
    if (!JSON_NODE_HOLDS_VALUE(t) || json_node_get_value_type(t) != G_TYPE_BOOLEAN)
      return f.fail(code::kBadField, "field \"trickle\" must be a boolean");
    out.trickle = json_node_get_boolean(t) != FALSE;
  }
  return true;
}

bool parse_candidate(Fields &f, Candidate &out)
{
  if (!f.opt_str("target_id", out.target_id, true) || !f.opt_str("from_id", out.from_id, true))
    return false;
  JsonObject *obj = f.obj();
  if (!json_object_has_member(obj, "candidate"))
    return f.fail(code::kMissingField, "missing field \"candidate\"");
  JsonNode *n = json_object_get_member(obj, "candidate");
  if (JSON_NODE_HOLDS_NULL(n)) return true; // end of candidates, as browsers signal it
  if (!JSON_NODE_HOLDS_OBJECT(n))
    return f.fail(code::kBadField, "field \"candidate\" must be an object or null");
  JsonObject *c = json_node_get_object(n);
  Error inner;
  Fields cf(c, inner);
  if (!cf.req_str("candidate", out.candidate.candidate) ||
      !cf.opt_str("sdpMid", out.candidate.sdp_mid))
    return f.fail(inner.code.c_str(), "in \"candidate\": " + inner.message);
  if (JsonNode *m = json_object_get_member(c, "sdpMLineIndex"); m && !JSON_NODE_HOLDS_NULL(m)) {
    if (!JSON_NODE_HOLDS_VALUE(m) || json_node_get_value_type(m) != G_TYPE_INT64)
      return f.fail(code::kBadField, "in \"candidate\": \"sdpMLineIndex\" must be an integer");
    gint64 v = json_node_get_int(m);
    if (v < 0 || v > 65535)
      return f.fail(code::kBadField, "in \"candidate\": \"sdpMLineIndex\" out of range");
    out.candidate.sdp_mline_index = static_cast<int>(v);
  }
  if (!out.candidate.sdp_mid && !out.candidate.sdp_mline_index && !out.candidate.candidate.empty())
    return f.fail(code::kBadField,
                  "in \"candidate\": one of \"sdpMid\" or \"sdpMLineIndex\" is required");
  return true;
}

bool parse_peer_list(Fields &f, Registered &out)
{
  JsonNode *n = json_object_get_member(f.obj(), "peers");
  if (!n || JSON_NODE_HOLDS_NULL(n)) return f.fail(code::kMissingField, "missing field \"peers\"");
  if (!JSON_NODE_HOLDS_ARRAY(n)) return f.fail(code::kBadField, "field \"peers\" must be an array");
  JsonObject *types = nullptr;
  if (JsonNode *t = json_object_get_member(f.obj(), "peer_types"); t && JSON_NODE_HOLDS_OBJECT(t))
    types = json_node_get_object(t);
  JsonArray *arr = json_node_get_array(n);
  for (guint i = 0, len = json_array_get_length(arr); i < len; i++) {
    JsonNode *e = json_array_get_element(arr, i);
    if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING)
      return f.fail(code::kBadField, "field \"peers\" must hold strings");
    PeerInfo p{json_node_get_string(e), "unknown"};
    for (const auto &q : out.peers)
      if (q.client_id == p.client_id)
        return f.fail(code::kBadField, "field \"peers\" names a peer twice");
    if (types) {
      JsonNode *tn = json_object_get_member(types, p.client_id.c_str());
      if (tn && JSON_NODE_HOLDS_VALUE(tn) && json_node_get_value_type(tn) == G_TYPE_STRING)
        p.client_type = json_node_get_string(tn);
    }
    out.peers.push_back(std::move(p));
  }
  return true;
}

/* The one JSON grammar the daemon reads with. Strict RFC 8259 with these extra refusals, each
 * for a way two JSON readers could see different things in the same text: \u0000 (json-glib's
 * strings end there, a browser's do not), lone UTF-16 surrogates (they decode to bytes that are
 * not UTF-8, which the daemon would then relay), duplicate members (readers disagree on which
 * one wins), and nesting past kMaxDepth (json-glib recurses per level). */
enum class Fault { None, Syntax, Depth, Nul, Surrogate, Duplicate, Utf8 };

class Lexer {
public:
  explicit Lexer(std::string_view t) : begin_(t.data()), s_(t.data()), end_(t.data() + t.size()) {}
  Fault fault() const { return fault_; }
  std::size_t offset() const { return std::size_t(s_ - begin_); }

protected:
  bool fail(Fault f)
  {
    if (fault_ == Fault::None) fault_ = f;
    return false;
  }
  void ws()
  {
    while (s_ < end_ && (*s_ == ' ' || *s_ == '\t' || *s_ == '\n' || *s_ == '\r')) s_++;
  }
  bool lit(const char *w, std::size_t n)
  {
    if (std::size_t(end_ - s_) < n || std::memcmp(s_, w, n) != 0) return false;
    s_ += n;
    return true;
  }
  static int hex(char c)
  {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool u4(unsigned &v)
  {
    if (end_ - s_ < 4) return false;
    v = 0;
    for (int i = 0; i < 4; i++) {
      int h = hex(s_[i]);
      if (h < 0) return false;
      v = (v << 4) | unsigned(h);
    }
    s_ += 4;
    return true;
  }
  // At the opening quote; decodes into out (may be null: validate only).
  bool string(std::string *out)
  {
    s_++;
    const char *run = s_;
    for (;;) {
      if (s_ >= end_) return fail(Fault::Syntax);
      unsigned char c = static_cast<unsigned char>(*s_);
      if (c == '"') {
        if (out) out->append(run, s_ - run);
        s_++;
        return true;
      }
      if (c < 0x20) return fail(Fault::Syntax);
      if (c >= 0x80) high_bytes_ = true;
      if (c != '\\') {
        s_++;
        continue;
      }
      if (out) out->append(run, s_ - run);
      escaped_ = true;
      s_++;
      if (s_ >= end_) return fail(Fault::Syntax);
      char e = *s_++;
      char simple = 0;
      switch (e) {
      case '"': simple = '"'; break;
      case '\\': simple = '\\'; break;
      case '/': simple = '/'; break;
      case 'b': simple = '\b'; break;
      case 'f': simple = '\f'; break;
      case 'n': simple = '\n'; break;
      case 'r': simple = '\r'; break;
      case 't': simple = '\t'; break;
      case 'u': {
        unsigned cp;
        if (!u4(cp)) return fail(Fault::Syntax);
        if (cp == 0) return fail(Fault::Nul);
        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(Fault::Surrogate);
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          unsigned lo;
          if (!lit("\\u", 2) || !u4(lo) || lo < 0xDC00 || lo > 0xDFFF)
            return fail(Fault::Surrogate);
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (out) {
          char buf[4];
          int n = g_unichar_to_utf8(cp, buf);
          out->append(buf, n);
        }
        break;
      }
      default: return fail(Fault::Syntax);
      }
      if (simple && out) out->push_back(simple);
      run = s_;
    }
  }
  // A number; integer tells whether it had no fraction or exponent.
  bool number(bool &integer)
  {
    integer = true;
    if (s_ < end_ && *s_ == '-') s_++;
    if (s_ >= end_) return fail(Fault::Syntax);
    if (*s_ == '0') {
      s_++;
    } else if (*s_ >= '1' && *s_ <= '9') {
      while (s_ < end_ && *s_ >= '0' && *s_ <= '9') s_++;
    } else {
      return fail(Fault::Syntax);
    }
    if (s_ < end_ && *s_ == '.') {
      integer = false;
      s_++;
      if (s_ >= end_ || *s_ < '0' || *s_ > '9') return fail(Fault::Syntax);
      while (s_ < end_ && *s_ >= '0' && *s_ <= '9') s_++;
    }
    if (s_ < end_ && (*s_ == 'e' || *s_ == 'E')) {
      integer = false;
      s_++;
      if (s_ < end_ && (*s_ == '+' || *s_ == '-')) s_++;
      if (s_ >= end_ || *s_ < '0' || *s_ > '9') return fail(Fault::Syntax);
      while (s_ < end_ && *s_ >= '0' && *s_ <= '9') s_++;
    }
    return true;
  }
  // Whole text done: only blanks may follow, and any non-ASCII byte must be UTF-8.
  bool finish()
  {
    ws();
    if (s_ != end_) return fail(Fault::Syntax);
    if (high_bytes_ && !utf8_valid(std::string_view(begin_, end_ - begin_)))
      return fail(Fault::Utf8);
    return true;
  }

  const char *begin_;
  const char *s_;
  const char *end_;
  bool high_bytes_ = false;
  bool escaped_ = false; // a backslash escape was seen (set, never cleared, by string())
  Fault fault_ = Fault::None;
};

// The full grammar, validating only (no tree): what json-glib is allowed to see.
class Validator : public Lexer {
public:
  using Lexer::Lexer;
  bool run()
  {
    ws();
    return value(1) && finish();
  }
  const std::string &duplicate() const { return dup_; }

private:
  bool value(int depth)
  {
    if (s_ >= end_) return fail(Fault::Syntax);
    char c = *s_;
    if (c == '"') return string(nullptr);
    if (c == '{' || c == '[') {
      if (depth > kMaxDepth) return fail(Fault::Depth);
      return container(depth);
    }
    if (lit("true", 4) || lit("false", 5) || lit("null", 4)) return true;
    bool integer;
    return number(integer);
  }
  bool container(int depth)
  {
    bool obj = *s_ == '{';
    char close = obj ? '}' : ']';
    s_++;
    ws();
    if (s_ < end_ && *s_ == close) {
      s_++;
      return true;
    }
    std::unordered_set<std::string> keys;
    std::string key;
    for (;;) {
      if (obj) {
        if (s_ >= end_ || *s_ != '"') return fail(Fault::Syntax);
        key.clear();
        if (!string(&key)) return false;
        if (!keys.insert(key).second) {
          dup_ = key;
          return fail(Fault::Duplicate);
        }
        ws();
        if (s_ >= end_ || *s_ != ':') return fail(Fault::Syntax);
        s_++;
        ws();
      }
      if (!value(depth + 1)) return false;
      ws();
      if (s_ < end_ && *s_ == ',') {
        s_++;
        ws();
        continue;
      }
      if (s_ < end_ && *s_ == close) {
        s_++;
        return true;
      }
      return fail(Fault::Syntax);
    }
  }
  std::string dup_;
};

// Raw (undecoded) member names of one object, to refuse duplicates on the fast path.
class KeySet {
public:
  // False for a duplicate or too many names (the full path decides those). Names with escapes
  // are refused by the caller: raw bytes would not compare equal to their decoded twins.
  bool add(const char *b, const char *e)
  {
    std::string_view k(b, e - b);
    if (n_ == kMax) return false;
    for (int i = 0; i < n_; i++)
      if (keys_[i] == k) return false;
    keys_[n_++] = k;
    return true;
  }

private:
  static constexpr int kMax = 16;
  std::string_view keys_[kMax];
  int n_ = 0;
};

/* Fast path for the messages the daemon relays all day (offer, answer, ice_candidate, register):
 * one pass of the same grammar that picks out the protocol's members without building a tree.
 * It only ever accepts; anything unusual (a known member with an unexpected type, a duplicate,
 * a server-only type, an escaped member name, any fault) returns nullopt and the full path
 * decides, with its precise error. Tests and fuzz/fuzz_json check that whatever this accepts,
 * the full path accepts with the same result. */
class FastParser : public Lexer {
public:
  using Lexer::Lexer;

  std::optional<Message> run()
  {
    ws();
    if (!top_object() || !finish()) return std::nullopt;
    return build();
  }

private:
  enum class Kind { Absent, Null, String, True, False, Integer, Object, Other };
  struct Field {
    Kind kind = Kind::Absent;
    std::string str;
    long long num = 0;
  };
  // Top level, and one level inside "sdp" / "candidate".
  Field type_, client_id_, room_id_, client_type_, target_id_, from_id_, sdp_, trickle_, candidate_,
      token_;
  Field sdp_type_, sdp_sdp_, c_candidate_, c_mid_, c_mline_;

  bool number(Field *f)
  {
    const char *start = s_;
    bool integer;
    if (!Lexer::number(integer)) return false;
    if (f) {
      if (integer && s_ - start <= 15) {
        f->kind = Kind::Integer;
        f->num = std::strtoll(std::string(start, s_).c_str(), nullptr, 10);
      } else {
        f->kind = Kind::Other;
      }
    }
    return true;
  }
  // Any value; records scalars into f when given (objects/arrays are validated and skipped).
  bool value(Field *f, int depth)
  {
    if (depth > kMaxDepth || s_ >= end_) return false;
    char c = *s_;
    if (c == '"') {
      if (f) {
        f->kind = Kind::String;
        return string(&f->str);
      }
      return string(nullptr);
    }
    if (c == '{') {
      if (f) f->kind = Kind::Object;
      return skip_container('{', '}', depth);
    }
    if (c == '[') {
      if (f) f->kind = Kind::Other;
      return skip_container('[', ']', depth);
    }
    if (lit("true", 4)) {
      if (f) f->kind = Kind::True;
      return true;
    }
    if (lit("false", 5)) {
      if (f) f->kind = Kind::False;
      return true;
    }
    if (lit("null", 4)) {
      if (f) f->kind = Kind::Null;
      return true;
    }
    return number(f);
  }
  // Steps past an opening bracket; true when `close` follows at once (an empty container).
  bool open_empty(char close)
  {
    s_++;
    ws();
    if (s_ < end_ && *s_ == close) {
      s_++;
      return true;
    }
    return false;
  }
  // The ':' after a member's key, with the blanks around it.
  bool colon()
  {
    ws();
    if (s_ >= end_ || *s_ != ':') return false;
    s_++;
    ws();
    return true;
  }
  // After a member or element: ',' means more follow, `close` ends the container.
  enum class Next { More, Done, Bad };
  Next next(char close)
  {
    ws();
    if (s_ >= end_) return Next::Bad;
    if (*s_ == ',') {
      s_++;
      ws();
      return Next::More;
    }
    if (*s_ == close) {
      s_++;
      return Next::Done;
    }
    return Next::Bad;
  }
  bool skip_container(char open, char close, int depth)
  {
    if (open_empty(close)) return true;
    KeySet keys;
    for (;;) {
      if (open == '{') {
        if (s_ >= end_ || *s_ != '"') return false;
        const char *k = s_ + 1;
        escaped_ = false;
        if (!string(nullptr) || escaped_ || !keys.add(k, s_ - 1) || !colon()) return false;
      }
      if (!value(nullptr, depth + 1)) return false;
      Next n = next(close);
      if (n != Next::More) return n == Next::Done;
    }
  }
  enum class Scope { Top, Sdp, Candidate };
  // Which field a member goes to (nullptr: skipped); false for a duplicate of a known member.
  bool lookup(Scope scope, const std::string &k, Field *&f, bool &nested)
  {
    // Length first, then the bytes: this runs for every member of every relayed message.
    auto is = [&k](std::string_view w) {
      return k.size() == w.size() && std::memcmp(k.data(), w.data(), w.size()) == 0;
    };
    f = nullptr;
    nested = false;
    switch (scope) {
    case Scope::Top:
      if (is("type"))
        f = &type_;
      else if (is("client_id"))
        f = &client_id_;
      else if (is("room_id"))
        f = &room_id_;
      else if (is("client_type"))
        f = &client_type_;
      else if (is("target_id"))
        f = &target_id_;
      else if (is("from_id"))
        f = &from_id_;
      else if (is("trickle"))
        f = &trickle_;
      else if (is("token"))
        f = &token_;
      else if (is("sdp")) {
        f = &sdp_;
        nested = true;
      } else if (is("candidate")) {
        f = &candidate_;
        nested = true;
      }
      break;
    case Scope::Sdp:
      if (is("type"))
        f = &sdp_type_;
      else if (is("sdp"))
        f = &sdp_sdp_;
      break;
    case Scope::Candidate:
      if (is("candidate"))
        f = &c_candidate_;
      else if (is("sdpMid"))
        f = &c_mid_;
      else if (is("sdpMLineIndex"))
        f = &c_mline_;
      break;
    }
    return !f || f->kind == Kind::Absent;
  }
  bool object(Scope scope, int depth)
  {
    if (s_ >= end_ || *s_ != '{') return false;
    if (open_empty('}')) return true;
    std::string key;
    KeySet keys;
    for (;;) {
      if (s_ >= end_ || *s_ != '"') return false;
      key.clear();
      const char *k = s_ + 1;
      escaped_ = false;
      if (!string(&key) || escaped_ || !keys.add(k, s_ - 1) || !colon()) return false;
      Field *f = nullptr;
      bool nested = false;
      if (!lookup(scope, key, f, nested)) return false; // duplicate
      if (nested && s_ < end_ && *s_ == '{') {
        // sdp / candidate objects are descended into; anything else is recorded as is.
        f->kind = Kind::Object;
        if (!object(f == &sdp_ ? Scope::Sdp : Scope::Candidate, depth + 1)) return false;
      } else if (!value(f, depth + 1)) {
        return false;
      }
      Next n = next('}');
      if (n != Next::More) return n == Next::Done;
    }
  }
  bool top_object() { return object(Scope::Top, 1); }

  static bool id_ok(const Field &f) { return !f.str.empty() && f.str.size() <= kMaxIdLength; }
  // Optional id: absent/null -> nullopt; valid string -> value; anything else -> fail.
  static bool opt_id(const Field &f, std::optional<std::string> &out)
  {
    if (f.kind == Kind::Absent || f.kind == Kind::Null) return true;
    if (f.kind != Kind::String || !id_ok(f)) return false;
    out = f.str;
    return true;
  }
  static bool opt_str(const Field &f, std::optional<std::string> &out)
  {
    if (f.kind == Kind::Absent || f.kind == Kind::Null) return true;
    if (f.kind != Kind::String) return false;
    out = f.str;
    return true;
  }

  std::optional<Message> build()
  {
    if (type_.kind != Kind::String) return std::nullopt;
    const std::string &t = type_.str;
    if (t == "offer" || t == "answer") {
      Sdp m;
      if (!opt_id(target_id_, m.target_id) || !opt_id(from_id_, m.from_id)) return std::nullopt;
      if (sdp_.kind == Kind::String) {
        m.sdp = {t, std::move(sdp_.str)};
      } else if (sdp_.kind == Kind::Object) {
        if (sdp_sdp_.kind != Kind::String) return std::nullopt;
        std::optional<std::string> st;
        if (!opt_str(sdp_type_, st) || (st && *st != t)) return std::nullopt;
        m.sdp = {t, std::move(sdp_sdp_.str)};
      } else {
        return std::nullopt;
      }
      if (m.sdp.sdp.empty()) return std::nullopt;
      if (trickle_.kind == Kind::True || trickle_.kind == Kind::False)
        m.trickle = trickle_.kind == Kind::True;
      else if (trickle_.kind != Kind::Absent && trickle_.kind != Kind::Null)
        return std::nullopt;
      return Message(std::move(m));
    }
    if (t == "ice_candidate") {
      Candidate m;
      if (!opt_id(target_id_, m.target_id) || !opt_id(from_id_, m.from_id)) return std::nullopt;
      if (candidate_.kind == Kind::Null) return Message(std::move(m));
      if (candidate_.kind != Kind::Object || c_candidate_.kind != Kind::String) return std::nullopt;
      m.candidate.candidate = std::move(c_candidate_.str);
      if (!opt_str(c_mid_, m.candidate.sdp_mid)) return std::nullopt;
      if (c_mline_.kind == Kind::Integer) {
        if (c_mline_.num < 0 || c_mline_.num > 65535) return std::nullopt;
        m.candidate.sdp_mline_index = int(c_mline_.num);
      } else if (c_mline_.kind != Kind::Absent && c_mline_.kind != Kind::Null) {
        return std::nullopt;
      }
      if (!m.candidate.sdp_mid && !m.candidate.sdp_mline_index && !m.candidate.candidate.empty())
        return std::nullopt;
      return Message(std::move(m));
    }
    if (t == "register") {
      Register m;
      if (client_id_.kind != Kind::String || !id_ok(client_id_)) return std::nullopt;
      m.client_id = std::move(client_id_.str);
      for (auto [f, out] :
           {std::pair{&room_id_, &m.room_id}, std::pair{&client_type_, &m.client_type}}) {
        if (f->kind == Kind::String) {
          if (!id_ok(*f)) return std::nullopt;
          *out = std::move(f->str);
        } else if (f->kind != Kind::Absent && f->kind != Kind::Null) {
          return std::nullopt;
        }
      }
      if (!opt_str(token_, m.token)) return std::nullopt;
      return Message(std::move(m));
    }
    return std::nullopt; // server-side and unknown types: the full parser answers
  }
};

} // namespace

std::optional<Message> parse_fast(std::string_view text)
{
  FastParser p(text);
  return p.run();
}

std::optional<Error> check_json(std::string_view text)
{
  Validator v(text);
  if (v.run()) return std::nullopt;
  // Not UTF-8 comes first: the other reasons may quote the text, and a reply must be UTF-8.
  if (v.fault() != Fault::Utf8 && !utf8_valid(text))
    return Error{code::kBadJson, "text is not valid UTF-8"};
  std::string at = " (at byte " + std::to_string(v.offset()) + ")";
  switch (v.fault()) {
  case Fault::Depth:
    return Error{code::kBadJson,
                 "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels"};
  case Fault::Nul: return Error{code::kBadField, "\\u0000 (NUL) is not allowed in strings" + at};
  case Fault::Surrogate:
    return Error{code::kBadField,
                 "a string holds a lone UTF-16 surrogate, which is not a Unicode character" + at};
  case Fault::Duplicate: {
    std::string name = v.duplicate();
    if (name.size() > 64) { // cut on a character boundary: the reply must stay UTF-8
      std::size_t n = 64;
      while (n > 0 && (static_cast<unsigned char>(name[n]) & 0xC0) == 0x80) n--;
      name = name.substr(0, n) + "...";
    }
    std::string k;
    append_escaped(k, name);
    return Error{code::kBadJson, "duplicate member " + k + at};
  }
  case Fault::Utf8: return Error{code::kBadJson, "text is not valid UTF-8"};
  default:
    return Error{code::kBadJson,
                 text.find_first_not_of(" \t\r\n") == std::string_view::npos
                     ? std::string("empty message")
                     : "invalid JSON" + at};
  }
}

bool utf8_valid(std::string_view s)
{
  auto *p = reinterpret_cast<const unsigned char *>(s.data());
  const unsigned char *e = p + s.size();
  while (p < e) {
    // ASCII runs 8 bytes at a time: SDP is almost all ASCII.
    while (e - p >= 8) {
      std::uint64_t v;
      std::memcpy(&v, p, 8);
      if (v & 0x8080808080808080ull) break;
      p += 8;
    }
    if (p >= e) break;
    unsigned c = *p;
    if (c < 0x80) {
      p++;
      continue;
    }
    int n;
    unsigned cp, min;
    if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (e - p <= n) return false;
    for (int i = 1; i <= n; i++) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

const char *type_name(const Message &msg)
{
  struct V {
    const char *operator()(const Register &) const { return "register"; }
    const char *operator()(const Registered &) const { return "registered"; }
    const char *operator()(const PeerJoined &) const { return "peer_joined"; }
    const char *operator()(const PeerLeft &) const { return "peer_left"; }
    const char *operator()(const Sdp &s) const
    {
      return s.sdp.type == "answer" ? "answer" : "offer";
    }
    const char *operator()(const Candidate &) const { return "ice_candidate"; }
    const char *operator()(const Error &) const { return "error"; }
  };
  return std::visit(V{}, msg);
}

ParseResult parse(std::string_view text)
{
  ParseResult r;
  if (auto m = parse_fast(text)) {
    r.message = std::move(*m);
    return r;
  }
  return parse_full(text);
}

ParseResult parse_full(std::string_view text)
{
  ParseResult r;
  // json-glib recurses per nesting level and has its own looser grammar (comments, single
  // quotes, NUL-terminated strings): it only ever sees text the strict validator passed.
  if (auto bad = check_json(text)) {
    r.error = std::move(*bad);
    return r;
  }
  JsonParser *parser = thread_parser();
  GError *gerr = nullptr;
  if (!json_parser_load_from_data(parser, text.data(), static_cast<gssize>(text.size()), &gerr)) {
    r.error = {code::kBadJson, std::string("invalid JSON: ") + (gerr ? gerr->message : "?")};
    g_clear_error(&gerr);
    return r;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root) {
    r.error = {code::kBadJson, "empty message"};
    return r;
  }
  if (!JSON_NODE_HOLDS_OBJECT(root)) {
    r.error = {code::kNotObject, "a message must be a JSON object"};
    return r;
  }
  JsonObject *obj = json_node_get_object(root);
  Fields f(obj, r.error);
  JsonNode *tn = json_object_get_member(obj, "type");
  if (!tn || !JSON_NODE_HOLDS_VALUE(tn) || json_node_get_value_type(tn) != G_TYPE_STRING) {
    r.error = {code::kMissingType, "a message needs a string member \"type\""};
    return r;
  }
  const std::string type = json_node_get_string(tn);

  if (type == "register") {
    Register m;
    if (f.req_str("client_id", m.client_id, true) &&
        f.opt_str_default("room_id", m.room_id, true) &&
        f.opt_str_default("client_type", m.client_type, true) && f.opt_str("token", m.token))
      r.message = std::move(m);
  } else if (type == "offer" || type == "answer") {
    Sdp m;
    if (parse_sdp(f, type, m)) r.message = std::move(m);
  } else if (type == "ice_candidate") {
    Candidate m;
    if (parse_candidate(f, m)) r.message = std::move(m);
  } else if (type == "registered") {
    Registered m;
    if (f.req_str("client_id", m.client_id, true) && f.req_str("room_id", m.room_id, true) &&
        parse_peer_list(f, m))
      r.message = std::move(m);
  } else if (type == "peer_joined") {
    PeerJoined m{"", "unknown"};
    if (f.req_str("client_id", m.client_id, true) &&
        f.opt_str_default("client_type", m.client_type, true))
      r.message = std::move(m);
  } else if (type == "peer_left") {
    PeerLeft m;
    if (f.req_str("client_id", m.client_id, true)) r.message = std::move(m);
  } else if (type == "error") {
    Error m;
    if (f.req_str("code", m.code) && f.opt_str_default("message", m.message, false))
      r.message = std::move(m);
  } else {
    std::string shown = type;
    if (shown.size() > 64) { // cut on a UTF-8 character boundary so the reply stays valid text
      std::size_t n = 64;
      while (n > 0 && (static_cast<unsigned char>(shown[n]) & 0xC0) == 0x80) n--;
      shown = shown.substr(0, n) + "...";
    }
    r.error = {code::kUnknownType, "unknown message type \"" + shown + "\""};
  }
  return r;
}

std::string serialize(const Message &msg)
{
  struct V {
    std::string operator()(const Register &m) const
    {
      return Writer("register")
          .str("client_id", m.client_id)
          .str("room_id", m.room_id)
          .str("client_type", m.client_type)
          .opt("token", m.token)
          .done();
    }
    std::string operator()(const Registered &m) const
    {
      std::string ids = "[", types = "{";
      for (const auto &p : m.peers) {
        if (ids.size() > 1) {
          ids.push_back(',');
          types.push_back(',');
        }
        append_escaped(ids, p.client_id);
        append_escaped(types, p.client_id);
        types.push_back(':');
        append_escaped(types, p.client_type);
      }
      ids.push_back(']');
      types.push_back('}');
      return Writer("registered")
          .str("client_id", m.client_id)
          .str("room_id", m.room_id)
          .raw("peers", ids)
          .raw("peer_types", types)
          .done();
    }
    std::string operator()(const PeerJoined &m) const
    {
      return Writer("peer_joined")
          .str("client_id", m.client_id)
          .str("client_type", m.client_type)
          .done();
    }
    std::string operator()(const PeerLeft &m) const
    {
      return Writer("peer_left").str("client_id", m.client_id).done();
    }
    std::string operator()(const Sdp &m) const
    {
      Writer w(m.sdp.type == "answer" ? "answer" : "offer");
      w.opt("target_id", m.target_id).opt("from_id", m.from_id).raw("sdp", sdp_object(m.sdp));
      if (m.trickle) w.raw("trickle", *m.trickle ? "true" : "false");
      return w.done();
    }
    std::string operator()(const Candidate &m) const
    {
      return Writer("ice_candidate")
          .opt("target_id", m.target_id)
          .opt("from_id", m.from_id)
          .raw("candidate", candidate_object(m.candidate))
          .done();
    }
    std::string operator()(const Error &m) const
    {
      return Writer("error").str("code", m.code).str("message", m.message).done();
    }
  };
  return std::visit(V{}, msg);
}

bool secret_equal(std::string_view presented, std::string_view secret)
{
  unsigned char diff = presented.size() != secret.size();
  for (std::size_t i = 0; i < secret.size(); i++)
    diff |= static_cast<unsigned char>((i < presented.size() ? presented[i] : 0) ^ secret[i]);
  return diff == 0;
}

std::string error_json(std::string_view c, std::string_view message)
{
  return Writer("error").str("code", c).str("message", message).done();
}

std::string append_from_id(std::string_view object_text, std::string_view from)
{
  std::size_t end = object_text.find_last_of('}');
  std::string out;
  out.reserve(object_text.size() + from.size() + 16);
  out.append(object_text.substr(0, end));
  // A "{}" object has no members to separate from; parse() never accepts one, but stay valid.
  std::size_t last = out.find_last_not_of(" \t\r\n");
  if (last != std::string::npos && out[last] != '{') out.push_back(',');
  out += "\"from_id\":";
  append_escaped(out, from);
  out.push_back('}');
  return out;
}

} // namespace pointcast::protocol
