#include "controlplane/log/etcd_log.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "grpcpp/grpcpp.h"
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
    : options_(std::move(options)), range_end_(PrefixEnd(options_.prefix)) {}

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
  // Entries up to max_batch_bytes each come back from Read in pages.
  args.SetMaxReceiveMessageSize(64 << 20);
  // Redial a lost endpoint quickly: a replica fails over to another etcd
  // member instead of waiting out gRPC's default backoff.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  for (const std::string& endpoint : log->options_.endpoints) {
    log->channels_.push_back(
        grpc::CreateCustomChannel(endpoint, credentials, args));
  }
  // Where the log ends, and from which revision to follow it.
  absl::Status last;
  for (size_t i = 0; i < log->channels_.size(); ++i) {
    auto refreshed = log->Refresh();
    if (refreshed.ok()) {
      last = absl::OkStatus();
      break;
    }
    last = refreshed.status();
  }
  if (!last.ok()) {
    return absl::UnavailableError(
        absl::StrCat("etcd at ", absl::StrJoin(log->options_.endpoints, ", "),
                     ": ", last.message()));
  }
  EtcdLog* self = log.get();
  log->follower_ = std::thread([self] { self->Follow(); });
  return log;
}

EtcdLog::~EtcdLog() {
  stop_.Notify();
  {
    absl::MutexLock lock(&watch_mu_);
    if (grpc::ClientContext* context = watch_context_.load()) {
      context->TryCancel();
    }
  }
  if (follower_.joinable()) follower_.join();
}

std::string EtcdLog::KeyOf(uint64_t index) const {
  std::string key = options_.prefix;
  std::string digits = absl::StrCat(index);
  key.append(kIndexDigits - std::min(kIndexDigits, digits.size()), '0');
  key.append(digits);
  return key;
}

bool EtcdLog::IndexOf(const std::string& key, uint64_t* index) const {
  if (key.size() != options_.prefix.size() + kIndexDigits ||
      key.compare(0, options_.prefix.size(), options_.prefix) != 0) {
    return false;
  }
  absl::string_view digits =
      absl::string_view(key).substr(options_.prefix.size());
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(digits, index) && *index > 0;
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

void EtcdLog::Saw(uint64_t index) {
  absl::MutexLock lock(&mu_);
  last_index_ = std::max(last_index_, index);
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

void EtcdLog::LastKeyRequest(etcdserverpb::RangeRequest* request) const {
  request->set_key(options_.prefix);
  request->set_range_end(range_end_);
  request->set_sort_order(etcdserverpb::RangeRequest::DESCEND);
  request->set_sort_target(etcdserverpb::RangeRequest::KEY);
  request->set_limit(1);
  request->set_keys_only(true);
}

absl::StatusOr<uint64_t> EtcdLog::Refresh() {
  etcdserverpb::RangeRequest request;
  LastKeyRequest(&request);
  etcdserverpb::RangeResponse response;
  if (absl::Status s = Range(request, "read where the log ends", &response);
      !s.ok()) {
    return s;
  }
  uint64_t last = 0;
  if (response.kvs_size() > 0 && !IndexOf(response.kvs(0).key(), &last)) {
    return absl::DataLossError(absl::StrCat(
        "etcd: the key '", absl::CHexEscape(response.kvs(0).key()),
        "' under the log prefix is not a log entry"));
  }
  Saw(last);
  absl::MutexLock lock(&mu_);
  refreshed_revision_ =
      std::max(refreshed_revision_, response.header().revision());
  return last_index_;
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

absl::StatusOr<uint64_t> EtcdLog::Append(std::string entry) {
  std::vector<std::string> one;
  one.push_back(std::move(entry));
  return AppendBatch(std::move(one));
}

absl::StatusOr<uint64_t> EtcdLog::AppendBatch(
    std::vector<std::string> entries) {
  // Another writer may take the index first: catch up with it and retry.
  for (int attempt = 0;; ++attempt) {
    auto first = AppendBatchAt(LastIndex() + 1, entries);
    if (!absl::IsAborted(first.status()) || attempt >= 100) return first;
  }
}

absl::StatusOr<uint64_t> EtcdLog::AppendBatchAt(
    uint64_t first, const std::vector<std::string>& entries) {
  if (entries.empty()) {
    return absl::InvalidArgumentError("append of no log entries");
  }
  if (first == 0) return absl::InvalidArgumentError("log indexes start at 1");
  size_t bytes = 0;
  for (const std::string& e : entries) bytes += e.size();
  if (entries.size() > options_.max_batch_entries ||
      bytes > options_.max_batch_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "etcd: an append of ", entries.size(), " entries and ", bytes,
        " bytes is over one transaction's limit (", options_.max_batch_entries,
        " entries, ", options_.max_batch_bytes, " bytes)"));
  }
  etcdserverpb::TxnRequest request;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string key = KeyOf(first + i);
    // Created by nobody yet: create revision 0.
    etcdserverpb::Compare* compare = request.add_compare();
    compare->set_result(etcdserverpb::Compare::EQUAL);
    compare->set_target(etcdserverpb::Compare::CREATE);
    compare->set_key(key);
    compare->set_create_revision(0);
    etcdserverpb::PutRequest* put =
        request.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(entries[i]);
  }
  // On a conflict, where the log ends now, in the same round trip.
  LastKeyRequest(request.add_failure()->mutable_request_range());

  auto channel = Channel();
  grpc::ClientContext context;
  SetDeadline(&context);
  etcdserverpb::TxnResponse response;
  grpc::Status s =
      etcdserverpb::KV::NewStub(channel)->Txn(&context, request, &response);
  if (!s.ok()) {
    // Not retried here: a Txn that timed out may still have been applied.
    // The caller's next attempt finds out (its index is then taken, and the
    // entries read back are its own).
    if (Unreachable(s)) NextEndpoint(channel);
    return FromGrpc(s, absl::StrCat("append at index ", first));
  }
  if (response.succeeded()) {
    Saw(first + entries.size() - 1);
    return first;
  }
  uint64_t end = 0;
  if (response.responses_size() > 0 &&
      response.responses(0).response_range().kvs_size() > 0) {
    if (!IndexOf(response.responses(0).response_range().kvs(0).key(), &end)) {
      return absl::DataLossError(
          "etcd: a key under the log prefix is not a log entry");
    }
  }
  Saw(end);
  return absl::AbortedError(absl::StrCat("log index ", first,
                                         " is taken; the log ends at ", end));
}

absl::StatusOr<std::vector<Entry>> EtcdLog::Read(uint64_t from, size_t max) {
  if (from == 0) return absl::InvalidArgumentError("log indexes start at 1");
  std::vector<Entry> out;
  if (max == 0) return out;
  etcdserverpb::RangeRequest request;
  request.set_key(KeyOf(from));
  request.set_range_end(max >= UINT64_MAX - from ? range_end_
                                                 : KeyOf(from + max));
  request.set_limit(static_cast<int64_t>(std::min<size_t>(max, 1 << 20)));
  etcdserverpb::RangeResponse response;
  if (absl::Status s =
          Range(request, absl::StrCat("read from index ", from), &response);
      !s.ok()) {
    return s;
  }
  uint64_t want = from;
  for (const mvccpb::KeyValue& kv : response.kvs()) {
    uint64_t index = 0;
    if (!IndexOf(kv.key(), &index) || index != want) {
      return absl::DataLossError(absl::StrCat(
          "etcd: the log is missing index ", want, " (found '",
          absl::CHexEscape(kv.key()), "')"));
    }
    out.push_back(Entry{index, kv.value()});
    ++want;
  }
  if (!out.empty()) {
    Saw(out.back().index);
    return out;
  }
  auto end = Refresh();
  if (!end.ok()) return end.status();
  if (from > *end + 1) {
    return absl::OutOfRangeError(absl::StrCat(
        "read from index ", from, " past the end of the log (last ", *end,
        ")"));
  }
  return out;
}

void EtcdLog::Follow() {
  int64_t revision;
  {
    absl::MutexLock lock(&mu_);
    revision = refreshed_revision_ + 1;
  }
  absl::Duration backoff = absl::Milliseconds(100);
  while (!stop_.HasBeenNotified()) {
    const int64_t next = WatchOnce(revision);
    if (stop_.HasBeenNotified()) break;
    if (next > revision) {
      revision = next;
      backoff = absl::Milliseconds(100);
    }
    // The stream ended (an endpoint lost, a compaction past `revision`):
    // learn where the log ends, then watch again from there.
    if (Refresh().ok()) {
      absl::MutexLock lock(&mu_);
      revision = std::max(revision, refreshed_revision_ + 1);
    }
    if (stop_.WaitForNotificationWithTimeout(backoff)) break;
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
}

int64_t EtcdLog::WatchOnce(int64_t revision) {
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&watch_mu_);
    if (stop_.HasBeenNotified()) return revision;
    watch_context_.store(&context);
  }
  auto channel = Channel();
  auto stub = etcdserverpb::Watch::NewStub(channel);
  auto stream = stub->Watch(&context);
  etcdserverpb::WatchRequest request;
  auto* create = request.mutable_create_request();
  create->set_key(options_.prefix);
  create->set_range_end(range_end_);
  create->set_start_revision(revision);
  create->set_progress_notify(true);
  create->add_filters(etcdserverpb::WatchCreateRequest::NODELETE);
  int64_t next = revision;
  if (stream->Write(request)) {
    etcdserverpb::WatchResponse response;
    while (stream->Read(&response)) {
      if (response.canceled() || response.compact_revision() > 0) {
        break;  // compacted past `revision`: Follow re-reads the end.
      }
      for (const mvccpb::Event& event : response.events()) {
        uint64_t index = 0;
        if (event.type() == mvccpb::Event::PUT &&
            IndexOf(event.kv().key(), &index)) {
          Saw(index);
        }
        next = std::max(next, event.kv().mod_revision() + 1);
      }
    }
  }
  context.TryCancel();
  grpc::Status s = stream->Finish();
  {
    absl::MutexLock lock(&watch_mu_);
    watch_context_.store(nullptr);
  }
  if (!s.ok() && Unreachable(s) && !stop_.HasBeenNotified()) {
    NextEndpoint(channel);
  }
  return next;
}

}  // namespace warden::controlplane::log
