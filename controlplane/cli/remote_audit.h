// `wardenctl audit checkpoint | export | verify | tail | search | proof`:
// the tamper-evident audit log (AuditLog, AuditExport; scope audit:read,
// except verify, which is offline). Output conventions: remote_common.h.
#ifndef WARDEN_CONTROLPLANE_CLI_REMOTE_AUDIT_H_
#define WARDEN_CONTROLPLANE_CLI_REMOTE_AUDIT_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "controlplane/cli/remote_common.h"

namespace warden::controlplane::cli {

// `wardenctl audit checkpoint [--out FILE]`: the latest signed checkpoint
// (C2SP signed note) on `out`, and saved to FILE. JSON: {"checkpoint",
// "tree_size", "root_hash" (hex), "verifier_key"}.
struct AuditCheckpointOptions : RemoteOptions {
  std::string out_file;
};
int RunAuditCheckpoint(const AuditCheckpointOptions& options, std::ostream& out,
                       std::ostream& err);

// `wardenctl audit export --out FILE [--from N] [--to N]`: entries [from,
// to) (to 0: the current size) as JSON lines {"index": i, "leaf": base64}.
struct AuditExportOptions : RemoteOptions {
  std::string out_file;
  // A saved checkpoint: export exactly the entries it signed ([0, size)).
  std::string checkpoint_file;
  uint64_t from = 0;
  uint64_t to = 0;
  // Also the same entries decoded, one JSON object per line as `audit tail
  // --format json` prints them ({"index": N, "leaf": {...}}): for people
  // and jq; `audit verify` reads the --out file, not this one.
  std::string decoded_file;
};
int RunAuditExport(const AuditExportOptions& options, std::ostream& out,
                   std::ostream& err);

// `wardenctl audit verify --log FILE --checkpoint FILE --key KEY` (offline;
// KEY is the verifier key text or a file holding it): checks the signature,
// the hash chain and the Merkle root (controlplane/audit/verify). Exit 0
// when the log matches, 1 naming the first bad index otherwise, 2 for
// unreadable input. Entries after the checkpoint fail (1) unless
// --allow-uncovered; a line with anything but "index" and "leaf" (or one
// of them twice) is unreadable input (2).
struct AuditVerifyOptions {
  std::string log_file;
  std::string checkpoint_file;
  std::string key;
  bool allow_uncovered = false;
  Format format = Format::kText;
};
int RunAuditVerify(const AuditVerifyOptions& options, std::ostream& out,
                   std::ostream& err);

// `wardenctl audit tail [--from N] [--limit N] [--follow] [filters]`:
// events, one line each (JSON: one AuditLeaf object per line; --ocsf: one
// OCSF object per line). Without --from, the last --limit entries of the
// log (default 20); --follow then streams new ones (AuditExport.Subscribe).
// `wardenctl audit search [filters] [--from N] [--limit 100]`: the first
// --limit matching events from --from (default 0), paged (ListEvents).
// Filters: --user, --env, --decision allow|deny|require_approval, --kind
// statement|session_start|session_end|authentication|admin (repeatable).
struct AuditTailOptions : RemoteOptions {
  int64_t from = -1;
  uint64_t limit = 20;
  bool follow = false;
  bool search = false;  // `audit search`
  bool ocsf = false;
  std::vector<std::string> users;
  std::vector<std::string> environments;
  std::vector<std::string> decisions;
  std::vector<std::string> kinds;
};
int RunAuditTail(const AuditTailOptions& options, std::ostream& out,
                 std::ostream& err);

// `wardenctl audit proof INDEX [--checkpoint FILE --key KEY]`: the
// inclusion proof of entry INDEX, verified against the given checkpoint
// (or the current one, verified with --key when given). Exit 0 verified,
// 1 not.
struct AuditProofOptions : RemoteOptions {
  uint64_t index = 0;
  std::string checkpoint_file;
  std::string key;
};
int RunAuditProof(const AuditProofOptions& options, std::ostream& out,
                  std::ostream& err);

}  // namespace warden::controlplane::cli

#endif  // WARDEN_CONTROLPLANE_CLI_REMOTE_AUDIT_H_
