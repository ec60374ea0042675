#include "dataplane/session/startup_params.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "policy/sql/lexing.h"

namespace warden::dataplane::session {

const char* const kAcceptedStartupParameters[] = {
    // What drivers send (libpq, JDBC, node-pg, DBeaver).
    "application_name", "client_encoding", "datestyle", "timezone",
    "extra_float_digits", "intervalstyle", "options",
    // What sessions legitimately tune at connect time.
    "search_path", "statement_timeout", "lock_timeout",
    "idle_in_transaction_session_timeout", "idle_session_timeout",
    "default_transaction_isolation", "default_transaction_read_only",
    "default_transaction_deferrable", "standard_conforming_strings",
    "bytea_output", "client_min_messages", "lc_monetary", "lc_numeric",
    "lc_time", "xmlbinary", "xmloption", "work_mem", "jit",
    nullptr,
};

namespace {

bool Accepted(const std::string& name) {
  for (const char* const* n = kAcceptedStartupParameters; *n != nullptr; ++n) {
    if (name == *n) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseOptions(
    absl::string_view options) {
  // Split as pg_split_opts does: whitespace separates, backslash escapes.
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < options.size(); ++i) {
    const char c = options[i];
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\\' && i + 1 < options.size()) {
      word.push_back(options[++i]);
    } else {
      word.push_back(c);
    }
  }
  if (in_word) words.push_back(std::move(word));

  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string setting;
    const std::string& w = words[i];
    if (w == "-c") {
      if (i + 1 >= words.size()) {
        return absl::InvalidArgumentError("options: -c without name=value");
      }
      setting = words[++i];
    } else if (absl::StartsWith(w, "-c")) {
      setting = w.substr(2);
    } else if (absl::StartsWith(w, "--")) {
      setting = w.substr(2);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "options: switch \"", w,
          "\" is not accepted (only -c name=value and --name=value)"));
    }
    const size_t eq = setting.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("options: \"", setting, "\" is not name=value"));
    }
    std::string name = absl::AsciiStrToLower(setting.substr(0, eq));
    std::replace(name.begin(), name.end(), '-', '_');
    out.emplace_back(std::move(name), setting.substr(eq + 1));
  }
  return out;
}

absl::Status JudgeStartupParameter(absl::string_view raw_name,
                                   absl::string_view value) {
  const std::string name = absl::AsciiStrToLower(raw_name);
  if (name == "options") {
    auto settings = ParseOptions(value);
    if (!settings.ok()) return settings.status();
    for (const auto& [n, v] : *settings) {
      if (n == "options") {
        return absl::InvalidArgumentError("options cannot set options");
      }
      if (absl::Status s = JudgeStartupParameter(n, v); !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("options: ", s.message()));
      }
    }
    return absl::OkStatus();
  }
  if (!Accepted(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "startup parameter \"", name,
        "\" is not accepted through Warden (set it with SET after "
        "connecting, where policy judges it)"));
  }
  const std::string why = policy::sql::LexingChange(name, value);
  if (!why.empty()) return absl::InvalidArgumentError(why);
  return absl::OkStatus();
}

std::string ReportedLexingState(absl::string_view name,
                                absl::string_view value) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n != "standard_conforming_strings" && n != "client_encoding") return "";
  return policy::sql::LexingChange(n, value);
}

}  // namespace warden::dataplane::session
