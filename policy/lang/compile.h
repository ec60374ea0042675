// Policy as code: YAML documents (apiVersion warden/v1, kind Policy) are
// compiled into a warden.v1.PolicyBundle. Every problem is reported with
// file:line:column and, where one helps, a hint; unknown keys are errors.
#ifndef WARDEN_POLICY_LANG_COMPILE_H_
#define WARDEN_POLICY_LANG_COMPILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/warden/v1/policy.pb.h"

namespace warden::policy::lang {

struct SourceFile {
  // Its name in the bundle (rule sources, diagnostics), e.g.
  // "prod/orders.yaml": part of the content, so of the digest.
  std::string name;
  std::string text;
  // Where it was read from, e.g. "policies/prod/orders.yaml", for tools
  // that show diagnostics locally (not part of the bundle); may be empty.
  std::string path = {};
};

struct Diagnostic {
  std::string file;
  int line = 0;  // 1-based; 0 when unknown.
  int column = 0;
  std::string message;
  std::string hint;
  // "prod.yaml:12:9: unknown key 'comands' (hint: did you mean 'commands'?)"
  std::string ToString() const;
};

// Compile parses every document of every file. Documents of kind
// PolicyTest are skipped (they belong to policy/testing). Returns the bundle
// (with its digest) when there are no diagnostics; otherwise
// InvalidArgument whose message lists them, one per line, and fills
// `diagnostics` if given.
absl::StatusOr<warden::v1::PolicyBundle> Compile(
    const std::vector<SourceFile>& files,
    std::vector<Diagnostic>* diagnostics = nullptr);

// ContentDigest(bundle) returns the lower-case hex SHA-256 of the
// deterministic serialization of `bundle.policies()` (the `digest` field
// itself excluded): what Compile stores in `digest`, recomputed by a
// verifier to check that a bundle still says what was compiled.
std::string ContentDigest(const warden::v1::PolicyBundle& bundle);

}  // namespace warden::policy::lang

#endif  // WARDEN_POLICY_LANG_COMPILE_H_
