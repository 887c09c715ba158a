#pragma once

namespace nanovllm::cli {

// The `nanovllm` command: parses argv, runs one subcommand, returns the process exit code
// (0 ok, 1 a runtime error with its message on stderr, 2 a usage error).
int run(int argc, char** argv);

}  // namespace nanovllm::cli
