#include <gtest/gtest.h>

#include "core/error.h"
#include "model/model_source.h"
#include "model/tensor_names.h"
#include "model_test_util.h"

namespace nanovllm {
namespace {

using namespace testing_util;

const std::string kStoriesDir = std::string(NANOVLLM_SHARED_DIR) + "/models/stories260K";

TEST(OpenModel, HfFolder) {
  LoadedModel m = open_model(kStoriesDir, "", "auto", 0);
  EXPECT_EQ(m.config.arch, Architecture::Llama);
  EXPECT_EQ(m.config.eos_token_ids, std::vector<int32_t>{2});
  EXPECT_EQ(m.tokenizer_dir_or_file, std::filesystem::path(kStoriesDir));
  EXPECT_EQ(m.weights->describe(), kStoriesDir);
  EXPECT_EQ(m.weights->load_f32("model.norm.weight", std::vector<int64_t>{64}).size(), 64u);
}

TEST(OpenModel, FolderWithDummyWeights) {
  LoadedModel m = open_model(kStoriesDir, "", "dummy", 5);
  EXPECT_EQ(m.config.hidden_size, 64);
  auto real = open_model(kStoriesDir, "", "auto", 0);
  const std::vector<int64_t> shape{64, 64};
  const std::string name = "model.layers.0.self_attn.q_proj.weight";
  EXPECT_NE(m.weights->load_f32(name, shape), real.weights->load_f32(name, shape));
  EXPECT_EQ(m.weights->load_f32(name, shape), open_model(kStoriesDir, "", "dummy", 5).weights->load_f32(name, shape));
}

TEST(OpenModel, Preset) {
  LoadedModel m = open_model("", "qwen3-tiny", "auto", 1);
  EXPECT_EQ(m.config.arch, Architecture::Qwen3);
  EXPECT_TRUE(m.tokenizer_dir_or_file.empty());
  for (const auto& s : model_tensor_specs(m.config)) ASSERT_TRUE(m.weights->contains(s.name)) << s.name;
}

TEST(OpenModel, Errors) {
  auto msg = error_of([] { open_model("", "qwen9", "auto", 0); });
  EXPECT_NE(msg.find("qwen9"), std::string::npos) << msg;
  EXPECT_NE(msg.find("qwen3-0.6b"), std::string::npos) << msg;
  msg = error_of([] { open_model("", "", "auto", 0); });
  EXPECT_NE(msg.find("preset"), std::string::npos) << msg;
  msg = error_of([] { open_model(kStoriesDir, "", "pt", 0); });
  EXPECT_NE(msg.find("load_format"), std::string::npos) << msg;
  msg = error_of([] { open_model("/nonexistent/model", "", "auto", 0); });
  EXPECT_NE(msg.find("/nonexistent/model"), std::string::npos) << msg;

  ScratchDir dir;  // a folder without config.json
  msg = error_of([&] { open_model(dir.path().string(), "", "auto", 0); });
  EXPECT_NE(msg.find(dir.path().string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;

  // config.json present but no weights.
  write_text(dir / "config.json", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 8,
      "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10,
      "max_position_embeddings": 16})");
  msg = error_of([&] { open_model(dir.path().string(), "", "auto", 0); });
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  EXPECT_NO_THROW(open_model(dir.path().string(), "", "dummy", 0));

  write_text(dir / "notes.txt", "hi");
  msg = error_of([&] { open_model((dir / "notes.txt").string(), "", "auto", 0); });
  EXPECT_NE(msg.find("notes.txt"), std::string::npos) << msg;
}

}  // namespace
}  // namespace nanovllm
