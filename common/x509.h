// X.509 through OpenSSL: the keys, certificate requests and certificates of
// Warden's own certificate authority (warden-control issues proxies their
// client certificates and, when no other is given, its own server
// certificate). Nothing here implements cryptography; it adapts OpenSSL's
// X509/X509_REQ/EVP_PKEY API to PEM strings and absl types.
//
// Keys are ECDSA P-256 (the curve every TLS stack, gRPC's included,
// accepts for both ends), PEM PKCS#8 unencrypted. Signatures use SHA-256.
//
// Errors: malformed PEM or a request whose self-signature does not verify
// is InvalidArgument; a certificate that does not chain to the given CA, or
// is outside its validity, is PermissionDenied; OpenSSL failures otherwise
// are Internal.
#ifndef WARDEN_COMMON_X509_H_
#define WARDEN_COMMON_X509_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace warden::x509 {

// GenerateKey() returns a fresh P-256 private key (PEM).
absl::StatusOr<std::string> GenerateKey();

// PrivateKeyDer(key_pem) returns the key as unencrypted PKCS#8 DER, the
// form Java's PostgreSQL driver (JDBC `sslkey`) reads.
absl::StatusOr<std::string> PrivateKeyDer(absl::string_view key_pem);

// MakeRequest(key_pem, common_name) returns a PKCS#10 certificate request
// (PEM) signed by the key: the proof that the requester holds it.
absl::StatusOr<std::string> MakeRequest(absl::string_view key_pem,
                                        absl::string_view common_name);

// RequestPublicKey(csr_pem) verifies the request's self-signature and
// returns its public key (PEM). InvalidArgument if it does not verify.
absl::StatusOr<std::string> RequestPublicKey(absl::string_view csr_pem);

// What a certificate says about its subject; also what Issue writes.
struct Subject {
  std::string common_name;
  std::vector<std::string> uris;  // URI subjectAltNames
  std::vector<std::string> dns;   // DNS subjectAltNames
  std::vector<std::string> ips;   // IP subjectAltNames, textual
};

enum class Usage {
  kCertificateAuthority,  // basicConstraints CA:TRUE, keyCertSign, cRLSign
  kClientAuth,            // digitalSignature, extendedKeyUsage clientAuth
  kServerAuth,            // digitalSignature, extendedKeyUsage serverAuth
};

// MakeSelfSigned returns a self-signed CA certificate for `key_pem`, valid
// from shortly before `now` (a minute, or a tenth of `validity` if less: the
// clock skew allowance) until `now + validity`.
absl::StatusOr<std::string> MakeSelfSignedCa(absl::string_view key_pem,
                                             const Subject& subject,
                                             absl::Time now,
                                             absl::Duration validity);

// Issue signs a certificate for `public_key_pem` with the CA's key, naming
// `subject` with `usage`, valid like MakeSelfSignedCa's (but never beyond
// the CA's own notAfter), with a random 128-bit serial.
absl::StatusOr<std::string> Issue(absl::string_view ca_cert_pem,
                                  absl::string_view ca_key_pem,
                                  absl::string_view public_key_pem,
                                  const Subject& subject, Usage usage,
                                  absl::Time now, absl::Duration validity);

// A parsed certificate.
struct Certificate {
  Subject subject;
  std::string issuer_common_name;
  std::string serial_hex;  // upper-case hex, as `openssl x509 -serial`
  absl::Time not_before;
  absl::Time not_after;
  std::string public_key_pem;
};

// Parse reads the first certificate of a PEM chain.
absl::StatusOr<Certificate> Parse(absl::string_view cert_pem);

// Verify checks that `cert_pem` chains to `ca_cert_pem` and is valid at
// `now`; with `client_auth`, also that it may authenticate a TLS client
// (its extendedKeyUsage, when present, includes clientAuth). PermissionDenied
// with OpenSSL's reason otherwise.
enum class Purpose { kAny, kClientAuth };
absl::Status Verify(absl::string_view cert_pem, absl::string_view ca_cert_pem,
                    absl::Time now, Purpose purpose = Purpose::kAny);

// A CA certificate parsed once, to check many certificates against: the
// proxy checks every client certificate with one. With OpenSSL 3 each
// decode of a certificate costs a few hundred microseconds (its public
// key goes through the provider decoders), so a login decodes the
// client's certificate once and the CA never. Thread-safe.
class Anchor {
 public:
  static absl::StatusOr<std::shared_ptr<const Anchor>> FromPem(
      absl::string_view ca_pem);
  ~Anchor();

  // Verify and Parse in one decode of `cert_pem`; the Certificate's
  // public_key_pem is left empty (encoding it costs as much again).
  absl::StatusOr<Certificate> VerifyAndParse(absl::string_view cert_pem,
                                             absl::Time now,
                                             Purpose purpose) const;

 private:
  Anchor();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// KeyMatchesCertificate: whether `key_pem` is the private half of the
// certificate's public key.
bool KeyMatchesCertificate(absl::string_view key_pem,
                           absl::string_view cert_pem);

}  // namespace warden::x509

#endif  // WARDEN_COMMON_X509_H_
