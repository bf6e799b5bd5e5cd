/* Room protocol: JSON parse with json-glib, serialize with a small writer (the daemon serializes
 * on every relay and reply, and building a JsonNode tree only to print it costs more than the
 * message is worth). */
#include "protocol.h"

#include <json-glib/json-glib.h>

#include <cstdio>
#include <memory>

namespace pointcast::protocol {

namespace {

constexpr int kMaxDepth = 32;

struct ParserDeleter {
  void operator()(JsonParser *p) const { g_object_unref(p); }
};

/* One parser per thread, reused: json_parser_load_from_data resets it, and creating a GObject
 * per message is measurable at relay rates. */
JsonParser *thread_parser() {
  thread_local std::unique_ptr<JsonParser, ParserDeleter> parser{json_parser_new_immutable()};
  return parser.get();
}

void append_escaped(std::string &out, std::string_view s) {
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

class Writer {
public:
  explicit Writer(std::string_view type) {
    out_.reserve(128);
    out_ += "{\"type\":";
    append_escaped(out_, type);
  }
  Writer &str(std::string_view key, std::string_view value) {
    key_(key);
    append_escaped(out_, value);
    return *this;
  }
  Writer &opt(std::string_view key, const std::optional<std::string> &value) {
    if (value)
      str(key, *value);
    return *this;
  }
  Writer &raw(std::string_view key, std::string_view json) {
    key_(key);
    out_ += json;
    return *this;
  }
  std::string done() {
    out_.push_back('}');
    return std::move(out_);
  }

private:
  void key_(std::string_view key) {
    out_.push_back(',');
    append_escaped(out_, key);
    out_.push_back(':');
  }
  std::string out_;
};

std::string sdp_object(const SessionDescription &d) {
  std::string s = "{\"type\":";
  append_escaped(s, d.type);
  s += ",\"sdp\":";
  append_escaped(s, d.sdp);
  s.push_back('}');
  return s;
}

std::string candidate_object(const IceCandidate &c) {
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
  bool req_str(const char *name, std::string &out, bool id = false) {
    JsonNode *n = json_object_get_member(obj_, name);
    if (!n || JSON_NODE_HOLDS_NULL(n))
      return fail(code::kMissingField, std::string("missing field \"") + name + "\"");
    return take_str(name, n, out, id);
  }
  // Optional string: absent or null leaves out untouched.
  bool opt_str(const char *name, std::optional<std::string> &out, bool id = false) {
    JsonNode *n = json_object_get_member(obj_, name);
    if (!n || JSON_NODE_HOLDS_NULL(n))
      return true;
    std::string v;
    if (!take_str(name, n, v, id))
      return false;
    out = std::move(v);
    return true;
  }
  bool opt_str_default(const char *name, std::string &out, bool id) {
    std::optional<std::string> v;
    if (!opt_str(name, v, id))
      return false;
    if (v)
      out = std::move(*v);
    return true;
  }
  bool fail(const char *c, std::string msg) {
    err_.code = c;
    err_.message = std::move(msg);
    return false;
  }
  JsonObject *obj() const { return obj_; }

private:
  bool take_str(const char *name, JsonNode *n, std::string &out, bool id) {
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
      return fail(code::kBadField, std::string("field \"") + name + "\" must be a string");
    out = json_node_get_string(n);
    if (id && out.empty())
      return fail(code::kBadField, std::string("field \"") + name + "\" must not be empty");
    if (id && out.size() > kMaxIdLength)
      return fail(code::kBadField, std::string("field \"") + name + "\" is longer than " +
                                       std::to_string(kMaxIdLength) + " bytes");
    return true;
  }
  JsonObject *obj_;
  Error &err_;
};

bool parse_sdp(Fields &f, const std::string &type, Sdp &out) {
  if (!f.opt_str("target_id", out.target_id, true) || !f.opt_str("from_id", out.from_id, true))
    return false;
  JsonNode *n = json_object_get_member(f.obj(), "sdp");
  if (!n || JSON_NODE_HOLDS_NULL(n))
    return f.fail(code::kMissingField, "missing field \"sdp\"");
  if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING) {
    out.sdp.type = type;
    out.sdp.sdp = json_node_get_string(n);
  } else if (JSON_NODE_HOLDS_OBJECT(n)) {
    Error inner;
    Fields sf(json_node_get_object(n), inner);
    if (!sf.req_str("sdp", out.sdp.sdp))
      return f.fail(inner.code.c_str(), "in \"sdp\": " + inner.message);
    std::optional<std::string> t;
    if (!sf.opt_str("type", t))
      return f.fail(inner.code.c_str(), "in \"sdp\": " + inner.message);
    if (t && *t != type)
      return f.fail(code::kBadField, "\"sdp\".type is \"" + *t + "\" in a message of type \"" +
                                         type + "\"");
    out.sdp.type = type;
  } else {
    return f.fail(code::kBadField, "field \"sdp\" must be an object {\"type\",\"sdp\"} or a string");
  }
  if (out.sdp.sdp.empty())
    return f.fail(code::kBadField, "field \"sdp\" holds an empty SDP");
  if (JsonNode *t = json_object_get_member(f.obj(), "trickle"); t && !JSON_NODE_HOLDS_NULL(t)) {
    if (!JSON_NODE_HOLDS_VALUE(t) || json_node_get_value_type(t) != G_TYPE_BOOLEAN)
      return f.fail(code::kBadField, "field \"trickle\" must be a boolean");
    out.trickle = json_node_get_boolean(t) != FALSE;
  }
  return true;
}

bool parse_candidate(Fields &f, Candidate &out) {
  if (!f.opt_str("target_id", out.target_id, true) || !f.opt_str("from_id", out.from_id, true))
    return false;
  JsonObject *obj = f.obj();
  if (!json_object_has_member(obj, "candidate"))
    return f.fail(code::kMissingField, "missing field \"candidate\"");
  JsonNode *n = json_object_get_member(obj, "candidate");
  if (JSON_NODE_HOLDS_NULL(n))
    return true; // end of candidates, as browsers signal it
  if (!JSON_NODE_HOLDS_OBJECT(n))
    return f.fail(code::kBadField, "field \"candidate\" must be an object or null");
  JsonObject *c = json_node_get_object(n);
  Error inner;
  Fields cf(c, inner);
  if (!cf.req_str("candidate", out.candidate.candidate) || !cf.opt_str("sdpMid", out.candidate.sdp_mid))
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
    return f.fail(code::kBadField, "in \"candidate\": one of \"sdpMid\" or \"sdpMLineIndex\" is required");
  return true;
}

bool parse_peer_list(Fields &f, Registered &out) {
  JsonNode *n = json_object_get_member(f.obj(), "peers");
  if (!n || JSON_NODE_HOLDS_NULL(n))
    return f.fail(code::kMissingField, "missing field \"peers\"");
  if (!JSON_NODE_HOLDS_ARRAY(n))
    return f.fail(code::kBadField, "field \"peers\" must be an array");
  JsonObject *types = nullptr;
  if (JsonNode *t = json_object_get_member(f.obj(), "peer_types"); t && JSON_NODE_HOLDS_OBJECT(t))
    types = json_node_get_object(t);
  JsonArray *arr = json_node_get_array(n);
  for (guint i = 0, len = json_array_get_length(arr); i < len; i++) {
    JsonNode *e = json_array_get_element(arr, i);
    if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING)
      return f.fail(code::kBadField, "field \"peers\" must hold strings");
    PeerInfo p{json_node_get_string(e), "unknown"};
    if (types) {
      JsonNode *tn = json_object_get_member(types, p.client_id.c_str());
      if (tn && JSON_NODE_HOLDS_VALUE(tn) && json_node_get_value_type(tn) == G_TYPE_STRING)
        p.client_type = json_node_get_string(tn);
    }
    out.peers.push_back(std::move(p));
  }
  return true;
}

} // namespace

const char *type_name(const Message &msg) {
  struct V {
    const char *operator()(const Register &) const { return "register"; }
    const char *operator()(const Registered &) const { return "registered"; }
    const char *operator()(const PeerJoined &) const { return "peer_joined"; }
    const char *operator()(const PeerLeft &) const { return "peer_left"; }
    const char *operator()(const Sdp &s) const { return s.sdp.type == "answer" ? "answer" : "offer"; }
    const char *operator()(const Candidate &) const { return "ice_candidate"; }
    const char *operator()(const Error &) const { return "error"; }
  };
  return std::visit(V{}, msg);
}

ParseResult parse(std::string_view text) {
  ParseResult r;
  // json-glib parses recursively: a frame of 60,000 '[' would exhaust the stack. Protocol
  // messages nest three levels deep; refuse anything past kMaxDepth before parsing.
  {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (char ch : text) {
      if (in_string) {
        if (escaped)
          escaped = false;
        else if (ch == '\\')
          escaped = true;
        else if (ch == '"')
          in_string = false;
      } else if (ch == '"') {
        in_string = true;
      } else if (ch == '{' || ch == '[') {
        if (++depth > kMaxDepth) {
          r.error = {code::kBadJson, "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels"};
          return r;
        }
      } else if (ch == '}' || ch == ']') {
        depth--;
      }
    }
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
    if (f.req_str("client_id", m.client_id, true) && f.opt_str_default("room_id", m.room_id, true) &&
        f.opt_str_default("client_type", m.client_type, true))
      r.message = std::move(m);
  } else if (type == "offer" || type == "answer") {
    Sdp m;
    if (parse_sdp(f, type, m))
      r.message = std::move(m);
  } else if (type == "ice_candidate") {
    Candidate m;
    if (parse_candidate(f, m))
      r.message = std::move(m);
  } else if (type == "registered") {
    Registered m;
    if (f.req_str("client_id", m.client_id, true) && f.req_str("room_id", m.room_id, true) &&
        parse_peer_list(f, m))
      r.message = std::move(m);
  } else if (type == "peer_joined") {
    PeerJoined m{"", "unknown"};
    if (f.req_str("client_id", m.client_id, true) && f.opt_str_default("client_type", m.client_type, true))
      r.message = std::move(m);
  } else if (type == "peer_left") {
    PeerLeft m;
    if (f.req_str("client_id", m.client_id, true))
      r.message = std::move(m);
  } else if (type == "error") {
    Error m;
    if (f.req_str("code", m.code) && f.opt_str_default("message", m.message, false))
      r.message = std::move(m);
  } else {
    std::string shown = type;
    if (shown.size() > 64) { // cut on a UTF-8 character boundary so the reply stays valid text
      std::size_t n = 64;
      while (n > 0 && (static_cast<unsigned char>(shown[n]) & 0xC0) == 0x80)
        n--;
      shown = shown.substr(0, n) + "...";
    }
    r.error = {code::kUnknownType, "unknown message type \"" + shown + "\""};
  }
  return r;
}

std::string serialize(const Message &msg) {
  struct V {
    std::string operator()(const Register &m) const {
      return Writer("register").str("client_id", m.client_id).str("room_id", m.room_id)
          .str("client_type", m.client_type).done();
    }
    std::string operator()(const Registered &m) const {
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
      return Writer("registered").str("client_id", m.client_id).str("room_id", m.room_id)
          .raw("peers", ids).raw("peer_types", types).done();
    }
    std::string operator()(const PeerJoined &m) const {
      return Writer("peer_joined").str("client_id", m.client_id).str("client_type", m.client_type).done();
    }
    std::string operator()(const PeerLeft &m) const {
      return Writer("peer_left").str("client_id", m.client_id).done();
    }
    std::string operator()(const Sdp &m) const {
      Writer w(m.sdp.type == "answer" ? "answer" : "offer");
      w.opt("target_id", m.target_id).opt("from_id", m.from_id).raw("sdp", sdp_object(m.sdp));
      if (m.trickle)
        w.raw("trickle", *m.trickle ? "true" : "false");
      return w.done();
    }
    std::string operator()(const Candidate &m) const {
      return Writer("ice_candidate").opt("target_id", m.target_id).opt("from_id", m.from_id)
          .raw("candidate", candidate_object(m.candidate)).done();
    }
    std::string operator()(const Error &m) const {
      return Writer("error").str("code", m.code).str("message", m.message).done();
    }
  };
  return std::visit(V{}, msg);
}

std::string error_json(std::string_view c, std::string_view message) {
  return Writer("error").str("code", c).str("message", message).done();
}

std::string append_from_id(std::string_view object_text, std::string_view from) {
  std::size_t end = object_text.find_last_of('}');
  std::string out;
  out.reserve(object_text.size() + from.size() + 16);
  out.append(object_text.substr(0, end));
  // A "{}" object has no members to separate from; parse() never accepts one, but stay valid.
  std::size_t last = out.find_last_not_of(" \t\r\n");
  if (last != std::string::npos && out[last] != '{')
    out.push_back(',');
  out += "\"from_id\":";
  append_escaped(out, from);
  out.push_back('}');
  return out;
}

} // namespace pointcast::protocol
