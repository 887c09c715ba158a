#pragma once
#include <CLI/CLI.hpp>

namespace nanovllm::cli {
void register_score_command(CLI::App& app);
}
