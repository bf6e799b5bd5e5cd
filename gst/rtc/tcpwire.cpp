// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rtc/tcpwire.h"

#include "rtc/sigcheck.h"

#include "protocol.h"

#include <json-glib/json-glib.h>

#include <memory>
#include <optional>

namespace pointcast::tcpwire {
namespace {

struct Parser {
  JsonParser *p = json_parser_new();
  ~Parser() { g_object_unref(p); }
};

// A string member: nullopt when absent or null; *bad when present but not a string.
std::optional<std::string> str(JsonObject *o, const char *name, bool *bad)
{
  JsonNode *n = json_object_get_member(o, name);
  if (!n || JSON_NODE_HOLDS_NULL(n)) return std::nullopt;
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
    *bad = true;
    return std::nullopt;
  }
  return std::string(json_node_get_string(n));
}

Message bad(std::string why)
{
  Message m;
  m.why = std::move(why);
  return m;
}

} // namespace

std::optional<std::string> json_refusal(std::string_view text)
{
  if (sigcheck::has_escaped_nul(text)) return std::string("escaped NUL (\\u0000) in the message");
  protocol::ParseResult gate = protocol::parse(text);
  const std::string &code = gate.error.code;
  if (!gate.ok() && code != protocol::code::kMissingType && code != protocol::code::kUnknownType &&
      code != protocol::code::kMissingField && code != protocol::code::kBadField)
    return code + ": " + gate.error.message;
  return std::nullopt;
}

Message parse_line(std::string_view line)
{
  Message m;
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
    m.kind = Message::Kind::Blank;
    return m;
  }
  if (auto why = json_refusal(line)) return bad(*why);
  Parser ps;
  GError *err = nullptr;
  if (!json_parser_load_from_data(ps.p, line.data(), gssize(line.size()), &err)) {
    std::string why = std::string("not JSON: ") + err->message;
    g_error_free(err);
    return bad(why);
  }
  JsonNode *root = json_parser_get_root(ps.p);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) return bad("not a JSON object");
  JsonObject *o = json_node_get_object(root);
  bool wrong = false;
  auto type = str(o, "type", &wrong);
  if (!type) return bad("no \"type\" string");
  if (*type == "offer" || *type == "answer") {
    auto sdp = str(o, "sdp", &wrong);
    if (!sdp) return bad("no \"sdp\" string");
    m.kind = Message::Kind::Sdp;
    m.type = *type;
    m.sdp = std::move(*sdp);
    return m;
  }
  if (*type == "candidate") {
    // aiortc ignores a candidate message whose "candidate" is empty; we pass it on as
    // end-of-candidates.
    auto cand = str(o, "candidate", &wrong);
    if (wrong) return bad("\"candidate\" is not a string");
    m.candidate = cand.value_or("");
    if (!m.candidate.empty() && m.candidate.rfind("candidate:", 0) != 0)
      m.candidate = "candidate:" + m.candidate;
    auto mid = str(o, "id", &wrong);
    if (wrong) return bad("\"id\" (sdpMid) is not a string");
    m.mid = mid.value_or("");
    JsonNode *label = json_object_get_member(o, "label");
    if (label && !JSON_NODE_HOLDS_NULL(label)) {
      if (!JSON_NODE_HOLDS_VALUE(label) || json_node_get_value_type(label) != G_TYPE_INT64 ||
          json_node_get_int(label) < 0 || json_node_get_int(label) > 1023)
        return bad("\"label\" (sdpMLineIndex) is not a small integer");
      m.mline = int(json_node_get_int(label));
    } else if (m.mid.empty()) {
      return bad("neither \"id\" nor \"label\"");
    }
    m.kind = Message::Kind::Candidate;
    return m;
  }
  if (*type == "bye") {
    m.kind = Message::Kind::Bye;
    return m;
  }
  return bad("unknown type \"" + *type + "\"");
}

} // namespace pointcast::tcpwire
