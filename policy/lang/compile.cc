#include "policy/lang/compile.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/crypto.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace warden::policy::lang {
namespace {

using warden::v1::PolicyAction;

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

class Compiler {
 public:
  Compiler(std::string file, std::vector<Diagnostic>* out)
      : file_(std::move(file)), out_(out) {}

  void Error(const YAML::Node& at, const std::string& message,
             const std::string& hint = "") {
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

  bool Map(const YAML::Node& node, const std::string& what,
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

  std::vector<std::string> Strings(const YAML::Node& node,
                                   const std::string& what) {
    std::vector<std::string> out;
    if (!node) return out;
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

  PolicyAction Action(const YAML::Node& node, const std::string& what) {
    const std::string v = node.IsScalar() ? node.Scalar() : "";
    if (v == "allow") return warden::v1::POLICY_ACTION_ALLOW;
    if (v == "deny") return warden::v1::POLICY_ACTION_DENY;
    if (v == "require_approval")
      return warden::v1::POLICY_ACTION_REQUIRE_APPROVAL;
    Error(node, what + " must be allow, deny or require_approval",
          v == "approve" || v == "approval" ? "did you mean 'require_approval'?"
                                            : "");
    return warden::v1::POLICY_ACTION_UNSPECIFIED;
  }

  // A value from a closed set; an error with a did-you-mean hint otherwise.
  bool OneOf(const YAML::Node& node, const std::string& what,
             std::initializer_list<const char*> allowed, std::string* out) {
    const std::string v = node.IsScalar() ? node.Scalar() : "";
    for (const char* a : allowed) {
      if (v == a) {
        *out = v;
        return true;
      }
    }
    std::string best;
    size_t best_distance = 3;
    for (const char* a : allowed) {
      const size_t d = EditDistance(v, a);
      if (d < best_distance) {
        best_distance = d;
        best = a;
      }
    }
    Error(node,
          absl::StrCat(what, " must be one of ", absl::StrJoin(allowed, ", "),
                       v.empty() ? "" : ", not '" + v + "'"),
          best.empty() ? "" : "did you mean '" + best + "'?");
    return false;
  }

  warden::v1::AuditLevel Audit(const YAML::Node& node,
                               const std::string& what) {
    std::string v;
    if (!OneOf(node, what, {"metadata", "normalized", "full"}, &v)) {
      return warden::v1::AUDIT_LEVEL_UNSPECIFIED;
    }
    if (v == "metadata") return warden::v1::AUDIT_LEVEL_METADATA;
    if (v == "normalized") return warden::v1::AUDIT_LEVEL_NORMALIZED;
    return warden::v1::AUDIT_LEVEL_FULL;
  }

  void CompileMatch(const YAML::Node& m, warden::v1::RuleMatch* match) {
    if (!Map(m, "match",
             {"commands", "classes", "objects", "functions", "filter",
              "identity", "dynamic_sql", "columns", "settings", "copy",
              "languages", "subcommands"})) {
      return;
    }
    for (auto c : Strings(m["commands"], "commands")) {
      match->add_commands(absl::AsciiStrToUpper(c));
    }
    static const std::set<std::string> kClasses = {
        "read", "write", "ddl", "dcl", "transaction", "utility"};
    const auto classes = Strings(m["classes"], "classes");
    for (size_t i = 0; i < classes.size(); ++i) {
      if (!kClasses.count(classes[i])) {
        Error(m["classes"].IsSequence() ? m["classes"][i] : m["classes"],
              "unknown class '" + classes[i] + "'",
              "classes: read, write, ddl, dcl, transaction, utility");
      }
      match->add_classes(classes[i]);
    }
    for (auto o : Strings(m["objects"], "objects")) match->add_objects(o);
    for (auto f : Strings(m["functions"], "functions")) {
      match->add_functions(f);
    }
    for (auto c : Strings(m["columns"], "columns")) match->add_columns(c);
    // PostgreSQL folds parameter names and languages to lower case.
    for (auto s : Strings(m["settings"], "settings")) {
      match->add_settings(absl::AsciiStrToLower(s));
    }
    for (auto l : Strings(m["languages"], "languages")) {
      match->add_languages(absl::AsciiStrToLower(l));
    }
    for (auto c : Strings(m["subcommands"], "subcommands")) {
      match->add_subcommands(absl::AsciiStrToUpper(c));
    }
    if (const YAML::Node copy = m["copy"]) {
      if (copy.IsScalar() || copy.IsSequence()) {
        std::vector<YAML::Node> items;
        if (copy.IsScalar()) {
          items.push_back(copy);
        } else {
          for (const auto& item : copy) items.push_back(item);
        }
        for (const auto& item : items) {
          std::string mode;
          if (OneOf(item, "copy", {"stdio", "file", "program"}, &mode)) {
            match->add_copy_modes(mode);
          }
        }
      } else {
        Error(copy, "copy must be a list of stdio, file, program");
      }
    }
    if (const YAML::Node f = m["filter"]) {
      if (f.IsScalar() && f.Scalar() == "none") {
        match->set_filter(warden::v1::FILTER_MATCH_NONE);
      } else {
        Error(f, "filter must be 'none'",
              "filter: none matches DELETE/UPDATE/MERGE without an effective "
              "WHERE");
      }
    }
    if (const YAML::Node d = m["dynamic_sql"]) {
      if (!d.IsScalar() || (d.Scalar() != "true" && d.Scalar() != "false")) {
        Error(d, "dynamic_sql must be true or false");
      }
      match->set_dynamic_sql(d.IsScalar() && d.Scalar() == "true");
    }
    if (const YAML::Node id = m["identity"]) {
      if (Map(id, "identity", {"user", "users", "groups", "kind"})) {
        auto* im = match->mutable_identity();
        for (auto u : Strings(id["user"], "user")) im->add_users(u);
        for (auto u : Strings(id["users"], "users")) im->add_users(u);
        for (auto g : Strings(id["groups"], "groups")) im->add_groups(g);
        if (id["kind"]) {
          const std::string k =
              id["kind"].IsScalar() ? id["kind"].Scalar() : "";
          if (k != "human" && k != "agent" && k != "service") {
            Error(id["kind"], "kind must be human, agent or service");
          }
          im->set_kind(k);
        }
      }
    }
  }

  void CompileRule(const YAML::Node& node, warden::v1::Rule* rule,
                   std::set<std::string>* names) {
    if (!Map(node, "rule",
             {"name", "match", "action", "message", "approval", "audit"})) {
      return;
    }
    rule->set_source(absl::StrCat(file_, ":", node.Mark().line + 1));
    if (!node["name"] || !node["name"].IsScalar()) {
      Error(node, "rule needs a name", "names appear in decisions and audit");
    } else {
      rule->set_name(node["name"].Scalar());
      if (!names->insert(rule->name()).second) {
        Error(node["name"], "duplicate rule name '" + rule->name() + "'");
      }
    }
    if (!node["action"]) {
      Error(node, "rule '" + rule->name() + "' needs an action");
    } else {
      rule->set_action(Action(node["action"], "action"));
    }
    if (node["message"]) rule->set_message(node["message"].Scalar());
    if (const YAML::Node m = node["match"]) {
      CompileMatch(m, rule->mutable_match());
    }
    if (const YAML::Node a = node["audit"]) rule->set_audit(Audit(a, "audit"));
    if (const YAML::Node a = node["approval"]) {
      if (Map(a, "approval", {"reviewers", "approvals", "expires"})) {
        auto* ap = rule->mutable_approval();
        for (auto r : Strings(a["reviewers"], "reviewers")) {
          ap->add_reviewers(r);
        }
        int n = 1;
        if (a["approvals"] &&
            (!absl::SimpleAtoi(a["approvals"].Scalar(), &n) || n < 1)) {
          Error(a["approvals"], "approvals must be a positive integer");
        }
        ap->set_approvals(n);
        if (a["expires"]) {
          absl::Duration d;
          if (!absl::ParseDuration(a["expires"].Scalar(), &d) ||
              d <= absl::ZeroDuration()) {
            Error(a["expires"], "expires must be a duration such as 30m");
          } else {
            ap->set_expires_seconds(absl::ToInt64Seconds(d));
          }
        }
      }
    }
    if (rule->action() == warden::v1::POLICY_ACTION_REQUIRE_APPROVAL &&
        (!rule->has_approval() || rule->approval().reviewers().empty())) {
      Error(node,
            "rule '" + rule->name() +
                "' requires approval but names no reviewers",
            "add approval: { reviewers: [\"group:db-owners\"] }");
    }
  }

  void CompileDocument(const YAML::Node& doc, warden::v1::PolicyBundle* out) {
    if (!doc || doc.IsNull()) return;
    if (!Map(doc, "document", {"apiVersion", "kind", "metadata", "spec"})) {
      return;
    }
    if (!doc["apiVersion"] || doc["apiVersion"].Scalar() != "warden/v1") {
      Error(doc["apiVersion"] ? doc["apiVersion"] : doc,
            "apiVersion must be warden/v1");
    }
    const std::string kind = doc["kind"] ? doc["kind"].Scalar() : "";
    if (kind == "PolicyTest") return;
    if (kind != "Policy") {
      Error(doc["kind"] ? doc["kind"] : doc,
            "kind '" + kind + "' is not supported here",
            "this compiler takes kind: Policy (and skips PolicyTest)");
      return;
    }
    warden::v1::Policy* policy = out->add_policies();
    const YAML::Node meta = doc["metadata"];
    if (!meta || !Map(meta, "metadata", {"name"}) || !meta["name"]) {
      Error(meta ? meta : doc, "metadata.name is required");
    } else {
      policy->set_name(meta["name"].Scalar());
    }
    const YAML::Node spec = doc["spec"];
    if (!spec) {
      Error(doc, "spec is required");
      return;
    }
    if (!Map(spec, "spec",
             {"environments", "databases", "defaults", "rules"})) {
      return;
    }
    for (auto e : Strings(spec["environments"], "environments")) {
      policy->add_environments(e);
    }
    for (auto d : Strings(spec["databases"], "databases")) {
      policy->add_databases(d);
    }
    policy->set_default_action(warden::v1::POLICY_ACTION_ALLOW);
    policy->set_unparseable(warden::v1::POLICY_ACTION_DENY);
    policy->set_default_audit(warden::v1::AUDIT_LEVEL_FULL);
    if (const YAML::Node d = spec["defaults"]) {
      if (Map(d, "defaults", {"action", "unparseable", "audit"})) {
        if (d["audit"]) {
          policy->set_default_audit(Audit(d["audit"], "defaults.audit"));
        }
        if (d["action"])
          policy->set_default_action(Action(d["action"], "defaults.action"));
        if (d["unparseable"]) {
          policy->set_unparseable(
              Action(d["unparseable"], "defaults.unparseable"));
        }
      }
    }
    std::set<std::string> names;
    if (const YAML::Node rules = spec["rules"]) {
      if (!rules.IsSequence()) {
        Error(rules, "rules must be a list");
      } else {
        for (const auto& r : rules) CompileRule(r, policy->add_rules(), &names);
      }
    }
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<Diagnostic>* out_;
};

}  // namespace

std::string Diagnostic::ToString() const {
  std::string out = file;
  if (line > 0) absl::StrAppend(&out, ":", line, ":", column);
  absl::StrAppend(&out, ": ", message);
  if (!hint.empty()) absl::StrAppend(&out, " (hint: ", hint, ")");
  return out;
}

absl::StatusOr<warden::v1::PolicyBundle> Compile(
    const std::vector<SourceFile>& files,
    std::vector<Diagnostic>* diagnostics) {
  std::vector<Diagnostic> local;
  std::vector<Diagnostic>* out = diagnostics ? diagnostics : &local;
  out->clear();
  warden::v1::PolicyBundle bundle;
  std::set<std::string> policy_names;
  for (const SourceFile& file : files) {
    Compiler compiler(file.name, out);
    if (const int64_t bad = FirstInvalidUtf8(file.text); bad >= 0) {
      Diagnostic d;
      d.file = file.name;
      d.line = 1;
      d.column = 1;
      for (int64_t i = 0; i < bad; ++i) {
        if (file.text[i] == '\n') {
          ++d.line;
          d.column = 1;
        } else {
          ++d.column;
        }
      }
      d.message = "the file is not valid UTF-8";
      d.hint = "policies are UTF-8 text";
      out->push_back(d);
      continue;
    }
    std::vector<YAML::Node> docs;
    try {
      docs = LoadAllDocuments(file.text);
    } catch (const YAML::Exception& e) {
      Diagnostic d;
      d.file = file.name;
      d.line = e.mark.line + 1;
      d.column = e.mark.column + 1;
      d.message = e.msg;
      out->push_back(d);
      continue;
    }
    for (const auto& doc : docs) {
      // yaml-cpp reports misuse (a subscript of a scalar, ...) by throwing;
      // no exception leaves this function.
      try {
        const int before = bundle.policies_size();
        compiler.CompileDocument(doc, &bundle);
        if (bundle.policies_size() > before) {
          const std::string& name = bundle.policies(before).name();
          if (!name.empty() && !policy_names.insert(name).second) {
            compiler.Error(doc["metadata"]["name"],
                           "duplicate policy name '" + name + "'");
          }
        }
      } catch (const YAML::Exception& e) {
        Diagnostic d;
        d.file = file.name;
        if (e.mark.line >= 0) {
          d.line = e.mark.line + 1;
          d.column = e.mark.column + 1;
        }
        d.message = "unexpected document structure: " + e.msg;
        out->push_back(d);
      }
    }
  }
  if (!out->empty()) {
    std::vector<std::string> lines;
    for (const auto& d : *out) lines.push_back(d.ToString());
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }
  std::string serialized;
  warden::v1::PolicyBundle content;
  *content.mutable_policies() = bundle.policies();
  {
    google::protobuf::io::StringOutputStream stream(&serialized);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    content.SerializeToCodedStream(&coded);
  }
  bundle.set_digest(crypto::HexEncode(crypto::Sha256(serialized)));
  return bundle;
}

}  // namespace warden::policy::lang
