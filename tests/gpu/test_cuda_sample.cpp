// GPU sampling against the CPU sampler: the same token for the same logits and (seed, step),
// for greedy (a near-zero temperature included), temperature, top-k, top-p and their mix, at a
// small and at Qwen's vocabulary size,
// with tied logits (greedy and top-k must break ties by the lower index).
#include "common/backend_op_cases.h"
#include "gpu_test_util.h"

namespace nanovllm {
namespace {

using namespace gpu_test;

std::vector<SamplingRow> sampling_rows(int64_t S, uint64_t seed0) {
  const SamplingRow kinds[] = {
      {0.f, -1, 1.f, 0, 0},     // greedy
      {0.7f, -1, 1.f, 0, 0},    // temperature
      {1.0f, 50, 1.f, 0, 0},    // top-k
      {0.8f, -1, 0.9f, 0, 0},   // top-p
      {1.0f, 1, 1.f, 0, 0},     // top-k 1 == greedy
      {1.3f, 20, 0.5f, 0, 0},   // top-k and top-p
      {0.5f, -1, 0.05f, 0, 0},  // top-p keeping very few
      {1e-38f, -1, 1.f, 0, 0},  // below kGreedyBelowTemperature: greedy (1 / T is inf)
  };
  std::vector<SamplingRow> rows;
  for (int64_t r = 0; r < S; ++r) {
    SamplingRow row = kinds[size_t(r) % std::size(kinds)];
    row.seed = seed0 + uint64_t(r) * 7919;
    row.step = uint64_t(r) * 3;
    rows.push_back(row);
  }
  return rows;
}

void expect_same_tokens(Gpu& gpu, Backend& cpu, std::vector<float>& logits, int64_t S, int64_t V,
                        uint64_t seed) {
  std::vector<SamplingRow> rows = sampling_rows(S, seed);
  auto d = gpu.floats(DType::F32, logits, {S, V});
  std::vector<int32_t> got(size_t(S), -1), want(size_t(S), -2);
  gpu.backend().sample(d.tensor, rows, got.data());
  cpu.sample(host_tensor(logits, {S, V}), rows, want.data());
  for (int64_t r = 0; r < S; ++r)
    EXPECT_EQ(got[size_t(r)], want[size_t(r)])
        << "row " << r << " temperature " << rows[size_t(r)].temperature << " top_k "
        << rows[size_t(r)].top_k << " top_p " << rows[size_t(r)].top_p;
}

TEST(CudaSample, MatchesCpuSampler) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  // Spread 40: most entries of a race row are below the best key by more than any Gumbel noise
  // (a trained model's logits), so the race skips their noise; spread 1 (an untrained model's)
  // skips most entries by their noise's bucket ceiling.
  for (float spread : {1.f, 8.f, 40.f})
    for (int64_t V : {1000, 151936}) {
      for (uint64_t seed : {1, 2, 3}) {
        SCOPED_TRACE("V=" + std::to_string(V) + " seed=" + std::to_string(seed) +
                     " spread=" + std::to_string(spread));
        const int64_t S = 21;
        Rng rng(seed * 1000 + uint64_t(V));
        std::vector<float> logits = random_floats(size_t(S * V), rng, -spread, spread);
        expect_same_tokens(gpu, *cpu, logits, S, V, seed);
      }
    }
}

TEST(CudaSample, TiesBreakByLowerIndex) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  const int64_t S = 14, V = 5000;
  Rng rng(5);
  std::vector<float> logits = random_floats(size_t(S * V), rng, -4.f, 4.f);
  for (float& x : logits) x = std::round(x * 2.f) / 2.f;  // many exact ties
  expect_same_tokens(gpu, *cpu, logits, S, V, 11);
}

}  // namespace
}  // namespace nanovllm
