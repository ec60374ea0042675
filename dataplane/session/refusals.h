// Refusals: the one place that turns a refused frontend message into its
// substitute ("poison") and the poison's error back into the refusal.
//
// A refused message is not dropped: it is replaced upstream by a message
// that fails in PostgreSQL without touching data (a syntax error, or a
// statement name that cannot exist), so PostgreSQL itself puts the
// transaction and the pipeline into the state a failed statement leaves
// them in. The poison names a random tag; PostgreSQL's error about it is
// recognised by that tag (nothing the client sent before the poison can
// know it) and replaced by the refusal's ErrorResponse. A poison
// PostgreSQL skips (an earlier error in its batch) has nothing to rewrite:
// the refusal is dropped when its batch ends.
//
// No I/O; the session owns one per connection.
#ifndef WARDEN_DATAPLANE_SESSION_REFUSALS_H_
#define WARDEN_DATAPLANE_SESSION_REFUSALS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "dataplane/pgwire/messages.h"

namespace warden::dataplane::session {

class Refusals {
 public:
  // `fallback_token`: per session, for the tag if no random bytes can be
  // drawn (with a sequence number).
  explicit Refusals(std::string fallback_token = "")
      : fallback_token_(std::move(fallback_token)) {}
  void set_fallback_token(std::string token) {
    fallback_token_ = std::move(token);
  }

  // Queues `error` (an encoded ErrorResponse) for the batch that Sync (or
  // Query) number `batch` ends, and returns the poison's name
  // ("warden_refusal_<tag>"). `parse`: it stands for a refused Parse.
  std::string Queue(std::string error, uint64_t batch, bool parse = false);

  // Writes the substitute for refused message `type` (Query, Parse, Bind,
  // Describe, Execute, FunctionCall) of `body` to `out`, queueing `error`
  // once. Parse keeps its statement name and Bind its portal, so what
  // PostgreSQL answers in their place is what the client waits for.
  void WriteSubstitute(char type, absl::string_view body, std::string error,
                       uint64_t batch, std::string* out, bool parse = false);

  struct Taken {
    std::string error;
    bool parse = false;
  };
  // The refusal PostgreSQL's `error` is about, if any, taken off the queue.
  std::optional<Taken> Take(const pgwire::ErrorResponse& error);

  // Drops the refusals of batches up to `batches_done` (their
  // ReadyForQuery arrived): poisons PostgreSQL skipped.
  void DropDone(uint64_t batches_done);

  size_t size() const { return queue_.size(); }
  bool empty() const { return queue_.empty(); }

 private:
  struct Refusal {
    uint64_t batch = 0;
    std::string error;
    std::string tag;
    bool parse = false;
  };
  std::string fallback_token_;
  uint64_t seq_ = 0;
  std::deque<Refusal> queue_;
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_REFUSALS_H_
