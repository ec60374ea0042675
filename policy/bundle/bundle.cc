#include "policy/bundle/bundle.h"

#include <utility>

#include "common/proto_time.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/stubs/logging.h"
#include "policy/lang/compile.h"

namespace warden::policy::bundle {
namespace {

void AppendU64(uint64_t v, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void AppendField(absl::string_view field, std::string* out) {
  AppendU64(field.size(), out);
  out->append(field.data(), field.size());
}

// Untrusted text in error messages: bounded and escaped.
std::string Quote(absl::string_view s) {
  constexpr size_t kMax = 64;
  std::string q = absl::CHexEscape(s.substr(0, kMax));
  if (s.size() > kMax) absl::StrAppend(&q, "...");
  return absl::StrCat("'", q, "'");
}

absl::Status CheckRevisionFields(uint64_t revision, uint64_t parent_revision,
                                 uint64_t rollback_of) {
  if (revision == 0) {
    return absl::InvalidArgumentError("bundle revision must not be 0");
  }
  if (parent_revision >= revision) {
    return absl::InvalidArgumentError(
        absl::StrCat("bundle revision ", revision, " has parent revision ",
                     parent_revision, ", which is not lower"));
  }
  if (rollback_of >= revision) {
    return absl::InvalidArgumentError(
        absl::StrCat("bundle revision ", revision, " is a rollback of ",
                     rollback_of, ", which is not lower"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AddTrustedKey(absl::string_view public_pem, TrustedKeys* keys) {
  WARDEN_ASSIGN_OR_RETURN(std::string key_id, crypto::Ed25519KeyId(public_pem));
  (*keys)[key_id] = std::string(public_pem);
  return absl::OkStatus();
}

std::string CanonicalSigningBytes(
    const warden::v1::SignedBundle& signed_bundle) {
  const auto& b = signed_bundle;
  std::string out;
  out.reserve(kSigningDomain.size() + 10 * 8 + b.bundle().size() +
              b.digest().size() + b.key_id().size() + b.created_by().size() +
              b.message().size());
  out.append(kSigningDomain.data(), kSigningDomain.size());
  AppendU64(b.revision(), &out);
  AppendU64(b.parent_revision(), &out);
  AppendField(b.bundle(), &out);
  AppendField(b.digest(), &out);
  AppendField(b.key_id(), &out);
  AppendField(b.created_by(), &out);
  AppendU64(static_cast<uint64_t>(b.created_at().seconds()), &out);
  AppendU64(static_cast<uint64_t>(static_cast<int64_t>(b.created_at().nanos())),
            &out);
  AppendField(b.message(), &out);
  AppendU64(b.rollback_of(), &out);
  return out;
}

absl::StatusOr<warden::v1::SignedBundle> SignBundle(
    const warden::v1::PolicyBundle& bundle, const BundleMeta& meta,
    absl::string_view private_pem) {
  if (lang::ContentDigest(bundle) != bundle.digest()) {
    return absl::InvalidArgumentError(
        "PolicyBundle digest does not match its policies (compile it with "
        "policy/lang before signing)");
  }
  WARDEN_RETURN_IF_ERROR(CheckRevisionFields(
      meta.revision, meta.parent_revision, meta.rollback_of));
  if (meta.created_at == absl::InfiniteFuture() ||
      meta.created_at == absl::InfinitePast()) {
    return absl::InvalidArgumentError("bundle created_at must be finite");
  }
  WARDEN_ASSIGN_OR_RETURN(std::string public_pem,
                          crypto::Ed25519PublicKeyFromPrivate(private_pem));
  WARDEN_ASSIGN_OR_RETURN(std::string key_id, crypto::Ed25519KeyId(public_pem));

  warden::v1::SignedBundle out;
  out.set_revision(meta.revision);
  out.set_parent_revision(meta.parent_revision);
  std::string* bytes = out.mutable_bundle();
  {
    google::protobuf::io::StringOutputStream stream(bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    bundle.SerializeToCodedStream(&coded);
  }
  out.set_digest(crypto::HexEncode(crypto::Sha256(*bytes)));
  out.set_key_id(std::move(key_id));
  out.set_created_by(meta.created_by);
  SetTimestamp(meta.created_at, out.mutable_created_at());
  out.set_message(meta.message);
  out.set_rollback_of(meta.rollback_of);
  WARDEN_ASSIGN_OR_RETURN(
      std::string signature,
      crypto::Ed25519Sign(private_pem, CanonicalSigningBytes(out)));
  out.set_signature(std::move(signature));
  return out;
}

absl::StatusOr<warden::v1::PolicyBundle> VerifyBundle(
    const warden::v1::SignedBundle& signed_bundle, const TrustedKeys& keys,
    uint64_t running_revision) {
  const auto& b = signed_bundle;
  const std::string what = absl::StrCat("bundle revision ", b.revision());
  // 1. A key we trust.
  const auto key = keys.find(b.key_id());
  if (key == keys.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat(what, " is signed by unknown key id ", Quote(b.key_id())));
  }
  // 2. Its signature over everything else.
  const absl::Status signature = crypto::Ed25519Verify(
      key->second, CanonicalSigningBytes(b), b.signature());
  if (signature.code() == absl::StatusCode::kPermissionDenied) {
    return absl::PermissionDeniedError(absl::StrCat(
        what, ": signature does not verify with key ", Quote(b.key_id())));
  }
  if (!signature.ok()) {
    return absl::Status(signature.code(),
                        absl::StrCat(what, ": trusted key ", Quote(b.key_id()),
                                     " is unusable: ", signature.message()));
  }
  // 3. The digest it signed is the bytes it carries.
  if (crypto::HexEncode(crypto::Sha256(b.bundle())) != b.digest()) {
    return absl::DataLossError(
        absl::StrCat(what, ": digest ", Quote(b.digest()),
                     " does not match the bundle bytes"));
  }
  // 4. The bytes are a PolicyBundle.
  warden::v1::PolicyBundle bundle;
  bool parsed;
  {
    google::protobuf::LogSilencer quiet;  // see DecodeSignedBundle.
    parsed = bundle.ParseFromString(b.bundle());
  }
  if (!parsed) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": bundle bytes do not parse as warden.v1.PolicyBundle"));
  }
  // 5. The PolicyBundle says what was compiled.
  if (lang::ContentDigest(bundle) != bundle.digest()) {
    return absl::DataLossError(absl::StrCat(what, ": policy content digest ",
                                            Quote(bundle.digest()),
                                            " does not match its policies"));
  }
  // 6. Revision fields make sense.
  WARDEN_RETURN_IF_ERROR(
      CheckRevisionFields(b.revision(), b.parent_revision(), b.rollback_of()));
  // 7. Never go back unless signed as a rollback.
  if (b.revision() == running_revision) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " is already running"));
  }
  if (b.revision() < running_revision && b.rollback_of() == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " is older than running revision ", running_revision,
                     " and not signed as a rollback"));
  }
  return bundle;
}

absl::StatusOr<warden::v1::SignedBundle> DecodeSignedBundle(
    absl::string_view bytes) {
  if (bytes.size() > kMaxSignedBundleBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("signed bundle is ", bytes.size(), " bytes; the limit is ",
                     kMaxSignedBundleBytes));
  }
  warden::v1::SignedBundle out;
  bool parsed;
  {
    // protobuf logs every invalid UTF-8 string at ERROR; bytes from the
    // network must not be able to flood the log. The error is returned.
    google::protobuf::LogSilencer quiet;
    parsed = out.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  }
  if (!parsed) {
    return absl::InvalidArgumentError(
        "bytes do not parse as warden.v1.SignedBundle");
  }
  return out;
}

}  // namespace warden::policy::bundle
