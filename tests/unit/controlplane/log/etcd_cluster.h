// A real etcd cluster for tests: `members` etcd processes (Debian's
// etcd-server) on free ports of 127.0.0.1, each in a data folder of its own
// under the test's temporary folder, with TLS and client-certificate
// authentication from a CA made at test time (openssl), stopped by PID.
#ifndef WARDEN_TESTS_UNIT_CONTROLPLANE_LOG_ETCD_CLUSTER_H_
#define WARDEN_TESTS_UNIT_CONTROLPLANE_LOG_ETCD_CLUSTER_H_

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "controlplane/log/etcd_log.h"
#include "grpcpp/grpcpp.h"
#include "third_party/etcd/rpc.grpc.pb.h"

namespace warden::testing {

inline int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

class EtcdCluster {
 public:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    std::string data;
    pid_t pid = -1;
  };

  // Makes the CA, certificates and folders under `dir`; Start() runs it.
  EtcdCluster(std::string dir, int members) : dir_(std::move(dir)) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    for (int i = 0; i < members; ++i) {
      Member m;
      m.name = absl::StrCat("m", i);
      m.client_port = FreeLoopbackPort();
      m.peer_port = FreeLoopbackPort();
      m.data = absl::StrCat(dir_, "/", m.name);
      members_.push_back(m);
    }
    MakeCertificates();
  }
  ~EtcdCluster() {
    for (size_t i = 0; i < members_.size(); ++i) Kill(i);
  }

  // Starts every member; false (with the reason in `*why`) if etcd did not
  // come up within 30 s.
  bool Start(std::string* why) {
    for (size_t i = 0; i < members_.size(); ++i) StartMember(i);
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      auto log = controlplane::log::EtcdLog::Open(Options("/warden/ready-probe/"));
      if (log.ok()) return true;
      *why = log.status().ToString();
      absl::SleepFor(absl::Milliseconds(100));
    }
    *why = absl::StrCat("etcd did not come up: ", *why, "; its log: ",
                        LogTail());
    return false;
  }

  void StartMember(size_t i) {
    Member& m = members_[i];
    std::vector<std::string> cluster;
    for (const Member& other : members_) {
      cluster.push_back(absl::StrCat(other.name, "=http://127.0.0.1:",
                                     other.peer_port));
    }
    const std::string client = absl::StrCat("https://127.0.0.1:", m.client_port);
    const std::string peer = absl::StrCat("http://127.0.0.1:", m.peer_port);
    std::vector<std::string> args = {
        "etcd",
        "--name", m.name,
        "--data-dir", m.data,
        "--listen-client-urls", client,
        "--advertise-client-urls", client,
        "--listen-peer-urls", peer,
        "--initial-advertise-peer-urls", peer,
        "--initial-cluster", absl::StrJoin(cluster, ","),
        "--initial-cluster-state", "new",
        "--initial-cluster-token", "warden-test",
        "--cert-file", dir_ + "/server.pem",
        "--key-file", dir_ + "/server.key",
        "--trusted-ca-file", dir_ + "/ca.pem",
        "--client-cert-auth",
        "--logger", "zap",
        "--log-level", "warn",
    };
    const std::string log_path = absl::StrCat(dir_, "/", m.name, ".log");
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("etcd", argv.data());
      _exit(127);
    }
    m.pid = pid;
  }

  // SIGKILL, as a crash would.
  void Kill(size_t i) {
    Member& m = members_[i];
    if (m.pid <= 0) return;
    kill(m.pid, SIGKILL);
    waitpid(m.pid, nullptr, 0);
    m.pid = -1;
  }

  std::vector<std::string> Endpoints() const {
    std::vector<std::string> out;
    for (const Member& m : members_) {
      out.push_back(absl::StrCat("127.0.0.1:", m.client_port));
    }
    return out;
  }

  // Options for an EtcdLog of this cluster under `prefix`, as a replica
  // with the client certificate.
  controlplane::log::EtcdOptions Options(const std::string& prefix) const {
    controlplane::log::EtcdOptions o;
    o.endpoints = Endpoints();
    o.prefix = prefix;
    o.ca_file = dir_ + "/ca.pem";
    o.cert_file = dir_ + "/client.pem";
    o.key_file = dir_ + "/client.key";
    o.call_timeout = absl::Seconds(5);
    o.mac_key = "warden-test-cluster-batch-key";
    return o;
  }

  const std::string& dir() const { return dir_; }

  // etcd's KV API directly, as the cluster's client certificate: what
  // somebody with etcd access could do behind Warden's back.
  std::unique_ptr<etcdserverpb::KV::Stub> RawKv() const {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = *warden::ReadFile(dir_ + "/ca.pem");
    tls.pem_cert_chain = *warden::ReadFile(dir_ + "/client.pem");
    tls.pem_private_key = *warden::ReadFile(dir_ + "/client.key");
    return etcdserverpb::KV::NewStub(grpc::CreateChannel(
        Endpoints().front(), grpc::SslCredentials(tls)));
  }

  // The keys under `prefix`, oldest first, read behind the log's back.
  std::vector<std::string> KeysOf(const std::string& prefix) const {
    etcdserverpb::RangeRequest list;
    list.set_key(prefix);
    list.set_range_end(prefix.substr(0, prefix.size() - 1) +
                       static_cast<char>(prefix.back() + 1));
    list.set_keys_only(true);
    list.set_sort_target(etcdserverpb::RangeRequest::CREATE);
    list.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
    etcdserverpb::RangeResponse keys;
    grpc::ClientContext context;
    std::vector<std::string> out;
    if (!RawKv()->Range(&context, list, &keys).ok()) return out;
    for (const auto& k : keys.kvs()) out.push_back(k.key());
    return out;
  }

  std::string LogTail() const {
    std::string out;
    for (const Member& m : members_) {
      FILE* f = fopen(absl::StrCat(dir_, "/", m.name, ".log").c_str(), "r");
      if (f == nullptr) continue;
      char buf[4096];
      size_t n = fread(buf, 1, sizeof(buf), f);
      fclose(f);
      out.append(buf, n);
    }
    return out;
  }

 private:
  void Run(const std::string& command) {
    const std::string full = absl::StrCat("cd '", dir_, "' && { ", command,
                                          "; } >/dev/null 2>&1");
    if (std::system(full.c_str()) != 0) {
      fprintf(stderr, "failed: %s\n", command.c_str());
      std::abort();
    }
  }

  // A CA, a serving certificate for 127.0.0.1 and a client certificate
  // (another CA's client certificate is made too, for refusal tests).
  void MakeCertificates() {
    Run("printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n"
        "extendedKeyUsage=serverAuth,clientAuth\\n' > server.ext");
    Run("printf 'extendedKeyUsage=clientAuth\\n' > client.ext");
    for (const char* ca : {"ca", "other-ca"}) {
      Run(absl::StrCat("openssl req -x509 -newkey ec -pkeyopt "
                       "ec_paramgen_curve:P-256 -nodes -days 2 -subj "
                       "/CN=warden-test-",
                       ca, " -keyout ", ca, ".key -out ", ca, ".pem"));
    }
    auto issue = [this](const std::string& name, const std::string& ca,
                        const std::string& ext) {
      Run(absl::StrCat("openssl req -newkey ec -pkeyopt "
                       "ec_paramgen_curve:P-256 -nodes -subj /CN=",
                       name, " -keyout ", name, ".key -out ", name, ".csr"));
      Run(absl::StrCat("openssl x509 -req -in ", name, ".csr -CA ", ca,
                       ".pem -CAkey ", ca, ".key -CAcreateserial -days 2 ",
                       "-extfile ", ext, " -out ", name, ".pem"));
    };
    issue("server", "ca", "server.ext");
    issue("client", "ca", "client.ext");
    issue("stranger", "other-ca", "client.ext");
  }

  std::string dir_;
  std::vector<Member> members_;
};

}  // namespace warden::testing

#endif  // WARDEN_TESTS_UNIT_CONTROLPLANE_LOG_ETCD_CLUSTER_H_
