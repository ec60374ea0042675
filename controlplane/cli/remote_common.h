// What every remote wardenctl command shares: how to reach warden-control
// (Connection, MakeChannel, one RPC's plumbing in Remote), what a failed
// RPC exits with (ExitForGrpc) and prints, TerminalSafe for text outputs,
// and wardenctl's one JSON path (WriteJson, WriteJsonLine, MessageJson).
// The commands themselves are one file pair per noun: remote_policy,
// remote_tokens, remote_identities, remote_proxies, remote_audit (and
// login_command).
//
// Every command: results on `out` (text or, with Format::kJson, one JSON
// document), problems on `err`. A failed RPC prints
// "error: <CODE_NAME>: <message>" on `err` (and, in JSON, {"error": {"code",
// "message"}} on `out`) and returns the exit code of ExitForGrpc.
#ifndef WARDEN_CONTROLPLANE_CLI_REMOTE_COMMON_H_
#define WARDEN_CONTROLPLANE_CLI_REMOTE_COMMON_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "controlplane/cli/policy_commands.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"

namespace warden::controlplane::cli {

// How to reach the control plane (flags, or WARDEN_SERVER / WARDEN_TOKEN /
// WARDEN_CA_FILE).
struct Connection {
  // host:port, [v6]:port; or a cluster's replicas separated by commas,
  // of which MakeChannel takes the first that answers.
  std::string server;
  std::string token;    // sent as "authorization: Bearer <token>"; empty: none.
  std::string ca_file;  // PEM CA of warden-control's certificate (required).
  std::string timeout = "10s";  // per RPC; absl duration syntax.
};

struct RemoteOptions {
  Connection connection;
  Format format = Format::kText;
};

// TerminalSafe returns `text` as it may be printed in wardenctl's text
// outputs, which show values others wrote (audit events, token and user
// names, server messages): one line, no terminal control, no bidi trick.
// Escaped: backslash as \\; \n \r \t; every other C0 control and DEL as
// \xNN (ESC: \x1b); C1 controls U+0080-U+009F, line and paragraph
// separators U+2028/U+2029, bidi embeddings and overrides U+202A-U+202E,
// isolates U+2066-U+2069 and the marks U+061C, U+200E, U+200F as \uNNNN;
// bytes that are not UTF-8 as \xNN. Everything else, printable Unicode
// included, is kept.
//   TerminalSafe("a\nb\x1b[2J") == "a\\nb\\x1b[2J"   (as C++ literals)
// JSON outputs keep values exact instead (JSON escapes control characters).
std::string TerminalSafe(absl::string_view text);

// A TLS channel for `connection`, verifying the server against its CA
// file. InvalidArgument (a usage error) without a server or a readable CA
// file: warden-control only speaks TLS, and a token is never sent in clear.
// With several replicas ("a:7443,b:7443"), the first in that order whose
// TLS handshake completes within min(timeout, 5s); if none does, the
// first (its calls then fail UNAVAILABLE with gRPC's reason).
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const Connection& connection);

// UNAUTHENTICATED, PERMISSION_DENIED -> kExitAuth; UNAVAILABLE,
// DEADLINE_EXCEEDED -> kExitUnavailable; everything else -> kExitFailed.
int ExitForGrpc(const grpc::Status& status);

// ---------------------------------------------------------------------------
// JSON: every JSON wardenctl's remote commands print goes through these.

// A command's result: one JSON document. Keys print sorted.
using Json = nlohmann::json;
// One record of a JSON-lines output (audit entries): keys keep the order
// they were added in (an AuditLeaf's: field order).
using JsonRecord = nlohmann::ordered_json;

// `document` indented by 2, then a newline. Bytes that are not UTF-8 (none
// should reach here) print as U+FFFD instead of failing.
void WriteJson(const Json& document, std::ostream& out);

// `record` on one line: {"key": value, "key": value} with each value
// compact, then a newline. Besides what JSON must escape, '<', '>', DEL,
// the C1 controls, U+2028, U+2029 and the invisible format characters
// print as \uNNNN (as protobuf's JSON printer writes them, which these
// lines were first made with), so a reader that splits lines on Unicode's
// line breaks still gets one record per line.
void WriteJsonLine(const JsonRecord& record, std::ostream& out);

// `message` in protobuf's JSON mapping with the .proto field names:
// fields with presence when set, others when not their default, in field
// order; 64-bit integers as strings, enums by name, bytes as base64,
// Timestamp and Duration as RFC 3339 / "1.5s" strings, maps as objects.
JsonRecord MessageJson(const google::protobuf::Message& message);

// Prints `result` as a JSON document (Format::kJson) or as text through
// `text`, which reads the same document: a command's text and JSON outputs
// come from one value, so they cannot show different things. kExitOk.
int Report(Format format, const Json& result,
           absl::FunctionRef<void(const Json& result, std::ostream& out)> text,
           std::ostream& out);

// Reading a result back for its text form: "" / 0 / false / {} when the
// key is absent or of another type (null: an unset time).
std::string StringAt(const Json& j, const char* key);
uint64_t UintAt(const Json& j, const char* key);
int64_t IntAt(const Json& j, const char* key);
bool BoolAt(const Json& j, const char* key);
std::vector<std::string> StringsAt(const Json& j, const char* key);

// ---------------------------------------------------------------------------
// For the commands' files.

// Prints "wardenctl: <message>" on `err`; kExitUsage.
int UsageError(absl::string_view message, std::ostream& err);

// "2024-05-01T12:00:00Z"; "" for an unset timestamp.
std::string TimeText(const google::protobuf::Timestamp& ts);
// TimeText as JSON: null for an unset timestamp.
Json TimeJson(const google::protobuf::Timestamp& ts);

// One remote command's plumbing: channel, bearer token, deadline, and how
// a failed RPC is reported.
class Remote {
 public:
  // kExitOk, or a usage error already printed on `err`.
  int Open(const RemoteOptions& options, std::ostream& err);

  // Sets the deadline and the bearer token on `context`.
  void Prepare(grpc::ClientContext* context) const;
  // The bearer token only: for streams that follow until interrupted.
  void Authorize(grpc::ClientContext* context) const;

  // Prints a failed RPC and returns its exit code.
  int Failed(const grpc::Status& status, std::ostream& out,
             std::ostream& err) const;

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  const RemoteOptions* options_ = nullptr;
  absl::Duration timeout_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace warden::controlplane::cli

#endif  // WARDEN_CONTROLPLANE_CLI_REMOTE_COMMON_H_
