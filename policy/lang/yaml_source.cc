#include "policy/lang/yaml_source.h"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace warden::policy::lang {
namespace {

// yaml-cpp 0.7 never consumes a token that cannot start a node (a stray
// ',' after a top-level flow collection, or as the first character): it
// reports an empty document and starts the next one at the same token,
// forever. This pass over the parser's events stops at the first document
// that starts where the previous one did.
class ProgressGuard : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    if (started_ && mark.pos == last_.pos) {
      throw YAML::ParserException(mark, "unexpected character here");
    }
    started_ = true;
    last_ = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  bool started_ = false;
  YAML::Mark last_;
};

// YAML::LoadAll, but failing instead of looping on input yaml-cpp cannot
// make progress on. Throws YAML::Exception like LoadAll.
std::vector<YAML::Node> LoadAllDocuments(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  ProgressGuard guard;
  while (parser.HandleNextDocument(guard)) {
  }
  return YAML::LoadAll(text);
}

// Byte offset of the first byte that is not part of well-formed UTF-8
// (no overlong forms, surrogates or code points past U+10FFFF), or -1.
// Protobuf string fields must hold UTF-8, or the bundle does not parse
// where it is pushed.
int64_t FirstInvalidUtf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte.
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong.
      if (c == 0xED) hi = 0x9F;  // surrogates.
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong.
      if (c == 0xF4) hi = 0x8F;  // past U+10FFFF.
    } else {
      return static_cast<int64_t>(i);
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) {
      return static_cast<int64_t>(i);
    }
    for (size_t k = 2; k < len; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return static_cast<int64_t>(i);
    }
    i += len;
  }
  return -1;
}

// Byte offset of the first character YAML does not allow in a stream
// (C0 controls other than tab, LF and CR; DEL; C1 controls other than
// NEL), or -1. `s` is valid UTF-8.
int64_t FirstControlCharacter(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
      return static_cast<int64_t>(i);
    }
    // U+0080..U+009F are C2 80..C2 9F; U+0085 (NEL) is allowed.
    if (c == 0xC2 && i + 1 < s.size()) {
      const unsigned char next = static_cast<unsigned char>(s[i + 1]);
      if (next >= 0x80 && next <= 0x9F && next != 0x85) {
        return static_cast<int64_t>(i);
      }
    }
  }
  return -1;
}

// A diagnostic at byte `offset` of `file`: its line, and its column in
// bytes or (`count_characters`, the text being UTF-8) in characters.
Diagnostic DiagnosticAt(const SourceFile& file, int64_t offset,
                        bool count_characters) {
  Diagnostic d;
  d.file = file.name;
  d.line = 1;
  d.column = 1;
  for (int64_t i = 0; i < offset; ++i) {
    const unsigned char c = static_cast<unsigned char>(file.text[i]);
    if (c == '\n') {
      ++d.line;
      d.column = 1;
    } else if (!count_characters || (c & 0xC0) != 0x80) {
      ++d.column;
    }
  }
  return d;
}

}  // namespace

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1,
                         prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    prev.swap(cur);
  }
  return prev[b.size()];
}

bool LoadDocuments(const SourceFile& file, std::vector<YAML::Node>* docs,
                   std::vector<Diagnostic>* out) {
  if (const int64_t bad = FirstInvalidUtf8(file.text); bad >= 0) {
    Diagnostic d = DiagnosticAt(file, bad, /*count_characters=*/false);
    d.message = "the file is not valid UTF-8";
    d.hint = "policies and policy tests are UTF-8 text";
    out->push_back(std::move(d));
    return false;
  }
  // YAML's printable characters only (YAML 1.2, 5.1): a NUL or another
  // control character inside a scalar came out of the YAML parser as bytes
  // that are not UTF-8, and the bundle then did not parse where it was
  // pushed (found by tests/fuzz/policy_lang_fuzz).
  if (const int64_t bad = FirstControlCharacter(file.text); bad >= 0) {
    Diagnostic d = DiagnosticAt(file, bad, /*count_characters=*/true);
    const unsigned char c = static_cast<unsigned char>(file.text[bad]);
    const unsigned code =
        c < 0x80 ? c
                 : ((c & 0x1F) << 6) |
                       (static_cast<unsigned char>(file.text[bad + 1]) & 0x3F);
    d.message = absl::StrFormat(
        "the file holds the control character U+%04X, which YAML does not "
        "allow",
        code);
    d.hint = "policies are printable text: tabs, newlines and characters";
    out->push_back(std::move(d));
    return false;
  }
  // yaml-cpp reports syntax errors by exception; this is its boundary.
  try {
    *docs = LoadAllDocuments(file.text);
  } catch (const YAML::Exception& e) {
    Diagnostic d;
    d.file = file.name;
    d.line = e.mark.line + 1;
    d.column = e.mark.column + 1;
    d.message = e.msg;
    out->push_back(std::move(d));
    return false;
  }
  return true;
}

void DiagnosticSink::Error(const YAML::Node& at, const std::string& message,
                           const std::string& hint) {
  Diagnostic d;
  d.file = file_;
  if (at.IsDefined()) {  // Mark() throws on an invalid node.
    const YAML::Mark mark = at.Mark();
    if (mark.line >= 0) {
      d.line = mark.line + 1;
      d.column = mark.column + 1;
    }
  }
  d.message = message;
  d.hint = hint;
  out_->push_back(std::move(d));
}

bool DiagnosticSink::Map(const YAML::Node& node, const std::string& what,
                         std::initializer_list<const char*> allowed) {
  if (!node.IsMap()) {
    Error(node, what + " must be a mapping");
    return false;
  }
  std::set<std::string> seen;
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    if (!seen.insert(key).second) {
      Error(kv.first, "duplicate key '" + key + "' in " + what);
    }
    bool known = false;
    std::string best;
    size_t best_distance = 3;
    for (const char* a : allowed) {
      if (key == a) known = true;
      const size_t d = EditDistance(key, a);
      if (d < best_distance) {
        best_distance = d;
        best = a;
      }
    }
    if (!known) {
      Error(kv.first, "unknown key '" + key + "' in " + what,
            best.empty()
                ? absl::StrCat("allowed: ", absl::StrJoin(allowed, ", "))
                : "did you mean '" + best + "'?");
    }
  }
  return true;
}

std::optional<std::vector<std::string>> DiagnosticSink::Strings(
    const YAML::Node& node, const std::string& what) {
  if (!node) return std::nullopt;
  std::vector<std::string> out;
  if (node.IsNull()) return out;
  if (node.IsScalar()) {
    out.push_back(node.Scalar());
    return out;
  }
  if (!node.IsSequence()) {
    Error(node, what + " must be a list of strings");
    return out;
  }
  for (const auto& item : node) {
    if (!item.IsScalar() || item.Scalar().empty()) {
      Error(item, what + " entries must be non-empty strings");
      continue;
    }
    out.push_back(item.Scalar());
  }
  return out;
}

}  // namespace warden::policy::lang
