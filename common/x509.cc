#include "common/x509.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/openssl_util.h"
#include "common/tls.h"

namespace warden::x509 {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using openssl::Bio;
using openssl::Pkey;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES,
                                 Deleter<GENERAL_NAMES, GENERAL_NAMES_free>>;
using StorePtr =
    std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX,
                                    Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

absl::Status Internal(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", tls::ErrorString()));
}

absl::StatusOr<Pkey> LoadPrivateKey(absl::string_view pem) {
  Pkey key = openssl::ReadPrivateKey(pem);
  if (key == nullptr) return absl::InvalidArgumentError("not a PEM private key");
  return key;
}

absl::StatusOr<Pkey> LoadPublicKey(absl::string_view pem) {
  Pkey key = openssl::ReadPublicKey(pem);
  if (key == nullptr) return absl::InvalidArgumentError("not a PEM public key");
  return key;
}

absl::StatusOr<CertPtr> LoadCert(absl::string_view pem) {
  Bio bio = openssl::ReadBio(pem);
  CertPtr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM certificate");
  }
  return cert;
}

absl::StatusOr<std::string> CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(bio.get(), cert) != 1) return Internal("certificate");
  return openssl::DrainBio(bio.get());
}

absl::Time FromAsn1(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTM(tm, absl::UTCTimeZone());
}

std::string CommonName(const X509_NAME* name) {
  const int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (i < 0) return "";
  const ASN1_STRING* data =
      X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), n);
  OPENSSL_free(utf8);
  return out;
}

absl::Status AddGeneralName(GENERAL_NAMES* names, int type,
                            const std::string& value) {
  GENERAL_NAME* name = nullptr;
  if (type == GEN_IPADD) {
    ASN1_OCTET_STRING* ip = a2i_IPADDRESS(value.c_str());
    if (ip == nullptr) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("not an IP address: ", value));
    }
    name = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(name, GEN_IPADD, ip);
  } else {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    ASN1_STRING_set(s, value.data(), static_cast<int>(value.size()));
    name = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(name, type, s);
  }
  sk_GENERAL_NAME_push(names, name);
  return absl::OkStatus();
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid,
                          const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return Internal(absl::StrCat("extension ", value));
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return Internal("add extension");
  return absl::OkStatus();
}

// Builds and signs a certificate; `issuer` null means self-signed.
absl::StatusOr<std::string> Build(X509* issuer, EVP_PKEY* signing_key,
                                  EVP_PKEY* subject_key, const Subject& subject,
                                  Usage usage, absl::Time now,
                                  absl::Duration validity) {
  CertPtr cert(X509_new());
  X509_set_version(cert.get(), 2);  // v3
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) {
    return Internal("serial");
  }
  serial_bytes[0] &= 0x7f;  // positive
  serial_bytes[0] |= 0x01;  // and 16 bytes long
  BnPtr bn(BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr));
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()));

  // Backdated for clock skew between issuer and verifier: a minute, or a
  // tenth of the lifetime for short-lived certificates.
  const absl::Time not_before =
      now - std::min(absl::Minutes(1), validity / 10);
  absl::Time not_after = now + validity;
  if (issuer != nullptr) {
    const absl::Time ca_end = FromAsn1(X509_get0_notAfter(issuer));
    if (not_after > ca_end) not_after = ca_end;
  }
  ASN1_TIME_set(X509_getm_notBefore(cert.get()),
                absl::ToTimeT(not_before));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(not_after));

  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(
      name, "O", MBSTRING_UTF8,
      reinterpret_cast<const unsigned char*>("Warden"), -1, -1, 0);
  if (!subject.common_name.empty()) {
    X509_NAME_add_entry_by_txt(
        name, "CN", MBSTRING_UTF8,
        reinterpret_cast<const unsigned char*>(subject.common_name.c_str()),
        -1, -1, 0);
  }
  X509_set_issuer_name(cert.get(), issuer != nullptr
                                       ? X509_get_subject_name(issuer)
                                       : name);
  if (X509_set_pubkey(cert.get(), subject_key) != 1) return Internal("pubkey");

  X509* ext_issuer = issuer != nullptr ? issuer : cert.get();
  switch (usage) {
    case Usage::kCertificateAuthority:
      if (auto s = AddExtension(cert.get(), ext_issuer,
                                NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
          !s.ok()) {
        return s;
      }
      if (auto s = AddExtension(cert.get(), ext_issuer, NID_key_usage,
                                "critical,keyCertSign,cRLSign");
          !s.ok()) {
        return s;
      }
      break;
    case Usage::kClientAuth:
    case Usage::kServerAuth:
      if (auto s = AddExtension(cert.get(), ext_issuer,
                                NID_basic_constraints, "critical,CA:FALSE");
          !s.ok()) {
        return s;
      }
      if (auto s = AddExtension(cert.get(), ext_issuer, NID_key_usage,
                                "critical,digitalSignature");
          !s.ok()) {
        return s;
      }
      if (auto s = AddExtension(
              cert.get(), ext_issuer, NID_ext_key_usage,
              usage == Usage::kClientAuth ? "clientAuth" : "serverAuth");
          !s.ok()) {
        return s;
      }
      break;
  }
  if (auto s = AddExtension(cert.get(), ext_issuer,
                            NID_subject_key_identifier, "hash");
      !s.ok()) {
    return s;
  }
  if (issuer != nullptr) {
    if (auto s = AddExtension(cert.get(), ext_issuer,
                              NID_authority_key_identifier, "keyid:always");
        !s.ok()) {
      return s;
    }
  }
  if (!subject.uris.empty() || !subject.dns.empty() || !subject.ips.empty()) {
    NamesPtr names(sk_GENERAL_NAME_new_null());
    for (const auto& u : subject.uris) {
      if (auto s = AddGeneralName(names.get(), GEN_URI, u); !s.ok()) return s;
    }
    for (const auto& d : subject.dns) {
      if (auto s = AddGeneralName(names.get(), GEN_DNS, d); !s.ok()) return s;
    }
    for (const auto& ip : subject.ips) {
      if (auto s = AddGeneralName(names.get(), GEN_IPADD, ip); !s.ok()) {
        return s;
      }
    }
    if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), 0,
                          X509V3_ADD_DEFAULT) != 1) {
      return Internal("subjectAltName");
    }
  }
  if (X509_sign(cert.get(), signing_key, EVP_sha256()) <= 0) {
    return Internal("sign certificate");
  }
  return CertPem(cert.get());
}

}  // namespace

absl::StatusOr<std::string> GenerateKey() {
  Pkey key(EVP_EC_gen("P-256"));
  if (key == nullptr) return Internal("generate P-256 key");
  return openssl::PrivatePem(key.get());
}

absl::StatusOr<std::string> PrivateKeyDer(absl::string_view key_pem) {
  auto key = LoadPrivateKey(key_pem);
  if (!key.ok()) return key.status();
  std::unique_ptr<PKCS8_PRIV_KEY_INFO,
                  Deleter<PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free>>
      info(EVP_PKEY2PKCS8(key->get()));
  if (info == nullptr) return Internal("convert the key to PKCS#8");
  unsigned char* der = nullptr;
  const int n = i2d_PKCS8_PRIV_KEY_INFO(info.get(), &der);
  if (n <= 0) return Internal("encode the key as DER");
  std::string out(reinterpret_cast<char*>(der), n);
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<std::string> MakeRequest(absl::string_view key_pem,
                                        absl::string_view common_name) {
  auto key = LoadPrivateKey(key_pem);
  if (!key.ok()) return key.status();
  ReqPtr req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  const std::string cn(common_name);
  if (!cn.empty()) {
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()),
                               -1, -1, 0);
  }
  if (X509_REQ_set_pubkey(req.get(), key->get()) != 1 ||
      X509_REQ_sign(req.get(), key->get(), EVP_sha256()) <= 0) {
    return Internal("sign request");
  }
  Bio bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return Internal("write request");
  }
  return openssl::DrainBio(bio.get());
}

absl::StatusOr<std::string> RequestPublicKey(absl::string_view csr_pem) {
  Bio bio = openssl::ReadBio(csr_pem);
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (req == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM certificate request");
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr || X509_REQ_verify(req.get(), key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "certificate request signature does not verify");
  }
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC &&
      EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError(
        "certificate request key must be ECDSA or Ed25519");
  }
  return openssl::PublicPem(key);
}

absl::StatusOr<std::string> MakeSelfSignedCa(absl::string_view key_pem,
                                             const Subject& subject,
                                             absl::Time now,
                                             absl::Duration validity) {
  auto key = LoadPrivateKey(key_pem);
  if (!key.ok()) return key.status();
  return Build(nullptr, key->get(), key->get(), subject,
               Usage::kCertificateAuthority, now, validity);
}

absl::StatusOr<std::string> Issue(absl::string_view ca_cert_pem,
                                  absl::string_view ca_key_pem,
                                  absl::string_view public_key_pem,
                                  const Subject& subject, Usage usage,
                                  absl::Time now, absl::Duration validity) {
  auto ca = LoadCert(ca_cert_pem);
  if (!ca.ok()) return ca.status();
  auto ca_key = LoadPrivateKey(ca_key_pem);
  if (!ca_key.ok()) return ca_key.status();
  auto pub = LoadPublicKey(public_key_pem);
  if (!pub.ok()) return pub.status();
  return Build(ca->get(), ca_key->get(), pub->get(), subject, usage, now,
               validity);
}

namespace {

// The names and validity of `c` (not its public key).
Certificate Describe(X509* c) {
  Certificate out;
  out.subject.common_name = CommonName(X509_get_subject_name(c));
  out.issuer_common_name = CommonName(X509_get_issuer_name(c));
  out.not_before = FromAsn1(X509_get0_notBefore(c));
  out.not_after = FromAsn1(X509_get0_notAfter(c));
  BnPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), nullptr));
  if (bn != nullptr) {
    char* hex = BN_bn2hex(bn.get());
    out.serial_hex = hex;
    OPENSSL_free(hex);
  }
  NamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(c, NID_subject_alt_name, nullptr, nullptr)));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
      if (name->type == GEN_URI || name->type == GEN_DNS) {
        const ASN1_IA5STRING* s = name->d.ia5;
        std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                          ASN1_STRING_length(s));
        (name->type == GEN_URI ? out.subject.uris : out.subject.dns)
            .push_back(std::move(value));
      } else if (name->type == GEN_IPADD) {
        const int len = ASN1_STRING_length(name->d.ip);
        char text[INET6_ADDRSTRLEN] = {};
        if ((len == 4 || len == 16) &&
            inet_ntop(len == 4 ? AF_INET : AF_INET6,
                      ASN1_STRING_get0_data(name->d.ip), text,
                      sizeof(text)) != nullptr) {
          out.subject.ips.emplace_back(text);
        }
      }
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<Certificate> Parse(absl::string_view cert_pem) {
  auto cert = LoadCert(cert_pem);
  if (!cert.ok()) return cert.status();
  X509* c = cert->get();
  Certificate out = Describe(c);
  auto pub = openssl::PublicPem(X509_get0_pubkey(c));
  if (!pub.ok()) return pub.status();
  out.public_key_pem = *pub;
  return out;
}

namespace {

absl::Status VerifyIn(X509_STORE* store, X509* cert, absl::Time now,
                      Purpose purpose) {
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (ctx == nullptr ||
      X509_STORE_CTX_init(ctx.get(), store, cert, nullptr) != 1) {
    ERR_clear_error();
    return absl::InternalError("cannot set up certificate verification");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(now));
  if (purpose == Purpose::kClientAuth) {
    X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::PermissionDeniedError(absl::StrCat(
        "certificate does not verify: ", X509_verify_cert_error_string(err)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Verify(absl::string_view cert_pem, absl::string_view ca_cert_pem,
                    absl::Time now, Purpose purpose) {
  auto cert = LoadCert(cert_pem);
  if (!cert.ok()) return cert.status();
  auto ca = LoadCert(ca_cert_pem);
  if (!ca.ok()) return ca.status();
  StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca->get());
  return VerifyIn(store.get(), cert->get(), now, purpose);
}

struct Anchor::Impl {
  StorePtr store;
};

Anchor::Anchor() : impl_(std::make_unique<Impl>()) {}
Anchor::~Anchor() = default;

absl::StatusOr<std::shared_ptr<const Anchor>> Anchor::FromPem(
    absl::string_view ca_pem) {
  auto ca = LoadCert(ca_pem);
  if (!ca.ok()) return ca.status();
  std::shared_ptr<Anchor> anchor(new Anchor());
  anchor->impl_->store.reset(X509_STORE_new());
  if (anchor->impl_->store == nullptr ||
      X509_STORE_add_cert(anchor->impl_->store.get(), ca->get()) != 1) {
    ERR_clear_error();
    return absl::InternalError("cannot build a certificate store");
  }
  return std::shared_ptr<const Anchor>(std::move(anchor));
}

absl::StatusOr<Certificate> Anchor::VerifyAndParse(absl::string_view cert_pem,
                                                   absl::Time now,
                                                   Purpose purpose) const {
  auto cert = LoadCert(cert_pem);
  if (!cert.ok()) return cert.status();
  if (absl::Status s = VerifyIn(impl_->store.get(), cert->get(), now, purpose);
      !s.ok()) {
    return s;
  }
  return Describe(cert->get());
}

bool KeyMatchesCertificate(absl::string_view key_pem,
                           absl::string_view cert_pem) {
  auto key = LoadPrivateKey(key_pem);
  auto cert = LoadCert(cert_pem);
  if (!key.ok() || !cert.ok()) return false;
  const bool ok = X509_check_private_key(cert->get(), key->get()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace warden::x509
