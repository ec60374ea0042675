// CRC-32 as zlib's crc32() computes it (the IEEE polynomial, reflected),
// for the spool's record framing: with carry-less multiplication
// (PCLMULQDQ) where the CPU has it, for the bulk of records of 64 bytes
// and more, and zlib for the rest. zlib's table-driven crc32 was the
// largest single cost of staging an audit event.
#ifndef WARDEN_DATAPLANE_AUDIT_CRC32_H_
#define WARDEN_DATAPLANE_AUDIT_CRC32_H_

#include <cstddef>
#include <cstdint>

namespace warden::dataplane::audit {

// crc32(0, data, n) of zlib.
uint32_t Crc32(const char* data, size_t n);

// The same, from zlib alone (tests compare the two).
uint32_t Crc32Zlib(const char* data, size_t n);

}  // namespace warden::dataplane::audit

#endif  // WARDEN_DATAPLANE_AUDIT_CRC32_H_
