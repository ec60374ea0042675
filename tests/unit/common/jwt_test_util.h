// Test identity provider keys: RSA and EC keys generated at test time, their
// JWKs, and tokens signed with them (OpenSSL). Never committed, never
// reused between runs.
#ifndef WARDEN_TESTS_UNIT_JWT_TEST_UTIL_H_
#define WARDEN_TESTS_UNIT_JWT_TEST_UTIL_H_

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace warden::jwt::testing {

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

inline std::string B64(const std::string& s) {
  return absl::WebSafeBase64Escape(s);  // unpadded
}

inline std::string BnBytes(EVP_PKEY* key, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(key, name, &bn);
  std::string out(pad > 0 ? pad : BN_num_bytes(bn), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()),
               static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

inline PkeyPtr NewRsa(int bits = 2048) {
  return PkeyPtr(EVP_RSA_gen(bits));
}

inline PkeyPtr NewEc() { return PkeyPtr(EVP_EC_gen("P-256")); }

inline nlohmann::json RsaJwk(EVP_PKEY* key, const std::string& kid) {
  return {{"kty", "RSA"},
          {"kid", kid},
          {"use", "sig"},
          {"alg", "RS256"},
          {"n", B64(BnBytes(key, OSSL_PKEY_PARAM_RSA_N))},
          {"e", B64(BnBytes(key, OSSL_PKEY_PARAM_RSA_E))}};
}

inline nlohmann::json EcJwk(EVP_PKEY* key, const std::string& kid) {
  return {{"kty", "EC"},
          {"kid", kid},
          {"crv", "P-256"},
          {"x", B64(BnBytes(key, OSSL_PKEY_PARAM_EC_PUB_X, 32))},
          {"y", B64(BnBytes(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32))}};
}

// Signs `input` as RS256 or ES256 (raw r||s), with OpenSSL.
inline std::string Sign(EVP_PKEY* key, const std::string& alg,
                        const std::string& input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  EVP_DigestSign(ctx, nullptr, &len,
                 reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  EVP_MD_CTX_free(ctx);
  sig.resize(len);
  if (alg != "ES256") return sig;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(&raw[0]),
               32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es),
               reinterpret_cast<unsigned char*>(&raw[32]), 32);
  ECDSA_SIG_free(es);
  return raw;
}

inline std::string Token(EVP_PKEY* key, const nlohmann::json& header,
                         const nlohmann::json& payload) {
  const std::string input =
      absl::StrCat(B64(header.dump()), ".", B64(payload.dump()));
  return absl::StrCat(input, ".",
                      B64(Sign(key, header.value("alg", ""), input)));
}

// HS256 over the input with `secret` (the attack: the public key as an
// HMAC secret).
inline std::string HmacToken(const std::string& secret,
                             const nlohmann::json& header,
                             const nlohmann::json& payload) {
  const std::string input =
      absl::StrCat(B64(header.dump()), ".", B64(payload.dump()));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
       &len);
  return absl::StrCat(input, ".",
                      B64(std::string(reinterpret_cast<char*>(mac), len)));
}

}  // namespace warden::jwt::testing

#endif  // WARDEN_TESTS_UNIT_JWT_TEST_UTIL_H_
