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
#include "proto/warden/v1/audit.pb.h"

namespace warden::controlplane::audit {

// The bytes of a leaf given the previous leaf's hash.
std::string MakeLeaf(absl::string_view previous_leaf_hash,
                     absl::string_view audit_leaf_bytes);

// Splits leaf bytes into (previous leaf hash, AuditLeaf bytes);
// InvalidArgument when shorter than a hash.
absl::StatusOr<std::pair<std::string, std::string>> SplitLeaf(
    absl::string_view leaf);

// Parses the AuditLeaf bytes of a leaf (SplitLeaf's second part) for a
// reader. Bytes no reader can decode made every page, stream and
// verification that held them fail for good (red team: unknown groups
// nested to protobuf's recursion limit passed ingest, and one level
// deeper, inside a leaf or a response, did not parse). So the depth
// allowed is that of anything ingest ever took; a reader that encodes the
// leaf again (into a response) drops its unknown fields first. False when
// the bytes are not an AuditLeaf.
bool ParseAuditLeaf(absl::string_view bytes, warden::v1::AuditLeaf* leaf);

}  // namespace warden::controlplane::audit

#endif  // WARDEN_CONTROLPLANE_AUDIT_LEAF_H_
