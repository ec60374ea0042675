// Internal bounds-checked, zero-copy reader over a message body. Not part of
// the public API (header is visible only to this package).
//
// Contract: every Read* checks the remaining length before touching a byte;
// on failure it returns InvalidArgumentError("<context>: <detail>") and the
// read position is unspecified (callers stop at the first error). Returned
// string views point into the original body. Integers are big-endian and are
// decoded with explicit shifts (no alignment or host-endianness assumptions).
#ifndef WARDEN_DATAPLANE_PGWIRE_READER_H_
#define WARDEN_DATAPLANE_PGWIRE_READER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dataplane/pgwire/messages.h"

namespace warden::dataplane::pgwire::internal {

inline uint32_t LoadUint32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (static_cast<uint32_t>(u[0]) << 24) |
         (static_cast<uint32_t>(u[1]) << 16) |
         (static_cast<uint32_t>(u[2]) << 8) | static_cast<uint32_t>(u[3]);
}
inline int32_t LoadInt32(const char* p) {
  return static_cast<int32_t>(LoadUint32(p));
}
inline uint16_t LoadUint16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}

// Client-controlled text for an error message: C-escaped, at most 64 input
// bytes, "..." appended when cut.
std::string Quote(absl::string_view s);

// Names the field being read in error messages: "parameter 2" when index > 0
// (indices in messages are 1-based), else just the label.
struct What {
  What(const char* label) : label(label) {}  // NOLINT: implicit on purpose
  What(const char* label, size_t index) : label(label), index(index) {}
  std::string ToString() const;
  const char* label;
  size_t index = 0;
};

class Reader {
 public:
  // `context` prefixes every error, e.g. "Bind message". Must outlive *this.
  Reader(absl::string_view data, const char* context)
      : data_(data), context_(context) {}

  absl::StatusOr<int32_t> ReadInt32(What what);
  absl::StatusOr<uint32_t> ReadUint32(What what);
  absl::StatusOr<int16_t> ReadInt16(What what);
  // An unsigned 16-bit count (PostgreSQL reads counts as uint16).
  absl::StatusOr<uint16_t> ReadUint16(What what);
  absl::StatusOr<char> ReadByte(What what);
  // A NUL-terminated string; the view excludes the NUL.
  absl::StatusOr<absl::string_view> ReadCString(What what);
  absl::StatusOr<absl::string_view> ReadBytes(size_t n, What what);
  // An int32 length (-1 = NULL, else >= 0) followed by that many bytes.
  absl::StatusOr<BindParam> ReadValue(What what);
  // A uint16 count of items each at least `min_item_size` bytes long; errors
  // if the remaining bytes cannot possibly hold them (cheap allocation guard).
  absl::StatusOr<uint16_t> ReadCount(What what, size_t min_item_size);
  // Reads `n` int16 format codes, each required to be 0 (text) or 1 (binary).
  absl::Status ReadFormats(size_t n, const char* label,
                           std::vector<int16_t>* out);

  bool AtEnd() const { return pos_ == data_.size(); }
  size_t remaining() const { return data_.size() - pos_; }
  absl::string_view Rest() const { return data_.substr(pos_); }
  // OK iff all bytes were consumed, else "<context>: N trailing bytes ...".
  absl::Status ExpectEnd() const;
  // InvalidArgumentError("<context>: <detail>").
  absl::Status Error(absl::string_view detail) const;

 private:
  absl::Status Truncated(What what, size_t need) const;

  absl::string_view data_;
  const char* context_;
  size_t pos_ = 0;
};

}  // namespace warden::dataplane::pgwire::internal

#endif  // WARDEN_DATAPLANE_PGWIRE_READER_H_
