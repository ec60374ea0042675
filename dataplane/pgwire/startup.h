// Decoding of startup-phase packets: StartupMessage, SSLRequest,
// GSSENCRequest and CancelRequest.
//
// Contract: ParseStartup takes the `body` of a kMessage Frame returned by
// NextStartupPacket (it starts with the int32 protocol version / request
// code). The returned views point into that body. Anything malformed is
// InvalidArgumentError; the caller must answer with an ErrorResponse
// (SQLSTATE 08P01) and close, never guess.
#ifndef WARDEN_DATAPLANE_PGWIRE_STARTUP_H_
#define WARDEN_DATAPLANE_PGWIRE_STARTUP_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dataplane/pgwire/types.h"

namespace warden::dataplane::pgwire {

enum class StartupKind {
  kStartup,
  kSslRequest,
  kGssEncRequest,
  kCancelRequest
};

struct StartupMessage {
  StartupKind kind = StartupKind::kStartup;
  // For kStartup: (3 << 16) | minor. Minor versions > 0 are accepted; the
  // caller negotiates (NegotiateProtocolVersion) if it only speaks 3.0.
  int32_t protocol_version = 0;
  // For kStartup, in packet order. Names are unique and non-empty; "user" is
  // present and non-empty. Names starting "_pq_." are protocol options.
  std::vector<std::pair<absl::string_view, absl::string_view>> parameters;
  // For kCancelRequest.
  int32_t cancel_pid = 0;
  int32_t cancel_secret = 0;

  // Value of parameter `name`, or "" if absent.
  absl::string_view Get(absl::string_view name) const;
};

// Validates:
//  * SSLRequest / GSSENCRequest bodies are exactly 4 bytes;
//    CancelRequest exactly 12 (v3.0 4-byte secret keys).
//  * Otherwise major version 3, else "unsupported frontend protocol 2.0:
//    Warden speaks 3.0".
//  * Parameters are NUL-terminated name/value pairs ending with a single NUL
//    and nothing after it; no duplicate names; "user" present and non-empty.
absl::StatusOr<StartupMessage> ParseStartup(absl::string_view body);

}  // namespace warden::dataplane::pgwire

#endif  // WARDEN_DATAPLANE_PGWIRE_STARTUP_H_
