#include "common/openssl_util.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <cstdint>

#include "absl/status/status.h"

namespace warden::openssl {

Bio ReadBio(absl::string_view pem) {
  if (pem.size() > static_cast<size_t>(INT32_MAX)) return nullptr;
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string DrainBio(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}

Pkey ReadPrivateKey(absl::string_view pem) {
  Bio bio = ReadBio(pem);
  if (bio == nullptr) return nullptr;
  Pkey key(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  if (key == nullptr) ERR_clear_error();
  return key;
}

Pkey ReadPublicKey(absl::string_view pem) {
  Bio bio = ReadBio(pem);
  if (bio == nullptr) return nullptr;
  Pkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) ERR_clear_error();
  return key;
}

absl::StatusOr<std::string> PrivatePem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                               nullptr) != 1) {
    ERR_clear_error();
    return absl::InternalError("OpenSSL could not write the private key");
  }
  return DrainBio(bio.get());
}

absl::StatusOr<std::string> PublicPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    ERR_clear_error();
    return absl::InternalError("OpenSSL could not write the public key");
  }
  return DrainBio(bio.get());
}

}  // namespace warden::openssl
