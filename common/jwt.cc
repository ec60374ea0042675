#include "common/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/openssl_util.h"

namespace warden::jwt {
namespace {

using json = nlohmann::json;

// Tokens are small; anything bigger is not one (and is not decoded).
constexpr size_t kMaxTokenBytes = 16 * 1024;
constexpr size_t kMaxJwksBytes = 1024 * 1024;

struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};

// RFC 7515 base64url without padding; anything else is malformed.
bool Base64Url(absl::string_view in, std::string* out) {
  if (in.find('=') != absl::string_view::npos) return false;
  if (in.size() % 4 == 1) return false;
  return absl::WebSafeBase64Unescape(in, out);
}

const json* Member(const json& object, const char* name) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

std::string StringMember(const json& object, const char* name) {
  const json* v = Member(object, name);
  return v != nullptr && v->is_string() ? v->get<std::string>() : "";
}

// Builds an RSA public key from the JWK's n and e (big-endian unsigned).
absl::StatusOr<openssl::Pkey> RsaKey(const json& jwk) {
  std::string n, e;
  if (!Base64Url(StringMember(jwk, "n"), &n) || n.empty() ||
      !Base64Url(StringMember(jwk, "e"), &e) || e.empty()) {
    return absl::InvalidArgumentError("RSA key without valid n and e");
  }
  Bn bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                    static_cast<int>(n.size()), nullptr));
  Bn bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                    static_cast<int>(e.size()), nullptr));
  if (!bn_n || !bn_e) return absl::ResourceExhaustedError("out of memory");
  if (BN_num_bits(bn_n.get()) < 2048) {
    return absl::InvalidArgumentError(
        absl::StrCat("RSA key of ", BN_num_bits(bn_n.get()),
                     " bits (at least 2048 required)"));
  }
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
    return absl::ResourceExhaustedError("out of memory");
  }
  std::unique_ptr<OSSL_PARAM, ParamFree> params(
      OSSL_PARAM_BLD_to_param(bld.get()));
  openssl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) <=
          0) {
    ERR_clear_error();
    return absl::InvalidArgumentError("RSA key OpenSSL does not accept");
  }
  return openssl::Pkey(key);
}

// Builds a P-256 public key from the JWK's x and y (32 bytes each).
absl::StatusOr<openssl::Pkey> EcKey(const json& jwk) {
  if (StringMember(jwk, "crv") != "P-256") {
    return absl::InvalidArgumentError(
        absl::StrCat("EC curve '", StringMember(jwk, "crv"),
                     "' (only P-256, for ES256)"));
  }
  std::string x, y;
  if (!Base64Url(StringMember(jwk, "x"), &x) || x.size() != 32 ||
      !Base64Url(StringMember(jwk, "y"), &y) || y.size() != 32) {
    return absl::InvalidArgumentError("EC key without 32-byte x and y");
  }
  const std::string point = absl::StrCat("\x04", x, y);  // uncompressed
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                       "prime256v1", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                        point.data(), point.size())) {
    return absl::ResourceExhaustedError("out of memory");
  }
  std::unique_ptr<OSSL_PARAM, ParamFree> params(
      OSSL_PARAM_BLD_to_param(bld.get()));
  openssl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) <=
          0) {
    ERR_clear_error();
    return absl::InvalidArgumentError("EC point not on P-256");
  }
  openssl::Pkey owned(key);
  // fromdata does not check that the point is on the curve; a public-key
  // check does.
  openssl::PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("EC point not on P-256");
  }
  return owned;
}

// ES256 signatures are r || s (32 bytes each); OpenSSL verifies DER.
bool EcdsaDer(absl::string_view raw, std::string* der) {
  if (raw.size() != 64) return false;
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32,
                        nullptr);
  BIGNUM* s = BN_bin2bn(
      reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  if (!sig || r == nullptr || s == nullptr ||
      ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  unsigned char* out = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &out);
  if (len <= 0) return false;
  der->assign(reinterpret_cast<char*>(out), static_cast<size_t>(len));
  OPENSSL_free(out);
  return true;
}

bool VerifySignature(const Key& key, absl::string_view input,
                     absl::string_view signature) {
  std::string der;
  if (key.alg == kEs256) {
    if (!EcdsaDer(signature, &der)) return false;
    signature = der;
  }
  openssl::MdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY* pkey = static_cast<EVP_PKEY*>(key.pkey.get());
  const bool ok =
      ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                                  pkey) == 1 &&
      EVP_DigestVerify(ctx.get(),
                       reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(),
                       reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) == 1;
  ERR_clear_error();
  return ok;
}

absl::Status Refuse(absl::string_view why) {
  return absl::UnauthenticatedError(why);
}

// A header value read before the signature was checked, as a refusal may
// quote it: anyone can write it, so it is capped, escaped (no newline or
// control byte reaches a log line) and the caller labels it unverified.
std::string Unverified(absl::string_view value) {
  constexpr size_t kMaxShown = 64;
  if (value.size() <= kMaxShown) return absl::CHexEscape(value);
  return absl::StrCat(absl::CHexEscape(value.substr(0, kMaxShown)), "...(",
                      value.size(), " bytes)");
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

// A NumericDate claim; absent is ok (false), present but not a number is
// an error.
absl::StatusOr<bool> TimeClaim(const json& payload, const char* name,
                               absl::Time* out) {
  const json* v = Member(payload, name);
  if (v == nullptr) return false;
  if (!v->is_number()) {
    return Refuse(absl::StrCat("claim '", name, "' is not a number"));
  }
  const double seconds = v->get<double>();
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e11) {
    return Refuse(absl::StrCat("claim '", name, "' is out of range"));
  }
  *out = absl::FromUnixSeconds(static_cast<int64_t>(seconds));
  return true;
}

}  // namespace

absl::StatusOr<KeySet> KeySet::FromJwks(absl::string_view text) {
  if (text.size() > kMaxJwksBytes) {
    return absl::InvalidArgumentError("JWKS larger than 1 MiB");
  }
  const json doc = json::parse(text.begin(), text.end(), nullptr, false);
  const json* keys = Member(doc, "keys");
  if (doc.is_discarded() || keys == nullptr || !keys->is_array()) {
    return absl::InvalidArgumentError(
        "not a JWKS document (expected {\"keys\": [...]})");
  }
  KeySet set;
  for (size_t i = 0; i < keys->size(); ++i) {
    const json& jwk = (*keys)[i];
    const std::string kid = StringMember(jwk, "kid");
    const std::string name =
        kid.empty() ? absl::StrCat("key ", i) : absl::StrCat("key '", kid, "'");
    const std::string kty = StringMember(jwk, "kty");
    const std::string use = StringMember(jwk, "use");
    const std::string alg = StringMember(jwk, "alg");
    if (!use.empty() && use != "sig") {
      set.skipped_.push_back(absl::StrCat(name, ": use '", use, "'"));
      continue;
    }
    absl::StatusOr<openssl::Pkey> pkey;
    std::string key_alg;
    if (kty == "RSA") {
      key_alg = std::string(kRs256);
      pkey = RsaKey(jwk);
    } else if (kty == "EC") {
      key_alg = std::string(kEs256);
      pkey = EcKey(jwk);
    } else {
      set.skipped_.push_back(
          absl::StrCat(name, ": key type '", kty, "' (RSA and EC only)"));
      continue;
    }
    if (!alg.empty() && alg != key_alg) {
      set.skipped_.push_back(absl::StrCat(name, ": algorithm '", alg,
                                          "' (RS256 and ES256 only)"));
      continue;
    }
    if (!pkey.ok()) {
      set.skipped_.push_back(
          absl::StrCat(name, ": ", pkey.status().message()));
      continue;
    }
    EVP_PKEY* raw = pkey->release();
    set.keys_.push_back(Key{kid, key_alg,
                            std::shared_ptr<void>(raw, [](void* p) {
                              EVP_PKEY_free(static_cast<EVP_PKEY*>(p));
                            })});
  }
  if (set.keys_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "JWKS has no usable signing key",
        set.skipped_.empty() ? ""
                             : " (" + absl::StrJoin(set.skipped_, "; ") + ")"));
  }
  return set;
}

const Key* KeySet::Find(absl::string_view kid) const {
  if (kid.empty()) return keys_.size() == 1 ? &keys_[0] : nullptr;
  for (const Key& k : keys_) {
    if (k.kid == kid) return &k;
  }
  return nullptr;
}

std::string Claims::String(const std::string& name) const {
  const auto it = strings.find(name);
  return it == strings.end() ? "" : it->second;
}

std::vector<std::string> Claims::List(const std::string& name) const {
  if (const auto it = string_lists.find(name); it != string_lists.end()) {
    return it->second;
  }
  if (const auto it = strings.find(name); it != strings.end()) {
    return {it->second};
  }
  return {};
}

absl::StatusOr<Parts> Split(absl::string_view token) {
  if (token.size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError("token longer than 16 KiB");
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == absl::string_view::npos
                          ? absl::string_view::npos
                          : token.find('.', dot1 + 1);
  if (dot2 == absl::string_view::npos ||
      token.find('.', dot2 + 1) != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "not a signed JWT (expected header.payload.signature)");
  }
  Parts parts;
  if (!Base64Url(token.substr(0, dot1), &parts.header_json) ||
      !Base64Url(token.substr(dot1 + 1, dot2 - dot1 - 1),
                 &parts.payload_json) ||
      !Base64Url(token.substr(dot2 + 1), &parts.signature)) {
    return absl::InvalidArgumentError("token is not base64url");
  }
  parts.signing_input = std::string(token.substr(0, dot2));
  return parts;
}

absl::StatusOr<std::string> PeekIssuer(absl::string_view token) {
  auto parts = Split(token);
  if (!parts.ok()) return parts.status();
  const json payload =
      json::parse(parts->payload_json, nullptr, /*allow_exceptions=*/false);
  if (payload.is_discarded() || !payload.is_object()) {
    return absl::InvalidArgumentError("token payload is not a JSON object");
  }
  return StringMember(payload, "iss");
}

std::string PeekClaim(absl::string_view token,
                      std::initializer_list<const char*> names) {
  auto parts = Split(token);
  if (!parts.ok()) return "";
  const json payload =
      json::parse(parts->payload_json, nullptr, /*allow_exceptions=*/false);
  if (payload.is_discarded() || !payload.is_object()) return "";
  for (const char* name : names) {
    std::string value = StringMember(payload, name);
    if (!value.empty()) return value;
  }
  return "";
}

absl::StatusOr<Claims> Verify(absl::string_view token, const KeySet& keys,
                              const VerifyOptions& options) {
  auto parts = Split(token);
  if (!parts.ok()) return Refuse(parts.status().message());
  const json header =
      json::parse(parts->header_json, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return Refuse("token header is not a JSON object");
  }
  const std::string alg = StringMember(header, "alg");
  if (std::find(options.algorithms.begin(), options.algorithms.end(), alg) ==
          options.algorithms.end() ||
      (alg != kRs256 && alg != kEs256)) {
    return Refuse(absl::StrCat(
        "algorithm '", Unverified(alg), "' is not allowed (allowed: ",
        absl::StrJoin(options.algorithms, ", "),
        "; the algorithm is the token's unverified header value)"));
  }
  if (Member(header, "crit") != nullptr) {
    return Refuse("token has critical header extensions Warden does not know");
  }
  const std::string kid = StringMember(header, "kid");
  const Key* key = keys.Find(kid);
  if (key == nullptr) {
    return Refuse(kid.empty()
                      ? std::string("token names no key id (kid) and the "
                                    "provider has several keys")
                      : absl::StrCat("unknown key id '", Unverified(kid),
                                     "' (the token's unverified header "
                                     "value; not in the provider's key set)"));
  }
  if (key->alg != alg) {
    return Refuse(absl::StrCat("key '", key->kid, "' is for ", key->alg,
                               ", the token says ", alg));
  }
  if (!VerifySignature(*key, parts->signing_input, parts->signature)) {
    return Refuse(absl::StrCat("signature does not verify with key '",
                               key->kid, "'"));
  }

  // Signed by the provider: now what it says.
  const json payload =
      json::parse(parts->payload_json, nullptr, /*allow_exceptions=*/false);
  if (payload.is_discarded() || !payload.is_object()) {
    return Refuse("token payload is not a JSON object");
  }
  Claims claims;
  claims.key_id = key->kid;
  claims.algorithm = alg;
  claims.issuer = StringMember(payload, "iss");
  claims.subject = StringMember(payload, "sub");
  if (claims.issuer != options.issuer) {
    return Refuse(absl::StrCat("issuer '", claims.issuer, "' is not '",
                               options.issuer, "'"));
  }
  std::vector<std::string> audiences;
  if (const json* aud = Member(payload, "aud")) {
    if (aud->is_string()) {
      audiences.push_back(aud->get<std::string>());
    } else if (aud->is_array()) {
      for (const json& a : *aud) {
        if (a.is_string()) audiences.push_back(a.get<std::string>());
      }
    }
  }
  const bool audience_ok = std::any_of(
      audiences.begin(), audiences.end(), [&](const std::string& a) {
        return std::find(options.audiences.begin(), options.audiences.end(),
                         a) != options.audiences.end();
      });
  if (!audience_ok) {
    return Refuse(absl::StrCat(
        "audience '", absl::StrJoin(audiences, ", "), "' is not one of '",
        absl::StrJoin(options.audiences, ", "), "'"));
  }
  const absl::Time now =
      options.now == absl::InfinitePast() ? absl::Now() : options.now;
  absl::Time exp, nbf, iat;
  auto has_exp = TimeClaim(payload, "exp", &exp);
  if (!has_exp.ok()) return has_exp.status();
  if (!*has_exp) return Refuse("token has no expiry (exp)");
  if (now > exp + options.clock_skew) {
    return Refuse(absl::StrCat("token expired at ", Rfc3339(exp)));
  }
  auto has_nbf = TimeClaim(payload, "nbf", &nbf);
  if (!has_nbf.ok()) return has_nbf.status();
  if (*has_nbf && now + options.clock_skew < nbf) {
    return Refuse(absl::StrCat("token not valid before ", Rfc3339(nbf)));
  }
  auto has_iat = TimeClaim(payload, "iat", &iat);
  if (!has_iat.ok()) return has_iat.status();
  if (*has_iat && now + options.clock_skew < iat) {
    return Refuse(absl::StrCat("token issued in the future (",
                               Rfc3339(iat), ")"));
  }
  if (options.max_lifetime > absl::ZeroDuration()) {
    const absl::Time from = *has_iat ? iat : now;
    if (exp - from > options.max_lifetime + options.clock_skew) {
      return Refuse(absl::StrCat(
          "token lives ", absl::FormatDuration(exp - from), ", longer than ",
          absl::FormatDuration(options.max_lifetime), " allowed"));
    }
  }
  claims.expires = exp;
  if (*has_iat) {
    claims.issued = iat;
  } else if (options.max_lifetime > absl::ZeroDuration()) {
    claims.issued = exp - options.max_lifetime - options.clock_skew;
  }
  for (auto it = payload.begin(); it != payload.end(); ++it) {
    if (it.value().is_string()) {
      claims.strings[it.key()] = it.value().get<std::string>();
    } else if (it.value().is_array()) {
      std::vector<std::string> list;
      for (const json& v : it.value()) {
        if (v.is_string()) list.push_back(v.get<std::string>());
      }
      claims.string_lists[it.key()] = std::move(list);
    } else if (it.value().is_boolean()) {
      claims.strings[it.key()] = it.value().get<bool>() ? "true" : "false";
    } else {
      claims.other_types.insert(it.key());
    }
  }
  return claims;
}

}  // namespace warden::jwt
