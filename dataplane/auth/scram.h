// SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL speaks it, plus the
// legacy PostgreSQL md5 password response. Server side: the proxy
// authenticating its own clients against stored verifiers. Client side: the
// proxy authenticating to the upstream PostgreSQL with service credentials.
//
// All hashing, HMAC, PBKDF2, randomness and constant-time comparison go
// through common/crypto (OpenSSL); nothing here implements cryptography.
//
// SASLprep: passwords are used as raw bytes. For ASCII passwords this is what
// PostgreSQL does (SASLprep is the identity on printable ASCII, and PostgreSQL
// falls back to the raw bytes when SASLprep rejects control characters).
// Non-ASCII passwords are NOT normalized, so a verifier made by PostgreSQL for
// a non-ASCII password that SASLprep changes will not match here.
#ifndef WARDEN_DATAPLANE_AUTH_SCRAM_H_
#define WARDEN_DATAPLANE_AUTH_SCRAM_H_

#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace warden::dataplane::auth {

// Default PBKDF2 iteration count (PostgreSQL's scram_iterations default).
inline constexpr int kScramDefaultIterations = 4096;
// Largest iteration count ScramClient accepts from a server (DoS guard), and
// the largest ParseScramVerifier accepts.
inline constexpr int kScramMaxIterations = 10'000'000;

// PostgreSQL's stored SCRAM secret (pg_authid.rolpassword):
//   "SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>"
// `salt`, `stored_key`, `server_key` hold raw bytes (not base64); the keys are
// 32 bytes each.
struct ScramVerifier {
  int iterations = kScramDefaultIterations;
  std::string salt;
  std::string stored_key;
  std::string server_key;
};

// Returns OK iff iterations is in [1, kScramMaxIterations], the salt is
// non-empty and both keys are 32 bytes. InvalidArgument otherwise.
absl::Status ValidateScramVerifier(const ScramVerifier& v);

// Parses the text form above. InvalidArgument with a message naming the
// offending part (prefix, iterations, salt, StoredKey, ServerKey) on any
// deviation; the result always passes ValidateScramVerifier.
absl::StatusOr<ScramVerifier> ParseScramVerifier(absl::string_view text);

// The salt of `user`'s mock exchange under `mock_secret` (16 bytes):
// HMAC-SHA256(mock_secret, user), truncated.
std::string ScramMockSalt(absl::string_view mock_secret,
                          absl::string_view user);

// Derives the verifier for `password` with the given raw `salt`.
// Precondition: iterations >= 1 (smaller values are treated as 1).
ScramVerifier MakeScramVerifier(absl::string_view password,
                                absl::string_view salt,
                                int iterations = kScramDefaultIterations);

// Same with a fresh 16-byte random salt. InvalidArgument if iterations is
// outside [1, kScramMaxIterations]; Internal if the CSPRNG fails.
absl::StatusOr<ScramVerifier> MakeScramVerifierRandomSalt(
    absl::string_view password, int iterations = kScramDefaultIterations);

// Inverse of ParseScramVerifier.
std::string FormatScramVerifier(const ScramVerifier& v);

// Server side of one SCRAM-SHA-256 exchange, as PostgreSQL speaks it: the
// username in the SCRAM message ("n=") is ignored (libpq sends it empty); the
// user comes from the startup packet. No channel binding is offered (mechanism
// "SCRAM-SHA-256" only): gs2 header "n,," or "y,," is accepted, "p=..." and an
// authzid "a=..." are rejected with InvalidArgument.
//
// Call order: HandleClientFirst, then HandleClientFinal, each once. Any error
// ends the exchange; later calls (and out-of-order calls) return
// FailedPrecondition. Not thread-safe; one instance per session.
class ScramServer {
 public:
  static constexpr absl::string_view kMechanism = "SCRAM-SHA-256";

  // `verifier` nullopt => unknown user: a mock exchange is run whose salt
  // (16 bytes) is HMAC-SHA256(mock_secret, user) truncated, with the default
  // iteration count, like PostgreSQL's scram_mock_salt, so the client cannot
  // tell unknown users from wrong passwords; HandleClientFinal then fails with
  // PermissionDenied. `mock_secret` should be a per-deployment random secret;
  // if empty, a per-process random secret is used (stable within the process).
  // A verifier that fails ValidateScramVerifier makes HandleClientFirst return
  // Internal.
  ScramServer(std::optional<ScramVerifier> verifier, absl::string_view user,
              absl::string_view mock_secret);

  ScramServer(const ScramServer&) = delete;
  ScramServer& operator=(const ScramServer&) = delete;

  // client-first-message (the SASLInitialResponse data) -> server-first-
  // message "r=<client nonce><server nonce>,s=<salt b64>,i=<iterations>".
  // InvalidArgument on malformed input: bad gs2 header, channel binding "p=",
  // authzid, mandatory extension "m=", missing "n=" or "r=", empty nonce or a
  // nonce with ',' or non-printable characters. Internal if the CSPRNG fails.
  absl::StatusOr<std::string> HandleClientFirst(absl::string_view client_first);

  // client-final-message -> server-final-message "v=<b64 ServerSignature>".
  // PermissionDenied("password authentication failed") on a wrong proof or a
  // mock (unknown) user. InvalidArgument on malformed input: channel binding
  // "c=" not matching the gs2 header, nonce "r=" not the combined nonce,
  // missing or non-final "p=", proof not 32 bytes of base64.
  absl::StatusOr<std::string> HandleClientFinal(absl::string_view client_final);

  // Testing hook: use `nonce` (printable, no ',') as the server's part of the
  // nonce instead of 18 random bytes base64. Call before HandleClientFirst.
  void set_nonce_for_testing(std::string nonce) {
    server_nonce_ = std::move(nonce);
  }

 private:
  enum class State { kInitial, kSentServerFirst, kDone };

  State state_ = State::kInitial;
  bool mock_ = false;
  ScramVerifier verifier_;
  absl::Status verifier_status_;
  std::string server_nonce_;  // Server's part; empty until chosen.
  std::string gs2_header_;    // e.g. "n,,"; base64 of it must be in "c=".
  std::string nonce_;         // Combined client + server nonce.
  std::string client_first_bare_;
  std::string server_first_;
};

// Client side, for the proxy authenticating to the upstream PostgreSQL with
// service credentials. Sends an empty username ("n=") like libpq and no
// channel binding ("n,,"). Call order: ClientFirstMessage (any number of
// times), HandleServerFirst once, VerifyServerFinal once; out-of-order calls
// return FailedPrecondition. Not thread-safe.
// PBKDF2-HMAC-SHA256 of `password` for a server's salt and iteration
// count, remembered (bounded) so repeated logins to the same role derive
// it once. Thread-safe.
std::string SaltedPassword(const std::string& password,
                           const std::string& salt, int iterations);
// How often SaltedPassword answered from what it remembered (tests).
uint64_t SaltedPasswordCacheHits();

class ScramClient {
 public:
  // Nonce: 18 random bytes, base64 (if the CSPRNG fails, HandleServerFirst
  // returns Internal).
  explicit ScramClient(std::string password);
  // Testing hook: fixed client nonce (printable, no ',') and username (sent
  // SCRAM-escaped in "n="; PostgreSQL ignores it).
  ScramClient(std::string password, std::string nonce,
              std::string username = "");

  ScramClient(const ScramClient&) = delete;
  ScramClient& operator=(const ScramClient&) = delete;

  // "n,,n=,r=<nonce>".
  std::string ClientFirstMessage() const;

  // server-first-message -> client-final-message "c=biws,r=<nonce>,p=<proof>".
  // InvalidArgument if the message is malformed, the server nonce does not
  // strictly extend ours, iterations is < 1 or > kScramMaxIterations, or the
  // salt is empty / bad base64.
  absl::StatusOr<std::string> HandleServerFirst(absl::string_view server_first);

  // Checks the "v=" ServerSignature in constant time. PermissionDenied if it
  // does not match (the server does not know the password: possible
  // impostor); InvalidArgument on "e=..." (message carries the server's error
  // text) or a malformed message.
  absl::Status VerifyServerFinal(absl::string_view server_final);

 private:
  enum class State { kInitial, kSentClientFinal, kDone };

  State state_ = State::kInitial;
  absl::Status init_status_;
  std::string password_;
  std::string nonce_;
  std::string client_first_bare_;
  std::string expected_server_signature_;
};

// PostgreSQL md5 auth response (AuthenticationMD5Password):
//   "md5" + hex(md5(hex(md5(password + user)) + salt4))
// `salt4` is the 4 raw salt bytes from the server.
std::string Md5PasswordResponse(absl::string_view user,
                                absl::string_view password,
                                absl::string_view salt4);

}  // namespace warden::dataplane::auth

#endif  // WARDEN_DATAPLANE_AUTH_SCRAM_H_
