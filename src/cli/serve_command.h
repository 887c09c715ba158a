#pragma once
#include <CLI/CLI.hpp>

namespace nanovllm::cli {
void register_serve_command(CLI::App& app);
}
