#include "controlplane/log/rocksdb_log.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "controlplane/store/rocksdb_util.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace warden::controlplane::log {

using ::warden::controlplane::store::CheckDirectoryPath;
using ::warden::controlplane::store::DecodeIndex;
using ::warden::controlplane::store::EncodeIndex;
using ::warden::controlplane::store::ToAbslStatus;

absl::StatusOr<std::unique_ptr<RocksDbLog>> RocksDbLog::Open(
    const std::string& path) {
  WARDEN_RETURN_IF_ERROR(CheckDirectoryPath(path));
  rocksdb::Options options;
  options.create_if_missing = true;
  std::unique_ptr<RocksDbLog> log(new RocksDbLog());
  log->path_ = path;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &log->db_);
  if (!s.ok()) return ToAbslStatus(s, absl::StrCat("open log ", path));

  std::unique_ptr<rocksdb::Iterator> it(
      log->db_->NewIterator(rocksdb::ReadOptions()));
  uint64_t first = 0;
  uint64_t last = 0;
  it->SeekToFirst();
  if (it->Valid()) {
    absl::StatusOr<uint64_t> index = DecodeIndex(it->key().ToString());
    if (!index.ok()) {
      return absl::DataLossError(
          absl::StrCat("log ", path, ": ", index.status().message()));
    }
    first = *index;
    it->SeekToLast();
    index = DecodeIndex(it->key().ToString());
    if (!index.ok()) {
      return absl::DataLossError(
          absl::StrCat("log ", path, ": ", index.status().message()));
    }
    last = *index;
  }
  if (!it->status().ok()) {
    return ToAbslStatus(it->status(), absl::StrCat("read log ", path));
  }
  if (first > 1) {
    return absl::DataLossError(
        absl::StrCat("log ", path, " starts at index ", first, ", want 1"));
  }
  absl::MutexLock lock(&log->mu_);
  log->last_index_ = last;
  return log;
}

RocksDbLog::~RocksDbLog() {
  if (db_ == nullptr) return;
  db_->Close();
  delete db_;
}

absl::StatusOr<uint64_t> RocksDbLog::Append(std::string entry) {
  std::vector<std::string> one;
  one.push_back(std::move(entry));
  return AppendBatch(std::move(one));
}

absl::StatusOr<uint64_t> RocksDbLog::AppendBatch(
    std::vector<std::string> entries) {
  absl::MutexLock lock(&mu_);
  return AppendLocked(entries);
}

absl::StatusOr<uint64_t> RocksDbLog::AppendBatchAt(
    uint64_t first, const std::vector<std::string>& entries) {
  absl::MutexLock lock(&mu_);
  if (last_index_ + 1 != first) {
    return absl::AbortedError(absl::StrCat("log index ", first,
                                           " is taken; the log ends at ",
                                           last_index_));
  }
  return AppendLocked(entries);
}

absl::StatusOr<uint64_t> RocksDbLog::AppendLocked(
    const std::vector<std::string>& entries) {
  if (entries.empty()) {
    return absl::InvalidArgumentError("append of no log entries");
  }
  const uint64_t first = last_index_ + 1;
  // One WriteBatch: RocksDB writes it as one WAL record, so after a crash
  // either every entry of it is there or none, and the log stays gap-free.
  size_t bytes = 64;
  for (const std::string& entry : entries) bytes += entry.size() + 24;
  rocksdb::WriteBatch batch(bytes);
  for (size_t i = 0; i < entries.size(); ++i) {
    rocksdb::Status s = batch.Put(EncodeIndex(first + i), entries[i]);
    if (!s.ok()) {
      return ToAbslStatus(s, absl::StrCat("append to log ", path_));
    }
  }
  rocksdb::WriteOptions options;
  options.sync = true;
  rocksdb::Status s = db_->Write(options, &batch);
  if (!s.ok()) {
    return ToAbslStatus(s, absl::StrCat("append to log ", path_));
  }
  last_index_ = first + entries.size() - 1;
  return first;
}

absl::StatusOr<std::vector<Entry>> RocksDbLog::Read(uint64_t from, size_t max) {
  if (from == 0) return absl::InvalidArgumentError("log indexes start at 1");
  uint64_t last = LastIndex();
  if (from > last + 1) {
    return absl::OutOfRangeError(absl::StrCat("read from index ", from,
                                              " past the end of the log (last ",
                                              last, ")"));
  }
  std::vector<Entry> out;
  if (max == 0 || from > last) return out;
  // Only entries up to `last`: appends racing this read are not returned,
  // so the result is always a gap-free run starting at `from`.
  uint64_t count = std::min<uint64_t>(max, last - from + 1);
  out.reserve(count);
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  uint64_t want = from;
  for (it->Seek(EncodeIndex(from)); it->Valid() && out.size() < count;
       it->Next()) {
    absl::StatusOr<uint64_t> index = DecodeIndex(it->key().ToString());
    if (!index.ok()) {
      return absl::DataLossError(
          absl::StrCat("log ", path_, ": ", index.status().message()));
    }
    if (*index != want) break;
    out.push_back(Entry{*index, it->value().ToString()});
    ++want;
  }
  if (!it->status().ok()) {
    return ToAbslStatus(it->status(), absl::StrCat("read log ", path_));
  }
  if (out.size() < count) {
    return absl::DataLossError(absl::StrCat("log ", path_, " is missing index ",
                                            want, " (last ", last, ")"));
  }
  return out;
}

uint64_t RocksDbLog::LastIndex() const {
  absl::MutexLock lock(&mu_);
  return last_index_;
}

}  // namespace warden::controlplane::log
