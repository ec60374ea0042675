// Makes an audit event recordable whatever its fields hold: every string
// valid UTF-8 (protobuf refuses to decode anything else, so one bad byte
// from a client would otherwise stop a proxy's trail for good) and every
// field, list and the whole event within a size (so one entry can never
// make the log unreadable to the readers that page through it).
//
// Nothing is dropped silently: the event's `repairs` names each field that
// was changed, a statement's exact bytes are kept in `text_bytes` when they
// were not UTF-8, and an event that was cut records the size and SHA-256
// of its original encoding.
//
// The proxy bounds each event before spooling it; warden-control bounds
// every event at ingest (its own and any proxy's), so neither a client nor
// an unauthenticated caller decides how large an entry is.
#ifndef WARDEN_COMMON_AUDIT_BOUNDS_H_
#define WARDEN_COMMON_AUDIT_BOUNDS_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "proto/warden/v1/audit.pb.h"

namespace warden::audit_bounds {

struct Limits {
  // Any string or bytes field, except a statement's text.
  size_t max_string = 4096;
  // statement.text, statement.normalized_text, statement.text_bytes and
  // repairs.undecodable.
  size_t max_text = 256 * 1024;
  // Entries of any repeated field (groups, parameters, tables, ...).
  int max_repeated = 256;
  // The whole event's encoding; an event still larger after the limits
  // above is cut again with much smaller ones (256 bytes, 16 entries).
  size_t max_event = 1 << 20;
};

// Repairs `event` in place as described above; true when it changed
// anything (and then `event->repairs()` says what).
bool Bound(warden::v1::AuditEvent* event, const Limits& limits = Limits());

// Appends `event`'s encoding to `out`, bounded as Bound would bound it, and
// returns what Bound would. Encoding first and checking the bytes is much
// cheaper than Bound's walk, which runs only when the check finds
// something to repair (or something it does not vouch for).
bool AppendBounded(warden::v1::AuditEvent* event, std::string* out,
                   const Limits& limits = Limits());

// Whether the encoding of an AuditEvent needs nothing of Bound: no
// `repairs`, every string valid UTF-8 and within its limit, every repeated
// string or message field within max_repeated, the whole within
// max_event. False also for what it cannot vouch for (unknown fields,
// groups, malformed bytes).
bool EncodingWithinBounds(absl::string_view encoded,
                          const Limits& limits = Limits());

// Whether `path` names a string, bytes or message field of AuditEvent the
// way Bound's repairs do ("statement.text", "identity.groups"): field
// names joined by '.', each a field of the message before it.
bool IsEventFieldPath(absl::string_view path);

// Standard UTF-8 as protobuf checks it: no overlong forms, no surrogates,
// nothing above U+10FFFF.
bool IsValidUtf8(absl::string_view s);

// `s` with each byte that is not part of a valid sequence replaced by
// U+FFFD.
std::string MakeValidUtf8(absl::string_view s);

// The longest prefix of the valid UTF-8 string `s` of at most `max` bytes
// that does not split a character.
absl::string_view Utf8Prefix(absl::string_view s, size_t max);

}  // namespace warden::audit_bounds

#endif  // WARDEN_COMMON_AUDIT_BOUNDS_H_
