#include "dataplane/bundle_client/bundle_client.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/proxy_identity.h"
#include "common/x509.h"
#include "proto/warden/v1/control.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace warden::dataplane::bundle_client {
namespace {

// A proxy renews with this much margin at least, whatever the lifetime.
constexpr absl::Duration kMinRenewMargin = absl::Seconds(1);
// How often the watchdog looks at the open stream's liveness.
constexpr absl::Duration kWatchdogTick = absl::Milliseconds(250);
// Largest bundle a proxy accepts (the directory is in it).
constexpr int kMaxBundleBytes = 256 << 20;

absl::Status WithContext(const grpc::Status& status, absl::string_view what) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<BundleClient>> BundleClient::Create(
    Options options, ApplyFn apply) {
  if (options.address.empty()) {
    return absl::InvalidArgumentError("control_plane.address is empty");
  }
  if (options.ca_file.empty()) {
    return absl::InvalidArgumentError(
        "control_plane.ca_file is required: the CA of warden-control's "
        "certificate (its DATA_DIR/ca.crt unless the operator gave it one)");
  }
  auto server_ca = ReadFile(options.ca_file);
  if (!server_ca.ok()) return server_ca.status();
  if (!options.proxy_id.empty()) {
    if (auto s = ValidateProxyName("control_plane.proxy_id", options.proxy_id);
        !s.ok()) {
      return s;
    }
  }
  if (!options.environment.empty()) {
    if (auto s = ValidateProxyName("control_plane.environment",
                                   options.environment);
        !s.ok()) {
      return s;
    }
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
  auto client = std::unique_ptr<BundleClient>(
      new BundleClient(std::move(options), std::move(apply), std::move(keys)));
  {
    absl::MutexLock lock(&client->mu_);
    client->warden_ca_pem_ = ReadFile(client->WardenCaPath()).value_or(*server_ca);
    // An earlier run got heartbeats from warden-control: expect them from
    // the first stream.
    int64_t interval_ms = 0;
    if (auto text = ReadFile(client->HeartbeatsPath());
        text.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*text),
                                      &interval_ms) &&
        interval_ms > 0) {
      client->heartbeats_seen_ = true;
      client->heartbeat_interval_ = absl::Milliseconds(interval_ms);
    }
  }
  client->server_ca_pem_ = *std::move(server_ca);
  return client;
}

BundleClient::BundleClient(Options options, ApplyFn apply,
                           policy::bundle::TrustedKeys keys)
    : options_(std::move(options)),
      addresses_(options_.address),
      apply_(std::move(apply)),
      keys_(std::move(keys)) {}

BundleClient::~BundleClient() { Stop(); }

std::string BundleClient::WardenCaPath() const {
  return options_.state_dir + "/warden-ca.crt";
}

std::string BundleClient::warden_ca_pem() const {
  absl::MutexLock lock(&mu_);
  return warden_ca_pem_;
}

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

std::string BundleClient::proxy_id() const {
  absl::MutexLock lock(&mu_);
  return credentials_ != nullptr ? credentials_->proxy_id : "";
}

absl::StatusOr<BundleClient::Identity> BundleClient::CurrentIdentity() const {
  absl::MutexLock lock(&mu_);
  if (credentials_ == nullptr) {
    return absl::UnavailableError(
        "this proxy has no certificate yet (not enrolled)");
  }
  return Identity{credentials_->key_pem, credentials_->cert_pem,
                  credentials_->proxy_id, credentials_->environment};
}

absl::Status BundleClient::MayServe(const std::string& environment) const {
  absl::MutexLock lock(&mu_);
  if (credentials_ == nullptr || credentials_->environment == environment) {
    return absl::OkStatus();
  }
  for (const std::string& e : credentials_->also_serves) {
    if (e == environment) return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "this proxy's certificate (", credentials_->environment, "/",
      credentials_->proxy_id, ") does not cover environment \"", environment,
      "\", so its sessions could not be recorded as such; enroll the proxy "
      "with a bootstrap token that names every environment of its listeners "
      "(wardenctl tokens create ... --scope proxy:enroll --environment ",
      credentials_->environment, " --environment ", environment, ")"));
}

std::shared_ptr<grpc::ChannelCredentials> BundleClient::ChannelCredentials(
    const Credentials* client) const {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = server_ca_pem_;
  if (client != nullptr) {
    ssl.pem_private_key = client->key_pem;
    ssl.pem_cert_chain = client->cert_pem;
  }
  return grpc::SslCredentials(ssl);
}

absl::StatusOr<BundleClient::Credentials> BundleClient::LoadCredentials(
    const std::string& key_pem, const std::string& cert_pem) const {
  auto cert = x509::Parse(cert_pem);
  if (!cert.ok()) return cert.status();
  if (!x509::KeyMatchesCertificate(key_pem, cert_pem)) {
    return absl::InvalidArgumentError("proxy.key does not match proxy.crt");
  }
  auto identity = ProxyIdentityFromUris(cert->subject.uris);
  if (!identity.ok()) {
    return absl::InvalidArgumentError(
        "proxy.crt is not a Warden proxy certificate");
  }
  if ((!options_.proxy_id.empty() &&
       identity->proxy_id != options_.proxy_id) ||
      (!options_.environment.empty() &&
       identity->environment != options_.environment)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the certificate names proxy \"", identity->proxy_id,
        "\" of environment \"", identity->environment,
        "\" but control_plane says \"", options_.proxy_id, "\" of \"",
        options_.environment,
        "\"; fix the configuration or enroll with a token for it"));
  }
  Credentials out;
  out.key_pem = key_pem;
  out.cert_pem = cert_pem;
  out.proxy_id = identity->proxy_id;
  out.environment = identity->environment;
  out.also_serves = identity->also_serves;
  out.not_after = cert->not_after;
  const absl::Duration life = cert->not_after - cert->not_before;
  out.renew_at = std::min(cert->not_before + life * 2 / 3,
                          cert->not_after - kMinRenewMargin);
  return out;
}

absl::StatusOr<BundleClient::Credentials> BundleClient::Obtain(
    const Credentials* current) {
  auto key = x509::GenerateKey();
  if (!key.ok()) return key.status();
  auto csr = x509::MakeRequest(*key, options_.proxy_id);
  if (!csr.ok()) return csr.status();
  // A replica that cannot be reached: the next one, each once.
  for (size_t attempt = 0;; ++attempt) {
    const std::string address = addresses_.Current();
    auto obtained = ObtainFrom(address, current, *key, *csr);
    if (obtained.ok() || attempt + 1 >= addresses_.size() ||
        (!absl::IsUnavailable(obtained.status()) &&
         !absl::IsDeadlineExceeded(obtained.status()))) {
      return obtained;
    }
    spdlog::warn("control plane {}: {}; trying the next replica", address,
                 obtained.status().ToString());
    addresses_.Failed(address);
  }
}

absl::StatusOr<BundleClient::Credentials> BundleClient::ObtainFrom(
    const std::string& address, const Credentials* current,
    const std::string& key_pem, const std::string& csr_pem) {
  const std::string* key = &key_pem;
  const std::string* csr = &csr_pem;
  auto stub = warden::v1::ProxyEnrollment::NewStub(grpc::CreateChannel(
      address, ChannelCredentials(current)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  warden::v1::EnrollResponse response;
  grpc::Status status;
  if (current != nullptr) {
    warden::v1::RenewRequest request;
    request.set_csr_pem(*csr);
    status = stub->Renew(&context, request, &response);
    if (!status.ok()) return WithContext(status, "renewing the certificate");
  } else {
    std::string token;
    if (!options_.bootstrap_token_file.empty()) {
      auto text = ReadFile(options_.bootstrap_token_file);
      if (!text.ok()) return text.status();
      token = std::string(absl::StripAsciiWhitespace(*text));
    } else if (const char* env = std::getenv("WARDEN_BOOTSTRAP_TOKEN")) {
      token = std::string(absl::StripAsciiWhitespace(env));
    }
    if (token.empty()) {
      return absl::FailedPreconditionError(
          "no valid proxy certificate and no bootstrap token: create one "
          "with `wardenctl tokens create NAME --scope proxy:enroll "
          "--environment ENV` and give it in "
          "control_plane.bootstrap_token_file or WARDEN_BOOTSTRAP_TOKEN");
    }
    context.AddMetadata("authorization", "Bearer " + token);
    warden::v1::EnrollRequest request;
    request.set_csr_pem(*csr);
    request.set_proxy_id(options_.proxy_id.empty() ? options_.enroll_as
                                                   : options_.proxy_id);
    status = stub->Enroll(&context, request, &response);
    if (!status.ok()) {
      return WithContext(status, "enrolling with the bootstrap token");
    }
  }
  auto credentials = LoadCredentials(*key, response.certificate_pem());
  if (!credentials.ok()) return credentials.status();
  // Key first: a crash in between leaves a key without its certificate,
  // which LoadCredentials refuses, never a certificate for a lost key.
  const std::string dir = options_.state_dir;
  if (auto s = WriteFileDurably(dir + "/proxy.key", *key); !s.ok()) return s;
  if (auto s = WriteFileDurably(dir + "/proxy.crt", response.certificate_pem());
      !s.ok()) {
    return s;
  }
  if (!response.ca_certificate_pem().empty()) {
    if (auto s = WriteFileDurably(WardenCaPath(), response.ca_certificate_pem());
        !s.ok()) {
      spdlog::error("cannot keep Warden's CA in {}: {}", WardenCaPath(),
                    s.ToString());
    }
    absl::MutexLock lock(&mu_);
    warden_ca_pem_ = response.ca_certificate_pem();
  }
  spdlog::info("{} certificate for proxy {} of environment {}, valid until {}",
               current != nullptr ? "renewed" : "enrolled: got a",
               credentials->proxy_id, credentials->environment,
               absl::FormatTime(credentials->not_after));
  return credentials;
}

absl::Status BundleClient::EnsureCredentials() {
  const absl::Time now = absl::Now();
  std::unique_ptr<Credentials> current;
  {
    absl::MutexLock lock(&mu_);
    if (credentials_ != nullptr) {
      current = std::make_unique<Credentials>(*credentials_);
    }
  }
  if (current == nullptr) {
    auto key = ReadFile(options_.state_dir + "/proxy.key");
    auto cert = ReadFile(options_.state_dir + "/proxy.crt");
    if (key.ok() && cert.ok()) {
      auto loaded = LoadCredentials(*key, *cert);
      if (loaded.ok()) {
        current = std::make_unique<Credentials>(*std::move(loaded));
      } else if (absl::IsFailedPrecondition(loaded.status())) {
        return loaded.status();
      } else {
        spdlog::warn("ignoring {}/proxy.crt: {}", options_.state_dir,
                     loaded.status().ToString());
      }
    }
  }
  if (current != nullptr && current->not_after <= now) {
    spdlog::warn("proxy certificate expired at {}; enrolling again",
                 absl::FormatTime(current->not_after));
    current.reset();
  }
  if (current != nullptr && now < current->renew_at) {
    absl::MutexLock lock(&mu_);
    credentials_ = std::move(current);
    return absl::OkStatus();
  }
  auto obtained = Obtain(current.get());
  if (!obtained.ok()) {
    if (current == nullptr) return obtained.status();
    // Renewal failed but the certificate still works: keep using it.
    spdlog::warn("{}; the current certificate is valid until {}",
                 obtained.status().ToString(),
                 absl::FormatTime(current->not_after));
    absl::MutexLock lock(&mu_);
    credentials_ = std::move(current);
    return absl::OkStatus();
  }
  absl::MutexLock lock(&mu_);
  credentials_ = std::make_unique<Credentials>(*std::move(obtained));
  return absl::OkStatus();
}

absl::Status BundleClient::WatchOnce() {
  const std::string address = addresses_.Current();
  if (absl::Status s = EnsureCredentials(); !s.ok()) return s;
  Credentials credentials;
  {
    absl::MutexLock lock(&mu_);
    credentials = *credentials_;
  }
  std::shared_ptr<grpc::ChannelCredentials> creds =
      ChannelCredentials(&credentials);
  // Keepalive pings find a connection that died silently (host gone, NAT
  // or load balancer idle drop), so the watch reconnects instead of waiting
  // forever on a dead stream.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Each stream on a connection of its own: a stream given up as silent
  // (WatchLiveness) must be replaced by a new connection, not by another
  // stream on the same dead one, which gRPC's process-wide subchannel pool
  // would otherwise reuse for an identical channel.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // A bundle carries the whole directory; gRPC's default 4 MiB would stop
  // every later revision (deactivations, revocations, keys) at some
  // 50,000 users, silently keeping the last one.
  args.SetMaxReceiveMessageSize(kMaxBundleBytes);
  auto stub = warden::v1::BundleDistribution::NewStub(
      grpc::CreateCustomChannel(address, creds, args));
  grpc::ClientContext context;
  // The stream ends when the certificate is due for renewal; Run() renews
  // and reconnects at once.
  const absl::Time renew_at = std::max(credentials.renew_at, absl::Now());
  context.set_deadline(absl::ToChronoTime(renew_at));
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("stopping");
    active_ = &context;
    stream_opened_ = absl::Now();
    delivered_ = false;
    liveness_ = std::make_unique<WatchLiveness>(
        options_.watch_silence_timeout, stream_opened_);
    if (heartbeats_seen_) liveness_->ExpectHeartbeats(heartbeat_interval_);
    given_up_ = absl::OkStatus();
    watch_done_ = false;
  }
  // The watchdog: a stream that goes silent (a connection blackholed
  // between here and warden-control delivers nothing and is never reset)
  // is cancelled after the silence bound, not after keepalive's, so the
  // proxy reconnects and fetches what it missed (a deactivation).
  std::thread watchdog([this, &context, &address] {
    absl::MutexLock lock(&mu_);
    while (!mu_.AwaitWithTimeout(absl::Condition(&watch_done_),
                                 kWatchdogTick)) {
      absl::Status alive = liveness_->Check(absl::Now(), running_.load());
      if (!alive.ok()) {
        spdlog::warn("control plane {}: {}", address,
                     std::string(alive.message()));
        given_up_ = std::move(alive);
        context.TryCancel();
        return;
      }
    }
  });
  auto stream = stub->Watch(&context);
  warden::v1::WatchRequest hello;
  hello.mutable_hello()->set_proxy_id(credentials.proxy_id);
  hello.mutable_hello()->set_environment(credentials.environment);
  hello.mutable_hello()->set_running_revision(running_.load());
  hello.mutable_hello()->set_heartbeats(true);
  bool ok = stream->Write(hello);
  warden::v1::WatchResponse response;
  while (ok && stream->Read(&response)) {
    if (response.has_heartbeat() && !response.has_bundle()) {
      const auto& heartbeat = response.heartbeat();
      absl::MutexLock lock(&mu_);
      liveness_->OnHeartbeat(
          absl::Now(), heartbeat.head_revision(),
          absl::Milliseconds(heartbeat.interval_ms()), running_.load(),
          heartbeat.has_stream_elapsed_ms()
              ? std::optional<absl::Duration>(
                    absl::Milliseconds(heartbeat.stream_elapsed_ms()))
              : std::nullopt);
      const bool first = !heartbeats_seen_;
      heartbeats_seen_ = true;
      heartbeat_interval_ = absl::Milliseconds(heartbeat.interval_ms());
      if (first) RememberHeartbeats();
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      liveness_->OnBundle(absl::Now());
    }
    const absl::Status accepted = Accept(response.bundle());
    {
      absl::MutexLock lock(&mu_);
      if (!accepted.ok()) liveness_->OnRefused(response.bundle().revision());
      liveness_->OnHandled(absl::Now());
    }
    warden::v1::WatchRequest answer;
    if (accepted.ok()) {
      {
        absl::MutexLock lock(&mu_);
        delivered_ = true;
      }
      spdlog::info("policy revision {} in force (from {})",
                   response.bundle().revision(), address);
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
  absl::Status given_up;
  {
    absl::MutexLock lock(&mu_);
    watch_done_ = true;
  }
  watchdog.join();
  {
    absl::MutexLock lock(&mu_);
    active_ = nullptr;
    given_up = given_up_;
    // The stream was healthy until now; it is not any more (until the
    // next one proves itself).
    const absl::Time now = absl::Now();
    const bool was_healthy = StreamProvenLocked(now);
    const bool renewal =
        given_up.ok() &&
        status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
        now >= renew_at;
    // A renewal is not a failure: the next stream inherits the health.
    renewed_healthy_ = was_healthy && renewal;
    if (was_healthy) {
      // A silent stream may have been dead since it last said something:
      // the policy is stale since then, not since the watchdog noticed.
      unhealthy_since_ = given_up.ok()
                             ? now
                             : std::min(now, std::max(liveness_->last_heard(),
                                                      stream_opened_));
    }
    stream_opened_ = absl::InfiniteFuture();
    delivered_ = false;
  }
  if (!given_up.ok()) return given_up;
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
      absl::Now() >= renew_at) {
    return absl::OkStatus();  // time to renew, not a failure.
  }
  return absl::UnavailableError(absl::StrCat(
      "watch stream ended: ", status.error_code(), " ", status.error_message()));
}

void BundleClient::Run() {
  absl::Duration backoff = absl::Seconds(1);
  absl::Time last_renewal = absl::InfinitePast();
  while (!stopping_) {
    const absl::Time started = absl::Now();
    const absl::Status ended = WatchOnce();
    if (stopping_) break;
    if (ended.ok()) {
      // Renewal due: renew and watch again now, but at most once a second
      // (a control plane issuing certificates that are due at once must
      // not make this spin).
      if (absl::Now() - last_renewal < absl::Seconds(1) &&
          stopped_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
        break;
      }
      last_renewal = absl::Now();
      continue;
    }
    if (absl::Now() - started > absl::Seconds(10)) backoff = absl::Seconds(1);
    {
      absl::MutexLock lock(&mu_);
      last_error_ = ended.ToString();
    }
    // With several replicas, the next attempt goes to the next one.
    const std::string failed = addresses_.Current();
    const std::string next = addresses_.Failed(failed);
    spdlog::warn("control plane {}: {}; keeping revision {}, retrying{} in {}",
                 failed, ended.ToString(), running_.load(),
                 next == failed ? "" : absl::StrCat(" with ", next),
                 absl::FormatDuration(backoff));
    if (stopped_.WaitForNotificationWithTimeout(backoff)) break;
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

bool BundleClient::StreamProvenLocked(absl::Time now) const {
  if (delivered_ || renewed_healthy_) return true;
  // Once warden-control is known to send heartbeats, a stream proves
  // itself by delivering one, not by staying open: a path that lets each
  // new connection open and delivers nothing on it would otherwise look
  // healthy for most of every reconnect cycle, and the staleness clock
  // (and control_plane.max_disconnected) would restart with each one (red
  // team).
  if (liveness_ != nullptr && liveness_->armed()) {
    return liveness_->heard_heartbeat();
  }
  return now - stream_opened_ >= kStreamHealthyAfter;
}

void BundleClient::RememberHeartbeats() {
  // Kept in the state directory, so that a restarted proxy expects them
  // from its first stream too (red team: after a restart, a stream let
  // through and blackholed at its first bundle was judged by keepalive
  // only, again and again).
  const absl::Status written = WriteFileDurably(
      HeartbeatsPath(),
      absl::StrCat(absl::ToInt64Milliseconds(heartbeat_interval_), "\n"));
  if (!written.ok()) {
    spdlog::warn("cannot record that warden-control sends heartbeats: {}",
                 written.ToString());
  }
}

BundleClient::WatchHealth BundleClient::watch_health() const {
  absl::MutexLock lock(&mu_);
  WatchHealth health;
  const absl::Time now = absl::Now();
  // A stream past its silence bound is unhealthy at once, even before the
  // watchdog's next look cancels it.
  absl::Status alive = given_up_;
  if (alive.ok() && active_ != nullptr && liveness_ != nullptr) {
    alive = liveness_->Check(now, running_.load());
  }
  const bool open_healthy = active_ != nullptr && StreamProvenLocked(now);
  health.connected = open_healthy && alive.ok();
  if (health.connected) {
    health.since = stream_opened_;
  } else if (open_healthy) {  // healthy but for its silence.
    health.since = std::min(now, std::max(liveness_->last_heard(),
                                          stream_opened_));
  } else {
    health.since = unhealthy_since_;
  }
  health.last_error = alive.ok() ? last_error_ : alive.ToString();
  return health;
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

}  // namespace warden::dataplane::bundle_client
