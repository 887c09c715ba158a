#pragma once
#include <CLI/CLI.hpp>

namespace nanovllm::cli {
void register_tokenize_command(CLI::App& app);
}
