#include "policy/lang/sources.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace warden::policy::lang {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<SourceFile> ReadOne(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read policy file '", path, "'"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::NotFoundError(
        absl::StrCat("error reading policy file '", path, "'"));
  }
  return SourceFile{path, text.str()};
}

bool IsPolicyFile(const fs::path& p) {
  const std::string name = p.filename().string();
  return !absl::StartsWith(name, ".") &&
         (absl::EndsWith(name, ".yaml") || absl::EndsWith(name, ".yml"));
}

}  // namespace

absl::StatusOr<std::vector<SourceFile>> ReadSources(
    const std::vector<std::string>& paths) {
  std::vector<SourceFile> out;
  for (const std::string& path : paths) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (ec || !fs::exists(st)) {
      return absl::NotFoundError(
          absl::StrCat("cannot read policy path '", path, "'"));
    }
    if (!fs::is_directory(st)) {
      auto file = ReadOne(path);
      if (!file.ok()) return file.status();
      out.push_back(*std::move(file));
      continue;
    }
    std::vector<std::string> found;
    fs::recursive_directory_iterator it(path, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      std::error_code type_ec;
      if (it->is_regular_file(type_ec) && IsPolicyFile(it->path())) {
        found.push_back(it->path().string());
      }
    }
    if (ec) {
      return absl::NotFoundError(absl::StrCat("cannot list policy folder '",
                                              path, "': ", ec.message()));
    }
    if (found.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "policy folder '", path, "' contains no *.yaml or *.yml files"));
    }
    std::sort(found.begin(), found.end());
    for (const std::string& f : found) {
      auto file = ReadOne(f);
      if (!file.ok()) return file.status();
      out.push_back(*std::move(file));
    }
  }
  return out;
}

}  // namespace warden::policy::lang
