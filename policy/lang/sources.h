// Reading policy files from disk: the proxy (until bundles are pushed) and
// wardenctl both turn a list of files and folders into SourceFiles.
#ifndef WARDEN_POLICY_LANG_SOURCES_H_
#define WARDEN_POLICY_LANG_SOURCES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "policy/lang/compile.h"

namespace warden::policy::lang {

// ReadSources reads every path: a file is taken whatever its name; a folder
// contributes every *.yaml / *.yml file below it (hidden files skipped),
// recursively, in sorted order, so a bundle's digest does not depend on
// directory order. A file is named by its path inside the folder given
// (a file given alone: by its own name), never by the path it was reached
// through, so the same files compile to the same digest whichever way the
// folder is spelled; two files that would get one name are
// InvalidArgument. A file named twice is read once. NotFound /
// PermissionDenied / Internal name the first path that cannot be read;
// no paths, or a folder without policy files, is InvalidArgument (an empty
// bundle would deny everything by surprise).
absl::StatusOr<std::vector<SourceFile>> ReadSources(
    const std::vector<std::string>& paths);

// Diagnostics name a file by its name in the bundle; shown locally
// (wardenctl, the proxy's --check), by the path it was read from, so an
// editor opens it from where the tool ran.
void ShowLocalPaths(const std::vector<SourceFile>& files,
                    std::vector<Diagnostic>* diagnostics);

}  // namespace warden::policy::lang

#endif  // WARDEN_POLICY_LANG_SOURCES_H_
