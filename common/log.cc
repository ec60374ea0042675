#include "common/log.h"

#include <unicode/utf8.h>

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
      if (b < 0x20 || b >= 0x7f) {
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
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const int32_t length = static_cast<int32_t>(text.size());
  int32_t i = 0;
  while (i < length) {
    const int32_t start = i;
    UChar32 cp;
    U8_NEXT(bytes, i, length, cp);
    if (cp < 0) {  // not UTF-8: the bytes themselves
      for (int32_t j = start; j < i; ++j) {
        out += absl::StrFormat("\\x%02x", bytes[j]);
      }
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7f) {
      out += absl::StrFormat("\\x%02x", cp);
    } else if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029) {
      // C1 controls (NEL is a newline to some log pipelines, CSI and OSC
      // steer 8-bit terminals) and the line and paragraph separators.
      out += absl::StrFormat("\\u%04x", cp);
    } else {
      out.append(text.data() + start, i - start);
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
