// The bytes of one audit log leaf:
//   LeafHash(previous leaf) (32 bytes; zeros for leaf 0) || AuditLeaf bytes
// so the leaves also form a hash chain. Shared by the ledger that writes
// them and by everything that reads them (export, offline verification,
// wardenctl), which need not link the store.
#ifndef WARDEN_CONTROLPLANE_AUDIT_LEAF_H_
#define WARDEN_CONTROLPLANE_AUDIT_LEAF_H_

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace warden::controlplane::audit {

// The bytes of a leaf given the previous leaf's hash.
std::string MakeLeaf(absl::string_view previous_leaf_hash,
                     absl::string_view audit_leaf_bytes);

// Splits leaf bytes into (previous leaf hash, AuditLeaf bytes);
// InvalidArgument when shorter than a hash.
absl::StatusOr<std::pair<std::string, std::string>> SplitLeaf(
    absl::string_view leaf);

}  // namespace warden::controlplane::audit

#endif  // WARDEN_CONTROLPLANE_AUDIT_LEAF_H_
