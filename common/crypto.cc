#include "common/crypto.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "common/openssl_util.h"
#include "common/status_macros.h"

namespace warden::crypto {

namespace {

// OpenSSL 3's one-shot SHA256() looks the algorithm up by name in the
// provider store on every call (a lock and string compares, as much as
// hashing 300 bytes); the audit log hashes several times per event. So
// the implementation is fetched once and each thread keeps a context.
const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

struct ThreadMdCtx {
  ThreadMdCtx() : ctx(EVP_MD_CTX_new()) {}
  ~ThreadMdCtx() { EVP_MD_CTX_free(ctx); }
  EVP_MD_CTX* const ctx;
};

}  // namespace

std::string Sha256Concat(std::initializer_list<absl::string_view> parts) {
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  thread_local ThreadMdCtx local;
  EVP_MD_CTX* ctx = local.ctx;
  bool ok = ctx != nullptr && EVP_DigestInit_ex2(ctx, Sha256Md(), nullptr) == 1;
  for (absl::string_view part : parts) {
    ok = ok && EVP_DigestUpdate(ctx, part.data(), part.size()) == 1;
  }
  unsigned int len = 0;
  ok = ok && EVP_DigestFinal_ex(
                 ctx, reinterpret_cast<unsigned char*>(out.data()), &len) == 1;
  if (!ok || len != SHA256_DIGEST_LENGTH) {
    // Only without memory for a context: the one-shot call, as before.
    ERR_clear_error();
    std::string all;
    for (absl::string_view part : parts) all.append(part.data(), part.size());
    SHA256(reinterpret_cast<const unsigned char*>(all.data()), all.size(),
           reinterpret_cast<unsigned char*>(out.data()));
  }
  return out;
}

std::string Sha256(absl::string_view data) { return Sha256Concat({data}); }

std::string Md5(absl::string_view data) {
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(),
                 reinterpret_cast<unsigned char*>(out.data()), &len, EVP_md5(),
                 nullptr) != 1) {
    len = 0;  // MD5 unavailable (e.g. FIPS-only provider): empty digest.
  }
  out.resize(len);
  return out;
}

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       reinterpret_cast<unsigned char*>(out.data()), &len);
  out.resize(len);
  return out;
}

std::string Pbkdf2HmacSha256(absl::string_view password, absl::string_view salt,
                             int iterations, int length) {
  std::string out(length, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(),
                    length, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                 static_cast<int>(n)) != 1) {
    return absl::InternalError("OpenSSL RAND_bytes failed");
  }
  return out;
}

std::string Base64Encode(absl::string_view data) {
  return absl::Base64Escape(data);
}

absl::StatusOr<std::string> Base64Decode(absl::string_view text) {
  std::string out;
  if (text.size() % 4 != 0 || !absl::Base64Unescape(text, &out)) {
    return absl::InvalidArgumentError("invalid base64");
  }
  return out;
}

std::string HexEncode(absl::string_view data) {
  return absl::BytesToHexString(data);
}

namespace {

constexpr size_t kEd25519KeyBytes = 32;
constexpr size_t kEd25519SignatureBytes = 64;

using openssl::MdCtx;
using openssl::Pkey;
using openssl::PkeyCtx;
using openssl::PrivatePem;
using openssl::PublicPem;

absl::StatusOr<Pkey> LoadPrivate(absl::string_view pem) {
  Pkey key = openssl::ReadPrivateKey(pem);
  if (key == nullptr || EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError(
        "not an unencrypted Ed25519 PEM private key (PKCS#8)");
  }
  return key;
}

absl::StatusOr<Pkey> LoadPublic(absl::string_view pem) {
  Pkey key = openssl::ReadPublicKey(pem);
  if (key == nullptr || EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("not an Ed25519 PEM public key");
  }
  return key;
}

}  // namespace

absl::StatusOr<Ed25519KeyPair> GenerateEd25519Key() {
  PkeyCtx ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  EVP_PKEY* raw = nullptr;
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    return absl::InternalError("OpenSSL Ed25519 key generation failed");
  }
  Pkey key(raw);
  Ed25519KeyPair pair;
  WARDEN_ASSIGN_OR_RETURN(pair.private_pem, PrivatePem(key.get()));
  WARDEN_ASSIGN_OR_RETURN(pair.public_pem, PublicPem(key.get()));
  return pair;
}

absl::StatusOr<std::string> Ed25519PrivateKeyFromRaw(absl::string_view seed) {
  if (seed.size() != kEd25519KeyBytes) {
    return absl::InvalidArgumentError("a raw Ed25519 secret key is 32 bytes");
  }
  Pkey key(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(seed.data()), seed.size()));
  if (key == nullptr) {
    return absl::InternalError("OpenSSL rejected the raw Ed25519 key");
  }
  return PrivatePem(key.get());
}

absl::StatusOr<std::string> Ed25519PublicKeyFromRaw(absl::string_view raw) {
  if (raw.size() != kEd25519KeyBytes) {
    return absl::InvalidArgumentError("a raw Ed25519 public key is 32 bytes");
  }
  Pkey key(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(raw.data()), raw.size()));
  if (key == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("OpenSSL rejected the raw Ed25519 key");
  }
  return PublicPem(key.get());
}

absl::StatusOr<std::string> Ed25519PublicKeyFromPrivate(
    absl::string_view private_pem) {
  WARDEN_ASSIGN_OR_RETURN(Pkey key, LoadPrivate(private_pem));
  return PublicPem(key.get());
}

absl::StatusOr<std::string> Ed25519RawPublicKey(absl::string_view public_pem) {
  WARDEN_ASSIGN_OR_RETURN(Pkey key, LoadPublic(public_pem));
  std::string raw(kEd25519KeyBytes, '\0');
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(
          key.get(), reinterpret_cast<unsigned char*>(raw.data()), &len) != 1 ||
      len != kEd25519KeyBytes) {
    return absl::InternalError("OpenSSL could not export the public key");
  }
  return raw;
}

namespace {

absl::StatusOr<std::string> SignWith(EVP_PKEY* key, absl::string_view message) {
  MdCtx ctx(EVP_MD_CTX_new());
  std::string signature(kEd25519SignatureBytes, '\0');
  size_t len = signature.size();
  // Ed25519 is one-shot (no digest: the message is hashed by the scheme).
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(),
                     reinterpret_cast<unsigned char*>(signature.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1 ||
      len != kEd25519SignatureBytes) {
    ERR_clear_error();
    return absl::InternalError("OpenSSL Ed25519 signing failed");
  }
  return signature;
}

}  // namespace

absl::StatusOr<std::string> Ed25519Sign(absl::string_view private_pem,
                                        absl::string_view message) {
  WARDEN_ASSIGN_OR_RETURN(Pkey key, LoadPrivate(private_pem));
  return SignWith(key.get(), message);
}

absl::StatusOr<Ed25519Signer> Ed25519Signer::FromPem(
    absl::string_view private_pem) {
  WARDEN_ASSIGN_OR_RETURN(Pkey key, LoadPrivate(private_pem));
  std::string raw(kEd25519KeyBytes, '\0');
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(
          key.get(), reinterpret_cast<unsigned char*>(raw.data()), &len) != 1 ||
      len != kEd25519KeyBytes) {
    ERR_clear_error();
    return absl::InternalError("OpenSSL could not export the public key");
  }
  Ed25519Signer signer;
  signer.key_ = std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free);
  signer.raw_public_key_ = std::move(raw);
  return signer;
}

absl::StatusOr<std::string> Ed25519Signer::Sign(
    absl::string_view message) const {
  if (key_ == nullptr) return absl::FailedPreconditionError("no signing key");
  return SignWith(key_.get(), message);
}

absl::Status Ed25519Verify(absl::string_view public_pem,
                           absl::string_view message,
                           absl::string_view signature) {
  WARDEN_ASSIGN_OR_RETURN(Pkey key, LoadPublic(public_pem));
  if (signature.size() != kEd25519SignatureBytes) {
    return absl::PermissionDeniedError(
        "Ed25519 signature does not verify (not 64 bytes)");
  }
  MdCtx ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr,
                                             nullptr, key.get()) != 1) {
    return absl::InternalError("OpenSSL Ed25519 verification setup failed");
  }
  if (EVP_DigestVerify(ctx.get(),
                       reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(),
                       reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1) {
    ERR_clear_error();
    return absl::PermissionDeniedError("Ed25519 signature does not verify");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Ed25519KeyId(absl::string_view public_pem) {
  WARDEN_ASSIGN_OR_RETURN(std::string raw, Ed25519RawPublicKey(public_pem));
  return HexEncode(Sha256(raw)).substr(0, 16);
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace warden::crypto
