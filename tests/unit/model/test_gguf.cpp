#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "model/gguf.h"
#include "model/gguf_dequant.h"
#include "gguf_builder.h"
#include "model_test_util.h"

namespace nanovllm {
namespace {

using namespace testing_util;
using B = GgufBuilder;


// A small valid file: every metadata value type and two tensors.
GgufBuilder sample_builder(uint32_t alignment_kv = 0) {
  GgufBuilder b;
  b.kv<uint8_t>("v.u8", B::U8, 200);
  b.kv<int8_t>("v.i8", B::I8, -7);
  b.kv<uint16_t>("v.u16", B::U16, 60000);
  b.kv<int16_t>("v.i16", B::I16, -30000);
  b.kv<uint32_t>("v.u32", B::U32, 4000000000u);
  b.kv<int32_t>("v.i32", B::I32, -2000000000);
  b.kv<float>("v.f32", B::F32, 1.5f);
  b.kv<uint8_t>("v.bool", B::BOOL, 1);
  b.kv_string("general.architecture", "llama");
  b.kv<uint64_t>("v.u64", B::U64, 1ull << 40);
  b.kv<int64_t>("v.i64", B::I64, -(1ll << 40));
  b.kv<double>("v.f64", B::F64, -2.25);
  b.kv_array<int32_t>("tokenizer.ggml.token_type", B::I32, {1, 3, 6, -1});
  b.kv_array<uint8_t>("v.u8s", B::U8, {1, 2, 255});
  b.kv_array<float>("tokenizer.ggml.scores", B::F32, {0.5f, -1.25f});
  b.kv_array<double>("v.f64s", B::F64, {1e100});
  b.kv_array<uint8_t>("v.bools", B::BOOL, {0, 1, 1});
  b.kv_string_array("tokenizer.ggml.tokens", {"<s>", "", "\xe2\x96\x81hi"});
  if (alignment_kv) b.kv<uint32_t>("general.alignment", B::U32, alignment_kv);
  b.tensor("a", {5, 3}, 0, as_bytes(random_floats(15, 1)));
  b.tensor("b", {32}, 8, std::vector<uint8_t>(34, 0x11));  // one Q8_0 block
  return b;
}

TEST(Gguf, ParsesEveryValueTypeAndTensors) {
  for (uint32_t align : {0u, 64u, 1u}) {
    auto bytes = sample_builder(align).build(align ? align : 32);
    GgufFile f(bytes, "mem.gguf");
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), align ? align : 32);
    EXPECT_EQ(f.get_int("v.u8"), 200);
    EXPECT_EQ(f.get_int("v.i8"), -7);
    EXPECT_EQ(f.get_int("v.u16"), 60000);
    EXPECT_EQ(f.get_int("v.i16"), -30000);
    EXPECT_EQ(f.get_int("v.u32"), 4000000000ll);
    EXPECT_EQ(f.get_int("v.i32"), -2000000000);
    EXPECT_EQ(f.get_float("v.f32"), 1.5);
    EXPECT_EQ(f.get_bool("v.bool"), true);
    EXPECT_EQ(f.get_string("general.architecture"), "llama");
    EXPECT_EQ(f.get_int("v.u64"), 1ll << 40);
    EXPECT_EQ(f.get_int("v.i64"), -(1ll << 40));
    EXPECT_EQ(f.get_float("v.f64"), -2.25);
    EXPECT_EQ(f.get_int_array("tokenizer.ggml.token_type"), (std::vector<int64_t>{1, 3, 6, -1}));
    EXPECT_EQ(f.get_int_array("v.u8s"), (std::vector<int64_t>{1, 2, 255}));
    EXPECT_EQ(f.get_float_array("tokenizer.ggml.scores"), (std::vector<double>{0.5, -1.25}));
    EXPECT_EQ(f.get_float_array("v.f64s"), (std::vector<double>{1e100}));
    EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens"),
              (std::vector<std::string>{"<s>", "", "\xe2\x96\x81hi"}));
    EXPECT_FALSE(f.get_string("missing").has_value());
    EXPECT_CONTAINS(error_of([&] { f.get_string("v.u8"); }), "'v.u8'");
    EXPECT_CONTAINS(error_of([&] { f.get_string_array("v.u8s"); }), "'v.u8s'");
    EXPECT_CONTAINS(error_of([&] { f.get_int("general.architecture"); }), "mem.gguf");

    ASSERT_EQ(f.tensors().size(), 2u);
    const GgufTensorInfo* a = f.find_tensor("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->dims, (std::vector<int64_t>{5, 3}));
    EXPECT_EQ(f.tensor_f32(*a), random_floats(15, 1));
    const GgufTensorInfo* b = f.find_tensor("b");
    EXPECT_EQ(b->nbytes, 34u);
    auto q = f.tensor_f32(*b);
    // d = f16 0x1111, every q = 0x11 = 17.
    const double d16 = std::ldexp(1024 + 0x111, 4 - 25);
    for (float x : q) EXPECT_FLOAT_EQ(x, float(d16 * 17));
  }
}

TEST(Gguf, Version2IsAccepted) {
  auto bytes = sample_builder().build(32, 2);
  EXPECT_EQ(GgufFile(bytes, "v2.gguf").version(), 2u);
}

std::vector<uint8_t> patched(std::vector<uint8_t> bytes, size_t at, uint64_t value, int width) {
  for (int i = 0; i < width; ++i) bytes[at + size_t(i)] = uint8_t(value >> (8 * i));
  return bytes;
}

TEST(Gguf, MalformedFilesError) {
  const auto good = sample_builder().build();
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    const char* expect;
  };
  std::vector<Case> cases;
  cases.push_back({"empty", {}, "magic"});
  cases.push_back({"bad magic", patched(good, 0, 'G' | ('G' << 8) | ('M' << 16) | ('L' << 24), 4), "magic"});
  cases.push_back({"version 1", patched(good, 4, 1, 4), "version 1"});
  cases.push_back({"version 4", patched(good, 4, 4, 4), "version 4"});
  cases.push_back({"tensor count lies", patched(good, 8, 1ull << 60, 8), "tensor count"});
  cases.push_back({"kv count lies", patched(good, 16, 1ull << 40, 8), "metadata count"});
  cases.push_back({"key length lies", patched(good, 24, 1ull << 62, 8), "metadata key"});
  cases.push_back({"truncated data", std::vector<uint8_t>(good.begin(), good.end() - 40), "'b'"});
  {
    GgufBuilder b;
    b.kv<uint32_t>("general.alignment", B::U32, 24);
    cases.push_back({"alignment not a power of two", b.build(8), "general.alignment"});
  }
  {
    GgufBuilder b;
    b.kv<uint64_t>("general.alignment", B::U64, 32);
    cases.push_back({"alignment wrong type", b.build(), "general.alignment"});
  }
  {
    GgufBuilder b;
    std::vector<uint8_t> p;
    B::put<uint32_t>(p, B::I32);
    B::put<uint64_t>(p, 1ull << 61);  // array count that cannot fit
    b.kv_raw("arr", B::ARRAY, p);
    cases.push_back({"array count lies", b.build(), "array length"});
  }
  {
    GgufBuilder b;
    std::vector<uint8_t> p;
    B::put<uint32_t>(p, B::ARRAY);
    B::put<uint64_t>(p, 0);
    b.kv_raw("nested", B::ARRAY, p);
    cases.push_back({"array of arrays", b.build(), "'nested'"});
  }
  {
    GgufBuilder b;
    b.kv<uint32_t>("weird", 13, 0);
    cases.push_back({"unknown value type", b.build(), "'weird'"});
  }
  {
    GgufBuilder b;
    b.kv<uint32_t>("k", B::U32, 1);
    b.kv<uint32_t>("k", B::U32, 2);
    cases.push_back({"duplicate key", b.build(), "'k'"});
  }
  {
    GgufBuilder b;
    b.tensor("t", {4}, 0, std::vector<uint8_t>(16));
    auto bytes = b.build();
    // The tensor's offset field sits right before the alignment padding: 8 bytes after its type.
    const size_t offset_at = 24 + 8 + 1 + 4 + 8 + 4;
    cases.push_back({"offset past end", patched(bytes, offset_at, 1024, 8), "'t'"});
    cases.push_back({"misaligned offset", patched(bytes, offset_at, 4, 8), "'t'"});
    cases.push_back({"unknown ggml type", patched(bytes, offset_at - 4, 99, 4), "'t'"});
    cases.push_back({"too many dims", patched(bytes, 24 + 8 + 1, 5, 4), "'t'"});
  }
  {
    GgufBuilder b;
    b.tensor("q", {48}, 8, std::vector<uint8_t>(68));  // 48 is not a multiple of Q8_0's 32
    cases.push_back({"row not whole blocks", b.build(), "'q'"});
  }
  {
    GgufBuilder b;
    b.tensor("t", {1ull << 41, 1ull << 41}, 0, {});
    cases.push_back({"huge dims", b.build(), "'t'"});
  }
  {
    GgufBuilder b;
    b.tensor("x", {16}, 0, std::vector<uint8_t>(64));
    b.tensor("y", {16}, 0, std::vector<uint8_t>(64));
    auto bytes = b.build();
    // y's offset (64) -> 32: overlaps x. y's info is the second; find its offset field by search.
    const size_t y_info = 24 + (8 + 1 + 4 + 8 + 4 + 8);
    const size_t y_offset_at = y_info + 8 + 1 + 4 + 8 + 4;
    cases.push_back({"overlapping tensors", patched(bytes, y_offset_at, 32, 8), "overlaps"});
  }
  for (const auto& c : cases) {
    auto msg = error_of([&] { GgufFile f(c.bytes, "bad.gguf"); });
    EXPECT_CONTAINS(msg, "bad.gguf") << c.what;
    EXPECT_CONTAINS(msg, c.expect) << c.what;
  }
}

TEST(Gguf, EveryTruncationErrorsCleanly) {
  const auto good = sample_builder().build();
  // Everything before the data section is needed; cutting anywhere there must be an Error.
  for (size_t n = 0; n < good.size(); ++n) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + long(n));
    bool threw = false;
    try {
      GgufFile f(cut, "cut.gguf");
      for (const auto& t : f.tensors()) (void)f.tensor_f32(t);
    } catch (const Error&) {
      threw = true;
    }
    // Only a cut inside the padding after the last tensor (34 bytes of Q8_0, then 30 of padding)
    // can still be valid.
    if (!threw) {
      EXPECT_GE(n, good.size() - 30) << n;
    }
  }
}

TEST(Gguf, RandomCorruptionNeverCrashes) {
  const auto good = sample_builder().build();
  std::mt19937 rng(5);
  int parsed = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto bytes = good;
    const int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) bytes[rng() % bytes.size()] = uint8_t(rng());
    try {
      GgufFile f(bytes, "fuzz.gguf");
      for (const auto& t : f.tensors()) {
        if (ggml_type_dequantizable(t.type)) (void)f.tensor_f32(t);
      }
      ++parsed;
    } catch (const Error&) {
    }
  }
  EXPECT_GT(parsed, 0);
}

TEST(Gguf, OnDiskFileIsMapped) {
  ScratchDir dir;
  write_bytes(dir / "m.gguf", sample_builder().build());
  GgufFile f(dir / "m.gguf");
  EXPECT_EQ(f.source_name(), (dir / "m.gguf").string());
  EXPECT_EQ(f.tensor_f32(*f.find_tensor("a")), random_floats(15, 1));
  EXPECT_CONTAINS(error_of([&] { GgufFile g(dir / "none.gguf"); }), "none.gguf");
}

// Reference values from the PyPI gguf package (tests/fixtures/gguf/make_dequant_reference.py).
TEST(GgufDequant, MatchesGgufPythonPackage) {
  GgufFile f(std::string(NANOVLLM_SOURCE_DIR) + "/tests/fixtures/gguf/dequant_reference.gguf");
  int checked = 0;
  for (const char* type : {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"}) {
    const GgufTensorInfo* raw = f.find_tensor(std::string(type) + ".raw");
    const GgufTensorInfo* expected = f.find_tensor(std::string(type) + ".expected");
    ASSERT_TRUE(raw && expected) << type;
    EXPECT_STREQ(ggml_type_info(raw->type).name, type);
    auto got = f.tensor_f32(*raw);
    auto want = f.tensor_f32(*expected);
    ASSERT_EQ(got.size(), want.size()) << type;
    float scale = 0;
    for (float w : want) scale = std::max(scale, std::abs(w));
    ASSERT_GT(scale, 0.f) << type;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], 1e-6f * scale) << type << " element " << i;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 11);
}

TEST(GgufDequant, UnsupportedTypeNamesTensorAndType) {
  std::vector<uint8_t> q2k(84);
  auto msg = error_of([&] { dequantize_to_f32(10, q2k, 256, "x.gguf: tensor 'blk.0.ffn_up.weight'"); });
  EXPECT_CONTAINS(msg, "blk.0.ffn_up.weight");
  EXPECT_CONTAINS(msg, "Q2_K");
  msg = error_of([&] { dequantize_to_f32(8, q2k, 256, "t"); });  // wrong byte count for Q8_0
  EXPECT_CONTAINS(msg, "Q8_0");
}

}  // namespace
}  // namespace nanovllm
