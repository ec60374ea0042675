// Encoding of PostgreSQL v3 messages into an output string (no I/O).
//
// Contract:
//  * Every function appends exactly one complete wire message to *out and
//    never touches bytes already in *out.
//  * Strings written as C strings must not contain NUL; an embedded NUL
//    truncates the string at that point so the output stays well-formed.
//  * Messages must stay below 2^31 - 1 bytes (not checked beyond a debug
//    guard; the proxy only encodes small control messages).
#ifndef WARDEN_DATAPLANE_PGWIRE_ENCODER_H_
#define WARDEN_DATAPLANE_PGWIRE_ENCODER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "dataplane/pgwire/types.h"

namespace warden::dataplane::pgwire {

// Appends complete wire messages to an output string:
//   MessageWriter w(&out);
//   w.Begin('Z'); w.Byte('I'); w.End();
// Begin/End must alternate; a message is well-formed only after End().
class MessageWriter {
 public:
  explicit MessageWriter(std::string* out);

  // Starts a message; type 0 starts a startup-style packet (no type byte).
  void Begin(char type);
  void Int32(int32_t v);
  void Int16(int16_t v);
  void Byte(char c);
  // Appends s (up to its first NUL, if any) followed by a NUL.
  void CString(absl::string_view s);
  void Bytes(absl::string_view s);
  // Patches the 4-byte length of the message started by Begin().
  void End();

 private:
  std::string* out_;
  size_t length_pos_ = 0;
  bool open_ = false;
};

// ------------------------------------------------- backend (to the client)
void WriteAuthenticationOk(std::string* out);
void WriteAuthenticationCleartextPassword(std::string* out);
void WriteAuthenticationMd5Password(std::string* out, absl::string_view salt4);
void WriteAuthenticationSasl(std::string* out,
                             const std::vector<std::string>& mechanisms);
void WriteAuthenticationSaslContinue(std::string* out, absl::string_view data);
void WriteAuthenticationSaslFinal(std::string* out, absl::string_view data);
void WriteBackendKeyData(std::string* out, int32_t pid, int32_t secret);
void WriteParameterStatus(std::string* out, absl::string_view name,
                          absl::string_view value);
// status: 'I', 'T' or 'E'.
void WriteReadyForQuery(std::string* out, char status);
// Fields S, V (both = severity), C, M, then D and H when non-empty, and P
// (1-based character position in the query, which psql shows as a caret)
// when positive.
void WriteErrorResponse(std::string* out, absl::string_view severity,
                        absl::string_view sqlstate, absl::string_view message,
                        absl::string_view detail = {},
                        absl::string_view hint = {}, int position = 0);
void WriteNoticeResponse(std::string* out, absl::string_view severity,
                         absl::string_view sqlstate, absl::string_view message);
void WriteNegotiateProtocolVersion(
    std::string* out, int32_t newest_minor,
    const std::vector<std::string>& unrecognized);
void WriteCommandComplete(std::string* out, absl::string_view tag);
void WriteEmptyQueryResponse(std::string* out);

// ------------------------------ frontend (the proxy as an upstream client)
// Protocol 3.0 StartupMessage with the given parameters in order.
void WriteStartupMessage(
    std::string* out,
    const std::vector<std::pair<std::string, std::string>>& params);
void WriteSslRequest(std::string* out);
void WriteGssEncRequest(std::string* out);
void WriteCancelRequest(std::string* out, int32_t pid, int32_t secret);
void WritePasswordMessage(std::string* out, absl::string_view password);
void WriteSaslInitialResponse(std::string* out, absl::string_view mechanism,
                              absl::string_view data);
void WriteSaslResponse(std::string* out, absl::string_view data);
void WriteQuery(std::string* out, absl::string_view sql);
void WriteSync(std::string* out);
// Parse with no parameter types.
void WriteParse(std::string* out, absl::string_view statement,
                absl::string_view sql);
// Bind with no parameters and default (text) formats.
void WriteBind(std::string* out, absl::string_view portal,
               absl::string_view statement);
// kind: 'S' (statement) or 'P' (portal).
void WriteDescribe(std::string* out, char kind, absl::string_view name);
// Execute of `portal`, all rows.
void WriteExecute(std::string* out, absl::string_view portal);
void WriteClose(std::string* out, char kind, absl::string_view name);
void WriteTerminate(std::string* out);

}  // namespace warden::dataplane::pgwire

#endif  // WARDEN_DATAPLANE_PGWIRE_ENCODER_H_
