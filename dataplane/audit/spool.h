// The proxy's local audit spool: a bounded, crash-safe queue of audit
// events on disk, between the session that produced them and the control
// plane that acknowledges them.
//
// Layout: a directory of segment files "seg-<20-digit first sequence>.log"
// holding records
//
//   u32 length (little endian, of what follows the CRC)
//   u32 crc32 (zlib) of the next `length` bytes
//   u64 sequence (little endian)
//   payload (a serialized warden.v1.AuditEvent)
//
// and "acked" (the highest sequence the control plane acknowledged, written
// durably at Sync (the sender's syncer asks for it about once a second),
// before any segment is deleted, and on close; after
// a crash it may lag, and the sender resends what the control plane then
// skips as already held). Append() write(2)s the record before returning, so once it
// returns the event survives a crash of the proxy process; Sync() fsyncs
// (the caller batches: one fsync for many events). Acknowledge() deletes
// whole segments that hold only acknowledged events: the spool is truncated
// only after acknowledgement, never before.
//
// Open() recovers: a torn or corrupt record at the end of the newest
// segment (a crash mid-write) is cut off; corruption anywhere else is
// DataLoss, naming the file and offset, and the spool does not open (the
// operator decides; nothing is skipped silently).
//
// Sequences start at 1, increase by one per event and continue across
// restarts (from the newest record, or from "acked" when every segment was
// deleted). Thread-safe.
#ifndef WARDEN_DATAPLANE_AUDIT_SPOOL_H_
#define WARDEN_DATAPLANE_AUDIT_SPOOL_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace warden::dataplane::audit {

struct SpoolOptions {
  // Unacknowledged bytes (records with their framing) the spool may hold;
  // Append beyond it is ResourceExhausted.
  uint64_t max_bytes = 1ull << 30;
  // A new segment is started once the current one reaches this size.
  uint64_t segment_bytes = 16ull << 20;
  // Largest single event.
  uint32_t max_record_bytes = 16u << 20;
};

struct SpoolRecord {
  uint64_t sequence = 0;
  std::string payload;
};

// Which staged event, for Written(): its sequence and the spool's epoch
// when it was staged (a failed write ends an epoch and its sequences are
// used again).
struct SpoolTicket {
  uint64_t sequence = 0;
  uint64_t epoch = 0;
};

struct SpoolStats {
  uint64_t next_sequence = 1;
  uint64_t acked = 0;          // highest acknowledged sequence
  uint64_t pending_events = 0;  // appended, not acknowledged
  uint64_t pending_bytes = 0;
  uint64_t synced_through = 0;  // highest sequence known to be fsynced
  uint64_t segments = 0;
  // Append time of the oldest unacknowledged event appended by this
  // process (InfiniteFuture when none): the lag an operator watches.
  absl::Time oldest_pending = absl::InfiniteFuture();
};

class Spool {
 public:
  static absl::StatusOr<std::unique_ptr<Spool>> Open(const std::string& dir,
                                                     SpoolOptions options);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Append writes one event and returns its sequence. ResourceExhausted
  // when the spool is full (the caller refuses the statement), Internal on
  // an I/O error (likewise).
  absl::StatusOr<uint64_t> Append(absl::string_view payload);

  // Stage frames one event and gives it its sequence without writing it:
  // the next WriteStaged (of any thread) writes every staged event with
  // one write(2). Errors as Append's (full, too large). The caller does
  // not act on the event (relay its statement) before Written() says so.
  absl::StatusOr<SpoolTicket> Stage(absl::string_view payload);
  // Writes what is staged. On an error nothing of it is recorded: those
  // events (and any staged meanwhile) are dropped, their sequences used
  // again, and Written() is false for each of them.
  absl::Status WriteStaged();
  bool Written(SpoolTicket ticket) const;

  // Sync makes every appended record durable (fdatasync of the segments
  // written since the last Sync, and of the directory after new ones).
  // With `persist_acked` (the default) it also writes "acked" if the
  // acknowledged sequence moved; without, "acked" is left to a later Sync,
  // to a segment's deletion and to closing (it may lag anyway: a lagging
  // "acked" only makes the sender resend what the control plane skips).
  absl::Status Sync(bool persist_acked = true);

  // Read returns up to `max_events` records (and about `max_bytes`) with
  // sequence >= `from`, in order, from disk. Records already acknowledged
  // may still be returned if their segment was not deleted yet; the
  // receiver de-duplicates by sequence anyway.
  absl::StatusOr<std::vector<SpoolRecord>> Read(uint64_t from,
                                                size_t max_events,
                                                size_t max_bytes) const;

  // ReadEach calls `fn` with what Read would return, record by record,
  // without copying the payloads into records of their own. The count of
  // records visited in `*count`.
  absl::Status ReadEach(
      uint64_t from, size_t max_events, size_t max_bytes,
      absl::FunctionRef<void(uint64_t sequence, absl::string_view payload)> fn,
      size_t* count) const;

  // Acknowledge records that every event up to `sequence` is committed by
  // the control plane: persisted to "acked", and segments holding only
  // such events are deleted. Lower or equal values are ignored;
  // InvalidArgument beyond the last appended sequence.
  absl::Status Acknowledge(uint64_t sequence);

  SpoolStats stats() const;

  // The share of max_bytes that is unacknowledged (0 to 1): above one
  // half the control plane is behind, and sessions that record fastest are
  // slowed so that one of them cannot fill the spool for everyone.
  // Lock-free (a relaxed read), for a decision taken per statement.
  double Fill() const {
    return static_cast<double>(
               pending_bytes_hint_.load(std::memory_order_relaxed)) /
           static_cast<double>(options_.max_bytes);
  }

  // options.max_bytes: what Fill is a share of.
  uint64_t max_bytes() const { return options_.max_bytes; }

  // Bytes Read took from its segment files since the spool was opened (a
  // sender that is behind should read about what it sends, not re-read
  // the rest of a segment on each call).
  uint64_t bytes_read() const {
    return bytes_read_.load(std::memory_order_relaxed);
  }

 private:
  struct Segment {
    uint64_t first = 0;  // first sequence in it
    uint64_t last = 0;   // last sequence in it (first - 1 when empty)
    uint64_t bytes = 0;
    std::string path;
  };

  Spool(std::string dir, SpoolOptions options);
  absl::Status Recover();
  absl::Status StartSegmentLocked(uint64_t first)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropStagedLocked(uint64_t first, uint64_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteAckedLocked(uint64_t sequence)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes "acked" if acked_ moved since it was last written.
  absl::Status PersistAckedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  const SpoolOptions options_;

  // One writer at a time (in sequence order); taken before mu_.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  // Framed records staged and not yet written, from staged_first_ on.
  std::string staged_ ABSL_GUARDED_BY(mu_);
  uint64_t staged_first_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t written_through_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  // For each ended epoch, the first sequence its failed write dropped.
  std::vector<uint64_t> dropped_from_ ABSL_GUARDED_BY(mu_);
  std::deque<Segment> segments_ ABSL_GUARDED_BY(mu_);
  int fd_ ABSL_GUARDED_BY(mu_) = -1;  // the newest segment, for appends
  bool dir_dirty_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<int> unsynced_fds_ ABSL_GUARDED_BY(mu_);  // sealed, not synced
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t acked_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t acked_persisted_ ABSL_GUARDED_BY(mu_) = 0;  // in "acked"
  uint64_t synced_through_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // A copy of pending_bytes_ for Fill(), stored under mu_.
  std::atomic<uint64_t> pending_bytes_hint_{0};
  // (sequence, append time) of events appended by this process and not
  // yet acknowledged; front is the oldest.
  std::deque<std::pair<uint64_t, absl::Time>> pending_times_
      ABSL_GUARDED_BY(mu_);
  // Where the last Read stopped: the next sequence and its byte offset in
  // `path`, so reading on does not re-read the segment from the start.
  struct ReadHint {
    std::string path;
    uint64_t sequence = 0;
    uint64_t offset = 0;
  };
  mutable ReadHint read_hint_ ABSL_GUARDED_BY(mu_);
  mutable std::atomic<uint64_t> bytes_read_{0};
};

}  // namespace warden::dataplane::audit

#endif  // WARDEN_DATAPLANE_AUDIT_SPOOL_H_
