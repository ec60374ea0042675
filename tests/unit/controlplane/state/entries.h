// Log entries the state machine tests commit.
#ifndef WARDEN_TESTS_UNIT_CONTROLPLANE_STATE_ENTRIES_H_
#define WARDEN_TESTS_UNIT_CONTROLPLANE_STATE_ENTRIES_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "proto/warden/v1/state.pb.h"

namespace warden::controlplane::state::testing {

// An audit append of events `from`..`to` of `source`, with digests.
inline warden::v1::LogEntry AuditEntry(const std::string& source,
                                       uint64_t from, uint64_t to) {
  warden::v1::LogEntry entry;
  auto* append = entry.mutable_append_audit();
  append->set_source(source);
  for (uint64_t s = from; s <= to; ++s) {
    append->add_leaves(absl::StrCat("leaf of ", source, " #", s));
    append->add_sequences(s);
    append->add_digests(std::string(32, static_cast<char>('a' + s % 26)));
  }
  return entry;
}

inline warden::v1::LogEntry TokenEntry(const std::string& id) {
  warden::v1::LogEntry entry;
  entry.mutable_put_token()->mutable_info()->set_id(id);
  return entry;
}

}  // namespace warden::controlplane::state::testing

#endif  // WARDEN_TESTS_UNIT_CONTROLPLANE_STATE_ENTRIES_H_
