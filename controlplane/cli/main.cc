// wardenctl: Warden's command-line tool. Parses the command line with
// CLI11 and hands over to policy_commands; exit codes are listed there and
// in controlplane/cli/README.md.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "controlplane/cli/policy_commands.h"

namespace {

using warden::controlplane::cli::Format;

Format ParseFormat(const std::string& s) {
  return s == "json" ? Format::kJson : Format::kText;
}

void AddFormat(CLI::App* command, std::string* format) {
  command->add_option("--format", *format, "Output format: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = warden::controlplane::cli;
  CLI::App app{"wardenctl: Warden's command-line tool", "wardenctl"};
  app.require_subcommand(1);
  CLI::App* policy = app.add_subcommand(
      "policy", "Validate, test and evaluate policy files offline");
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
  eval.format = ParseFormat(eval_format);
  return cli::RunEval(eval, std::cin, std::cout, std::cerr);
}
