// wardenctl: Warden's command-line tool. Parses the command line with
// CLI11 and hands over to policy_commands (offline) and the remote_* files,
// one per noun (warden-control over gRPC; remote_common.h); exit codes are
// listed in policy_commands.h and in controlplane/cli/README.md.
#include <CLI/CLI.hpp>
#include <functional>
#include <iostream>
#include <string>
#include <tuple>
#include <vector>

#include "controlplane/cli/login_command.h"
#include "controlplane/cli/policy_commands.h"
#include "controlplane/cli/remote_audit.h"
#include "controlplane/cli/remote_common.h"
#include "controlplane/cli/remote_identities.h"
#include "controlplane/cli/remote_policy.h"
#include "controlplane/cli/remote_proxies.h"
#include "controlplane/cli/remote_tokens.h"

namespace {

namespace cli = warden::controlplane::cli;
using cli::Format;

Format ParseFormat(const std::string& s) {
  return s == "json" ? Format::kJson : Format::kText;
}

void AddFormat(CLI::App* command, std::string* format) {
  command->add_option("--format", *format, "Output format: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
}

// Options every remote command takes; `format` is parsed after the command
// line into options->format.
void AddRemote(CLI::App* command, cli::RemoteOptions* options,
               std::string* format) {
  cli::Connection& c = options->connection;
  command
      ->add_option("--server", c.server,
                   "Control plane host:port; a cluster's replicas as "
                   "host:port,host:port (the first that answers is used)")
      ->envname("WARDEN_SERVER");
  command->add_option("--token", c.token, "API token (sent as a bearer token)")
      ->envname("WARDEN_TOKEN");
  command
      ->add_option("--ca-file", c.ca_file,
                   "PEM CA that issued the control plane's certificate "
                   "(warden-control's DATA_DIR/ca.crt unless the operator "
                   "gave it one)")
      ->envname("WARDEN_CA_FILE");
  command->add_option("--timeout", c.timeout, "Per-request deadline")
      ->capture_default_str();
  AddFormat(command, format);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wardenctl: Warden's command-line tool", "wardenctl"};
  app.require_subcommand(1);
  CLI::App* policy = app.add_subcommand(
      "policy",
      "Validate, test and evaluate policy files offline; push, diff, "
      "history, rollback and status against warden-control");
  policy->require_subcommand(1);

  cli::ValidateOptions validate;
  std::string validate_format = "text";
  CLI::App* validate_cmd = policy->add_subcommand(
      "validate", "Compile policies and report every problem");
  validate_cmd
      ->add_option("paths", validate.paths,
                   "Policy files, or directories searched for *.yaml/*.yml")
      ->required();
  AddFormat(validate_cmd, &validate_format);

  cli::TestOptions test;
  std::string test_format = "text";
  CLI::App* test_cmd = policy->add_subcommand(
      "test",
      "Compile policies and run the PolicyTest cases in the same files");
  test_cmd
      ->add_option("paths", test.paths,
                   "Policy/test files, or directories searched for "
                   "*.yaml/*.yml")
      ->required();
  AddFormat(test_cmd, &test_format);

  cli::EvalOptions eval;
  std::string eval_format = "text";
  CLI::App* eval_cmd = policy->add_subcommand(
      "eval",
      "Decide one SQL string: exit 0 allow, 3 deny, 4 require_approval");
  eval_cmd
      ->add_option("--policy", eval.policy_paths,
                   "Policy files or directories (repeatable)")
      ->required();
  eval_cmd->add_option("--env", eval.environment, "Environment")->required();
  eval_cmd->add_option("--db", eval.database, "Database")->required();
  eval_cmd->add_option("--user", eval.user, "User name");
  eval_cmd->add_option("--groups", eval.groups, "Groups, comma-separated")
      ->delimiter(',');
  eval_cmd->add_option("--kind", eval.kind, "human, agent or service")
      ->check(CLI::IsMember({"human", "agent", "service"}))
      ->capture_default_str();
  eval_cmd->add_option("--sql", eval.sql, "The SQL; '-' reads stdin")
      ->required();
  AddFormat(eval_cmd, &eval_format);

  // Remote commands (remote_policy.h).
  cli::PushOptions push;
  std::string push_format = "text";
  CLI::App* push_cmd = policy->add_subcommand(
      "push", "Send policy files to warden-control as a new revision");
  push_cmd->add_option("paths", push.paths, "Policy files or directories")
      ->required();
  push_cmd->add_option("--message,-m", push.message, "Why; kept in history");
  push_cmd->add_flag("--dry-run", push.dry_run,
                     "Compile, validate and run the policy tests on the "
                     "server; create nothing");
  push_cmd->add_flag("--skip-tests", push.skip_tests,
                     "Push even if the folder's PolicyTest cases fail "
                     "(recorded in the audit trail)");
  push_cmd->add_option("--wait", push.wait,
                       "Then wait up to this long (e.g. 30s) until every "
                       "connected proxy runs the revision; exit 1 if one "
                       "refuses it or the time runs out");
  AddRemote(push_cmd, &push, &push_format);

  cli::DiffOptions diff;
  std::string diff_format = "text";
  CLI::App* diff_cmd = policy->add_subcommand(
      "diff",
      "Compare local policies with the server's current revision, rule by "
      "rule: exit 0 same, 5 different");
  diff_cmd->add_option("paths", diff.paths, "Policy files or directories")
      ->required();
  AddRemote(diff_cmd, &diff, &diff_format);

  cli::HistoryOptions history;
  std::string history_format = "text";
  CLI::App* history_cmd =
      policy->add_subcommand("history", "Revisions, newest first");
  history_cmd->add_option("--limit", history.limit, "How many")
      ->capture_default_str();
  AddRemote(history_cmd, &history, &history_format);

  cli::RollbackOptions rollback;
  std::string rollback_format = "text";
  CLI::App* rollback_cmd = policy->add_subcommand(
      "rollback", "Make an older revision's content current (a new revision)");
  rollback_cmd->add_option("revision", rollback.revision, "Revision to restore")
      ->required();
  rollback_cmd->add_option("--message,-m", rollback.message, "Why");
  AddRemote(rollback_cmd, &rollback, &rollback_format);

  cli::StatusOptions status;
  std::string status_format = "text";
  CLI::App* status_cmd = policy->add_subcommand(
      "status", "Current revision and what every proxy runs");
  status_cmd->add_option("--env", status.environment,
                         "Only proxies of this environment");
  AddRemote(status_cmd, &status, &status_format);

  CLI::App* tokens = app.add_subcommand("tokens", "Manage API tokens (admin)");
  tokens->require_subcommand(1);

  cli::TokenCreateOptions create;
  std::string create_format = "text";
  CLI::App* create_cmd = tokens->add_subcommand(
      "create", "Create a token; the secret is printed once");
  create_cmd->add_option("name", create.name, "Label, e.g. ci-main")
      ->required();
  create_cmd
      ->add_option("--scope", create.scopes,
                   "policy:write, policy:read, audit:read, approvals:decide, "
                   "scim, admin (repeatable); proxy:enroll alone for a "
                   "one-time proxy bootstrap token; db:connect alone for an "
                   "agent's or service's database token (with --environment)")
      ->required();
  create_cmd->add_option("--environment", create.environments,
                         "proxy:enroll: the environment the proxy serves "
                         "(repeat for each environment of its listeners; "
                         "the first is its own); db:connect: where it may "
                         "connect (repeatable)");
  create_cmd->add_option("--kind", create.kind,
                         "db:connect: agent (default) or service");
  create_cmd->add_option("--database", create.databases,
                         "db:connect: databases it may use (repeatable; "
                         "default: all of its environments')");
  create_cmd->add_option("--group", create.groups,
                         "db:connect: groups policies see (repeatable)");
  create_cmd->add_option("--proxy-id", create.proxy_id,
                         "proxy:enroll: the only proxy id it may enroll as "
                         "(default: the proxy's choice)");
  create_cmd->add_option("--ttl", create.ttl, "Lifetime; 0: never expires")
      ->capture_default_str();
  AddRemote(create_cmd, &create, &create_format);

  cli::TokenListOptions list;
  std::string list_format = "text";
  CLI::App* list_cmd = tokens->add_subcommand("list", "List tokens");
  list_cmd->add_flag("--all", list.all, "Include revoked and expired tokens");
  AddRemote(list_cmd, &list, &list_format);

  cli::TokenRevokeOptions revoke;
  std::string revoke_format = "text";
  CLI::App* revoke_cmd = tokens->add_subcommand("revoke", "Revoke a token");
  revoke_cmd->add_option("id", revoke.id, "Token id (tok_...)")->required();
  AddRemote(revoke_cmd, &revoke, &revoke_format);

  CLI::App* identities = app.add_subcommand(
      "identities",
      "The directory: users and groups from SCIM; cut anyone off at once");
  identities->require_subcommand(1);
  cli::IdentitiesListOptions identities_list;
  std::string identities_list_format = "text";
  CLI::App* identities_list_cmd = identities->add_subcommand(
      "list", "Users, whether active, and their directory groups");
  identities_list_cmd->add_option("--user", identities_list.user,
                                  "Only this user");
  AddRemote(identities_list_cmd, &identities_list, &identities_list_format);
  cli::IdentitiesSetActiveOptions deactivate, activate;
  activate.active = true;
  std::string deactivate_format = "text", activate_format = "text";
  CLI::App* deactivate_cmd = identities->add_subcommand(
      "deactivate",
      "Refuse a user on every proxy and close their open sessions (admin)");
  CLI::App* activate_cmd =
      identities->add_subcommand("activate", "Let a deactivated user back");
  for (auto [cmd, opts, format] :
       {std::tuple{deactivate_cmd, &deactivate, &deactivate_format},
        {activate_cmd, &activate, &activate_format}}) {
    cmd->add_option("user", opts->user, "User name (as they connect)")
        ->required();
    cmd->add_option("--reason", opts->reason, "Recorded in the audit log");
    AddRemote(cmd, opts, format);
  }

  CLI::App* proxies = app.add_subcommand(
      "proxies", "Enrolled proxies: one identity per proxy id");
  proxies->require_subcommand(1);
  cli::ProxiesListOptions proxies_list;
  std::string proxies_list_format = "text";
  CLI::App* proxies_list_cmd = proxies->add_subcommand(
      "list", "Every enrolled proxy, its certificate and state (policy:read)");
  AddRemote(proxies_list_cmd, &proxies_list, &proxies_list_format);
  cli::ProxiesRevokeOptions proxies_revoke;
  std::string proxies_revoke_format = "text";
  CLI::App* proxies_revoke_cmd = proxies->add_subcommand(
      "revoke",
      "Refuse a proxy's every call from now on; its id can then be enrolled "
      "again (admin)");
  proxies_revoke_cmd
      ->add_option("proxy", proxies_revoke.proxy, "ENVIRONMENT/ID")
      ->required();
  proxies_revoke_cmd
      ->add_option("--reason", proxies_revoke.reason,
                   "Why (recorded in the audit log)")
      ->required();
  AddRemote(proxies_revoke_cmd, &proxies_revoke, &proxies_revoke_format);

  CLI::App* audit = app.add_subcommand(
      "audit", "The tamper-evident audit log (audit:read; verify is offline)");
  audit->require_subcommand(1);

  cli::AuditTailOptions tail;
  std::string tail_format = "text";
  CLI::App* tail_cmd = audit->add_subcommand(
      "tail", "Print recent events; --follow streams new ones");
  cli::AuditTailOptions search;
  search.limit = 100;
  search.search = true;
  std::string search_format = "text";
  CLI::App* search_cmd = audit->add_subcommand(
      "search", "Print the events that match the filters");
  for (auto [cmd, opts] : {std::pair{tail_cmd, &tail}, {search_cmd, &search}}) {
    cmd->add_option("--from", opts->from, "First index");
    cmd->add_option("--limit", opts->limit, "How many")->capture_default_str();
    cmd->add_option("--user", opts->users, "Only these users (repeatable)");
    cmd->add_option("--env", opts->environments, "Only these environments");
    cmd->add_option("--decision", opts->decisions,
                    "allow, deny or require_approval (repeatable)");
    cmd->add_option("--kind", opts->kinds,
                    "statement, session_start, session_end, authentication, "
                    "admin (repeatable)");
    cmd->add_flag("--ocsf", opts->ocsf,
                  "One OCSF 1.1 JSON object per line (for SIEMs)");
  }
  tail_cmd->add_flag("-f,--follow", tail.follow, "Keep printing new events");
  AddRemote(tail_cmd, &tail, &tail_format);
  AddRemote(search_cmd, &search, &search_format);

  cli::AuditCheckpointOptions checkpoint;
  std::string checkpoint_format = "text";
  CLI::App* checkpoint_cmd = audit->add_subcommand(
      "checkpoint", "The latest signed checkpoint (save it to verify later)");
  checkpoint_cmd->add_option("--out", checkpoint.out_file, "Also save it here");
  AddRemote(checkpoint_cmd, &checkpoint, &checkpoint_format);

  cli::AuditExportOptions export_opts;
  std::string export_format = "text";
  CLI::App* export_cmd = audit->add_subcommand(
      "export", "Save entries (JSON lines) for offline verification");
  export_cmd->add_option("--out", export_opts.out_file, "File to write")
      ->required();
  export_cmd->add_option("--from", export_opts.from, "First index");
  export_cmd->add_option("--to", export_opts.to, "End index (exclusive; 0: all)");
  export_cmd->add_option("--checkpoint", export_opts.checkpoint_file,
                         "Export exactly the entries this saved checkpoint "
                         "signed (from 0; not with --from/--to)");
  export_cmd->add_option("--decoded", export_opts.decoded_file,
                         "Also write the entries decoded (readable JSON "
                         "lines, as tail --format json) to this file");
  AddRemote(export_cmd, &export_opts, &export_format);

  cli::AuditProofOptions proof;
  std::string proof_format = "text";
  CLI::App* proof_cmd = audit->add_subcommand(
      "proof", "Prove that an entry is in the log (inclusion proof)");
  proof_cmd->add_option("index", proof.index, "Entry index")->required();
  proof_cmd->add_option("--checkpoint", proof.checkpoint_file,
                        "Saved checkpoint to prove against (default: current)");
  proof_cmd->add_option("--key", proof.key,
                        "Verifier key (text or file, e.g. DATA_DIR/audit.vkey)");
  AddRemote(proof_cmd, &proof, &proof_format);

  cli::AuditVerifyOptions verify;
  std::string verify_format = "text";
  CLI::App* verify_cmd = audit->add_subcommand(
      "verify", "Verify an exported log against a saved checkpoint (offline)");
  verify_cmd->add_option("--log", verify.log_file, "From `audit export`")
      ->required();
  verify_cmd->add_option("--checkpoint", verify.checkpoint_file,
                         "From `audit checkpoint --out`")
      ->required();
  verify_cmd->add_option("--key", verify.key,
                         "Verifier key (text or file, e.g. DATA_DIR/audit.vkey)")
      ->required();
  verify_cmd->add_flag("--allow-uncovered", verify.allow_uncovered,
                       "Accept entries after the checkpoint (they are "
                       "counted, not proven)");
  AddFormat(verify_cmd, &verify_format);

  // wardenctl login: its --token is the ID token, not an API token.
  cli::LoginOptions login;
  std::string login_format = "text";
  CLI::App* login_cmd = app.add_subcommand(
      "login",
      "Get a short-lived client certificate from Warden's CA with an "
      "identity provider's ID token (or its device flow), for proxies' "
      "auth: cert listeners");
  login_cmd->add_option("--token", login.token_file,
                        "File holding an ID token you already have ('-': "
                        "stdin); without it, the provider's device flow runs");
  login_cmd->add_option("--provider", login.provider,
                        "Identity provider (by name); default: the only one");
  login_cmd->add_option("--idp-ca-file", login.idp_ca_file,
                        "PEM CA for the provider's HTTPS (default: the "
                        "system's)");
  login_cmd->add_option("--out", login.out_dir,
                        "Where key, certificate and CA go (default ~/.warden)");
  login_cmd->add_option("--proxy", login.proxy,
                        "host:port of the proxy, for the printed psql line");
  login_cmd->add_option("--dbname", login.dbname,
                        "Database, for the printed psql line");
  login_cmd->add_option("--proxy-ca-file", login.proxy_ca_file,
                        "CA of the proxy's server certificate: the psql line "
                        "then says sslmode=verify-full (else require)");
  login_cmd
      ->add_option("--server", login.connection.server,
                   "Control plane host:port; a cluster's replicas as "
                   "host:port,host:port (the first that answers is used)")
      ->envname("WARDEN_SERVER");
  login_cmd
      ->add_option("--ca-file", login.connection.ca_file,
                   "PEM CA that issued the control plane's certificate")
      ->envname("WARDEN_CA_FILE");
  login_cmd->add_option("--timeout", login.connection.timeout,
                        "Per-request deadline")
      ->capture_default_str();
  AddFormat(login_cmd, &login_format);

  // CLI11 reports parse errors by exception; this is its documented
  // boundary (what CLI11_PARSE expands to), with our usage exit code.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? cli::kExitOk : cli::kExitUsage;
  }

  if (*validate_cmd) {
    validate.format = ParseFormat(validate_format);
    return cli::RunValidate(validate, std::cout, std::cerr);
  }
  if (*test_cmd) {
    test.format = ParseFormat(test_format);
    return cli::RunTest(test, std::cout, std::cerr);
  }
  if (*verify_cmd) {
    verify.format = ParseFormat(verify_format);
    return cli::RunAuditVerify(verify, std::cout, std::cerr);
  }
  if (*login_cmd) {
    login.format = ParseFormat(login_format);
    return cli::RunLogin(login, std::cin, std::cout, std::cerr);
  }
  if (*eval_cmd) {
    eval.format = ParseFormat(eval_format);
    return cli::RunEval(eval, std::cin, std::cout, std::cerr);
  }
  // Remote commands: one RPC each, results on stdout, problems on stderr.
  struct Remote {
    CLI::App* command;
    cli::RemoteOptions* options;
    const std::string* format;
    std::function<int()> run;
  };
  const Remote remotes[] = {
      {push_cmd, &push, &push_format,
       [&] { return cli::RunPush(push, std::cout, std::cerr); }},
      {diff_cmd, &diff, &diff_format,
       [&] { return cli::RunDiff(diff, std::cout, std::cerr); }},
      {history_cmd, &history, &history_format,
       [&] { return cli::RunHistory(history, std::cout, std::cerr); }},
      {rollback_cmd, &rollback, &rollback_format,
       [&] { return cli::RunRollback(rollback, std::cout, std::cerr); }},
      {status_cmd, &status, &status_format,
       [&] { return cli::RunStatus(status, std::cout, std::cerr); }},
      {create_cmd, &create, &create_format,
       [&] { return cli::RunTokensCreate(create, std::cout, std::cerr); }},
      {list_cmd, &list, &list_format,
       [&] { return cli::RunTokensList(list, std::cout, std::cerr); }},
      {revoke_cmd, &revoke, &revoke_format,
       [&] { return cli::RunTokensRevoke(revoke, std::cout, std::cerr); }},
      {identities_list_cmd, &identities_list, &identities_list_format,
       [&] {
         return cli::RunIdentitiesList(identities_list, std::cout, std::cerr);
       }},
      {deactivate_cmd, &deactivate, &deactivate_format,
       [&] {
         return cli::RunIdentitiesSetActive(deactivate, std::cout, std::cerr);
       }},
      {activate_cmd, &activate, &activate_format,
       [&] {
         return cli::RunIdentitiesSetActive(activate, std::cout, std::cerr);
       }},
      {proxies_list_cmd, &proxies_list, &proxies_list_format,
       [&] { return cli::RunProxiesList(proxies_list, std::cout, std::cerr); }},
      {proxies_revoke_cmd, &proxies_revoke, &proxies_revoke_format,
       [&] {
         return cli::RunProxiesRevoke(proxies_revoke, std::cout, std::cerr);
       }},
      {tail_cmd, &tail, &tail_format,
       [&] { return cli::RunAuditTail(tail, std::cout, std::cerr); }},
      {search_cmd, &search, &search_format,
       [&] { return cli::RunAuditTail(search, std::cout, std::cerr); }},
      {checkpoint_cmd, &checkpoint, &checkpoint_format,
       [&] { return cli::RunAuditCheckpoint(checkpoint, std::cout, std::cerr); }},
      {export_cmd, &export_opts, &export_format,
       [&] { return cli::RunAuditExport(export_opts, std::cout, std::cerr); }},
      {proof_cmd, &proof, &proof_format,
       [&] { return cli::RunAuditProof(proof, std::cout, std::cerr); }},
  };
  for (const Remote& r : remotes) {
    if (!*r.command) continue;
    r.options->format = ParseFormat(*r.format);
    return r.run();
  }
  return cli::kExitUsage;
}
