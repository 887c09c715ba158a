// generation_config.json's sampling defaults: read when present, validated, do_sample=false greedy.
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/model_config.h"

namespace nanovllm {
namespace {

std::filesystem::path write_generation_config(const std::string& name, const std::string& body) {
  const auto dir = std::filesystem::temp_directory_path() / ("nanovllm_gencfg_" + name);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "generation_config.json") << body;
  return dir;
}

TEST(GenerationDefaults, SamplingFieldsBecomeDefaults) {
  ModelConfig c;
  merge_generation_config(c, write_generation_config(
                                 "sampling", R"({"temperature": 0.6, "top_p": 0.95, "top_k": 20,
                                                 "eos_token_id": [7, 9], "do_sample": true})"));
  ASSERT_TRUE(c.default_temperature && c.default_top_p && c.default_top_k);
  EXPECT_FLOAT_EQ(*c.default_temperature, 0.6f);
  EXPECT_FLOAT_EQ(*c.default_top_p, 0.95f);
  EXPECT_EQ(*c.default_top_k, 20);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{7, 9}));
}

TEST(GenerationDefaults, DoSampleFalseMeansGreedyAndAbsentFieldsStayUnset) {
  ModelConfig c;
  merge_generation_config(c, write_generation_config("greedy", R"({"do_sample": false})"));
  ASSERT_TRUE(c.default_temperature);
  EXPECT_EQ(*c.default_temperature, 0.0f);
  EXPECT_FALSE(c.default_top_p);
  EXPECT_FALSE(c.default_top_k);
}

TEST(GenerationDefaults, BadValuesNameTheFileAndField) {
  ModelConfig c;
  try {
    merge_generation_config(c, write_generation_config("bad", R"({"top_p": 1.5})"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("generation_config.json"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("top_p"));
  }
}

}  // namespace
}  // namespace nanovllm
