// Writes the bundle_decode_fuzz seed corpus into the folder given as the
// only argument: a valid signed bundle, a signed rollback, and a few
// mutations of the first. The signing key is generated here and thrown
// away (the fuzzer re-signs with its own key); no key is ever written.
// Run through tests/fuzz/make_bundle_seeds.sh.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/time/time.h"
#include "common/crypto.h"
#include "policy/bundle/bundle.h"
#include "policy/lang/compile.h"

namespace {

constexpr char kPolicy[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: seed }
spec:
  environments: [prod]
  rules:
    - name: no-drop
      match: { commands: ["DROP TABLE"] }
      action: deny
)";

bool Write(const std::string& dir, const std::string& name,
           const std::string& bytes) {
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out << bytes;
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  namespace b = warden::policy::bundle;
  if (argc != 2) {
    std::cerr << "usage: make_bundle_seeds DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  auto key = warden::crypto::GenerateEd25519Key();
  auto policy = warden::policy::lang::Compile({{"seed.yaml", kPolicy}});
  if (!key.ok() || !policy.ok()) {
    std::cerr << "setup failed\n";
    return 1;
  }
  b::BundleMeta meta;
  meta.revision = 7;
  meta.parent_revision = 6;
  meta.created_by = "ci";
  meta.created_at = absl::FromUnixSeconds(1764160000);
  meta.message = "seed";
  auto valid = b::SignBundle(*policy, meta, key->private_pem);
  meta.revision = 8;
  meta.parent_revision = 7;
  meta.rollback_of = 3;
  auto rollback = b::SignBundle(*policy, meta, key->private_pem);
  if (!valid.ok() || !rollback.ok()) {
    std::cerr << "signing failed\n";
    return 1;
  }
  const std::string bytes = valid->SerializeAsString();
  warden::v1::SignedBundle flipped = *valid;
  (*flipped.mutable_bundle())[2] ^= 0x20;
  warden::v1::SignedBundle empty_payload = *valid;
  empty_payload.set_bundle("");
  empty_payload.set_digest(
      warden::crypto::HexEncode(warden::crypto::Sha256("")));
  bool ok = Write(dir, "valid", bytes) &&
            Write(dir, "rollback", rollback->SerializeAsString()) &&
            Write(dir, "flipped_bundle_byte", flipped.SerializeAsString()) &&
            Write(dir, "empty_payload", empty_payload.SerializeAsString()) &&
            Write(dir, "truncated", bytes.substr(0, bytes.size() / 2));
  return ok ? 0 : 1;
}
