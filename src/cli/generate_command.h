#pragma once
#include <CLI/CLI.hpp>

namespace nanovllm::cli {
void register_generate_command(CLI::App& app);
}
