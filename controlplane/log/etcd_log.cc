#include "controlplane/log/etcd_log.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/files.h"
#include "controlplane/log/etcd_batch.pb.h"
#include "grpcpp/grpcpp.h"
#include "openssl/crypto.h"
#include "spdlog/spdlog.h"
#include "third_party/etcd/rpc.grpc.pb.h"

namespace warden::controlplane::log {
namespace {

constexpr size_t kIndexDigits = 20;

// gRPC's status as absl's, with what was being done and where.
absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  const auto code = static_cast<absl::StatusCode>(s.error_code());
  return absl::Status(code, absl::StrCat("etcd: ", what, ": ",
                                         s.error_message()));
}

bool Unreachable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// The first key after every key that starts with `prefix`.
std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(end.back() + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

}  // namespace

EtcdLog::EtcdLog(EtcdOptions options)
    : options_(std::move(options)), range_end_(PrefixEnd(options_.prefix)) {
  std::random_device random;
  const uint64_t id = (static_cast<uint64_t>(random()) << 32) ^ random();
  writer_ = absl::StrCat(absl::Hex(id, absl::kZeroPad16));
}

absl::StatusOr<std::unique_ptr<EtcdLog>> EtcdLog::Open(EtcdOptions options) {
  if (options.endpoints.empty()) {
    return absl::InvalidArgumentError("etcd: no endpoints");
  }
  if (options.prefix.empty() || options.prefix.back() != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "etcd: the log prefix '", options.prefix, "' must end in '/'"));
  }
  if (options.max_batch_entries == 0 || options.max_batch_bytes == 0) {
    return absl::InvalidArgumentError("etcd: batch limits must be positive");
  }
  if (options.mac_key.size() < 16) {
    return absl::InvalidArgumentError(
        "etcd: the log needs the cluster's batch key (16 bytes or more)");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.plaintext) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    if (options.ca_file.empty() || options.cert_file.empty() ||
        options.key_file.empty()) {
      return absl::InvalidArgumentError(
          "etcd: TLS needs a CA file, a client certificate and its key "
          "(or plaintext, explicitly)");
    }
    grpc::SslCredentialsOptions tls;
    const std::pair<const std::string*, std::string*> files[] = {
        {&options.ca_file, &tls.pem_root_certs},
        {&options.cert_file, &tls.pem_cert_chain},
        {&options.key_file, &tls.pem_private_key}};
    for (const auto& [path, out] : files) {
      auto pem = warden::ReadFile(*path);
      if (!pem.ok() || pem->empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("etcd: cannot read '", *path, "'"));
      }
      *out = *std::move(pem);
    }
    credentials = grpc::SslCredentials(tls);
  }
  std::unique_ptr<EtcdLog> log(new EtcdLog(std::move(options)));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  // Redial a lost endpoint quickly: a replica fails over to another etcd
  // member instead of waiting out gRPC's default backoff.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  for (const std::string& endpoint : log->options_.endpoints) {
    log->channels_.push_back(
        grpc::CreateCustomChannel(endpoint, credentials, args));
  }
  if (absl::Status s = log->Scan(); !s.ok()) {
    if (absl::IsDataLoss(s)) return s;
    return absl::UnavailableError(
        absl::StrCat("etcd at ", absl::StrJoin(log->options_.endpoints, ", "),
                     ": ", s.message()));
  }
  EtcdLog* self = log.get();
  log->follower_ = std::thread([self] { self->Follow(); });
  return log;
}

EtcdLog::~EtcdLog() {
  stop_.Notify();
  {
    absl::MutexLock lock(&watch_mu_);
    if (watch_context_ != nullptr) watch_context_->TryCancel();
  }
  if (follower_.joinable()) follower_.join();
}

std::string EtcdLog::Mac(const std::string& key,
                         const warden::log::EtcdBatch& batch) const {
  // The key, the writer's view of the log's end, then each entry with its
  // length: no two batches share an input (a batch moved to another key,
  // split differently, or claiming another place, fails).
  std::string data =
      absl::StrCat("warden/etcd-log/v1\n", key, "\n", batch.after(), "\n",
                   batch.after_key().size(), ":", batch.after_key(), "\n");
  for (const std::string& e : batch.entries()) {
    absl::StrAppend(&data, e.size(), ":");
    data.append(e);
  }
  return warden::crypto::HmacSha256(options_.mac_key, data);
}

std::string EtcdLog::Fingerprint(uint64_t index) const {
  absl::MutexLock lock(&mu_);
  return KeyHoldingLocked(index);
}

std::string EtcdLog::KeyHoldingLocked(uint64_t index) const {
  if (index == 0 || index > last_index_ || batches_.empty()) return "";
  auto it = std::upper_bound(
      batches_.begin(), batches_.end(), index,
      [](uint64_t i, const Batch& b) { return i < b.first; });
  if (it == batches_.begin()) return "";
  --it;
  return it->key;
}

bool EtcdLog::ParseKey(const std::string& key, uint64_t* count) const {
  // <prefix><16 hex>/<20 digits>-<count>
  const size_t p = options_.prefix.size();
  if (key.size() < p + 16 + 1 + kIndexDigits + 2 ||
      key.compare(0, p, options_.prefix) != 0 || key[p + 16] != '/' ||
      key[p + 17 + kIndexDigits] != '-') {
    return false;
  }
  for (size_t i = p; i < p + 16; ++i) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(key[i]))) return false;
  }
  for (size_t i = p + 17; i < p + 17 + kIndexDigits; ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(key[i]))) return false;
  }
  absl::string_view n = absl::string_view(key).substr(p + 18 + kIndexDigits);
  for (char c : n) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(n, count) && *count > 0;
}

void EtcdLog::Number(const std::string& key, int64_t revision) {
  uint64_t count = 0;
  if (!ParseKey(key, &count)) {
    if (broken_.ok()) {
      broken_ = absl::DataLossError(absl::StrCat(
          "etcd: the key '", absl::CHexEscape(key),
          "' under the log prefix is not a batch of the log"));
      spdlog::error("{}", broken_.ToString());
    }
    return;
  }
  if (revision <= numbered_revision_) return;  // numbered already
  batches_.push_back(Batch{key, revision, last_index_ + 1, count});
  last_index_ += count;
  numbered_revision_ = revision;
}

absl::Status EtcdLog::Scan() {
  // Every batch key with its create revision, at one revision of etcd.
  std::vector<std::pair<int64_t, std::string>> found;
  etcdserverpb::RangeRequest request;
  request.set_key(options_.prefix);
  request.set_range_end(range_end_);
  request.set_keys_only(true);
  request.set_limit(10000);
  int64_t at = 0;
  while (true) {
    etcdserverpb::RangeResponse response;
    if (absl::Status s = Range(request, "read the log's batches", &response);
        !s.ok()) {
      return s;
    }
    if (at == 0) {
      at = response.header().revision();
      request.set_revision(at);
    }
    for (const mvccpb::KeyValue& kv : response.kvs()) {
      found.emplace_back(kv.create_revision(), kv.key());
    }
    if (!response.more() || response.kvs().empty()) break;
    request.set_key(response.kvs().rbegin()->key() + std::string(1, '\0'));
  }
  std::sort(found.begin(), found.end());
  absl::MutexLock lock(&mu_);
  // A rescan (after etcd compacted the watch's history) must number the
  // batches already numbered the same way.
  const std::deque<Batch> before = std::move(batches_);
  batches_.clear();
  last_index_ = 0;
  numbered_revision_ = 0;
  for (const auto& [revision, key] : found) Number(key, revision);
  for (size_t i = 0; i < before.size(); ++i) {
    if (i >= batches_.size() || batches_[i].key != before[i].key) {
      broken_ = absl::DataLossError(absl::StrCat(
          "etcd: the log's batch ", before[i].key,
          " is gone or moved (edited behind Warden's back)"));
      spdlog::error("{}", broken_.ToString());
      break;
    }
  }
  numbered_revision_ = std::max(numbered_revision_, at);
  return broken_;
}

std::shared_ptr<grpc::Channel> EtcdLog::Channel() const {
  absl::MutexLock lock(&mu_);
  return channels_[current_];
}

void EtcdLog::NextEndpoint(const std::shared_ptr<grpc::Channel>& failed) {
  absl::MutexLock lock(&mu_);
  // Only the first caller to find this endpoint gone moves on.
  if (channels_[current_] == failed) {
    current_ = (current_ + 1) % channels_.size();
    spdlog::warn("etcd: {} unreachable; trying {}",
                 options_.endpoints[(current_ + channels_.size() - 1) %
                                    channels_.size()],
                 options_.endpoints[current_]);
  }
}

void EtcdLog::SetDeadline(grpc::ClientContext* context) const {
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout));
}

absl::Status EtcdLog::Range(const etcdserverpb::RangeRequest& request,
                            absl::string_view what,
                            etcdserverpb::RangeResponse* response) {
  for (size_t attempt = 0;; ++attempt) {
    auto channel = Channel();
    grpc::ClientContext context;
    SetDeadline(&context);
    grpc::Status s = etcdserverpb::KV::NewStub(channel)->Range(
        &context, request, response);
    if (s.ok()) return absl::OkStatus();
    if (Unreachable(s) && attempt + 1 < channels_.size()) {
      NextEndpoint(channel);
      continue;
    }
    return FromGrpc(s, what);
  }
}

absl::Status EtcdLog::Txn(const etcdserverpb::TxnRequest& request,
                          absl::string_view what,
                          etcdserverpb::TxnResponse* response) {
  const absl::Time deadline = absl::Now() + options_.call_timeout;
  while (true) {
    auto channel = Channel();
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    grpc::Status s =
        etcdserverpb::KV::NewStub(channel)->Txn(&context, request, response);
    if (s.ok()) return absl::OkStatus();
    if (!Unreachable(s) || absl::Now() >= deadline) return FromGrpc(s, what);
    NextEndpoint(channel);
    absl::SleepFor(absl::Milliseconds(50));
  }
}

uint64_t EtcdLog::LastIndex() const {
  absl::MutexLock lock(&mu_);
  return last_index_;
}

uint64_t EtcdLog::WaitBeyond(uint64_t index, absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto beyond = [this, index]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return last_index_ > index;
  };
  mu_.AwaitWithDeadline(absl::Condition(&beyond), deadline);
  return last_index_;
}

absl::Status EtcdLog::WaitForRevision(int64_t revision, absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto reached = [this, revision]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return numbered_revision_ >= revision || !broken_.ok();
  };
  if (!mu_.AwaitWithDeadline(absl::Condition(&reached), deadline)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "etcd: the log's watch has not reached revision ", revision,
        " (at ", numbered_revision_, ")"));
  }
  return broken_;
}

absl::StatusOr<uint64_t> EtcdLog::Refresh() {
  {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
  }
  // The newest batch not numbered yet, if any: wait for the watch to
  // number it.
  etcdserverpb::RangeRequest request;
  request.set_key(options_.prefix);
  request.set_range_end(range_end_);
  request.set_keys_only(true);
  request.set_sort_target(etcdserverpb::RangeRequest::CREATE);
  request.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
  request.set_limit(1);
  etcdserverpb::RangeResponse response;
  if (absl::Status s = Range(request, "read where the log ends", &response);
      !s.ok()) {
    return s;
  }
  if (response.kvs_size() > 0) {
    if (absl::Status s =
            WaitForRevision(response.kvs(0).create_revision(),
                            absl::Now() + options_.call_timeout);
        !s.ok()) {
      return s;
    }
  }
  return LastIndex();
}

absl::StatusOr<uint64_t> EtcdLog::Append(std::string entry) {
  return WriteBatch({std::move(entry)}, 0);
}

absl::StatusOr<uint64_t> EtcdLog::AppendBatch(
    std::vector<std::string> entries) {
  return WriteBatch(entries, 0);
}

absl::StatusOr<uint64_t> EtcdLog::AppendBatchAt(
    uint64_t first, const std::vector<std::string>& entries) {
  if (first == 0) return absl::InvalidArgumentError("log indexes start at 1");
  int64_t after = 0;  // the revision of the batch holding first - 1
  {
    absl::MutexLock lock(&mu_);
    if (last_index_ + 1 != first) {
      return absl::AbortedError(absl::StrCat("log index ", first,
                                             " is taken; the log ends at ",
                                             last_index_));
    }
    if (!batches_.empty()) after = batches_.back().revision;
  }
  // Nothing created after that batch: then this one gets index `first`.
  return WriteBatch(entries, after + 1);
}

absl::StatusOr<uint64_t> EtcdLog::WriteBatch(
    const std::vector<std::string>& entries, int64_t created_before) {
  if (entries.empty()) {
    return absl::InvalidArgumentError("append of no log entries");
  }
  size_t bytes = 0;
  for (const std::string& e : entries) bytes += e.size();
  if (entries.size() > options_.max_batch_entries ||
      bytes > options_.max_batch_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "etcd: an append of ", entries.size(), " entries and ", bytes,
        " bytes is over the log's limit (", options_.max_batch_entries,
        " entries, ", options_.max_batch_bytes, " bytes)"));
  }
  std::string key;
  warden::log::EtcdBatch batch;
  {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    std::string counter = absl::StrCat(++counter_);
    key = absl::StrCat(options_.prefix, writer_, "/",
                       std::string(kIndexDigits - counter.size(), '0'),
                       counter, "-", entries.size());
    // Everything numbered so far was created before this batch will be.
    batch.set_after(last_index_);
    batch.set_after_key(KeyHoldingLocked(last_index_));
  }
  for (const std::string& e : entries) batch.add_entries(e);
  batch.set_mac(Mac(key, batch));

  etcdserverpb::TxnRequest request;
  // Not written yet: a retry after a lost answer does not write it twice.
  etcdserverpb::Compare* fresh = request.add_compare();
  fresh->set_result(etcdserverpb::Compare::EQUAL);
  fresh->set_target(etcdserverpb::Compare::CREATE);
  fresh->set_key(key);
  fresh->set_create_revision(0);
  if (created_before > 0) {
    // No batch created since the one before `first`.
    etcdserverpb::Compare* quiet = request.add_compare();
    quiet->set_result(etcdserverpb::Compare::LESS);
    quiet->set_target(etcdserverpb::Compare::CREATE);
    quiet->set_key(options_.prefix);
    quiet->set_range_end(range_end_);
    quiet->set_create_revision(created_before);
  }
  etcdserverpb::PutRequest* put = request.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(batch.SerializeAsString());
  request.add_failure()->mutable_request_range()->set_key(key);

  etcdserverpb::TxnResponse response;
  if (absl::Status s = Txn(request, "append", &response); !s.ok()) return s;
  int64_t revision = response.header().revision();
  if (!response.succeeded()) {
    const auto& existing = response.responses(0).response_range();
    if (existing.kvs_size() == 0) {
      // The quiet compare failed: another replica appended first. Number
      // what it wrote before saying so, so that the caller's catch-up
      // finds it.
      auto end = Refresh();
      if (!end.ok()) return end.status();
      return absl::AbortedError(absl::StrCat(
          "log index is taken: another replica appended first; the log "
          "ends at ", *end));
    }
    revision = existing.kvs(0).create_revision();  // an earlier try landed
  }
  if (absl::Status s =
          WaitForRevision(revision, absl::Now() + options_.call_timeout);
      !s.ok()) {
    return s;
  }
  absl::MutexLock lock(&mu_);
  for (auto it = batches_.rbegin(); it != batches_.rend(); ++it) {
    if (it->key == key) return it->first;
    if (it->revision < revision) break;
  }
  return absl::InternalError(
      absl::StrCat("etcd: the log's watch did not number ", key));
}

absl::StatusOr<std::vector<Entry>> EtcdLog::Read(uint64_t from, size_t max) {
  if (from == 0) return absl::InvalidArgumentError("log indexes start at 1");
  std::vector<Entry> out;
  if (max == 0) return out;
  std::vector<Batch> wanted;
  {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    if (from <= last_index_) {
      auto it = std::upper_bound(
          batches_.begin(), batches_.end(), from,
          [](uint64_t index, const Batch& b) { return index < b.first; });
      --it;  // the batch holding `from`
      const uint64_t until = from + std::min<uint64_t>(max, 1u << 20);
      // At most 64 batches and about 4 MiB of entries per call.
      for (; it != batches_.end() && it->first < until && wanted.size() < 64;
           ++it) {
        wanted.push_back(*it);
      }
    }
  }
  if (wanted.empty()) {
    auto end = Refresh();
    if (!end.ok()) return end.status();
    if (from > *end + 1) {
      return absl::OutOfRangeError(absl::StrCat(
          "read from index ", from, " past the end of the log (last ", *end,
          ")"));
    }
    if (from <= *end) return Read(from, max);  // numbered meanwhile
    return out;
  }
  etcdserverpb::TxnRequest request;
  for (const Batch& b : wanted) {
    request.add_success()->mutable_request_range()->set_key(b.key);
  }
  etcdserverpb::TxnResponse response;
  if (absl::Status s = Txn(request, absl::StrCat("read from index ", from),
                           &response);
      !s.ok()) {
    return s;
  }
  size_t bytes = 0;
  for (size_t i = 0; i < wanted.size(); ++i) {
    const Batch& b = wanted[i];
    const auto& range = response.responses(i).response_range();
    warden::log::EtcdBatch batch;
    if (range.kvs_size() == 0 ||
        !batch.ParseFromString(range.kvs(0).value()) ||
        static_cast<uint64_t>(batch.entries_size()) != b.count) {
      return absl::DataLossError(absl::StrCat(
          "etcd: the log's batch ", b.key, " (indexes ", b.first, " to ",
          b.first + b.count - 1, ") is ",
          range.kvs_size() == 0 ? "gone" : "not what was written"));
    }
    // Constant time: a forger learns nothing from how long it took.
    const std::string want = Mac(b.key, batch);
    if (batch.mac().size() != want.size() ||
        CRYPTO_memcmp(batch.mac().data(), want.data(), want.size()) != 0) {
      return absl::DataLossError(absl::StrCat(
          "etcd: the log's batch ", b.key, " (indexes ", b.first, " to ",
          b.first + b.count - 1,
          ") is not authenticated by the cluster's key: it was written "
          "behind Warden's back, or this replica's shared keys (signing "
          "key, CA) are not the ones that wrote the log"));
    }
    // Where its writer saw the log end: before this batch, and the same
    // batch there. Otherwise batches were deleted and put back, out of
    // their order.
    std::string seen_key;
    {
      absl::MutexLock lock(&mu_);
      seen_key = KeyHoldingLocked(batch.after());
    }
    if (batch.after() >= b.first || seen_key != batch.after_key()) {
      return absl::DataLossError(absl::StrCat(
          "etcd: the log's batch ", b.key, " (indexes ", b.first, " to ",
          b.first + b.count - 1, ") was written when the log ended at index ",
          batch.after(), " (batch '", absl::CHexEscape(batch.after_key()),
          "'), but the log now holds ",
          batch.after() >= b.first
              ? "it before that"
              : absl::StrCat("'", absl::CHexEscape(seen_key), "' there"),
          ": batches were deleted and put back out of their order"));
    }
    for (uint64_t k = 0; k < b.count; ++k) {
      const uint64_t index = b.first + k;
      if (index < from) continue;
      if (out.size() >= max || (!out.empty() && bytes > (4u << 20))) {
        return out;
      }
      bytes += batch.entries(k).size();
      out.push_back(Entry{index, std::move(*batch.mutable_entries(k))});
    }
  }
  return out;
}

void EtcdLog::Follow() {
  absl::Duration backoff = absl::Milliseconds(100);
  while (!stop_.HasBeenNotified()) {
    int64_t from;
    {
      absl::MutexLock lock(&mu_);
      if (!broken_.ok()) break;
      from = numbered_revision_ + 1;
    }
    WatchOnce(from);
    if (stop_.WaitForNotificationWithTimeout(backoff)) break;
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
}

void EtcdLog::WatchOnce(int64_t revision) {
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&watch_mu_);
    if (stop_.HasBeenNotified()) return;
    watch_context_ = &context;
  }
  auto channel = Channel();
  auto stub = etcdserverpb::Watch::NewStub(channel);
  auto stream = stub->Watch(&context);
  etcdserverpb::WatchRequest request;
  auto* create = request.mutable_create_request();
  create->set_key(options_.prefix);
  create->set_range_end(range_end_);
  create->set_start_revision(revision);
  bool compacted = false;
  if (stream->Write(request)) {
    etcdserverpb::WatchResponse response;
    while (stream->Read(&response)) {
      if (response.compact_revision() > 0) {
        compacted = true;  // etcd forgot the history from `revision`
        break;
      }
      if (response.canceled()) break;
      absl::MutexLock lock(&mu_);
      for (const mvccpb::Event& event : response.events()) {
        if (event.type() == mvccpb::Event::PUT &&
            event.kv().create_revision() == event.kv().mod_revision()) {
          Number(event.kv().key(), event.kv().create_revision());
          continue;
        }
        // A batch is written once and never changed or deleted by Warden:
        // either is an edit behind its back, and what replicas applied may
        // no longer be what a replica starting now would read (red team).
        if (broken_.ok()) {
          broken_ = absl::DataLossError(absl::StrCat(
              "etcd: the log's key '", absl::CHexEscape(event.kv().key()),
              "' was ",
              event.type() == mvccpb::Event::DELETE ? "deleted" : "changed",
              " behind Warden's back (at etcd revision ",
              event.kv().mod_revision(), "); this replica stops applying"));
          spdlog::error("{}", broken_.ToString());
        }
      }
      if (!broken_.ok()) break;
    }
  }
  context.TryCancel();
  grpc::Status s = stream->Finish();
  {
    absl::MutexLock lock(&watch_mu_);
    watch_context_ = nullptr;
  }
  if (compacted) {
    // Number the batches again from a scan; the ones numbered already
    // must come out the same.
    if (absl::Status scanned = Scan(); !scanned.ok()) {
      spdlog::warn("etcd: rescanning the log: {}", scanned.ToString());
    }
  } else if (!s.ok() && Unreachable(s) && !stop_.HasBeenNotified()) {
    NextEndpoint(channel);
  }
}

}  // namespace warden::controlplane::log
