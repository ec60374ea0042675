#include "dataplane/auth/scram.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/crypto.h"
#include "common/status_macros.h"

namespace warden::dataplane::auth {
namespace {

constexpr absl::string_view kVerifierPrefix = "SCRAM-SHA-256$";
constexpr size_t kKeyLen = 32;          // SHA-256 output.
constexpr size_t kRawNonceLen = 18;     // PostgreSQL's SCRAM_RAW_NONCE_LEN.
constexpr size_t kDefaultSaltLen = 16;  // PostgreSQL's SCRAM_DEFAULT_SALT_LEN.
constexpr absl::string_view kAuthFailed = "password authentication failed";

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed SCRAM message: ", what));
}

// RFC 5802 "printable": %x21-2B / %x2D-7E (no ',').
bool IsValidNonce(absl::string_view nonce) {
  if (nonce.empty()) return false;
  for (char c : nonce) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7E || c == ',') return false;
  }
  return true;
}

// Parses a decimal iteration count in [1, kScramMaxIterations]; digits only.
bool ParseIterations(absl::string_view text, int* out) {
  if (text.empty() || text.size() > 9) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v < 1 || v > kScramMaxIterations) {
    return false;
  }
  *out = static_cast<int>(v);
  return true;
}

// If `part` is "<attr>=<value>", stores value and returns true.
bool TakeAttr(absl::string_view part, char attr, absl::string_view* value) {
  if (part.size() < 2 || part[0] != attr || part[1] != '=') return false;
  *value = part.substr(2);
  return true;
}

// An RFC 5802 extension attribute: "<ALPHA>=...".
bool IsExtension(absl::string_view part) {
  return part.size() >= 2 && absl::ascii_isalpha(part[0]) && part[1] == '=';
}

std::string Xor(absl::string_view a, absl::string_view b) {
  std::string out(a);
  for (size_t i = 0; i < out.size() && i < b.size(); ++i) {
    out[i] = static_cast<char>(out[i] ^ b[i]);
  }
  return out;
}

// RFC 5802 saslname escaping: '=' -> "=3D", ',' -> "=2C".
std::string EscapeSaslName(absl::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '=') {
      out += "=3D";
    } else if (c == ',') {
      out += "=2C";
    } else {
      out += c;
    }
  }
  return out;
}

const std::string& ProcessMockSecret() {
  static const std::string* secret = [] {
    absl::StatusOr<std::string> r = crypto::RandomBytes(32);
    return new std::string(r.ok() ? *r : std::string("warden-mock"));
  }();
  return *secret;
}

}  // namespace

absl::Status ValidateScramVerifier(const ScramVerifier& v) {
  if (v.iterations < 1 || v.iterations > kScramMaxIterations) {
    return absl::InvalidArgumentError(
        absl::StrCat("SCRAM verifier: iterations out of range [1, ",
                     kScramMaxIterations, "]: ", v.iterations));
  }
  if (v.salt.empty()) {
    return absl::InvalidArgumentError("SCRAM verifier: empty salt");
  }
  if (v.stored_key.size() != kKeyLen) {
    return absl::InvalidArgumentError("SCRAM verifier: StoredKey not 32 bytes");
  }
  if (v.server_key.size() != kKeyLen) {
    return absl::InvalidArgumentError("SCRAM verifier: ServerKey not 32 bytes");
  }
  return absl::OkStatus();
}

absl::StatusOr<ScramVerifier> ParseScramVerifier(absl::string_view text) {
  if (!absl::ConsumePrefix(&text, kVerifierPrefix)) {
    return absl::InvalidArgumentError(
        "SCRAM verifier: missing \"SCRAM-SHA-256$\" prefix");
  }
  std::vector<absl::string_view> halves = absl::StrSplit(text, '$');
  if (halves.size() != 2) {
    return absl::InvalidArgumentError(
        "SCRAM verifier: expected "
        "\"<iterations>:<salt>$<StoredKey>:<ServerKey>\"");
  }
  std::vector<absl::string_view> params = absl::StrSplit(halves[0], ':');
  std::vector<absl::string_view> keys = absl::StrSplit(halves[1], ':');
  if (params.size() != 2) {
    return absl::InvalidArgumentError(
        "SCRAM verifier: expected \"<iterations>:<salt>\"");
  }
  if (keys.size() != 2) {
    return absl::InvalidArgumentError(
        "SCRAM verifier: expected \"<StoredKey>:<ServerKey>\"");
  }
  ScramVerifier v;
  if (!ParseIterations(params[0], &v.iterations)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SCRAM verifier: iterations must be an integer in [1, ",
                     kScramMaxIterations, "]"));
  }
  absl::StatusOr<std::string> salt = crypto::Base64Decode(params[1]);
  if (!salt.ok() || salt->empty()) {
    return absl::InvalidArgumentError(
        "SCRAM verifier: salt is not non-empty base64");
  }
  absl::StatusOr<std::string> stored = crypto::Base64Decode(keys[0]);
  if (!stored.ok() || stored->size() != kKeyLen) {
    return absl::InvalidArgumentError(
        "SCRAM verifier: StoredKey is not 32 bytes of base64");
  }
  absl::StatusOr<std::string> server = crypto::Base64Decode(keys[1]);
  if (!server.ok() || server->size() != kKeyLen) {
    return absl::InvalidArgumentError(
        "SCRAM verifier: ServerKey is not 32 bytes of base64");
  }
  v.salt = *std::move(salt);
  v.stored_key = *std::move(stored);
  v.server_key = *std::move(server);
  return v;
}

ScramVerifier MakeScramVerifier(absl::string_view password,
                                absl::string_view salt, int iterations) {
  ScramVerifier v;
  v.iterations = std::max(1, iterations);
  v.salt = std::string(salt);
  const std::string salted =
      crypto::Pbkdf2HmacSha256(password, salt, v.iterations);
  v.stored_key = crypto::Sha256(crypto::HmacSha256(salted, "Client Key"));
  v.server_key = crypto::HmacSha256(salted, "Server Key");
  return v;
}

absl::StatusOr<ScramVerifier> MakeScramVerifierRandomSalt(
    absl::string_view password, int iterations) {
  if (iterations < 1 || iterations > kScramMaxIterations) {
    return absl::InvalidArgumentError(
        absl::StrCat("SCRAM iterations out of range [1, ", kScramMaxIterations,
                     "]: ", iterations));
  }
  WARDEN_ASSIGN_OR_RETURN(std::string salt,
                          crypto::RandomBytes(kDefaultSaltLen));
  return MakeScramVerifier(password, salt, iterations);
}

std::string FormatScramVerifier(const ScramVerifier& v) {
  return absl::StrCat(kVerifierPrefix, v.iterations, ":",
                      crypto::Base64Encode(v.salt), "$",
                      crypto::Base64Encode(v.stored_key), ":",
                      crypto::Base64Encode(v.server_key));
}

// ---------------------------------------------------------------------------
std::string ScramMockSalt(absl::string_view mock_secret,
                          absl::string_view user) {
  return crypto::HmacSha256(mock_secret, user).substr(0, kDefaultSaltLen);
}

// ScramServer

ScramServer::ScramServer(std::optional<ScramVerifier> verifier,
                         absl::string_view user,
                         absl::string_view mock_secret) {
  if (verifier.has_value()) {
    verifier_ = *std::move(verifier);
    verifier_status_ = ValidateScramVerifier(verifier_);
    return;
  }
  mock_ = true;
  const std::string secret =
      mock_secret.empty() ? ProcessMockSecret() : std::string(mock_secret);
  verifier_.iterations = kScramDefaultIterations;
  verifier_.salt = ScramMockSalt(secret, user);
  // Keys nobody can match; the exchange fails regardless (mock_).
  verifier_.stored_key =
      crypto::HmacSha256(secret, absl::StrCat("mock StoredKey:", user));
  verifier_.server_key =
      crypto::HmacSha256(secret, absl::StrCat("mock ServerKey:", user));
}

absl::StatusOr<std::string> ScramServer::HandleClientFirst(
    absl::string_view client_first) {
  if (state_ != State::kInitial) {
    return absl::FailedPreconditionError(
        "SCRAM: client-first-message out of order");
  }
  state_ = State::kDone;  // Until success below.
  if (!verifier_status_.ok()) {
    return absl::InternalError(absl::StrCat("SCRAM: unusable stored verifier: ",
                                            verifier_status_.message()));
  }

  // gs2-header = gs2-cbind-flag "," [authzid] ","
  absl::string_view msg = client_first;
  if (absl::StartsWith(msg, "p=")) {
    return absl::InvalidArgumentError(
        "SCRAM: client requires channel binding, but the server offered "
        "SCRAM-SHA-256 without channel binding");
  }
  if (msg.size() < 2 || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',') {
    return Malformed("gs2 header must start with \"n,\" or \"y,\"");
  }
  if (absl::StartsWith(msg.substr(2), "a=")) {
    return absl::InvalidArgumentError(
        "SCRAM: authorization identity (a=) is not supported");
  }
  if (msg.size() < 3 || msg[2] != ',') {
    return Malformed("gs2 header must be \"n,,\" or \"y,,\"");
  }
  gs2_header_ = std::string(msg.substr(0, 3));
  const absl::string_view bare = msg.substr(3);

  std::vector<absl::string_view> parts = absl::StrSplit(bare, ',');
  absl::string_view value;
  if (TakeAttr(parts[0], 'm', &value)) {
    return absl::InvalidArgumentError(
        "SCRAM: mandatory extensions (m=) are not supported");
  }
  if (!TakeAttr(parts[0], 'n', &value)) {
    return Malformed("expected username attribute \"n=\"");
  }
  // The username is ignored: the user comes from the startup packet.
  if (parts.size() < 2 || !TakeAttr(parts[1], 'r', &value)) {
    return Malformed("expected nonce attribute \"r=\"");
  }
  if (!IsValidNonce(value)) {
    return Malformed("client nonce is empty or has non-printable characters");
  }
  const absl::string_view client_nonce = value;
  for (size_t i = 2; i < parts.size(); ++i) {
    if (!IsExtension(parts[i])) return Malformed("garbage after nonce");
  }

  if (server_nonce_.empty()) {
    WARDEN_ASSIGN_OR_RETURN(std::string raw, crypto::RandomBytes(kRawNonceLen));
    server_nonce_ = crypto::Base64Encode(raw);
  }
  client_first_bare_ = std::string(bare);
  nonce_ = absl::StrCat(client_nonce, server_nonce_);
  server_first_ =
      absl::StrCat("r=", nonce_, ",s=", crypto::Base64Encode(verifier_.salt),
                   ",i=", verifier_.iterations);
  state_ = State::kSentServerFirst;
  return server_first_;
}

absl::StatusOr<std::string> ScramServer::HandleClientFinal(
    absl::string_view client_final) {
  if (state_ != State::kSentServerFirst) {
    return absl::FailedPreconditionError(
        "SCRAM: client-final-message out of order");
  }
  state_ = State::kDone;

  std::vector<absl::string_view> parts = absl::StrSplit(client_final, ',');
  absl::string_view value;
  if (!TakeAttr(parts[0], 'c', &value)) {
    return Malformed("expected channel binding attribute \"c=\"");
  }
  if (value != crypto::Base64Encode(gs2_header_)) {
    return absl::InvalidArgumentError(
        "SCRAM: channel binding data (c=) does not match the gs2 header");
  }
  if (parts.size() < 2 || !TakeAttr(parts[1], 'r', &value)) {
    return Malformed("expected nonce attribute \"r=\"");
  }
  if (value != nonce_) {
    return absl::InvalidArgumentError("SCRAM: nonce (r=) mismatch");
  }
  for (size_t i = 2; i + 1 < parts.size(); ++i) {
    if (TakeAttr(parts[i], 'p', &value)) {
      return Malformed("proof \"p=\" must be the last attribute");
    }
    if (!IsExtension(parts[i])) return Malformed("garbage before proof");
  }
  if (parts.size() < 3 || !TakeAttr(parts.back(), 'p', &value)) {
    return Malformed("expected proof attribute \"p=\" at the end");
  }
  absl::StatusOr<std::string> proof = crypto::Base64Decode(value);
  if (!proof.ok() || proof->size() != kKeyLen) {
    return Malformed("proof is not 32 bytes of base64");
  }
  const absl::string_view without_proof =
      client_final.substr(0, client_final.size() - parts.back().size() - 1);

  const std::string auth_message =
      absl::StrCat(client_first_bare_, ",", server_first_, ",", without_proof);
  const std::string client_signature =
      crypto::HmacSha256(verifier_.stored_key, auth_message);
  const std::string client_key = Xor(*proof, client_signature);
  const bool match = crypto::ConstantTimeEquals(crypto::Sha256(client_key),
                                                verifier_.stored_key);
  if (!match || mock_) return absl::PermissionDeniedError(kAuthFailed);
  return absl::StrCat("v=", crypto::Base64Encode(crypto::HmacSha256(
                                verifier_.server_key, auth_message)));
}

// ---------------------------------------------------------------------------
// ScramClient

ScramClient::ScramClient(std::string password)
    : password_(std::move(password)) {
  absl::StatusOr<std::string> raw = crypto::RandomBytes(kRawNonceLen);
  if (raw.ok()) {
    nonce_ = crypto::Base64Encode(*raw);
  } else {
    init_status_ = raw.status();
  }
  client_first_bare_ = absl::StrCat("n=,r=", nonce_);
}

ScramClient::ScramClient(std::string password, std::string nonce,
                         std::string username)
    : password_(std::move(password)), nonce_(std::move(nonce)) {
  if (!IsValidNonce(nonce_)) {
    init_status_ = absl::InvalidArgumentError("SCRAM: invalid client nonce");
  }
  client_first_bare_ =
      absl::StrCat("n=", EscapeSaslName(username), ",r=", nonce_);
}

std::string ScramClient::ClientFirstMessage() const {
  return absl::StrCat("n,,", client_first_bare_);
}

absl::StatusOr<std::string> ScramClient::HandleServerFirst(
    absl::string_view server_first) {
  if (state_ != State::kInitial) {
    return absl::FailedPreconditionError(
        "SCRAM: server-first-message out of order");
  }
  state_ = State::kDone;
  WARDEN_RETURN_IF_ERROR(init_status_);

  std::vector<absl::string_view> parts = absl::StrSplit(server_first, ',');
  absl::string_view value;
  if (TakeAttr(parts[0], 'm', &value)) {
    return absl::InvalidArgumentError(
        "SCRAM: mandatory extensions (m=) are not supported");
  }
  if (!TakeAttr(parts[0], 'r', &value)) {
    return Malformed("expected nonce attribute \"r=\"");
  }
  const absl::string_view nonce = value;
  if (!IsValidNonce(nonce) || nonce.size() <= nonce_.size() ||
      !absl::StartsWith(nonce, nonce_)) {
    return absl::InvalidArgumentError(
        "SCRAM: server nonce does not extend the client nonce");
  }
  if (parts.size() < 2 || !TakeAttr(parts[1], 's', &value)) {
    return Malformed("expected salt attribute \"s=\"");
  }
  absl::StatusOr<std::string> salt = crypto::Base64Decode(value);
  if (!salt.ok() || salt->empty()) {
    return absl::InvalidArgumentError("SCRAM: salt is not non-empty base64");
  }
  if (parts.size() < 3 || !TakeAttr(parts[2], 'i', &value)) {
    return Malformed("expected iteration count attribute \"i=\"");
  }
  int iterations = 0;
  if (!ParseIterations(value, &iterations)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SCRAM: iteration count must be an integer in [1, ",
                     kScramMaxIterations, "]"));
  }
  for (size_t i = 3; i < parts.size(); ++i) {
    if (!IsExtension(parts[i])) return Malformed("garbage after i=");
  }

  const std::string without_proof =
      absl::StrCat("c=", crypto::Base64Encode("n,,"), ",r=", nonce);
  const std::string auth_message =
      absl::StrCat(client_first_bare_, ",", server_first, ",", without_proof);
  const std::string salted = SaltedPassword(password_, *salt, iterations);
  const std::string client_key = crypto::HmacSha256(salted, "Client Key");
  const std::string stored_key = crypto::Sha256(client_key);
  const std::string server_key = crypto::HmacSha256(salted, "Server Key");
  const std::string proof =
      Xor(client_key, crypto::HmacSha256(stored_key, auth_message));
  expected_server_signature_ = crypto::HmacSha256(server_key, auth_message);
  state_ = State::kSentClientFinal;
  return absl::StrCat(without_proof, ",p=", crypto::Base64Encode(proof));
}

namespace {

// PostgreSQL keeps one salt and iteration count per role, so every login
// of the proxy to it derives the same salted password: 4096 rounds of
// PBKDF2, most of a login's CPU. Kept per (password, salt, iterations),
// bounded; it holds nothing the proxy does not hold already (the password).
struct SaltedCache {
  absl::Mutex mu;
  absl::flat_hash_map<std::string, std::string> entries ABSL_GUARDED_BY(mu);
  std::atomic<uint64_t> hits{0};
};

SaltedCache& Cache() {
  static SaltedCache* cache = new SaltedCache();
  return *cache;
}

}  // namespace

std::string SaltedPassword(const std::string& password,
                           const std::string& salt, int iterations) {
  constexpr size_t kMaxEntries = 256;
  const std::string key = absl::StrCat(crypto::Sha256(password), salt, ":",
                                       iterations);
  SaltedCache& cache = Cache();
  {
    absl::MutexLock lock(&cache.mu);
    const auto it = cache.entries.find(key);
    if (it != cache.entries.end()) {
      cache.hits.fetch_add(1, std::memory_order_relaxed);
      return it->second;
    }
  }
  std::string salted = crypto::Pbkdf2HmacSha256(password, salt, iterations);
  absl::MutexLock lock(&cache.mu);
  // A server that changes salts at every login only costs itself the
  // derivation; the cache starts over rather than grow.
  if (cache.entries.size() >= kMaxEntries) cache.entries.clear();
  cache.entries.emplace(key, salted);
  return salted;
}

uint64_t SaltedPasswordCacheHits() {
  return Cache().hits.load(std::memory_order_relaxed);
}

absl::Status ScramClient::VerifyServerFinal(absl::string_view server_final) {
  if (state_ != State::kSentClientFinal) {
    return absl::FailedPreconditionError(
        "SCRAM: server-final-message out of order");
  }
  state_ = State::kDone;
  std::vector<absl::string_view> parts = absl::StrSplit(server_final, ',');
  absl::string_view value;
  if (TakeAttr(parts[0], 'e', &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SCRAM: server reported error: ", value));
  }
  if (!TakeAttr(parts[0], 'v', &value)) {
    return Malformed("expected verifier attribute \"v=\" or error \"e=\"");
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    if (!IsExtension(parts[i])) return Malformed("garbage after v=");
  }
  absl::StatusOr<std::string> signature = crypto::Base64Decode(value);
  if (!signature.ok()) return Malformed("server signature is not base64");
  if (!crypto::ConstantTimeEquals(*signature, expected_server_signature_)) {
    return absl::PermissionDeniedError(
        "SCRAM: server signature mismatch (server does not know the "
        "password)");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// md5

std::string Md5PasswordResponse(absl::string_view user,
                                absl::string_view password,
                                absl::string_view salt4) {
  const std::string inner =
      crypto::HexEncode(crypto::Md5(absl::StrCat(password, user)));
  return absl::StrCat(
      "md5", crypto::HexEncode(crypto::Md5(absl::StrCat(inner, salt4))));
}

}  // namespace warden::dataplane::auth
