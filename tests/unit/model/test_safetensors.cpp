#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/model_config.h"
#include "model/safetensors.h"
#include "model/safetensors_weights.h"
#include "model/tensor_names.h"
#include "model_test_util.h"

namespace nanovllm {
namespace {

using namespace testing_util;

// Independent decoders of the 16-bit formats (not core/half.h).
double ref_f16(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
  const double mag = exp == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, exp - 25);
  return sign ? -mag : mag;
}
float ref_bf16(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Random finite 16-bit patterns (exponent field never all ones, so no inf/NaN).
std::vector<uint16_t> random_halves(size_t n, uint32_t seed, int exp_shift) {
  std::mt19937 rng(seed);
  std::vector<uint16_t> v(n);
  for (auto& x : v) {
    do x = uint16_t(rng()); while (((x >> exp_shift) & ((1 << (15 - exp_shift)) - 1)) == (1 << (15 - exp_shift)) - 1);
  }
  return v;
}


TEST(Safetensors, RoundTripF32F16BF16) {
  ScratchDir dir;
  const std::vector<int64_t> s32{7, 13}, s16{3, 5, 11}, sb{97};
  auto f32 = random_floats(7 * 13, 1);
  auto h16 = random_halves(3 * 5 * 11, 2, 10);
  auto hb = random_halves(97, 3, 7);
  write_bytes(dir / "model.safetensors", safetensors_image({{"a.weight", "F32", s32, as_bytes(f32)},
                                                            {"b.weight", "F16", s16, as_bytes(h16)},
                                                            {"c.bias", "BF16", sb, as_bytes(hb)},
                                                            {"empty", "F32", {0, 4}, {}}}));
  auto w = open_safetensors_folder(dir.path());
  EXPECT_TRUE(w->contains("a.weight"));
  EXPECT_FALSE(w->contains("model.norm.weight"));
  EXPECT_EQ(w->load_f32("a.weight", s32), f32);
  auto b = w->load_f32("b.weight", s16);
  ASSERT_EQ(b.size(), h16.size());
  for (size_t i = 0; i < b.size(); ++i) EXPECT_EQ(double(b[i]), ref_f16(h16[i])) << i;
  auto c = w->load_f32("c.bias", sb);
  for (size_t i = 0; i < c.size(); ++i) EXPECT_EQ(c[i], ref_bf16(hb[i])) << i;
  EXPECT_TRUE(w->load_f32("empty", std::vector<int64_t>{0, 4}).empty());
  EXPECT_EQ(w->describe(), dir.path().string());
}

TEST(Safetensors, ShardedIndex) {
  ScratchDir dir;
  auto x = random_floats(6 * 10, 4), y = random_floats(6, 5), z = random_floats(10 * 6, 6);
  write_bytes(dir / "model-00001-of-00002.safetensors",
              safetensors_image({{"x", "F32", {6, 10}, as_bytes(x)}, {"y", "F32", {6}, as_bytes(y)}}));
  write_bytes(dir / "model-00002-of-00002.safetensors", safetensors_image({{"z", "F32", {10, 6}, as_bytes(z)}}));
  write_text(dir / "model.safetensors.index.json",
             R"({"metadata": {"total_size": 1}, "weight_map": {"x": "model-00001-of-00002.safetensors",
                 "y": "model-00001-of-00002.safetensors", "z": "model-00002-of-00002.safetensors"}})");
  auto w = open_safetensors_folder(dir.path());
  EXPECT_EQ(w->load_f32("x", std::vector<int64_t>{6, 10}), x);
  EXPECT_EQ(w->load_f32("y", std::vector<int64_t>{6}), y);
  EXPECT_EQ(w->load_f32("z", std::vector<int64_t>{10, 6}), z);

  // The index names a tensor its shard does not hold.
  write_text(dir / "model.safetensors.index.json",
             R"({"weight_map": {"x": "model-00002-of-00002.safetensors"}})");
  auto msg = error_of([&] { open_safetensors_folder(dir.path()); });
  EXPECT_CONTAINS(msg, "model.safetensors.index.json");
  EXPECT_CONTAINS(msg, "'x'");
  // A missing shard.
  write_text(dir / "model.safetensors.index.json", R"({"weight_map": {"x": "model-00003.safetensors"}})");
  msg = error_of([&] { open_safetensors_folder(dir.path()); });
  EXPECT_CONTAINS(msg, "model-00003.safetensors");
  // No weights at all.
  ScratchDir empty;
  msg = error_of([&] { open_safetensors_folder(empty.path()); });
  EXPECT_CONTAINS(msg, empty.path().string());
  EXPECT_CONTAINS(msg, "model.safetensors");
}

TEST(Safetensors, WrongShapeMissingTensorAndDtypeNameFileAndTensor) {
  ScratchDir dir;
  auto x = random_floats(12, 7);
  std::vector<int64_t> ints(3, 42);
  write_bytes(dir / "model.safetensors",
              safetensors_image({{"w", "F32", {3, 4}, as_bytes(x)}, {"ids", "I64", {3}, as_bytes(ints)}}));
  auto w = open_safetensors_folder(dir.path());
  const std::string file = (dir / "model.safetensors").string();
  auto msg = error_of([&] { w->load_f32("w", std::vector<int64_t>{4, 3}); });
  EXPECT_CONTAINS(msg, file);
  EXPECT_CONTAINS(msg, "'w'");
  EXPECT_CONTAINS(msg, "[3, 4]");
  EXPECT_CONTAINS(msg, "[4, 3]");
  msg = error_of([&] { w->load_f32("nope", std::vector<int64_t>{1}); });
  EXPECT_CONTAINS(msg, dir.path().string());
  EXPECT_CONTAINS(msg, "'nope'");
  msg = error_of([&] { w->load_f32("ids", std::vector<int64_t>{3}); });
  EXPECT_CONTAINS(msg, file);
  EXPECT_CONTAINS(msg, "'ids'");
  EXPECT_CONTAINS(msg, "I64");
}

struct Malformed {
  const char* what;
  std::vector<uint8_t> bytes;
  const char* expect;  // besides the file name
};

TEST(Safetensors, MalformedFilesErrorNamingFileAndTensor) {
  auto good = safetensors_image({{"t", "F32", {2, 3}, as_bytes(random_floats(6, 8))},
                                 {"u", "BF16", {5}, as_bytes(random_halves(5, 9, 7))}});
  std::vector<Malformed> cases;
  cases.push_back({"empty file", {}, "truncated"});
  cases.push_back({"short length", {1, 2, 3}, "truncated"});
  cases.push_back({"truncated data", std::vector<uint8_t>(good.begin(), good.end() - 3), "'u'"});
  {
    auto b = good;
    b[7] = 0x10;  // header length of ~1e15
    cases.push_back({"header longer than file", b, "header length"});
  }
  cases.push_back({"bad json", safetensors_image_raw("{\"t\": {\"dtype\": ", 16), "JSON"});
  cases.push_back({"not an object", safetensors_image_raw("[1, 2]", 0), "object"});
  cases.push_back({"offsets past end",
                   safetensors_image_raw(R"({"t": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})", 20),
                   "'t'"});
  cases.push_back({"offsets reversed",
                   safetensors_image_raw(R"({"t": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", 20),
                   "'t'"});
  cases.push_back({"negative offset",
                   safetensors_image_raw(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 20),
                   "'t'"});
  cases.push_back({"size mismatch",
                   safetensors_image_raw(R"({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 20),
                   "'t'"});
  cases.push_back({"overlap",
                   safetensors_image_raw(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                             "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                                         16),
                   "overlaps"});
  cases.push_back({"unknown dtype",
                   safetensors_image_raw(R"({"t": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}})", 4),
                   "'t'"});
  cases.push_back({"negative dim",
                   safetensors_image_raw(R"({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4),
                   "'t'"});
  cases.push_back({"huge shape",
                   safetensors_image_raw(
                       R"({"t": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", 4),
                   "'t'"});
  cases.push_back({"missing offsets", safetensors_image_raw(R"({"t": {"dtype": "F32", "shape": [1]}})", 4),
                   "'t'"});
  ScratchDir dir;
  for (const auto& c : cases) {
    const auto path = dir / "model.safetensors";
    write_bytes(path, c.bytes);
    auto msg = error_of([&] { SafetensorsFile f(path); });
    EXPECT_CONTAINS(msg, path.string()) << c.what;
    EXPECT_CONTAINS(msg, c.expect) << c.what;
  }
  write_bytes(dir / "model.safetensors", good);
  EXPECT_NO_THROW(SafetensorsFile(dir / "model.safetensors"));
}

TEST(Safetensors, Stories260KLoadsWithExpectedShapes) {
  const std::string dir = std::string(NANOVLLM_SHARED_DIR) + "/models/stories260K";
  ModelConfig c = load_model_config(dir + "/config.json");
  auto w = open_safetensors_folder(dir);
  auto specs = model_tensor_specs(c);
  EXPECT_EQ(specs.size(), 47u);  // the README's tensor count; no lm_head (tied)
  int64_t params = 0;
  for (const auto& s : specs) {
    ASSERT_TRUE(w->contains(s.name)) << s.name;
    auto v = w->load_f32(s.name, s.shape);
    int64_t n = 1;
    for (auto d : s.shape) n *= d;
    ASSERT_EQ(int64_t(v.size()), n);
    for (float x : v) ASSERT_TRUE(std::isfinite(x)) << s.name;
    params += n;
  }
  EXPECT_EQ(params, 260032);
  // Values as the file stores them (little-endian f32 right after the header).
  SafetensorsFile f(dir + "/model.safetensors");
  const auto* t = f.find("model.norm.weight");
  ASSERT_NE(t, nullptr);
  auto raw = f.data(*t);
  std::vector<float> expect(64);
  std::memcpy(expect.data(), raw.data(), 256);
  EXPECT_EQ(w->load_f32("model.norm.weight", std::vector<int64_t>{64}), expect);
}

}  // namespace
}  // namespace nanovllm
