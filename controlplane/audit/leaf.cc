#include "controlplane/audit/leaf.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "controlplane/audit/merkle.h"

namespace warden::controlplane::audit {

std::string MakeLeaf(absl::string_view previous_leaf_hash,
                     absl::string_view audit_leaf_bytes) {
  return absl::StrCat(previous_leaf_hash, audit_leaf_bytes);
}

absl::StatusOr<std::pair<std::string, std::string>> SplitLeaf(
    absl::string_view leaf) {
  if (leaf.size() < kHashSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "an audit leaf starts with a ", kHashSize, "-byte hash; this one has ",
        leaf.size(), " bytes"));
  }
  return std::make_pair(std::string(leaf.substr(0, kHashSize)),
                        std::string(leaf.substr(kHashSize)));
}

}  // namespace warden::controlplane::audit
