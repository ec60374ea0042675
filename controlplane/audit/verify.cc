#include "controlplane/audit/verify.h"

#include "absl/strings/str_cat.h"
#include "controlplane/audit/checkpoint.h"
#include "controlplane/audit/leaf.h"
#include "controlplane/audit/merkle.h"
#include "proto/warden/v1/audit.pb.h"

namespace warden::controlplane::audit {

VerifyReport VerifyExport(const std::vector<ExportedEntry>& entries,
                          absl::string_view checkpoint_note,
                          absl::string_view verifier_key,
                          bool allow_uncovered) {
  VerifyReport report;
  report.entries = entries.size();
  auto checkpoint = VerifyCheckpoint(checkpoint_note, verifier_key);
  if (!checkpoint.ok()) {
    report.message = absl::StrCat("the checkpoint does not verify: ",
                                  checkpoint.status().message());
    return report;
  }
  report.checkpoint_size = checkpoint->size;
  std::vector<std::string> hashes;
  hashes.reserve(entries.size());
  std::string previous(kHashSize, '\0');
  for (size_t i = 0; i < entries.size(); ++i) {
    const ExportedEntry& e = entries[i];
    if (e.index != i) {
      report.first_bad_index = static_cast<int64_t>(i);
      report.message = absl::StrCat("entry ", i, " is missing (the export has ",
                                    e.index, " in its place)");
      return report;
    }
    auto parts = SplitLeaf(e.leaf);
    if (!parts.ok() || parts->first != previous) {
      report.first_bad_index = static_cast<int64_t>(i);
      report.message = absl::StrCat(
          "entry ", i, " does not link to entry ", i == 0 ? 0 : i - 1,
          i == 0 ? " (the first entry must start with zeros)"
                 : ": an entry at or before it was changed, removed or moved");
      return report;
    }
    warden::v1::AuditLeaf leaf;
    if (!ParseAuditLeaf(parts->second, &leaf)) {
      report.first_bad_index = static_cast<int64_t>(i);
      report.message = absl::StrCat("entry ", i, " is not an audit leaf");
      return report;
    }
    previous = LeafHash(e.leaf);
    hashes.push_back(previous);
  }
  if (entries.size() < checkpoint->size) {
    report.first_bad_index = static_cast<int64_t>(entries.size());
    report.message = absl::StrCat(
        "the log has ", entries.size(), " entries but the checkpoint signed ",
        checkpoint->size, ": entries from ", entries.size(),
        " on are missing (truncated)");
    return report;
  }
  hashes.resize(checkpoint->size);
  auto root = RootFromLeafHashes(hashes);
  if (!root.ok() || *root != checkpoint->root_hash) {
    // Every link held, so the tail was rewritten consistently: the last
    // signed entry is where the signed and the present log part.
    report.first_bad_index =
        checkpoint->size == 0 ? -1 : static_cast<int64_t>(checkpoint->size - 1);
    report.message = absl::StrCat(
        "the Merkle root of the first ", checkpoint->size,
        " entries is not the signed one: the log was rewritten (every link "
        "was recomputed) at or before entry ",
        checkpoint->size - 1);
    return report;
  }
  if (entries.size() > checkpoint->size && !allow_uncovered) {
    report.first_bad_index = static_cast<int64_t>(checkpoint->size);
    report.message = absl::StrCat(
        checkpoint->size, " entries match checkpoint ", checkpoint->origin,
        ", but the export has ", entries.size() - checkpoint->size,
        " more that no checkpoint signed (from entry ", checkpoint->size,
        "): verify them against a newer checkpoint, export with --checkpoint "
        "to stop at this one, or pass --allow-uncovered");
    return report;
  }
  report.ok = true;
  report.message = absl::StrCat(
      checkpoint->size, " entries match checkpoint ", checkpoint->origin,
      " (size ", checkpoint->size, ")",
      entries.size() > checkpoint->size
          ? absl::StrCat("; ", entries.size() - checkpoint->size,
                         " later entries chain correctly but are not covered "
                         "by this checkpoint")
          : "");
  return report;
}

}  // namespace warden::controlplane::audit
