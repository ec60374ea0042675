// warden-proxy: the PostgreSQL wire-protocol proxy (data plane).
//
//   warden-proxy --config proxy.yaml [--check]
//
// SIGHUP reloads the policy files; SIGINT/SIGTERM shut down gracefully.
#include <csignal>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "dataplane/config/config.h"
#include "dataplane/gate/gate.h"
#include "dataplane/server/server.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
#ifdef NDEBUG
  // Debian builds Abseil without NDEBUG, so every Mutex::Lock would keep
  // the lock-order graph under a process-wide lock (about 1% of the
  // proxy's CPU, and contention between workers). Tests and debug builds
  // keep the check.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  CLI::App app{"warden-proxy: PostgreSQL wire-protocol governance proxy"};
  std::string config_path;
  bool check_only = false;
  app.add_option("-c,--config", config_path, "YAML configuration file")
      ->required();
  app.add_flag("--check", check_only,
               "validate the configuration and exit (0 valid, 2 invalid)");
  CLI11_PARSE(app, argc, argv);

  auto logger = warden::log::InstallStderrLogger("warden-proxy");

  auto config = warden::dataplane::config::LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << "warden-proxy: invalid configuration:\n"
              << config.status().message() << "\n";
    return 2;
  }
  if (check_only) {
    if (!config->policy.paths.empty()) {
      auto gate = warden::dataplane::gate::Gate::Load(config->policy.paths, 1);
      if (!gate.ok()) {
        std::cerr << "warden-proxy: invalid policy:\n"
                  << gate.status().message() << "\n";
        return 2;
      }
      std::cout << "policy bundle " << (*gate)->bundle().digest() << ": "
                << (*gate)->bundle().policies_size() << " policies\n";
    }
    std::cout << config_path << ": OK\n";
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(config->proxy.log_level));

  // Signals are taken synchronously by the main thread; workers never see
  // them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  warden::dataplane::server::Server server(*std::move(config));
  if (auto status = server.Start(); !status.ok()) {
    spdlog::error("cannot start: {}", std::string(status.message()));
    return 1;
  }
  spdlog::info("warden-proxy ready");
  int received = 0;
  // SIGHUP reloads the policy files: new statements are judged by the new
  // policy; a policy that does not compile is reported and the old one
  // stays in force.
  while (sigwait(&signals, &received) == 0 && received == SIGHUP) {
    if (absl::Status s = server.ReloadPolicy(); !s.ok()) {
      spdlog::error("policy reload refused, the previous policy stays in "
                    "force:\n{}",
                    std::string(s.message()));
    }
  }
  spdlog::info("signal {}: shutting down", received);
  server.Stop();
  server.Wait();
  return 0;
}
