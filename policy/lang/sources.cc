#include "policy/lang/sources.h"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
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
  // Each file with the name it is compiled under: its path inside the
  // folder given, or its own name for a file given alone. Names, not
  // paths, reach the bundle (rule sources, so its digest): the same files
  // give the same digest however the folder was spelled, from wherever.
  struct Found {
    fs::path path;
    std::string name;
  };
  std::vector<Found> files;
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
      files.push_back({path.lexically_normal(),
                       path.lexically_normal().filename().string()});
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
    const fs::path base = path.lexically_normal();
    for (fs::path& p : found) {
      std::string name = p.lexically_relative(base).generic_string();
      if (name.empty() || absl::StartsWith(name, "..")) name = p.string();
      files.push_back({std::move(p), std::move(name)});
    }
  }
  std::vector<SourceFile> out;
  std::set<fs::path> seen;
  std::map<std::string, fs::path> names;
  for (const Found& f : files) {
    if (!seen.insert(f.path).second) continue;  // named twice.
    auto [it, inserted] = names.emplace(f.name, f.path);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", it->second.string(), "' and '", f.path.string(),
          "' would both be named '", f.name,
          "' in the bundle; give one folder, or rename one"));
    }
    auto text = ReadFile(f.path);
    if (!text.ok()) return text.status();
    out.push_back(SourceFile{f.name, *std::move(text), f.path.string()});
  }
  return out;
}

void ShowLocalPaths(const std::vector<SourceFile>& files,
                    std::vector<Diagnostic>* diagnostics) {
  for (Diagnostic& d : *diagnostics) {
    for (const SourceFile& f : files) {
      if (f.name == d.file && !f.path.empty()) {
        d.file = f.path;
        break;
      }
    }
  }
}

}  // namespace warden::policy::lang
