#include "dataplane/audit/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "dataplane/audit/crc32.h"

namespace warden::dataplane::audit {
namespace {

constexpr size_t kHeader = 8;     // length + crc
constexpr size_t kSequence = 8;   // inside the checksummed part
constexpr size_t kRecycledBatchBytes = 64u << 10;
constexpr char kPrefix[] = "seg-";
constexpr char kSuffix[] = ".log";

void PutU32(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void PutU64(uint64_t v, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetU32(const char* in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}
uint64_t GetU64(const char* in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

uint32_t Crc(const char* data, size_t n) { return Crc32(data, n); }

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

std::string SegmentName(uint64_t first) {
  return absl::StrFormat("%s%020u%s", kPrefix, first, kSuffix);
}

// The file's bytes from `offset` on, at most `limit` of them.
absl::StatusOr<std::string> ReadAll(const std::string& path,
                                    uint64_t offset = 0,
                                    uint64_t limit = UINT64_MAX) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(path);
    return Errno("open", path);
  }
  std::string out;
  char buf[1 << 16];
  while (out.size() < limit) {
    const ssize_t n = ::pread(
        fd, buf, std::min<uint64_t>(sizeof(buf), limit - out.size()),
        static_cast<off_t>(offset + out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return Errno("read", path);
    }
    if (n == 0) break;
    out.append(buf, n);
  }
  ::close(fd);
  return out;
}

// One parsed record, or why parsing stopped at `offset`.
struct Parsed {
  std::vector<SpoolRecord> records;
  std::vector<size_t> ends;  // where each record ends in the buffer
  size_t good_bytes = 0;     // bytes up to the end of the last good record
  std::string error;         // empty when the whole buffer parsed
  // The error is the buffer ending inside a record (a torn write, or a
  // read that stopped there), and the record's whole size if known.
  bool truncated = false;
  size_t truncated_record = 0;
};

// `max_kept`: stop once that many records are kept (keep only).
Parsed ParseRecords(absl::string_view data, uint32_t max_record_bytes,
                    uint64_t from, bool keep,
                    size_t max_kept = SIZE_MAX) {
  Parsed p;
  size_t at = 0;
  uint64_t expected = 0;
  while (at < data.size() && (!keep || p.records.size() < max_kept)) {
    if (data.size() - at < kHeader + kSequence) {
      p.error = "truncated record header";
      p.truncated = true;
      break;
    }
    const uint32_t length = GetU32(data.data() + at);
    const uint32_t crc = GetU32(data.data() + at + 4);
    if (length < kSequence || length > max_record_bytes + kSequence) {
      p.error = absl::StrCat("impossible record length ", length);
      break;
    }
    if (data.size() - at - kHeader < length) {
      p.error = "truncated record";
      p.truncated = true;
      p.truncated_record = kHeader + length;
      break;
    }
    const char* body = data.data() + at + kHeader;
    if (Crc(body, length) != crc) {
      p.error = "checksum mismatch";
      break;
    }
    const uint64_t sequence = GetU64(body);
    if (expected != 0 && sequence != expected) {
      p.error = absl::StrCat("sequence ", sequence, " where ", expected,
                             " was expected");
      break;
    }
    expected = sequence + 1;
    at += kHeader + length;
    if (keep && sequence >= from) {
      p.records.push_back(
          {sequence, std::string(body + kSequence, length - kSequence)});
      p.ends.push_back(at);
    } else if (!keep) {
      p.records.push_back({sequence, {}});  // sequence only (recovery)
      p.ends.push_back(at);
    }
    p.good_bytes = at;
  }
  return p;
}

}  // namespace

Spool::Spool(std::string dir, SpoolOptions options)
    : dir_(std::move(dir)), options_(options) {}

Spool::~Spool() {
  (void)WriteStaged();
  absl::MutexLock lock(&mu_);
  (void)PersistAckedLocked();
  for (int fd : unsynced_fds_) ::close(fd);
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::unique_ptr<Spool>> Spool::Open(const std::string& dir,
                                                   SpoolOptions options) {
  if (options.segment_bytes == 0 || options.max_bytes == 0 ||
      options.max_record_bytes == 0) {
    return absl::InvalidArgumentError("spool sizes must be positive");
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Errno("mkdir", dir);
  }
  // Only whole segments are deleted once acknowledged and the newest one
  // stays: a segment as large as the spool would fill it for good (every
  // event acknowledged, every statement refused). With at most an eighth
  // of the capacity per segment, acknowledged events hold back at most
  // that much.
  options.segment_bytes =
      std::min(options.segment_bytes, std::max<uint64_t>(1, options.max_bytes / 8));
  std::unique_ptr<Spool> spool(new Spool(dir, options));
  if (absl::Status s = spool->Recover(); !s.ok()) return s;
  return spool;
}

absl::Status Spool::Recover() {
  absl::MutexLock lock(&mu_);
  if (auto acked = ReadFile(dir_ + "/acked"); acked.ok()) {
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*acked), &acked_)) {
      return absl::DataLossError(
          absl::StrCat(dir_, "/acked does not hold a sequence number"));
    }
    acked_persisted_ = acked_;
  }
  std::vector<std::pair<uint64_t, std::string>> files;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return Errno("opendir", dir_);
  while (dirent* e = ::readdir(d)) {
    absl::string_view name(e->d_name);
    if (!absl::ConsumePrefix(&name, kPrefix) ||
        !absl::ConsumeSuffix(&name, kSuffix)) {
      continue;
    }
    uint64_t first = 0;
    if (!absl::SimpleAtoi(name, &first) || first == 0) continue;
    files.emplace_back(first, dir_ + "/" + e->d_name);
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());

  uint64_t last_sequence = acked_;
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& [first, path] = files[i];
    auto data = ReadAll(path);
    if (!data.ok()) return data.status();
    Parsed parsed = ParseRecords(*data, options_.max_record_bytes, 0, false);
    const bool newest = i + 1 == files.size();
    if (!parsed.records.empty() && parsed.records.front().sequence != first) {
      return absl::DataLossError(absl::StrCat(
          path, ": first record has sequence ",
          parsed.records.front().sequence, ", the file name says ", first));
    }
    if (!parsed.error.empty()) {
      if (!newest) {
        return absl::DataLossError(absl::StrCat(
            path, " is damaged at byte ", parsed.good_bytes, ": ",
            parsed.error,
            "; it is not the newest segment, so this is not a torn write. "
            "Events after that point were not sent; move the file away to "
            "start (and keep it for the investigation)"));
      }
      // A crash in the middle of the last write: cut the torn tail.
      if (::truncate(path.c_str(), static_cast<off_t>(parsed.good_bytes)) !=
          0) {
        return Errno("truncate", path);
      }
      data->resize(parsed.good_bytes);
    }
    if (i > 0 && !segments_.empty() && segments_.back().last + 1 != first &&
        segments_.back().last >= segments_.back().first) {
      return absl::DataLossError(absl::StrCat(
          path, " starts at sequence ", first, " but the previous segment "
          "ends at ", segments_.back().last, ": events are missing"));
    }
    Segment seg;
    seg.first = first;
    seg.last = parsed.records.empty() ? first - 1
                                      : parsed.records.back().sequence;
    seg.bytes = data->size();
    seg.path = path;
    last_sequence = std::max(last_sequence, seg.last);
    pending_bytes_ += seg.bytes;
    pending_bytes_hint_.store(pending_bytes_, std::memory_order_relaxed);
    segments_.push_back(std::move(seg));
  }
  next_sequence_ = last_sequence + 1;
  written_through_ = last_sequence;
  synced_through_ = last_sequence;  // what survived a restart is on disk.
  if (!segments_.empty()) {
    const Segment& newest = segments_.back();
    fd_ = ::open(newest.path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd_ < 0) return Errno("open", newest.path);
  }
  if (acked_ + 1 < next_sequence_) {
    pending_times_.emplace_back(acked_ + 1, absl::Now());
  }
  return absl::OkStatus();
}

absl::Status Spool::StartSegmentLocked(uint64_t first) {
  const std::string path = dir_ + "/" + SegmentName(first);
  const int fd = ::open(path.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
                        0600);
  if (fd < 0) return Errno("create", path);
  if (fd_ >= 0) unsynced_fds_.push_back(fd_);
  fd_ = fd;
  dir_dirty_ = true;
  Segment seg;
  seg.first = first;
  seg.last = first - 1;
  seg.path = path;
  segments_.push_back(std::move(seg));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Spool::Append(absl::string_view payload) {
  auto ticket = Stage(payload);
  if (!ticket.ok()) return ticket.status();
  const absl::Status written = WriteStaged();
  if (!Written(*ticket)) {
    return written.ok() ? absl::InternalError(absl::StrCat(
                              "audit spool ", dir_, ": event ",
                              ticket->sequence, " was not written"))
                        : written;
  }
  return ticket->sequence;
}

absl::StatusOr<SpoolTicket> Spool::Stage(absl::string_view payload) {
  if (payload.size() > options_.max_record_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("audit event of ", payload.size(),
                     " bytes exceeds the spool's record limit of ",
                     options_.max_record_bytes));
  }
  const size_t length = kSequence + payload.size();
  const size_t frame = kHeader + length;
  absl::MutexLock lock(&mu_);
  if (pending_bytes_ + frame > options_.max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "audit spool ", dir_, " is full (", pending_bytes_, " of ",
        options_.max_bytes, " bytes; the control plane has not acknowledged "
        "events since sequence ", acked_ + 1, ")"));
  }
  const uint64_t sequence = next_sequence_;
  const size_t at = staged_.size();
  char header[kHeader + kSequence];
  PutU32(static_cast<uint32_t>(length), header);
  PutU32(0, header + 4);  // the CRC, below
  PutU64(sequence, header + kHeader);
  staged_.append(header, sizeof(header));
  staged_.append(payload.data(), payload.size());
  char* record = staged_.data() + at;
  PutU32(Crc(record + kHeader, length), record + 4);
  if (staged_first_ == 0) staged_first_ = sequence;
  pending_bytes_ += frame;
  pending_bytes_hint_.store(pending_bytes_, std::memory_order_relaxed);
  ++next_sequence_;
  pending_times_.emplace_back(sequence, absl::Now());
  return SpoolTicket{sequence, epoch_};
}

void Spool::DropStagedLocked(uint64_t first, uint64_t bytes) {
  // Their sequences are used again (sequences have no gaps); a ticket of
  // this epoch tells by `dropped_from_` that it was not written.
  pending_bytes_ -= bytes + staged_.size();
  pending_bytes_hint_.store(pending_bytes_, std::memory_order_relaxed);
  staged_.clear();
  staged_first_ = 0;
  while (!pending_times_.empty() && pending_times_.back().first >= first) {
    pending_times_.pop_back();
  }
  next_sequence_ = first;
  dropped_from_.push_back(first);
  ++epoch_;
}

absl::Status Spool::WriteStaged() {
  absl::MutexLock write_lock(&write_mu_);
  std::string batch;
  uint64_t first = 0;
  uint64_t last = 0;
  int fd = -1;
  uint64_t offset = 0;
  std::string path;
  {
    absl::MutexLock lock(&mu_);
    if (staged_.empty()) return absl::OkStatus();
    first = staged_first_;
    if (fd_ < 0 || segments_.back().bytes >= options_.segment_bytes) {
      if (absl::Status s = StartSegmentLocked(first); !s.ok()) {
        DropStagedLocked(first, 0);
        return s;
      }
    }
    batch.swap(staged_);
    staged_first_ = 0;
    last = next_sequence_ - 1;
    fd = fd_;
    offset = segments_.back().bytes;
    path = segments_.back().path;
  }
  // Outside mu_: sessions stage the next events while this one writes.
  absl::Status error;
  size_t written = 0;
  while (written < batch.size()) {
    const ssize_t n = ::write(fd, batch.data() + written, batch.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = Errno("write", path);
      break;
    }
    written += static_cast<size_t>(n);
  }
  absl::MutexLock lock(&mu_);
  if (!error.ok()) {
    // Leave no torn record in front of later ones.
    if (::ftruncate(fd, static_cast<off_t>(offset)) != 0) {
      error = absl::InternalError(absl::StrCat(
          error.message(), "; and the partial records could not be removed: ",
          std::strerror(errno)));
    }
    DropStagedLocked(first, batch.size());
    return error;
  }
  Segment& seg = segments_.back();
  seg.bytes += batch.size();
  seg.last = last;
  written_through_ = last;
  // The written buffer stages the next batch: it
  // need not grow again from nothing, a reallocation every few events.
  if (staged_.empty() && staged_.capacity() < batch.capacity() &&
      batch.capacity() <= kRecycledBatchBytes) {
    batch.clear();
    staged_.swap(batch);
  }
  return absl::OkStatus();
}

absl::Status Spool::ReadEach(
    uint64_t from, size_t max_events, size_t max_bytes,
    absl::FunctionRef<void(uint64_t, absl::string_view)> fn,
    size_t* count) const {
  *count = 0;
  auto records = Read(from, max_events, max_bytes);
  if (!records.ok()) return records.status();
  for (const SpoolRecord& r : *records) fn(r.sequence, r.payload);
  *count = records->size();
  return absl::OkStatus();
}

bool Spool::Written(SpoolTicket ticket) const {
  absl::MutexLock lock(&mu_);
  if (ticket.epoch == epoch_) return ticket.sequence <= written_through_;
  return ticket.epoch < dropped_from_.size() &&
         ticket.sequence < dropped_from_[ticket.epoch];
}

absl::Status Spool::Sync(bool persist_acked) {
  std::vector<int> fds;
  bool sync_dir = false;
  uint64_t target = 0;
  // What sessions staged and did not write yet (they write at the end of
  // their loop's batch; this is the safety net).
  if (absl::Status s = WriteStaged(); !s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    if (persist_acked) {
      if (absl::Status s = PersistAckedLocked(); !s.ok()) return s;
    }
    target = written_through_;
    if (target <= synced_through_) return absl::OkStatus();
    fds = std::move(unsynced_fds_);
    unsynced_fds_.clear();
    if (fd_ >= 0) {
      const int copy = ::dup(fd_);
      if (copy < 0) return Errno("dup", dir_);
      fds.push_back(copy);
    }
    sync_dir = dir_dirty_;
    dir_dirty_ = false;
  }
  // Outside the lock: appends go on while the disk flushes.
  absl::Status result = absl::OkStatus();
  for (int fd : fds) {
    if (::fdatasync(fd) != 0 && result.ok()) result = Errno("fdatasync", dir_);
    ::close(fd);
  }
  if (sync_dir) {
    const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || ::fsync(dfd) != 0) {
      if (result.ok()) result = Errno("fsync", dir_);
    }
    if (dfd >= 0) ::close(dfd);
  }
  absl::MutexLock lock(&mu_);
  if (!result.ok()) {
    dir_dirty_ = dir_dirty_ || sync_dir;
    return result;
  }
  synced_through_ = std::max(synced_through_, target);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SpoolRecord>> Spool::Read(uint64_t from,
                                                     size_t max_events,
                                                     size_t max_bytes) const {
  std::vector<Segment> segments;
  {
    absl::MutexLock lock(&mu_);
    for (const Segment& s : segments_) {
      if (s.last >= from && s.last >= s.first) segments.push_back(s);
    }
  }
  ReadHint hint;
  {
    absl::MutexLock lock(&mu_);
    hint = read_hint_;
  }
  std::vector<SpoolRecord> out;
  size_t bytes = 0;
  ReadHint next = hint;
  // Read in chunks about one batch large: a sender that is behind takes
  // one batch per call without reading and checking the rest of the
  // segment each time.
  const uint64_t chunk = std::max<uint64_t>(max_bytes, 64u << 10) + (4u << 10);
  bool full = false;
  for (const Segment& seg : segments) {
    if (full) break;
    // The sender reads on from where its last Read stopped: start there
    // instead of re-reading the segment from its beginning.
    uint64_t start = hint.path == seg.path && hint.sequence <= from &&
                             hint.sequence >= seg.first
                         ? hint.offset
                         : 0;
    uint64_t want = chunk;
    while (start < seg.bytes && !full) {
      // Only what was complete when the segment list was taken.
      const uint64_t size = std::min<uint64_t>(want, seg.bytes - start);
      auto data = ReadAll(seg.path, start, size);
      if (absl::IsNotFound(data.status())) break;  // acknowledged meanwhile
      if (!data.ok()) return data.status();
      bytes_read_.fetch_add(data->size(), std::memory_order_relaxed);
      Parsed parsed = ParseRecords(*data, options_.max_record_bytes, from,
                                   /*keep=*/true, max_events - out.size());
      const bool cut_by_read = start + data->size() < seg.bytes;
      if (!parsed.error.empty() && !(parsed.truncated && cut_by_read)) {
        return absl::DataLossError(absl::StrCat(seg.path, " at byte ",
                                                start + parsed.good_bytes,
                                                ": ", parsed.error));
      }
      if (parsed.good_bytes == 0) {
        if (!parsed.truncated || parsed.truncated_record <= size) break;
        want = parsed.truncated_record;  // one record larger than a chunk
        continue;
      }
      size_t used = parsed.good_bytes;
      for (size_t i = 0; i < parsed.records.size(); ++i) {
        if (out.size() >= max_events || (bytes >= max_bytes && !out.empty())) {
          full = true;
          used = i == 0 ? 0 : parsed.ends[i - 1];
          break;
        }
        bytes += parsed.records[i].payload.size();
        next = {seg.path, parsed.records[i].sequence + 1,
                start + parsed.ends[i]};
        out.push_back(std::move(parsed.records[i]));
      }
      if (out.size() >= max_events) full = true;
      if (used == 0) break;
      start += used;
      want = chunk;
    }
  }
  absl::MutexLock lock(&mu_);
  read_hint_ = next;
  return out;
}

absl::Status Spool::WriteAckedLocked(uint64_t sequence) {
  return WriteFileDurably(dir_ + "/acked", absl::StrCat(sequence, "\n"));
}

absl::Status Spool::PersistAckedLocked() {
  if (acked_ <= acked_persisted_) return absl::OkStatus();
  if (absl::Status s = WriteAckedLocked(acked_); !s.ok()) return s;
  acked_persisted_ = acked_;
  return absl::OkStatus();
}

absl::Status Spool::Acknowledge(uint64_t sequence) {
  absl::MutexLock lock(&mu_);
  if (sequence <= acked_) return absl::OkStatus();
  if (sequence >= next_sequence_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "acknowledgement of sequence ", sequence, " but the spool's last is ",
        next_sequence_ - 1));
  }
  acked_ = sequence;
  // "acked" is written durably before any segment is deleted (a restart
  // must never continue below it), otherwise at the next Sync: an
  // acknowledgement lost in a crash only makes the sender resend events
  // the control plane already has, which it skips. One file replace and
  // fsync per Sync instead of one per Append call.
  if (segments_.size() > 1 && segments_.front().last <= acked_) {
    if (absl::Status s = PersistAckedLocked(); !s.ok()) return s;
  }
  // Each entry stands for the events from its sequence up to the next
  // entry's (a recovered range, or one event appended by this process).
  while (!pending_times_.empty() && pending_times_.front().first <= sequence) {
    const uint64_t end = pending_times_.size() > 1
                             ? pending_times_[1].first
                             : next_sequence_;
    if (end > sequence + 1) {
      pending_times_.front().first = sequence + 1;
      break;
    }
    pending_times_.pop_front();
  }
  // Whole segments of acknowledged events go; the newest stays open.
  while (segments_.size() > 1 && segments_.front().last <= acked_) {
    if (::unlink(segments_.front().path.c_str()) != 0 && errno != ENOENT) {
      return Errno("unlink", segments_.front().path);
    }
    pending_bytes_ -= segments_.front().bytes;
    pending_bytes_hint_.store(pending_bytes_, std::memory_order_relaxed);
    segments_.pop_front();
  }
  return absl::OkStatus();
}

SpoolStats Spool::stats() const {
  absl::MutexLock lock(&mu_);
  SpoolStats s;
  s.next_sequence = next_sequence_;
  s.acked = acked_;
  s.pending_events = next_sequence_ - 1 - acked_;
  s.pending_bytes = pending_bytes_;
  s.synced_through = synced_through_;
  s.segments = segments_.size();
  if (!pending_times_.empty()) s.oldest_pending = pending_times_.front().second;
  return s;
}

}  // namespace warden::dataplane::audit
