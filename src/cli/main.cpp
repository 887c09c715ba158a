#include "cli/main.h"

#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/bench_command.h"
#include "cli/estimate_command.h"
#include "cli/eval_command.h"
#include "cli/generate_command.h"
#include "cli/score_command.h"
#include "cli/serve_command.h"
#include "cli/tokenize_command.h"
#include "core/error.h"

namespace nanovllm::cli {

int run(int argc, char** argv) {
  CLI::App app{"nanovllm: a small, fast LLM inference engine (nano-vllm in C++)"};
  app.require_subcommand(1);
  register_generate_command(app);
  register_tokenize_command(app);
  register_score_command(app);
  register_eval_command(app);
  register_estimate_command(app);
  register_bench_command(app);
  register_serve_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, exit code 2, as the usage-error convention of command-line tools.
    std::fprintf(stderr, "nanovllm: %s (see --help)\n", e.what());
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "nanovllm: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nanovllm: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace nanovllm::cli
