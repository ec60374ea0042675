// Offline verification of an exported audit log against a saved, signed
// checkpoint: what `wardenctl audit verify` runs, needing only the verifier
// key. It checks the checkpoint's signature, that the log holds at least
// the checkpoint's size in consecutive indexes from 0, every hash-chain link
// (leaf i starts with the leaf hash of leaf i-1), and that the Merkle root
// of the first `size` leaves is the signed root. The first failure names
// the index where the log stops being what was signed.
#ifndef WARDEN_CONTROLPLANE_AUDIT_VERIFY_H_
#define WARDEN_CONTROLPLANE_AUDIT_VERIFY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace warden::controlplane::audit {

struct ExportedEntry {
  uint64_t index = 0;
  std::string leaf;  // the exact leaf bytes (GetEntries)
};

struct VerifyReport {
  bool ok = false;
  uint64_t checkpoint_size = 0;
  uint64_t entries = 0;  // entries in the export
  // The first index that does not match what was signed; -1 when none can
  // be named (a bad signature, or a root mismatch no link explains).
  int64_t first_bad_index = -1;
  std::string message;
};

// VerifyExport runs every check; `report.message` says what failed, or
// what was proven ("1234 entries match checkpoint warden/audit/... size
// 1234"). Entries after the checkpoint's size chain to the signed ones but
// nothing signed them: anyone can compute a link (it is an unkeyed hash),
// so by default they fail the check (first_bad_index is the first of
// them); `allow_uncovered` accepts them and says how many were not proven.
VerifyReport VerifyExport(const std::vector<ExportedEntry>& entries,
                          absl::string_view checkpoint_note,
                          absl::string_view verifier_key,
                          bool allow_uncovered = false);

}  // namespace warden::controlplane::audit

#endif  // WARDEN_CONTROLPLANE_AUDIT_VERIFY_H_
