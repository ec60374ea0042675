#include "controlplane/audit/leaf.h"

#include "absl/status/status.h"
#include "google/protobuf/io/coded_stream.h"
#include "absl/strings/str_cat.h"
#include "controlplane/audit/merkle.h"

namespace warden::controlplane::audit {

std::string MakeLeaf(absl::string_view previous_leaf_hash,
                     absl::string_view audit_leaf_bytes) {
  return absl::StrCat(previous_leaf_hash, audit_leaf_bytes);
}

absl::StatusOr<std::pair<std::string, std::string>> SplitLeaf(
    absl::string_view leaf) {
  if (leaf.size() < kHashSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "an audit leaf starts with a ", kHashSize, "-byte hash; this one has ",
        leaf.size(), " bytes"));
  }
  return std::make_pair(std::string(leaf.substr(0, kHashSize)),
                        std::string(leaf.substr(kHashSize)));
}

bool ParseAuditLeaf(absl::string_view bytes, warden::v1::AuditLeaf* leaf) {
  // Ingest parses an event with protobuf's default limit (100); in a leaf
  // it sits one level deeper, and under a response or two more.
  constexpr int kRecursionLimit = 200;
  google::protobuf::io::CodedInputStream input(
      reinterpret_cast<const uint8_t*>(bytes.data()),
      static_cast<int>(bytes.size()));
  input.SetRecursionLimit(kRecursionLimit);
  return leaf->ParseFromCodedStream(&input) && input.ConsumedEntireMessage();
}

}  // namespace warden::controlplane::audit
