// Zero-copy decoders and strict validators for PostgreSQL v3 messages after
// the startup phase.
//
// Contract:
//  * Every Parse* takes a message `body` (Frame.body: the bytes after the
//    type byte and the 4-byte length) and returns views into it; results are
//    valid only while that buffer is alive and unmodified.
//  * Every bound is checked. Any malformation - truncation, trailing bytes,
//    a bad length/count/format code/enum byte - is InvalidArgumentError with
//    a message naming the message type and the field, e.g.
//      "Bind message: parameter 2 length 900 exceeds remaining 12 bytes".
//    Field indices in messages are 1-based.
//  * Counts (parameters, formats, columns) are read as unsigned 16-bit, as
//    PostgreSQL does; value lengths are int32 with -1 meaning NULL.
//  * Format codes must be 0 (text) or 1 (binary).
//  * No function allocates beyond the returned vectors; ValidateBackend('D')
//    (DataRow) does not allocate at all.
#ifndef WARDEN_DATAPLANE_PGWIRE_MESSAGES_H_
#define WARDEN_DATAPLANE_PGWIRE_MESSAGES_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dataplane/pgwire/types.h"

namespace warden::dataplane::pgwire {

// ---------------------------------------------------------------- frontend

struct Query {
  absl::string_view sql;
};

struct Parse {
  absl::string_view statement;  // "" = unnamed statement
  absl::string_view query;
  std::vector<uint32_t> param_types;  // 0 = unspecified
};

// A length-prefixed value (Bind parameter, FunctionCall argument, DataRow
// column, FunctionCallResponse result). `value` is empty when is_null.
struct BindParam {
  bool is_null;
  absl::string_view value;
};

struct Bind {
  absl::string_view portal;
  absl::string_view statement;
  // Either empty (all text), one entry (applies to all), or one per param.
  std::vector<int16_t> param_formats;
  std::vector<BindParam> params;
  std::vector<int16_t> result_formats;
};

// What a Bind names and asks for, without its parameters (ParseBindTarget).
struct BindTarget {
  absl::string_view portal;
  absl::string_view statement;
  std::vector<int16_t> result_formats;
};

struct Execute {
  absl::string_view portal;
  int32_t max_rows;  // <= 0 means no limit
};

struct Describe {
  char kind;  // 'S' (statement) or 'P' (portal)
  absl::string_view name;
};

struct Close {
  char kind;  // 'S' or 'P'
  absl::string_view name;
};

struct CopyFail {
  absl::string_view message;
};

struct FunctionCall {
  uint32_t function_oid;
  std::vector<int16_t> arg_formats;  // 0, 1 or one per argument entries
  std::vector<BindParam> args;
  int16_t result_format;
};

struct SaslInitialResponse {
  absl::string_view mechanism;
  bool has_data;  // false when the length field is -1
  absl::string_view data;
};

absl::StatusOr<Query> ParseQuery(absl::string_view body);
absl::StatusOr<Parse> ParseParse(absl::string_view body);
// Also checks that the number of parameter formats is 0, 1 or the number of
// parameters, as PostgreSQL does.
absl::StatusOr<Bind> ParseBind(absl::string_view body);
// The portal, statement and result formats of a Bind, its parameters
// skipped (its structure checked as ParseBind does, the parameter format
// codes excepted), for readers that need only those.
absl::StatusOr<BindTarget> ParseBindTarget(absl::string_view body);
absl::StatusOr<Execute> ParseExecute(absl::string_view body);
absl::StatusOr<Describe> ParseDescribe(absl::string_view body);
absl::StatusOr<Close> ParseClose(absl::string_view body);
absl::StatusOr<CopyFail> ParseCopyFail(absl::string_view body);
absl::StatusOr<FunctionCall> ParseFunctionCall(absl::string_view body);
// PasswordMessage: one NUL-terminated string and nothing after it.
absl::StatusOr<absl::string_view> ParsePasswordMessage(absl::string_view body);
absl::StatusOr<SaslInitialResponse> ParseSaslInitialResponse(
    absl::string_view body);
// SASLResponse and GSSResponse carry opaque bytes: the body itself.

// ----------------------------------------------------------------- backend

// Authentication codes.
// PostgreSQL knows prepared statements and portals by the first
// NAMEDATALEN-1 bytes of their names ("p" x 63 + "B" is the portal bound as
// "p" x 63 + "E"): whatever tracks them keys them so (red team pass 11).
inline absl::string_view ObjectName(absl::string_view name) {
  return name.substr(0, 63);
}

// A message type byte for error messages: 'Q', or 0x00 when unprintable.
std::string PrintableType(char type);

inline constexpr int32_t kAuthOk = 0;
inline constexpr int32_t kAuthKerberosV5 = 2;
inline constexpr int32_t kAuthCleartextPassword = 3;
inline constexpr int32_t kAuthMd5Password = 5;
inline constexpr int32_t kAuthScmCredential = 6;
inline constexpr int32_t kAuthGss = 7;
inline constexpr int32_t kAuthGssContinue = 8;
inline constexpr int32_t kAuthSspi = 9;
inline constexpr int32_t kAuthSasl = 10;
inline constexpr int32_t kAuthSaslContinue = 11;
inline constexpr int32_t kAuthSaslFinal = 12;

// code: 0 ok, 3 cleartext, 5 md5 (data = 4-byte salt), 10 SASL (data =
// NUL-terminated mechanism names followed by a final NUL), 11 SASLContinue,
// 12 SASLFinal, 8 GSSContinue (opaque data); 2, 6, 7, 9 have no data.
// Unknown codes are an error (fail closed).
struct Authentication {
  int32_t code;
  absl::string_view data;
};

struct BackendKeyData {
  int32_t pid;
  int32_t secret;
};

struct ParameterStatus {
  absl::string_view name;
  absl::string_view value;
};

struct ReadyForQuery {
  char status;  // 'I' idle, 'T' in transaction, 'E' failed transaction
};

struct CommandComplete {
  absl::string_view tag;
};

struct ErrorField {
  char code;  // 'S', 'V', 'C', 'M', 'D', 'H', ... (never 0)
  absl::string_view value;
};

// ErrorResponse and NoticeResponse.
struct ErrorResponse {
  std::vector<ErrorField> fields;
  // Value of the first field with `code`, or "" if absent.
  absl::string_view Get(char code) const;
};

struct NotificationResponse {
  int32_t pid;
  absl::string_view channel;
  absl::string_view payload;
};

// CopyInResponse, CopyOutResponse, CopyBothResponse.
struct CopyResponse {
  int8_t format;  // 0 text (then every column format is 0), 1 binary
  std::vector<int16_t> column_formats;
};

struct DataRow {
  std::vector<BindParam> columns;
};

struct FieldDescription {
  absl::string_view name;
  uint32_t table_oid;
  int16_t column;
  uint32_t type_oid;
  int16_t type_size;
  int32_t type_modifier;
  int16_t format;
};

struct RowDescription {
  std::vector<FieldDescription> fields;
};

struct ParameterDescription {
  std::vector<uint32_t> type_oids;
};

struct NegotiateProtocolVersion {
  int32_t newest_minor;
  std::vector<absl::string_view> unrecognized;
};

absl::StatusOr<Authentication> ParseAuthentication(absl::string_view body);
// Splits the data of an AuthenticationSASL message (code 10) into mechanism
// names; at least one, each non-empty, ending with the extra NUL.
absl::StatusOr<std::vector<absl::string_view>> ParseSaslMechanisms(
    absl::string_view data);
absl::StatusOr<BackendKeyData> ParseBackendKeyData(absl::string_view body);
absl::StatusOr<ParameterStatus> ParseParameterStatus(absl::string_view body);
absl::StatusOr<ReadyForQuery> ParseReadyForQuery(absl::string_view body);
absl::StatusOr<CommandComplete> ParseCommandComplete(absl::string_view body);
// Also NoticeResponse. Structure only: (code byte, C string)* then a 0 byte.
absl::StatusOr<ErrorResponse> ParseErrorResponse(absl::string_view body);
absl::StatusOr<NotificationResponse> ParseNotificationResponse(
    absl::string_view body);
absl::StatusOr<CopyResponse> ParseCopyResponse(absl::string_view body);
absl::StatusOr<DataRow> ParseDataRow(absl::string_view body);
absl::StatusOr<RowDescription> ParseRowDescription(absl::string_view body);
absl::StatusOr<ParameterDescription> ParseParameterDescription(
    absl::string_view body);
absl::StatusOr<NegotiateProtocolVersion> ParseNegotiateProtocolVersion(
    absl::string_view body);
// FunctionCallResponse: one length-prefixed value (-1 = NULL).
absl::StatusOr<BindParam> ParseFunctionCallResponse(absl::string_view body);

// ------------------------------------------------------------- validation

// Strict validation of a complete message by type byte (table dispatch).
// Unknown type → "unknown frontend message type 0x07". Bodyless messages
// (Sync, Flush, Terminate, CopyDone) must have an empty body. CopyData
// accepts any bytes; 'p' (password/SASL/GSS, whose meaning depends on the
// auth state) accepts any non-empty body - decode it with the parser that
// matches the state.
absl::Status ValidateFrontend(char type, absl::string_view body);
// Same for backend messages. Bodyless: BindComplete, CloseComplete,
// CopyDone, EmptyQueryResponse, NoData, ParseComplete, PortalSuspended.
// DataRow validation is an allocation-free loop: the column count and the
// column lengths must account for exactly the body size.
absl::Status ValidateBackend(char type, absl::string_view body);

}  // namespace warden::dataplane::pgwire

#endif  // WARDEN_DATAPLANE_PGWIRE_MESSAGES_H_
