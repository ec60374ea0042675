// What the SIEM export needs besides the ledger: filters, OCSF 1.1 JSON,
// and finding where a time starts in the log.
#ifndef WARDEN_CONTROLPLANE_AUDIT_EXPORT_H_
#define WARDEN_CONTROLPLANE_AUDIT_EXPORT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controlplane/audit/ledger.h"
#include "proto/warden/v1/audit.pb.h"

namespace warden::controlplane::audit {

// Whether `leaf` passes `filter` (see AuditFilter in audit.proto).
bool Matches(const warden::v1::AuditFilter& filter,
             const warden::v1::AuditLeaf& leaf);

// The event as one OCSF 1.1 JSON object: statements as Datastore Activity
// (6005; Read, Update, Query, Write, Create, Delete or Other from the
// command tags), authentications and session start/end as Authentication
// (3002; Logon / Logoff), admin actions as API Activity (6003). Warden's
// own fields (decision, rule, bundle revision, leaf index) are under
// "unmapped".
std::string ToOcsfJson(const warden::v1::AuditLeaf& leaf, uint64_t index);

// Fills `out` from leaf bytes per `format`. InvalidArgument for a leaf
// that does not parse.
absl::Status Export(uint64_t index, const std::string& leaf_bytes,
                    warden::v1::AuditFormat format,
                    warden::v1::ExportedEvent* out,
                    warden::v1::AuditLeaf* record);

// The first index whose event was received at or after `since` (binary
// search over received_at, which the control plane stamps in commit order,
// give or take concurrent appends); the tree size when none.
absl::StatusOr<uint64_t> FirstIndexAtOrAfter(const Ledger& ledger,
                                             absl::Time since);

}  // namespace warden::controlplane::audit

#endif  // WARDEN_CONTROLPLANE_AUDIT_EXPORT_H_
