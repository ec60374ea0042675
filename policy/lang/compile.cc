#include "policy/lang/compile.h"

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
#include "policy/lang/yaml_source.h"
#include "policy/sql/catalog_classes.h"

namespace warden::policy::lang {
namespace {

using warden::v1::PolicyAction;

class Compiler : public DiagnosticSink {
 public:
  using DiagnosticSink::DiagnosticSink;

  // Policies take no empty values: `commands:` with nothing is an error.
  std::vector<std::string> Strings(const YAML::Node& node,
                                   const std::string& what) {
    if (node && node.IsNull()) {
      Error(node, what + " must be a list of strings");
      return {};
    }
    return DiagnosticSink::Strings(node, what).value_or(
        std::vector<std::string>());
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
              "languages", "subcommands", "temporary",
              "function_classes"})) {
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
    {
      const auto& known = sql::CatalogClassNames();
      for (auto c : Strings(m["function_classes"], "function_classes")) {
        c = absl::AsciiStrToLower(c);
        if (std::find(known.begin(), known.end(), c) == known.end()) {
          Error(m["function_classes"],
                absl::StrCat("unknown function class '", c, "'"),
                absl::StrCat("one of ", absl::StrJoin(known, ", ")));
          continue;
        }
        match->add_function_classes(c);
      }
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
    if (const YAML::Node t = m["temporary"]) {
      if (!t.IsScalar() || (t.Scalar() != "true" && t.Scalar() != "false")) {
        Error(t, "temporary must be true or false",
              "temporary: false matches statements about permanent objects "
              "only, so the session's own temporary tables are left out");
      } else {
        match->set_temporary(t.Scalar() == "true");
      }
    }
    if (const YAML::Node d = m["dynamic_sql"]) {
      if (!d.IsScalar() || (d.Scalar() != "true" && d.Scalar() != "false")) {
        Error(d, "dynamic_sql must be true or false");
      }
      match->set_dynamic_sql(d.IsScalar() && d.Scalar() == "true");
    }
    if (const YAML::Node id = m["identity"]) {
      CompileIdentityMatch(id, "identity", match->mutable_identity());
    }
  }

  // An identity match (rules' `match.identity`, mappings' `match`).
  bool CompileIdentityMatch(const YAML::Node& id, const std::string& what,
                            warden::v1::IdentityMatch* im) {
    if (!Map(id, what, {"user", "users", "groups", "kind", "attributes"})) {
      return false;
    }
    for (auto u : Strings(id["user"], "user")) im->add_users(u);
    for (auto u : Strings(id["users"], "users")) im->add_users(u);
    for (auto g : Strings(id["groups"], "groups")) im->add_groups(g);
    if (id["kind"]) {
      std::string k;
      if (OneOf(id["kind"], "kind", {"human", "agent", "service"}, &k)) {
        im->set_kind(k);
      }
    }
    if (const YAML::Node a = id["attributes"]) {
      if (!a.IsMap()) {
        Error(a, "attributes must map attribute names to value globs, e.g. "
                 "{ department: Security }");
      } else {
        for (auto it = a.begin(); it != a.end(); ++it) {
          if (!it->second.IsScalar() || it->second.Scalar().empty()) {
            Error(it->second, "attribute " + it->first.Scalar() +
                                  " needs a value glob");
            continue;
          }
          (*im->mutable_attributes())[it->first.Scalar()] =
              it->second.Scalar();
        }
      }
    }
    return true;
  }

  void CompileRule(const YAML::Node& node, warden::v1::Rule* rule,
                   std::set<std::string>* names) {
    if (!Map(node, "rule",
             {"name", "match", "action", "message", "approval", "audit"})) {
      return;
    }
    rule->set_source(absl::StrCat(file(), ":", node.Mark().line + 1));
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

  // kind: IdentityProvider. Its keys are not in the file: warden-control
  // fetches them (jwks_uri, or the issuer's discovery document).
  void CompileIdentityProvider(const YAML::Node& doc,
                               warden::v1::IdentityProviderSpec* idp) {
    idp->set_source(absl::StrCat(file(), ":", doc.Mark().line + 1));
    const YAML::Node meta = doc["metadata"];
    if (!meta || !Map(meta, "metadata", {"name"}) || !meta["name"]) {
      Error(meta ? meta : doc, "metadata.name is required");
    } else {
      idp->set_name(meta["name"].Scalar());
    }
    const YAML::Node spec = doc["spec"];
    if (!spec) {
      Error(doc, "spec is required");
      return;
    }
    if (!Map(spec, "spec",
             {"issuer", "audiences", "environments", "algorithms",
              "user_claim", "groups_claims", "required_claims", "clock_skew",
              "max_token_lifetime", "kind", "jwks_uri", "client_id"})) {
      return;
    }
    if (!spec["issuer"] || !spec["issuer"].IsScalar() ||
        spec["issuer"].Scalar().rfind("https://", 0) != 0) {
      Error(spec["issuer"] ? spec["issuer"] : spec,
            "issuer must be the provider's https:// issuer URL",
            "exactly the `iss` of its tokens, e.g. "
            "https://example.okta.com/oauth2/default");
    } else {
      idp->set_issuer(spec["issuer"].Scalar());
    }
    for (auto a : Strings(spec["audiences"], "audiences")) {
      idp->add_audiences(a);
    }
    if (idp->audiences().empty()) {
      Error(spec["audiences"] ? spec["audiences"] : spec,
            "audiences must list at least one audience",
            "the client id (ID tokens) or API audience (access tokens)");
    }
    for (auto e : Strings(spec["environments"], "environments")) {
      idp->add_environments(e);
    }
    // The client `wardenctl login` asks for tokens as; default: the first
    // audience (an ID token's `aud` is the client id).
    if (const YAML::Node c = spec["client_id"]) {
      if (!c.IsScalar() || c.Scalar().empty()) {
        Error(c, "client_id must be the OAuth client id wardenctl login uses");
      } else {
        idp->set_client_id(c.Scalar());
      }
    } else if (!idp->audiences().empty()) {
      idp->set_client_id(idp->audiences(0));
    }
    const auto algorithms = Strings(spec["algorithms"], "algorithms");
    for (size_t i = 0; i < algorithms.size(); ++i) {
      if (algorithms[i] != "RS256" && algorithms[i] != "ES256") {
        Error(spec["algorithms"].IsSequence() ? spec["algorithms"][i]
                                              : spec["algorithms"],
              "algorithm '" + algorithms[i] + "' is not supported",
              "RS256 and ES256 only; none and HMAC are never accepted");
      }
      idp->add_algorithms(algorithms[i]);
    }
    if (spec["user_claim"]) idp->set_user_claim(spec["user_claim"].Scalar());
    for (auto g : Strings(spec["groups_claims"], "groups_claims")) {
      idp->add_groups_claims(g);
    }
    if (const YAML::Node rc = spec["required_claims"]) {
      if (!rc.IsMap()) {
        Error(rc, "required_claims must map claim names to values");
      } else {
        for (const auto& kv : rc) {
          auto* cv = idp->add_required_claims();
          cv->set_claim(kv.first.Scalar());
          if (!kv.second.IsScalar()) {
            Error(kv.second, "required claim values must be strings");
          } else {
            cv->set_value(kv.second.Scalar());
          }
        }
      }
    }
    auto seconds = [&](const char* key, int64_t max, int64_t* out) {
      const YAML::Node n = spec[key];
      if (!n) return;
      absl::Duration d;
      if (!n.IsScalar() || !absl::ParseDuration(n.Scalar(), &d) ||
          d < absl::Seconds(1) || d > absl::Seconds(max)) {
        Error(n, absl::StrCat(key, " must be a duration such as 60s or 12h"));
        return;
      }
      *out = absl::ToInt64Seconds(d);
    };
    int64_t skew = 0, lifetime = 0;
    seconds("clock_skew", 3600, &skew);
    seconds("max_token_lifetime", 7 * 86400, &lifetime);
    idp->set_clock_skew_seconds(skew);
    idp->set_max_token_lifetime_seconds(lifetime);
    if (spec["kind"]) {
      std::string k;
      if (OneOf(spec["kind"], "kind", {"human", "agent", "service"}, &k)) {
        idp->set_kind(k);
      }
    }
    if (const YAML::Node u = spec["jwks_uri"]) {
      if (!u.IsScalar() || u.Scalar().rfind("https://", 0) != 0) {
        Error(u, "jwks_uri must be an https:// URL");
      } else {
        idp->set_jwks_uri(u.Scalar());
      }
    }
  }



  // kind: IdentityMapping: identities to database roles.
  void CompileIdentityMapping(const YAML::Node& doc,
                              warden::v1::IdentityMapping* mapping) {
    mapping->set_source(absl::StrCat(file(), ":", doc.Mark().line + 1));
    const YAML::Node meta = doc["metadata"];
    if (!meta || !Map(meta, "metadata", {"name"}) || !meta["name"]) {
      Error(meta ? meta : doc, "metadata.name is required");
    } else {
      mapping->set_name(meta["name"].Scalar());
    }
    const YAML::Node spec = doc["spec"];
    if (!spec) {
      Error(doc, "spec is required");
      return;
    }
    if (!Map(spec, "spec",
             {"environments", "databases", "rules", "default_role"})) {
      return;
    }
    for (auto e : Strings(spec["environments"], "environments")) {
      mapping->add_environments(e);
    }
    for (auto d : Strings(spec["databases"], "databases")) {
      mapping->add_databases(d);
    }
    if (spec["default_role"]) {
      mapping->set_default_role(spec["default_role"].Scalar());
    }
    const YAML::Node rules = spec["rules"];
    if (!rules || !rules.IsSequence() || rules.size() == 0) {
      Error(rules ? rules : spec, "rules must be a non-empty list",
            "each rule: { match: { groups: [dba] }, database_role: app_admin }");
      return;
    }
    for (const auto& r : rules) {
      warden::v1::RoleRule* rule = mapping->add_rules();
      rule->set_source(absl::StrCat(file(), ":", r.Mark().line + 1));
      if (!Map(r, "rule", {"match", "database_role"})) continue;
      if (!r["database_role"] || !r["database_role"].IsScalar() ||
          r["database_role"].Scalar().empty()) {
        Error(r, "a rule needs a database_role");
      } else {
        rule->set_database_role(r["database_role"].Scalar());
      }
      if (!r["match"]) {
        Error(r, "a rule needs a match",
              "match: { groups: [...] }, { users: [...] } or { kind: agent }");
      } else {
        CompileIdentityMatch(r["match"], "match", rule->mutable_match());
      }
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
    if (kind == "IdentityProvider") {
      CompileIdentityProvider(doc, out->add_identity_providers());
      return;
    }
    if (kind == "IdentityMapping") {
      CompileIdentityMapping(doc, out->add_identity_mappings());
      return;
    }
    if (kind != "Policy") {
      Error(doc["kind"] ? doc["kind"] : doc,
            "kind '" + kind + "' is not supported here",
            "this compiler takes kind: Policy, IdentityProvider and "
            "IdentityMapping (and skips PolicyTest)");
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

};

}  // namespace

std::string Diagnostic::ToString() const {
  std::string out = file;
  if (line > 0) absl::StrAppend(&out, ":", line);
  if (line > 0 && column > 0) absl::StrAppend(&out, ":", column);
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
    std::vector<YAML::Node> docs;
    if (!LoadDocuments(file, &docs, out)) continue;
    for (const auto& doc : docs) {
      // yaml-cpp reports misuse (a subscript of a scalar, ...) by throwing;
      // no exception leaves this function.
      try {
        const int before = bundle.policies_size();
        const int idps_before = bundle.identity_providers_size();
        compiler.CompileDocument(doc, &bundle);
        if (bundle.identity_providers_size() > idps_before) {
          const auto& idp = bundle.identity_providers(idps_before);
          for (int i = 0; i < idps_before; ++i) {
            const auto& other = bundle.identity_providers(i);
            if (!idp.name().empty() && other.name() == idp.name()) {
              compiler.Error(doc["metadata"]["name"],
                             "duplicate identity provider '" + idp.name() +
                                 "' (also " + other.source() + ")");
            } else if (!idp.issuer().empty() &&
                       other.issuer() == idp.issuer()) {
              compiler.Error(doc["spec"]["issuer"],
                             "identity provider '" + idp.name() +
                                 "' has the issuer of '" + other.name() +
                                 "' (" + other.source() + ")");
            }
          }
        }
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
  bundle.set_digest(ContentDigest(bundle));
  return bundle;
}

std::string ContentDigest(const warden::v1::PolicyBundle& bundle) {
  std::string serialized;
  warden::v1::PolicyBundle content;
  *content.mutable_policies() = bundle.policies();
  *content.mutable_identity_providers() = bundle.identity_providers();
  *content.mutable_service_tokens() = bundle.service_tokens();
  *content.mutable_identity_mappings() = bundle.identity_mappings();
  *content.mutable_directory() = bundle.directory();
  {
    google::protobuf::io::StringOutputStream stream(&serialized);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    content.SerializeToCodedStream(&coded);
  }
  return crypto::HexEncode(crypto::Sha256(serialized));
}

}  // namespace warden::policy::lang
