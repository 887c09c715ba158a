// Quantization codecs of the KV cache (core/kv_quant.h): error bounds, saturation, zero heads,
// round-to-nearest-even ties, FP8 code table.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/backend_op_cases.h"
#include "core/kv_quant.h"

namespace nanovllm {
namespace {

using testing::Rng;

constexpr KvDType kQuantized[] = {KvDType::INT8, KvDType::FP8_E4M3, KvDType::INT4};

// Stores x as one head of dtype t and returns the dequantized values and the scale.
std::vector<float> round_trip(const std::vector<float>& x, KvDType t, float* scale_out) {
  std::vector<uint8_t> bytes(size_t(kv_head_bytes(t, int64_t(x.size()))) + 1, 0xAB);
  const float scale = kv_store_head(x.data(), int32_t(x.size()), t, bytes.data());
  EXPECT_EQ(bytes.back(), 0xAB) << "kv_store_head wrote past kv_head_bytes";
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    out[i] = kv_load_raw(bytes.data(), t, int64_t(i)) * (kv_is_quantized(t) ? scale : 1.f);
  *scale_out = scale;
  return out;
}

TEST(KvQuant, ErrorWithinHalfStepPerElement) {
  Rng rng(1);
  for (KvDType t : kQuantized) {
    for (int n : {1, 7, 64, 97, 128}) {
      for (int rep = 0; rep < 50; ++rep) {
        const float magnitude = std::exp(rng.uniform(-8.f, 8.f));
        std::vector<float> x(static_cast<size_t>(n));
        for (float& v : x) v = rng.normal() * magnitude;
        float absmax = 0;
        for (float v : x) absmax = std::max(absmax, std::fabs(v));
        float scale;
        std::vector<float> dq = round_trip(x, t, &scale);
        ASSERT_EQ(scale, absmax / kv_qmax(t)) << kv_dtype_name(t);
        for (size_t i = 0; i < x.size(); ++i) {
          ASSERT_TRUE(std::isfinite(dq[i]));
          double bound;
          if (t == KvDType::FP8_E4M3) {
            // Half a unit in the last place: 2^-4 relative for normals, 2^-10 (in units of the
            // scale) for subnormals.
            const double v = std::fabs(double(x[i]) / scale);
            bound = scale * std::max(v * 0.0625, 0.0009765625);
          } else {
            bound = scale / 2.0;
          }
          bound = bound * (1 + 1e-5) + std::fabs(x[i]) * 1e-6;  // float rounding of x / scale
          ASSERT_LE(std::fabs(double(x[i]) - dq[i]), bound)
              << kv_dtype_name(t) << " n=" << n << " i=" << i << " x=" << x[i];
        }
      }
    }
  }
}

TEST(KvQuant, SaturatesAtTheFormatMaximum) {
  EXPECT_EQ(int8_quantize(1000.f, 1.f), 127);
  EXPECT_EQ(int8_quantize(-1000.f, 1.f), -127);
  EXPECT_EQ(int8_quantize(127.49f, 1.f), 127);
  EXPECT_EQ(int4_quantize(100.f, 1.f), 7);
  EXPECT_EQ(int4_quantize(-100.f, 1.f), -7);
  EXPECT_EQ(fp8_e4m3_encode(448.f), 0x7e);
  EXPECT_EQ(fp8_e4m3_encode(470.f), 0x7e);
  EXPECT_EQ(fp8_e4m3_encode(1e30f), 0x7e);
  EXPECT_EQ(fp8_e4m3_encode(INFINITY), 0x7e);
  EXPECT_EQ(fp8_e4m3_encode(-INFINITY), 0xfe);
  EXPECT_EQ(fp8_e4m3_quantize(-1e9f, 1.f), 0xfe);
  EXPECT_EQ(fp8_e4m3_decode(0x7e), 448.f);
}

// Every E4M3 code against the format's definition: (-1)^s x 2^(e - 7) x (1 + m / 8), or
// 2^-6 x m / 8 at e = 0; S.1111.111 is NaN (E4M3 has no infinities).
TEST(KvQuant, Fp8DecodeMatchesTheFormatForEveryCode) {
  for (int code = 0; code < 256; ++code) {
    const int s = code >> 7, e = (code >> 3) & 15, m = code & 7;
    const float got = fp8_e4m3_decode(uint8_t(code));
    if (e == 15 && m == 7) {
      EXPECT_TRUE(std::isnan(got)) << code;
      continue;
    }
    const double magnitude = e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1.0 + m / 8.0, e - 7);
    EXPECT_EQ(double(got), s ? -magnitude : magnitude) << code;
    EXPECT_EQ(std::signbit(got), s == 1) << code;  // -0 for 0x80
  }
}

TEST(KvQuant, ZeroHeadStoresScaleZeroAndZeros) {
  for (KvDType t : kQuantized) {
    for (int n : {1, 7, 128}) {
      std::vector<float> x(size_t(n), 0.f);
      std::vector<uint8_t> bytes(size_t(kv_head_bytes(t, n)), 0x5a);
      const float scale = kv_store_head(x.data(), n, t, bytes.data());
      EXPECT_EQ(scale, 0.f) << kv_dtype_name(t);
      for (uint8_t b : bytes) EXPECT_EQ(b, 0) << kv_dtype_name(t);
      for (int i = 0; i < n; ++i) {
        const float v = kv_load_raw(bytes.data(), t, i) * scale;
        EXPECT_EQ(v, 0.f);
      }
    }
  }
  EXPECT_EQ(int8_quantize(3.f, 0.f), 0);
  EXPECT_EQ(int4_quantize(-3.f, 0.f), 0);
  EXPECT_EQ(fp8_e4m3_quantize(3.f, 0.f), 0);
}

TEST(KvQuant, TiesRoundToEven) {
  // In units of the scale: 2.5 -> 2, 3.5 -> 4, and likewise for negatives.
  const float ties[] = {0.5f, 1.5f, 2.5f, 3.5f, -0.5f, -1.5f, -2.5f, -3.5f, 6.5f};
  const int want[] = {0, 2, 2, 4, 0, -2, -2, -4, 6};
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(int8_quantize(ties[i], 1.f), want[i]) << ties[i];
    EXPECT_EQ(int4_quantize(ties[i], 1.f), want[i]) << ties[i];
    EXPECT_EQ(int8_quantize(ties[i] * 0.25f, 0.25f), want[i]) << ties[i];
  }
  // Through a whole head: max 127 gives scale exactly 1.
  std::vector<float> x = {127.f, 2.5f, 3.5f, -2.5f, -3.5f, 100.5f};
  std::vector<int8_t> q(x.size());
  ASSERT_EQ(kv_store_head(x.data(), int32_t(x.size()), KvDType::INT8, q.data()), 1.f);
  EXPECT_EQ(q, (std::vector<int8_t>{127, 2, 4, -2, -4, 100}));
  // FP8: 1.0625 lies halfway between 1 (mantissa 0) and 1.125 (mantissa 1) -> 1;
  // 1.1875 halfway between 1.125 and 1.25 -> 1.25; subnormal 2^-10 -> 0, 3 * 2^-10 -> 2^-8.
  EXPECT_EQ(fp8_e4m3_decode(fp8_e4m3_encode(1.0625f)), 1.f);
  EXPECT_EQ(fp8_e4m3_decode(fp8_e4m3_encode(1.1875f)), 1.25f);
  EXPECT_EQ(fp8_e4m3_decode(fp8_e4m3_encode(-1.1875f)), -1.25f);
  EXPECT_EQ(fp8_e4m3_decode(fp8_e4m3_encode(std::ldexp(1.f, -10))), 0.f);
  EXPECT_EQ(fp8_e4m3_decode(fp8_e4m3_encode(std::ldexp(3.f, -10))), std::ldexp(1.f, -8));
  EXPECT_EQ(fp8_e4m3_decode(fp8_e4m3_encode(432.f)), 448.f);  // between 416 and 448 -> even
}

TEST(KvQuant, Fp8EveryCodeRoundTrips) {
  int nan_codes = 0;
  for (int c = 0; c < 256; ++c) {
    const float v = fp8_e4m3_decode(uint8_t(c));
    if (std::isnan(v)) {
      ++nan_codes;
      EXPECT_TRUE(c == 0x7f || c == 0xff) << c;
    } else {
      EXPECT_FALSE(std::isinf(v));
    }
    EXPECT_EQ(fp8_e4m3_encode(v), c) << "code " << c << " value " << v;
  }
  EXPECT_EQ(nan_codes, 2);
  // Known values of OCP e4m3fn.
  EXPECT_EQ(fp8_e4m3_decode(0x38), 1.f);
  EXPECT_EQ(fp8_e4m3_decode(0x01), std::ldexp(1.f, -9));
  EXPECT_EQ(fp8_e4m3_decode(0x08), std::ldexp(1.f, -6));
  EXPECT_EQ(fp8_e4m3_decode(0xc0), -2.f);
  EXPECT_EQ(fp8_e4m3_encode(-0.f), 0x80);
}

TEST(KvQuant, Fp8EncodeIsTheNearestCode) {
  std::vector<float> table;
  for (int c = 0; c < 256; ++c)
    if (!std::isnan(fp8_e4m3_decode(uint8_t(c)))) table.push_back(fp8_e4m3_decode(uint8_t(c)));
  Rng rng(7);
  for (int i = 0; i < 20000; ++i) {
    const float x = rng.normal() * std::exp(rng.uniform(-9.f, 6.f));
    double best = INFINITY;
    for (float v : table) best = std::min(best, std::fabs(double(x) - v));
    ASSERT_EQ(std::fabs(double(x) - fp8_e4m3_decode(fp8_e4m3_encode(x))), best) << x;
  }
}

TEST(KvQuant, Int4PacksTwoSignedNibblesPerByte) {
  for (int lo = -7; lo <= 7; ++lo)
    for (int hi = -7; hi <= 7; ++hi) {
      const uint8_t b = int4_pack(lo, hi);
      EXPECT_EQ(int4_low(b), lo);
      EXPECT_EQ(int4_high(b), hi);
    }
  // Element 2i in the low nibble; an odd length leaves the last high nibble zero.
  std::vector<float> x = {7.f, -1.f, 2.f, -7.f, 3.f, 0.f, -5.f};
  std::vector<uint8_t> packed(4, 0xff);
  ASSERT_EQ(kv_store_head(x.data(), 7, KvDType::INT4, packed.data()), 1.f);
  EXPECT_EQ(packed[0], 0xf7);
  EXPECT_EQ(packed[1], 0x92);
  EXPECT_EQ(packed[2], 0x03);
  EXPECT_EQ(packed[3], 0x0b);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(int4_at(packed.data(), i), int(x[size_t(i)]));
}

TEST(KvQuant, FloatFormatsStoreValues) {
  Rng rng(3);
  std::vector<float> x = testing::random_floats(97, rng, -3.f, 3.f);
  for (KvDType t : {KvDType::F32, KvDType::F16, KvDType::BF16}) {
    float scale;
    std::vector<float> y = round_trip(x, t, &scale);
    EXPECT_EQ(scale, 1.f);
    for (size_t i = 0; i < x.size(); ++i) {
      const float want = t == KvDType::F32   ? x[i]
                         : t == KvDType::F16 ? f16_to_float(float_to_f16(x[i]))
                                             : bf16_to_float(float_to_bf16(x[i]));
      EXPECT_EQ(y[i], want);
    }
  }
}

}  // namespace
}  // namespace nanovllm
