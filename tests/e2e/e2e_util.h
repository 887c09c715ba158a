#pragma once
// Shared helpers of the end-to-end tests: stories260K's folder and reference.json, a small CPU
// engine config, and temp folders holding modified copies of a model.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "nanovllm/llm.h"

namespace nanovllm::e2e {

inline std::filesystem::path stories_dir() {
  return std::filesystem::path(NANOVLLM_SHARED_DIR) / "models" / "stories260K";
}

// One greedy run of llama2.c's run.c (see ../shared/models/stories260K/README.md).
struct StoriesReference {
  std::string prompt;
  std::vector<int32_t> prompt_ids;  // with BOS
  std::vector<int32_t> output_ids;  // generated ids only
  std::string completion_text;      // text of output_ids alone
};

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in.good()) throw std::runtime_error("cannot open " + path.string());
  return nlohmann::json::parse(in);
}

inline std::vector<StoriesReference> stories_references() {
  std::vector<StoriesReference> refs;
  for (const auto& e : read_json(stories_dir() / "reference.json")) {
    refs.push_back({e["prompt"].get<std::string>(), e["prompt_ids"].get<std::vector<int32_t>>(),
                    e["output_ids"].get<std::vector<int32_t>>(),
                    e["completion_text"].get<std::string>()});
  }
  return refs;
}

// A CPU engine sized for the tiny models: small workspaces and KV cache keep each test fast
// (and cheap under AddressSanitizer).
inline Config cpu_config(const std::string& kv_cache_dtype = "auto") {
  Config c;
  c.device = "cpu";
  c.kv_cache_dtype = kv_cache_dtype;
  c.max_num_seqs = 16;
  c.max_num_batched_tokens = 1024;
  c.max_model_len = 512;
  c.num_kvcache_blocks = 512;  // 16 sequences x 512 tokens / 16 per block
  c.kvcache_block_size = 16;
  return c;
}

inline SamplingParams greedy(int32_t max_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.ignore_eos = true;
  p.max_tokens = max_tokens;
  return p;
}

// Greedy params for each reference: max_tokens = len(output_ids).
inline std::vector<SamplingParams> greedy_params(const std::vector<StoriesReference>& refs) {
  std::vector<SamplingParams> params;
  for (const auto& r : refs) params.push_back(greedy(int32_t(r.output_ids.size())));
  return params;
}

inline std::vector<Prompt> id_prompts(const std::vector<StoriesReference>& refs) {
  std::vector<Prompt> prompts;
  for (const auto& r : refs) prompts.emplace_back(r.prompt_ids);
  return prompts;
}

// A fresh folder under the system temp dir, removed when the object goes away.
class TempDir {
 public:
  // tag: unique within the test binary (the process id separates concurrent runs).
  explicit TempDir(const std::string& tag) {
    path_ = std::filesystem::temp_directory_path() /
            ("nanovllm_e2e_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Copies every file of `from` into `to`.
inline void copy_folder(const std::filesystem::path& from, const std::filesystem::path& to) {
  for (const auto& entry : std::filesystem::directory_iterator(from))
    std::filesystem::copy_file(entry.path(), to / entry.path().filename(),
                               std::filesystem::copy_options::overwrite_existing);
}

inline void write_json(const std::filesystem::path& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump(2);
}

}  // namespace nanovllm::e2e
