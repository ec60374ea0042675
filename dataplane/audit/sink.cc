#include "dataplane/audit/sink.h"

#include "common/audit_bounds.h"

namespace warden::dataplane::audit {

std::optional<std::string> EncodeShared(const warden::v1::AuditEvent& shared) {
  warden::v1::AuditEvent bounded = shared;
  std::string bytes;
  // A repair would be recorded in `repairs`, which each event's own part
  // may set too: such a session records whole events instead.
  if (audit_bounds::AppendBounded(&bounded, &bytes) || bounded.has_repairs()) {
    return std::nullopt;
  }
  return bytes;
}

}  // namespace warden::dataplane::audit
