#include "dataplane/bundle_client/bundle_client.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/address.h"
#include "common/files.h"
#include "proto/warden/v1/control.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace warden::bundle_client {
namespace {

}  // namespace

absl::StatusOr<std::unique_ptr<BundleClient>> BundleClient::Create(
    Options options, ApplyFn apply) {
  if (options.address.empty()) {
    return absl::InvalidArgumentError("control_plane.address is empty");
  }
  if (options.ca_file.empty() && !IsLoopbackAddress(options.address)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "control_plane.ca_file is required for ", options.address,
        ": bundles are only fetched in plaintext from loopback addresses"));
  }
  if (options.trusted_key_files.empty()) {
    return absl::InvalidArgumentError(
        "control_plane.trusted_keys is empty: no bundle could verify");
  }
  policy::bundle::TrustedKeys keys;
  for (const auto& file : options.trusted_key_files) {
    auto pem = ReadFile(file);
    if (!pem.ok()) return pem.status();
    if (absl::Status s = policy::bundle::AddTrustedKey(*pem, &keys); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("trusted key ", file, ": ", s.message()));
    }
  }
  if (options.state_dir.empty()) {
    return absl::InvalidArgumentError("control_plane.state_dir is empty");
  }
  ::mkdir(options.state_dir.c_str(), 0700);
  return std::unique_ptr<BundleClient>(
      new BundleClient(std::move(options), std::move(apply), std::move(keys)));
}

BundleClient::BundleClient(Options options, ApplyFn apply,
                           policy::bundle::TrustedKeys keys)
    : options_(std::move(options)),
      apply_(std::move(apply)),
      keys_(std::move(keys)) {}

BundleClient::~BundleClient() { Stop(); }

std::string BundleClient::LastKnownGoodPath() const {
  return options_.state_dir + "/last-known-good.bundle";
}

absl::Status BundleClient::LoadLastKnownGood() {
  auto bytes = ReadFile(LastKnownGoodPath());
  if (!bytes.ok()) {
    return absl::NotFoundError("no last-known-good bundle on disk");
  }
  auto decoded = policy::bundle::DecodeSignedBundle(*bytes);
  if (!decoded.ok()) return decoded.status();
  auto bundle = policy::bundle::VerifyBundle(*decoded, keys_, 0);
  if (!bundle.ok()) {
    return absl::Status(bundle.status().code(),
                        absl::StrCat("last-known-good bundle: ",
                                     bundle.status().message()));
  }
  if (absl::Status s = apply_(*bundle, decoded->revision()); !s.ok()) {
    return s;
  }
  running_ = decoded->revision();
  spdlog::info("policy revision {} from last-known-good", decoded->revision());
  return absl::OkStatus();
}

absl::Status BundleClient::Accept(
    const warden::v1::SignedBundle& signed_bundle) {
  auto bundle =
      policy::bundle::VerifyBundle(signed_bundle, keys_, running_.load());
  if (!bundle.ok()) return bundle.status();
  if (absl::Status s = apply_(*bundle, signed_bundle.revision()); !s.ok()) {
    return s;
  }
  running_ = signed_bundle.revision();
  // Applied even if persisting fails: serving the newest policy matters
  // more; the next restart then falls back to the older file.
  if (absl::Status s = WriteFileDurably(LastKnownGoodPath(),
                                    signed_bundle.SerializeAsString());
      !s.ok()) {
    spdlog::error("cannot persist policy revision {}: {}",
                  signed_bundle.revision(), s.ToString());
  }
  return absl::OkStatus();
}

absl::Status BundleClient::WatchOnce() {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!options_.ca_file.empty()) {
    auto ca = ReadFile(options_.ca_file);
    if (!ca.ok()) return ca.status();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = *ca;
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  // Keepalive pings find a connection that died silently (host gone, NAT
  // or load balancer idle drop), so the watch reconnects instead of waiting
  // forever on a dead stream.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  auto stub = warden::v1::BundleDistribution::NewStub(
      grpc::CreateCustomChannel(options_.address, creds, args));
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("stopping");
    active_ = &context;
  }
  auto stream = stub->Watch(&context);
  warden::v1::WatchRequest hello;
  hello.mutable_hello()->set_proxy_id(options_.proxy_id);
  hello.mutable_hello()->set_environment(options_.environment);
  hello.mutable_hello()->set_running_revision(running_.load());
  bool ok = stream->Write(hello);
  warden::v1::WatchResponse response;
  while (ok && stream->Read(&response)) {
    const absl::Status accepted = Accept(response.bundle());
    warden::v1::WatchRequest answer;
    if (accepted.ok()) {
      spdlog::info("policy revision {} in force (from {})",
                   response.bundle().revision(), options_.address);
      answer.mutable_ack()->set_nonce(response.nonce());
      answer.mutable_ack()->set_revision(response.bundle().revision());
    } else {
      spdlog::error("refused policy revision {}: {}",
                    response.bundle().revision(), accepted.ToString());
      answer.mutable_nack()->set_nonce(response.nonce());
      answer.mutable_nack()->set_revision(response.bundle().revision());
      answer.mutable_nack()->set_error(accepted.ToString());
    }
    ok = stream->Write(answer);
  }
  stream->WritesDone();
  const grpc::Status status = stream->Finish();
  {
    absl::MutexLock lock(&mu_);
    active_ = nullptr;
  }
  return absl::UnavailableError(absl::StrCat(
      "watch stream ended: ", status.error_code(), " ", status.error_message()));
}

void BundleClient::Run() {
  absl::Duration backoff = absl::Seconds(1);
  while (!stopping_) {
    const absl::Time started = absl::Now();
    const absl::Status ended = WatchOnce();
    if (stopping_) break;
    if (absl::Now() - started > absl::Seconds(10)) backoff = absl::Seconds(1);
    spdlog::warn("control plane {}: {}; keeping revision {}, retrying in {}",
                 options_.address, ended.ToString(), running_.load(),
                 absl::FormatDuration(backoff));
    if (stopped_.WaitForNotificationWithTimeout(backoff)) break;
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

void BundleClient::Start() {
  thread_ = std::thread([this] { Run(); });
}

void BundleClient::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_.exchange(true)) {
      // Already stopping; fall through to join.
    }
    if (active_ != nullptr) active_->TryCancel();
  }
  if (!stopped_.HasBeenNotified()) stopped_.Notify();
  if (thread_.joinable()) thread_.join();
}

}  // namespace warden::bundle_client
