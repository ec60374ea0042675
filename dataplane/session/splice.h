// Splice: passes the messages of one read buffer on in order, some of
// them replaced or dropped. Runs of messages kept as they are go out as
// one slice of the buffer (one Send), so a relay that changes nothing
// copies nothing.
//
// Example: over "ABC" with messages A, B, C, Keep(A), Keep(B),
// Replace(C, "X") sends "AB" then "X".
//
// Not thread-safe; lives for one read.
#ifndef WARDEN_DATAPLANE_SESSION_SPLICE_H_
#define WARDEN_DATAPLANE_SESSION_SPLICE_H_

#include <cstddef>
#include <utility>

#include "absl/strings/string_view.h"

namespace warden::dataplane::session {

// `Send`: called with each slice to send, in order (kept by value, so a
// lambda may be passed as it is).
template <typename Send>
class Splice {
 public:
  // Nothing is sent that SendKept, Replace or Drop does not send: a read
  // that ends the session sends nothing after the session's last word.
  Splice(absl::string_view buf, Send send)
      : buf_(buf), send_(std::move(send)) {}

  // The bytes from the current message on.
  absl::string_view rest() const { return buf_.substr(pos_); }
  // Bytes taken so far (kept, replaced or dropped).
  size_t taken() const { return pos_; }
  bool done() const { return pos_ >= buf_.size(); }

  // The next `n` bytes go on as they are.
  void Keep(size_t n) { pos_ += n; }
  // What was kept goes out, then `with` in place of the next `n` bytes.
  void Replace(size_t n, absl::string_view with) {
    SendKept();
    send_(with);
    Skip(n);
  }
  // What was kept goes out; the next `n` bytes do not.
  void Drop(size_t n) {
    SendKept();
    Skip(n);
  }
  void SendKept() {
    if (pos_ > from_) send_(buf_.substr(from_, pos_ - from_));
    from_ = pos_;
  }

 private:
  void Skip(size_t n) {
    pos_ += n;
    from_ = pos_;
  }

  const absl::string_view buf_;
  Send send_;
  size_t pos_ = 0;
  size_t from_ = 0;
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_SPLICE_H_
