// Normalized statement text for the audit trail: constants replaced by
// placeholders ($1, $2, ...) so that secrets and personal data in literals do
// not land in the log, and statements that differ only in constants read
// the same.
#ifndef WARDEN_POLICY_SQL_NORMALIZE_H_
#define WARDEN_POLICY_SQL_NORMALIZE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace warden::policy::sql {

// Normalize returns `sql` with every constant replaced by $n (numbered
// after any parameters already present), as pg_stat_statements shows it,
// e.g. "SELECT * FROM t WHERE a = 'x' AND b = 2" becomes
// "SELECT * FROM t WHERE a = $1 AND b = $2". Unparseable SQL is
// InvalidArgument (the audit then records no text for it).
absl::StatusOr<std::string> Normalize(absl::string_view sql);

}  // namespace warden::policy::sql

#endif  // WARDEN_POLICY_SQL_NORMALIZE_H_
