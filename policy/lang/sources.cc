#include "policy/lang/sources.h"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace warden::policy::lang {
namespace {

namespace fs = std::filesystem;

bool IsPolicyFile(const fs::path& p) {
  const std::string name = p.filename().string();
  return !absl::StartsWith(name, ".") &&
         (absl::EndsWith(name, ".yaml") || absl::EndsWith(name, ".yml"));
}

absl::Status PathError(const std::string& path, const std::error_code& ec) {
  const std::string message =
      absl::StrCat("cannot read policy path '", path, "': ", ec.message());
  if (ec == std::errc::no_such_file_or_directory) {
    return absl::NotFoundError(message);
  }
  if (ec == std::errc::permission_denied) {
    return absl::PermissionDeniedError(message);
  }
  return absl::InternalError(message);
}

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    return PathError(path.string(), std::error_code(errno, std::generic_category()));
  }
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  if (in.bad()) {
    return absl::InternalError(
        absl::StrCat("error reading policy file '", path.string(), "'"));
  }
  return text;
}

}  // namespace

absl::StatusOr<std::vector<SourceFile>> ReadSources(
    const std::vector<std::string>& paths) {
  if (paths.empty()) {
    return absl::InvalidArgumentError("no policy file or folder given");
  }
  std::vector<fs::path> files;
  for (const std::string& given : paths) {
    const fs::path path(given);
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (ec || !fs::exists(st)) {
      return PathError(given, ec ? ec
                                 : std::make_error_code(
                                       std::errc::no_such_file_or_directory));
    }
    if (!fs::is_directory(st)) {
      files.push_back(path.lexically_normal());
      continue;
    }
    std::vector<fs::path> found;
    fs::recursive_directory_iterator it(path, ec), end;
    if (ec) return PathError(given, ec);
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      std::error_code file_ec;
      if (it->is_regular_file(file_ec) && IsPolicyFile(it->path())) {
        found.push_back(it->path().lexically_normal());
      }
    }
    if (ec) return PathError(given, ec);
    if (found.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "policy folder '", given, "' contains no *.yaml or *.yml files"));
    }
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  std::vector<SourceFile> out;
  std::set<fs::path> seen;
  for (const fs::path& p : files) {
    if (!seen.insert(p).second) continue;  // named twice.
    auto text = ReadFile(p);
    if (!text.ok()) return text.status();
    out.push_back(SourceFile{p.string(), *std::move(text)});
  }
  return out;
}

}  // namespace warden::policy::lang
