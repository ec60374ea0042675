#include "policy/sql/lexing.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace warden::policy::sql {
namespace {

// PostgreSQL compares encoding names without case and punctuation
// (clean_encoding_name).
std::string Clean(absl::string_view name) {
  std::string out;
  for (const char c : name) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

bool IsOn(absl::string_view value) {
  const std::string v = absl::AsciiStrToLower(value);
  return v == "on" || v == "true" || v == "yes" || v == "1" || v == "t" ||
         v == "y";
}

}  // namespace

bool IsClientOnlyEncoding(absl::string_view encoding) {
  static const char* const kClientOnly[] = {
      // pg_enc2name_tbl / pg_encname_tbl of PostgreSQL 15 (encnames.c).
      "sjis",  "shiftjis", "mskanji", "win932",  "windows932",
      "shiftjis2004",      "big5",    "win950",  "windows950",
      "gbk",   "win936",   "windows936",         "gb18030",
      "uhc",   "win949",   "windows949",         "johab",
  };
  const std::string clean = Clean(encoding);
  for (const char* e : kClientOnly) {
    if (clean == e) return true;
  }
  return false;
}

std::string LexingChange(absl::string_view raw_name, absl::string_view value) {
  const std::string name = absl::AsciiStrToLower(raw_name);
  if (name == "standard_conforming_strings") {
    if (value == "DEFAULT" || IsOn(value)) return "";
    return absl::StrCat(
        "standard_conforming_strings = ", value == "?" ? "a computed value" : value,
        " makes PostgreSQL read backslashes in string literals as escapes, "
        "so it could read a statement differently from Warden; it must stay "
        "on");
  }
  if (name == "client_encoding") {
    if (value == "DEFAULT") return "";
    if (value == "?") {
      return "client_encoding set to a computed value: Warden cannot know "
             "how PostgreSQL will read the statements after it";
    }
    if (IsClientOnlyEncoding(value)) {
      return absl::StrCat(
          "client_encoding = ", value,
          " is an encoding whose characters can contain quote and backslash "
          "bytes, so PostgreSQL could read a statement differently from "
          "Warden; use UTF8 (or another server encoding)");
    }
    return "";
  }
  if (name == "backslash_quote") {
    if (value == "DEFAULT") return "";
    return "backslash_quote decides whether \\' ends a string literal; "
           "Warden does not let it change";
  }
  return "";
}

std::string LexingChangeIn(const StatementFacts& f) {
  for (const auto& [name, value] : f.setting_values) {
    std::string why = LexingChange(name, value);
    if (!why.empty()) return why;
  }
  // A change whose value the statement does not say (UPDATE pg_settings).
  for (const char* lexing :
       {"standard_conforming_strings", "client_encoding", "backslash_quote"}) {
    bool named = false, valued = false;
    for (const auto& s : f.settings) named = named || s == lexing;
    for (const auto& sv : f.setting_values) valued = valued || sv.first == lexing;
    if (named && !valued) return LexingChange(lexing, "?");
  }
  // A computed set_config name may be any of them.
  for (const auto& s : f.settings) {
    if (s == "*") {
      return "set_config with a computed name could change how PostgreSQL "
             "reads statements (standard_conforming_strings, "
             "client_encoding)";
    }
  }
  for (const auto& n : f.nested) {
    std::string why = LexingChangeIn(n);
    if (!why.empty()) return why;
  }
  return "";
}

}  // namespace warden::policy::sql
