// What every reader of Warden's YAML documents (policies, policy tests)
// shares: loading a file's documents safely, and diagnostics in one style
// (file:line:column, "did you mean" hints for unknown keys).
#ifndef WARDEN_POLICY_LANG_YAML_SOURCE_H_
#define WARDEN_POLICY_LANG_YAML_SOURCE_H_

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "policy/lang/compile.h"

namespace warden::policy::lang {

// LoadDocuments parses every YAML document of `file` into `docs`. Text that
// is not UTF-8, YAML syntax errors, and input yaml-cpp 0.7 would loop on
// forever (a stray ',' after a top-level flow collection) become a
// diagnostic in `out` and false. Never throws.
bool LoadDocuments(const SourceFile& file, std::vector<YAML::Node>* docs,
                   std::vector<Diagnostic>* out);

// Diagnostics about the nodes of one file.
class DiagnosticSink {
 public:
  DiagnosticSink(std::string file, std::vector<Diagnostic>* out)
      : file_(std::move(file)), out_(out) {}

  void Error(const YAML::Node& at, const std::string& message,
             const std::string& hint = "");

  // Checks that `node` is a mapping whose keys are all in `allowed` and
  // none is repeated; an unknown key gets the closest allowed one as a
  // hint. False only when `node` is not a mapping.
  bool Map(const YAML::Node& node, const std::string& what,
           std::initializer_list<const char*> allowed);

  // Strings reads a string or a list of non-empty strings; absent: nullopt;
  // an empty value (YAML null) is an empty list. Bad entries are reported
  // and skipped.
  std::optional<std::vector<std::string>> Strings(const YAML::Node& node,
                                                  const std::string& what);

  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<Diagnostic>* out_;
};

// Levenshtein distance, for "did you mean" hints.
size_t EditDistance(const std::string& a, const std::string& b);

}  // namespace warden::policy::lang

#endif  // WARDEN_POLICY_LANG_YAML_SOURCE_H_
