// Bad models, configs and requests: each a nanovllm::Error naming the file, field or tensor.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "e2e/e2e_util.h"

namespace nanovllm::e2e {
namespace {

using testing::HasSubstr;

// The message of the nanovllm::Error that `body` throws ("" and a failure when none).
template <class Body>
std::string error_of(Body body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a nanovllm::Error: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error thrown";
  return "";
}

std::string load_error(const std::filesystem::path& dir, Config c = cpu_config()) {
  return error_of([&] { LLM llm(dir.string(), c); });
}

TEST(LoadErrors, MissingFolder) {
  TempDir dir("missing");
  const auto missing = dir.path() / "no_such_model";
  EXPECT_THAT(load_error(missing), HasSubstr(missing.string()));
}

TEST(LoadErrors, FolderWithoutConfigJson) {
  TempDir dir("noconfig");
  copy_folder(stories_dir(), dir.path());
  std::filesystem::remove(dir.path() / "config.json");
  const std::string msg = load_error(dir.path());
  EXPECT_THAT(msg, HasSubstr("config.json"));
  EXPECT_THAT(msg, HasSubstr(dir.path().string()));
}

TEST(LoadErrors, UnsupportedArchitecture) {
  TempDir dir("arch");
  copy_folder(stories_dir(), dir.path());
  nlohmann::json j = read_json(dir.path() / "config.json");
  j["architectures"] = {"GPT2LMHeadModel"};
  j["model_type"] = "gpt2";
  write_json(dir.path() / "config.json", j);
  const std::string msg = load_error(dir.path());
  EXPECT_THAT(msg, HasSubstr("config.json"));
  EXPECT_THAT(msg, HasSubstr("architectures"));
  EXPECT_THAT(msg, HasSubstr("GPT2LMHeadModel"));
}

TEST(LoadErrors, TruncatedSafetensors) {
  TempDir dir("truncated");
  copy_folder(stories_dir(), dir.path());
  const auto file = dir.path() / "model.safetensors";
  const auto size = std::filesystem::file_size(file);
  for (uintmax_t keep : {size - 1, size / 2, uintmax_t(100), uintmax_t(5)}) {
    std::filesystem::resize_file(file, keep);
    const std::string msg = load_error(dir.path());
    EXPECT_THAT(msg, HasSubstr("model.safetensors")) << keep;
    if (keep == size - 1) {
      // The last tensor in the file is the one cut short.
      EXPECT_THAT(msg, HasSubstr("model.")) << msg;
    }
  }
}

TEST(LoadErrors, TensorWithTheWrongShape) {
  // config.json says intermediate_size 170 while the file holds [172, 64] MLP weights.
  TempDir dir("shape");
  copy_folder(stories_dir(), dir.path());
  nlohmann::json j = read_json(dir.path() / "config.json");
  j["intermediate_size"] = 170;
  write_json(dir.path() / "config.json", j);
  const std::string msg = load_error(dir.path());
  EXPECT_THAT(msg, HasSubstr("mlp."));
  EXPECT_THAT(msg, HasSubstr("172"));
  EXPECT_THAT(msg, HasSubstr("170"));
}

TEST(LoadErrors, MissingTensorIsNamed) {
  // Untied head declared but no lm_head.weight in the file.
  TempDir dir("untied");
  copy_folder(stories_dir(), dir.path());
  nlohmann::json j = read_json(dir.path() / "config.json");
  j["tie_word_embeddings"] = false;
  write_json(dir.path() / "config.json", j);
  EXPECT_THAT(load_error(dir.path()), HasSubstr("lm_head.weight"));
}

TEST(ConfigErrors, InvalidFieldsAreNamed) {
  struct Case {
    const char* field;
    void (*edit)(Config&);
  };
  const Case cases[] = {
      {"max_num_seqs", [](Config& c) { c.max_num_seqs = 0; }},
      {"kv_cache_dtype", [](Config& c) { c.kv_cache_dtype = "int3"; }},
      {"max_num_batched_tokens", [](Config& c) { c.max_num_batched_tokens = -4; }},
      {"kvcache_block_size", [](Config& c) { c.kvcache_block_size = 0; }},
      {"num_kvcache_blocks", [](Config& c) { c.num_kvcache_blocks = 0; }},
      {"device", [](Config& c) { c.device = "tpu"; }},
      {"gpu_memory_utilization", [](Config& c) { c.gpu_memory_utilization = 1.5; }},
      {"tensor_parallel_size", [](Config& c) { c.tensor_parallel_size = 2; }},
      {"load_format", [](Config& c) { c.load_format = "pt"; }},
      {"kv_quant", [](Config& c) {
         c.kv_quant = true;
         c.kv_cache_dtype = "bf16";
       }},
  };
  for (const Case& k : cases) {
    Config c = cpu_config();
    k.edit(c);
    EXPECT_THAT(load_error(stories_dir(), c), HasSubstr(k.field)) << k.field;
  }
}

TEST(RequestErrors, BadPromptsAndSamplingParamsAreNamed) {
  LLM llm(stories_dir().string(), cpu_config());
  EXPECT_THAT(error_of([&] { llm.generate({Prompt(std::vector<int32_t>{1, 512})}, greedy(4)); }),
              HasSubstr("512"));
  EXPECT_THAT(error_of([&] { llm.generate({Prompt(std::vector<int32_t>{1, -3})}, greedy(4)); }),
              HasSubstr("-3"));
  EXPECT_THAT(error_of([&] { llm.generate({Prompt(std::vector<int32_t>{})}, greedy(4)); }),
              HasSubstr("empty"));
  SamplingParams p = greedy(4);
  p.temperature = -1;
  EXPECT_THAT(error_of([&] { llm.generate({Prompt("Zoo")}, p); }), HasSubstr("temperature"));
  p = greedy(0);
  EXPECT_THAT(error_of([&] { llm.generate({Prompt("Zoo")}, p); }), HasSubstr("max_tokens"));
  p = greedy(4);
  p.top_p = 0;
  EXPECT_THAT(error_of([&] { llm.generate({Prompt("Zoo")}, p); }), HasSubstr("top_p"));
  // A rejected request leaves the engine usable.
  const auto refs = stories_references();
  EXPECT_EQ(llm.generate({Prompt(refs[0].prompt_ids)}, greedy(57))[0].token_ids, refs[0].output_ids);
}

TEST(RequestErrors, PromptLongerThanTheModelIsRejected) {
  LLM llm(stories_dir().string(), cpu_config());
  std::vector<int32_t> ids(600, 300);  // max_position_embeddings is 512
  const std::string msg = error_of([&] { llm.generate({Prompt(ids)}, greedy(4)); });
  EXPECT_THAT(msg, HasSubstr("600"));
}

}  // namespace
}  // namespace nanovllm::e2e
