// Core constants and message-type enums of the PostgreSQL v3 wire protocol.
//
// Contract: pure data, no I/O. The enums use the on-the-wire type byte as
// their underlying value, so `static_cast<FrontendType>(c)` is always legal;
// ToString() returns "Unknown" for a byte that is not a v3 message type.
#ifndef WARDEN_DATAPLANE_PGWIRE_TYPES_H_
#define WARDEN_DATAPLANE_PGWIRE_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace warden::dataplane::pgwire {

// Largest frontend message (type byte + length + body) accepted by default.
inline constexpr size_t kDefaultMaxMessageSize = 64 << 20;
// Largest backend message accepted by default (large DataRows are legal).
inline constexpr size_t kDefaultMaxBackendMessageSize = 1024u << 20;
// Largest startup-phase packet, as in PostgreSQL (MAX_STARTUP_PACKET_LENGTH).
inline constexpr size_t kMaxStartupPacketSize = 10000;

inline constexpr int32_t kProtocolV3 = 196608;           // 3.0 == (3 << 16) | 0
inline constexpr int32_t kSslRequestCode = 80877103;     // 1234.5679
inline constexpr int32_t kGssEncRequestCode = 80877104;  // 1234.5680
inline constexpr int32_t kCancelRequestCode = 80877102;  // 1234.5678

// Messages sent by the client (frontend) after the startup packet.
enum class FrontendType : char {
  kBind = 'B',
  kClose = 'C',
  kCopyData = 'd',
  kCopyDone = 'c',
  kCopyFail = 'f',
  kDescribe = 'D',
  kExecute = 'E',
  kFlush = 'H',
  kFunctionCall = 'F',
  kParse = 'P',
  // Also SASLInitialResponse, SASLResponse and GSSResponse: the meaning of a
  // 'p' message depends on the authentication state.
  kPassword = 'p',
  kQuery = 'Q',
  kSync = 'S',
  kTerminate = 'X',
};

// Messages sent by the server (backend).
enum class BackendType : char {
  kAuthentication = 'R',
  kBackendKeyData = 'K',
  kBindComplete = '2',
  kCloseComplete = '3',
  kCommandComplete = 'C',
  kCopyData = 'd',
  kCopyDone = 'c',
  kCopyInResponse = 'G',
  kCopyOutResponse = 'H',
  kCopyBothResponse = 'W',
  kDataRow = 'D',
  kEmptyQueryResponse = 'I',
  kErrorResponse = 'E',
  kFunctionCallResponse = 'V',
  kNegotiateProtocolVersion = 'v',
  kNoData = 'n',
  kNoticeResponse = 'N',
  kNotificationResponse = 'A',
  kParameterDescription = 't',
  kParameterStatus = 'S',
  kParseComplete = '1',
  kPortalSuspended = 's',
  kReadyForQuery = 'Z',
  kRowDescription = 'T',
};

// Message names as in the PostgreSQL documentation ("Bind", "DataRow", ...);
// "Unknown" for any other byte. The returned pointer is static.
const char* ToString(FrontendType t);
const char* ToString(BackendType t);

// True iff `c` is a v3 frontend / backend message type byte.
bool IsFrontendType(char c);
bool IsBackendType(char c);

// Renders a type byte for error messages: "'Q'" when printable, else "0x07".
std::string DescribeTypeByte(char c);

}  // namespace warden::dataplane::pgwire

#endif  // WARDEN_DATAPLANE_PGWIRE_TYPES_H_
