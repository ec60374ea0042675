#include "common/log.h"

#include <mutex>
#include <utility>

#include "absl/strings/str_format.h"
#include "spdlog/sinks/base_sink.h"
#include "spdlog/sinks/stdout_color_sinks.h"

namespace warden::log {
namespace {

// Escapes each message, then hands it to `inner`.
class EscapingSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit EscapingSink(spdlog::sink_ptr inner) : inner_(std::move(inner)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const absl::string_view payload(msg.payload.data(), msg.payload.size());
    bool clean = true;
    for (char c : payload) {
      const auto b = static_cast<unsigned char>(c);
      if (b < 0x20 || b == 0x7f) {
        clean = false;
        break;
      }
    }
    if (clean) {
      inner_->log(msg);
      return;
    }
    const std::string escaped = EscapeControls(payload);
    spdlog::details::log_msg copy(msg);
    copy.payload = spdlog::string_view_t(escaped.data(), escaped.size());
    inner_->log(copy);
  }
  void flush_() override { inner_->flush(); }
  void set_pattern_(const std::string& pattern) override {
    inner_->set_pattern(pattern);
  }
  void set_formatter_(std::unique_ptr<spdlog::formatter> f) override {
    inner_->set_formatter(std::move(f));
  }

 private:
  spdlog::sink_ptr inner_;
};

}  // namespace

std::string EscapeControls(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '\t') {
      out += "\\t";
    } else if (b < 0x20 || b == 0x7f) {
      out += absl::StrFormat("\\x%02x", b);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::shared_ptr<spdlog::logger> InstallStderrLogger(const std::string& name) {
  auto inner = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto sink = std::make_shared<EscapingSink>(std::move(inner));
  auto logger = std::make_shared<spdlog::logger>(name, std::move(sink));
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  return logger;
}

}  // namespace warden::log
