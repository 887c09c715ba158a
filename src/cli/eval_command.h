#pragma once
#include <CLI/CLI.hpp>

namespace nanovllm::cli {
void register_eval_command(CLI::App& app);
}
