#pragma once
// The engine flags shared by generate, score, eval and bench: model selection and Config fields.
#include <CLI/CLI.hpp>

#include "nanovllm/config.h"

namespace nanovllm::cli {

struct EngineOptions {
  Config config;
  bool model_required = true;
};

// Adds --model, --preset, --load-format, --tokenizer, --device, --kv-cache-dtype (and, with
// tuning=true, the scheduler and memory knobs) to `cmd`, writing into `opts.config`.
void add_engine_options(CLI::App& cmd, EngineOptions& opts, bool tuning = true);
// Number checks with short messages (CLI11's PositiveNumber prints the largest double in full).
CLI::Validator positive_number();
CLI::Validator non_negative_number();
// Throws CLI::ValidationError when neither --model nor --preset is given.
void require_model(const EngineOptions& opts);

}  // namespace nanovllm::cli
