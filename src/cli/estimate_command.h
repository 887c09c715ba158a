#pragma once
#include <CLI/CLI.hpp>

namespace nanovllm::cli {
// `nanovllm estimate`: KV cache bytes per token, total MB, saving vs the model dtype and how many
// sequences of a length fit, for a model folder/file or a preset (no weights are read).
void register_estimate_command(CLI::App& app);
}
