#include "controlplane/scim/patch.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace warden::controlplane::scim {

using absl::EqualsIgnoreCase;

size_t JsonDepth(absl::string_view text) {
  size_t depth = 0;
  size_t deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, a '"' included
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
      case '[':
        deepest = std::max(deepest, ++depth);
        break;
      case '}':
      case ']':
        // An unmatched closer is a syntax error the parser reports; not
        // counting below zero keeps the count an upper bound.
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return deepest;
}

absl::StatusOr<Json> ParseJson(absl::string_view text) {
  if (JsonDepth(text) > kMaxJsonDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("nested deeper than ", kMaxJsonDepth,
                     " levels of objects and arrays (the limit)"));
  }
  Json parsed = Json::parse(text.begin(), text.end(), nullptr, false);
  if (parsed.is_discarded()) return absl::InvalidArgumentError("not JSON");
  return parsed;
}

// Attribute names are case-insensitive in SCIM: the key of `object` that
// spells `name`, or null.
const std::string* FindKey(const Json& object, absl::string_view name) {
  if (!object.is_object()) return nullptr;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (EqualsIgnoreCase(it.key(), name)) return &it.key();
  }
  return nullptr;
}

const Json* Member(const Json& object, absl::string_view name) {
  const std::string* key = FindKey(object, name);
  return key == nullptr ? nullptr : &object.find(*key).value();
}

std::optional<std::string> StringMember(const Json& object,
                                        absl::string_view name) {
  const Json* v = Member(object, name);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return v->get<std::string>();
}

// Entra ID sends booleans as the strings "True" and "False".
std::optional<bool> AsBool(const Json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (EqualsIgnoreCase(s, "true")) return true;
    if (EqualsIgnoreCase(s, "false")) return false;
  }
  return std::nullopt;
}

// Sets `object[name]` (reusing the spelling already there).
Json& Slot(Json& object, absl::string_view name) {
  const std::string* key = FindKey(object, name);
  return object[key != nullptr ? *key : std::string(name)];
}

void EraseKey(Json& object, absl::string_view name) {
  if (const std::string* key = FindKey(object, name)) {
    const std::string copy = *key;
    object.erase(copy);
  }
}


// Splits `text` at its top-level " eq " into attribute and value (quotes
// removed): the only comparison Okta and Entra ID send.
std::optional<std::pair<std::string, std::string>> SplitEq(
    absl::string_view text) {
  int depth = 0;
  bool quoted = false;
  for (size_t i = 0; i + 4 <= text.size(); ++i) {
    const char c = text[i];
    if (c == '"' && (i == 0 || text[i - 1] != '\\')) quoted = !quoted;
    if (quoted) continue;
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (depth == 0 && EqualsIgnoreCase(text.substr(i, 4), " eq ")) {
      std::string attr(absl::StripAsciiWhitespace(text.substr(0, i)));
      absl::string_view value = absl::StripAsciiWhitespace(text.substr(i + 4));
      if (attr.empty() || value.empty()) return std::nullopt;
      std::string v;
      if (value.front() == '"') {
        // One quoted string, and nothing after it: `"a" or userName pr`
        // is not a value (a filter Warden does not support is refused,
        // never read as a match of nothing).
        size_t j = 1;
        for (; j < value.size(); ++j) {
          if (value[j] == '\\' && j + 1 < value.size()) {
            v.push_back(value[++j]);
            continue;
          }
          if (value[j] == '"') break;
          v.push_back(value[j]);
        }
        if (j != value.size() - 1) return std::nullopt;
      } else {
        // An unquoted value (true, false, a number) is one word.
        for (char ch : value) {
          if (absl::ascii_isspace(static_cast<unsigned char>(ch)) ||
              ch == '"') {
            return std::nullopt;
          }
        }
        v = std::string(value);
      }
      return std::make_pair(attr, v);
    }
  }
  return std::nullopt;
}

namespace {

// ---- PATCH (RFC 7644 3.5.2) ----

// attr, attr.sub, attr[f eq "v"], attr[f eq "v"].sub, each optionally
// behind a schema URN ("urn:...:enterprise:2.0:User:department").
struct Path {
  std::string urn;  // empty: the core schema
  std::string attr;
  bool filtered = false;
  std::string filter_attr;
  std::string filter_value;
  std::string sub;
};

absl::StatusOr<Path> ParsePath(absl::string_view text, bool is_user) {
  Path path;
  text = absl::StripAsciiWhitespace(text);
  if (absl::StartsWithIgnoreCase(text, "urn:")) {
    // The attribute follows the URN's last ':' (outside any filter).
    const size_t bracket = text.find('[');
    const size_t colon = text.substr(0, bracket).rfind(':');
    path.urn = std::string(text.substr(0, colon));
    text = text.substr(colon + 1);
    if (EqualsIgnoreCase(path.urn, is_user ? kUserSchema : kGroupSchema)) {
      path.urn.clear();
    }
  }
  const size_t bracket = text.find('[');
  if (bracket != absl::string_view::npos) {
    const size_t close = text.find(']', bracket);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("bad path: ", text));
    }
    auto eq = SplitEq(text.substr(bracket + 1, close - bracket - 1));
    if (!eq) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unsupported filter in path ", text, " (only `attr eq \"value\"`)"));
    }
    path.attr = std::string(text.substr(0, bracket));
    path.filtered = true;
    path.filter_attr = eq->first;
    path.filter_value = eq->second;
    absl::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != '.') {
        return absl::InvalidArgumentError(absl::StrCat("bad path: ", text));
      }
      path.sub = std::string(rest.substr(1));
    }
  } else {
    const size_t dot = text.find('.');
    path.attr = std::string(text.substr(0, dot));
    if (dot != absl::string_view::npos) {
      path.sub = std::string(text.substr(dot + 1));
    }
  }
  if (path.attr.empty()) {
    return absl::InvalidArgumentError("a PATCH path names no attribute");
  }
  return path;
}

bool Matches(const Json& element, const Path& path) {
  const Json* v = Member(element, path.filter_attr);
  if (v == nullptr) return false;
  if (v->is_string()) return v->get<std::string>() == path.filter_value;
  return v->dump() == path.filter_value;
}

// The value of a multi-valued element, for de-duplicating members.
std::optional<std::string> ElementValue(const Json& element) {
  return element.is_object() ? StringMember(element, "value") : std::nullopt;
}

enum class Op { kAdd, kReplace, kRemove };

absl::Status ApplyAt(Json* resource, Op op, const Path& path,
                     const Json* value) {
  Json* container = resource;
  if (!path.urn.empty()) {
    if (op == Op::kRemove && FindKey(*resource, path.urn) == nullptr) {
      return absl::OkStatus();
    }
    container = &Slot(*resource, path.urn);
    if (!container->is_object()) *container = Json::object();
  }
  if (op != Op::kRemove && value == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("add and replace need a value (path ", path.attr, ")"));
  }
  if (!path.filtered) {
    if (!path.sub.empty()) {
      if (op == Op::kRemove) {
        if (FindKey(*container, path.attr) != nullptr) {
          Json& parent = Slot(*container, path.attr);
          if (parent.is_object()) EraseKey(parent, path.sub);
        }
        return absl::OkStatus();
      }
      Json& parent = Slot(*container, path.attr);
      if (!parent.is_object()) parent = Json::object();
      Slot(parent, path.sub) = *value;
      return absl::OkStatus();
    }
    if (op == Op::kRemove) {
      if (value != nullptr && value->is_array() &&
          FindKey(*container, path.attr) != nullptr) {
        // Entra ID: remove these members ({"value": id}) from the list.
        Json& list = Slot(*container, path.attr);
        if (list.is_array()) {
          std::set<std::string> gone;
          for (const Json& v : *value) {
            if (auto id = ElementValue(v)) gone.insert(*id);
          }
          Json kept = Json::array();
          for (const Json& e : list) {
            auto id = ElementValue(e);
            if (!id || gone.count(*id) == 0) kept.push_back(e);
          }
          list = std::move(kept);
          return absl::OkStatus();
        }
      }
      EraseKey(*container, path.attr);
      return absl::OkStatus();
    }
    Json& target = Slot(*container, path.attr);
    if (op == Op::kAdd && (target.is_array() || value->is_array())) {
      // Adding to a multi-valued attribute appends (each value once).
      if (!target.is_array()) target = Json::array();
      const Json items = value->is_array() ? *value : Json::array({*value});
      for (const Json& item : items) {
        auto id = ElementValue(item);
        const bool present =
            id && std::any_of(target.begin(), target.end(),
                              [&](const Json& e) { return ElementValue(e) == id; });
        if (!present) target.push_back(item);
      }
      return absl::OkStatus();
    }
    target = *value;
    return absl::OkStatus();
  }
  // A value filter selects elements of a multi-valued attribute.
  if (op == Op::kRemove && FindKey(*container, path.attr) == nullptr) {
    return absl::OkStatus();
  }
  Json& list = Slot(*container, path.attr);
  if (!list.is_array()) {
    if (op == Op::kRemove) return absl::OkStatus();
    list = Json::array();
  }
  bool matched = false;
  Json kept = Json::array();
  for (Json& element : list) {
    if (!Matches(element, path)) {
      kept.push_back(std::move(element));
      continue;
    }
    matched = true;
    if (op == Op::kRemove) {
      if (path.sub.empty()) continue;  // the element goes
      EraseKey(element, path.sub);
    } else if (!path.sub.empty()) {
      Slot(element, path.sub) = *value;
    } else if (value->is_object()) {
      for (auto it = value->begin(); it != value->end(); ++it) {
        Slot(element, it.key()) = it.value();
      }
    }
    kept.push_back(std::move(element));
  }
  if (!matched && op != Op::kRemove) {
    Json element = Json::object();
    element[path.filter_attr] = path.filter_value;
    if (!path.sub.empty()) {
      element[path.sub] = *value;
    } else if (value->is_object()) {
      for (auto it = value->begin(); it != value->end(); ++it) {
        element[it.key()] = it.value();
      }
    }
    kept.push_back(std::move(element));
  }
  list = std::move(kept);
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyPatch(const Json& patch, bool is_user, Json* resource) {
  const Json* ops = patch.is_object() ? Member(patch, "Operations") : nullptr;
  if (ops == nullptr || !ops->is_array() || ops->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a PATCH body is a ", kPatchSchema, " with a list of Operations"));
  }
  // A user has a handful of multi-valued attributes (e-mails, phone
  // numbers) of a few values each; an operation list or value array far
  // beyond that is refused before any work (red team: 100,000 e-mails in
  // one PATCH kept warden-control busy for minutes). Groups' member lists
  // are legitimately long.
  constexpr size_t kMaxUserPatchItems = 100;
  if (is_user && ops->size() > kMaxUserPatchItems) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a user PATCH may have at most ", kMaxUserPatchItems, " Operations"));
  }
  for (const Json& operation : *ops) {
    if (!operation.is_object()) {
      return absl::InvalidArgumentError("each operation must be an object");
    }
    if (const Json* v = Member(operation, "value");
        is_user && v != nullptr && v->is_array() &&
        v->size() > kMaxUserPatchItems) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a user PATCH value may have at most ", kMaxUserPatchItems,
          " elements"));
    }
    const std::string name =
        absl::AsciiStrToLower(StringMember(operation, "op").value_or(""));
    Op op;
    if (name == "add") {
      op = Op::kAdd;
    } else if (name == "replace") {
      op = Op::kReplace;
    } else if (name == "remove") {
      op = Op::kRemove;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown PATCH op \"", name, "\""));
    }
    const Json* value = Member(operation, "value");
    const auto path_text = StringMember(operation, "path");
    if (path_text && !path_text->empty()) {
      auto path = ParsePath(*path_text, is_user);
      if (!path.ok()) return path.status();
      if (absl::Status s = ApplyAt(resource, op, *path, value); !s.ok()) {
        return s;
      }
      continue;
    }
    // No path: the value holds attributes ("name.givenName" and schema
    // URNs allowed as keys).
    if (op == Op::kRemove) {
      return absl::InvalidArgumentError("remove needs a path (noTarget)");
    }
    if (value == nullptr || !value->is_object()) {
      return absl::InvalidArgumentError(
          "add or replace without a path needs an object value");
    }
    for (auto it = value->begin(); it != value->end(); ++it) {
      if (absl::StartsWithIgnoreCase(it.key(), "urn:") &&
          it.value().is_object()) {
        Json& extension = Slot(*resource, it.key());
        if (!extension.is_object()) extension = Json::object();
        for (auto e = it.value().begin(); e != it.value().end(); ++e) {
          Slot(extension, e.key()) = e.value();
        }
        continue;
      }
      auto path = ParsePath(it.key(), is_user);
      if (!path.ok()) return path.status();
      if (absl::Status s = ApplyAt(resource, op, *path, &it.value()); !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace warden::controlplane::scim
