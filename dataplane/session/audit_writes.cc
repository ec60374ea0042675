#include "dataplane/session/audit_writes.h"

#include <utility>
#include <vector>

namespace warden::dataplane::session {
namespace {

struct Pending {
  bool scheduled = false;
  std::vector<std::function<void(const absl::Status&)>> waiting;
};
thread_local Pending pending;

}  // namespace

void AfterAuditWrite(net::EventLoop* loop, audit::AuditSink* sink,
                     std::function<void(const absl::Status&)> done) {
  pending.waiting.push_back(std::move(done));
  if (pending.scheduled) return;
  pending.scheduled = true;
  loop->Defer([sink] {
    std::vector<std::function<void(const absl::Status&)>> waiting;
    waiting.swap(pending.waiting);
    pending.scheduled = false;
    const absl::Status status = sink->WriteStaged();
    for (auto& done : waiting) done(status);
  });
}

}  // namespace warden::dataplane::session
