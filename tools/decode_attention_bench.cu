// Decode attention in isolation on the GPU: loop variants (elements per thread and load, tokens
// per iteration, CTAs per SM forced through the register budget; for INT8 the tensor-core kernel,
// production under BF16 activations, against the CUDA-core loop) and split policies (min_waves
// 1, 2, 4) for BF16 and INT8 KV at Qwen3-0.6B's attention shape (8 KV heads x 128, G = 2), on a
// W1-like batch (256 x 1024 tokens, cache blocks of 256 and of 16 tokens, and contexts spread
// over 100-2048 as W1's are mid-run), a half batch and W3's (32 x 4096, split). Prints time per
// call, the KV bytes' bandwidth and each variant's largest difference from the production
// loop's output.
// Usage: decode_attention_bench [reps [bf16|int8 [case]]]   (defaults: 20 repetitions, both
// dtypes, every case with every variant)
//        decode_attention_bench reps splits   (forced split counts on few long sequences)
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/decode_attention.cuh"
#include "core/random.h"

namespace nanovllm::cuda::decode_detail {
namespace {

constexpr int kHeadDim = 128, kKvHeads = 8, kGroup = 2;

// Fills n bytes with seeded random values valid for the format (no NaN/Inf bit patterns).
__global__ void fill_random(unsigned char* p, int64_t n, uint64_t seed, bool bf16) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n / 2;
       i += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t r = splitmix64(seed + uint64_t(i));
    if (bf16) {
      const float x = float(int(r & 0xffff) - 32768) / 32768.f;  // [-1, 1)
      reinterpret_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16(x);
    } else {
      p[2 * i] = uint8_t(int8_t(int(r % 255) - 127));
      p[2 * i + 1] = uint8_t(int8_t(int((r >> 8) % 255) - 127));
    }
  }
}
__global__ void fill_scales(float* p, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = 0.002f + float(splitmix64(seed + uint64_t(i)) >> 40) * (0.01f / 16777216.f);
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

// contexts drawn uniformly from [min_context, context] (min_context 0: all equal to context).
struct Case {
  const char* name;
  int batch, context, min_context, block_size;
};

template <KvDType KV>
struct Problem {
  PagedKvLayer kv;
  AttentionMeta meta;
  int32_t *d_lens = nullptr, *d_tables = nullptr;
  __nv_bfloat16 *q = nullptr, *out = nullptr, *ref = nullptr;
  float* workspace = nullptr;
  int32_t* counters = nullptr;  // [batch, KV heads], zero at rest
  int num_splits = 1;
  double kv_bytes = 0;

  // forced_splits > 0: that many splits instead of the engine's policy (the split sweep).
  Problem(const Case& c, int resident, int min_waves, int forced_splits = 0) {
    const int blocks_per_seq = (c.context + c.block_size - 1) / c.block_size;
    const int num_blocks = c.batch * blocks_per_seq;
    kv.dtype = KV;
    kv.block_size = c.block_size;
    kv.num_blocks = num_blocks;
    kv.num_kv_heads = kKvHeads;
    kv.head_dim = kHeadDim;
    const int64_t value_bytes = int64_t(num_blocks) * c.block_size * kKvHeads * kv.head_bytes();
    const int64_t scales = int64_t(num_blocks) * c.block_size * kKvHeads;
    check(cudaMalloc(&kv.k, value_bytes), "k");
    check(cudaMalloc(&kv.v, value_bytes), "v");
    const bool bf16 = KV == KvDType::BF16;
    fill_random<<<1024, 256>>>(static_cast<unsigned char*>(kv.k), value_bytes, 1, bf16);
    fill_random<<<1024, 256>>>(static_cast<unsigned char*>(kv.v), value_bytes, 2, bf16);
    if (kv_is_quantized(KV)) {
      check(cudaMalloc(&kv.k_scale, scales * 4), "k_scale");
      check(cudaMalloc(&kv.v_scale, scales * 4), "v_scale");
      fill_scales<<<1024, 256>>>(kv.k_scale, scales, 3);
      fill_scales<<<1024, 256>>>(kv.v_scale, scales, 4);
    }
    // Blocks handed out in a shuffled order, as a long-running cache would.
    std::vector<int32_t> ids(static_cast<size_t>(num_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(7));
    std::vector<int32_t> lens(size_t(c.batch), c.context);
    if (c.min_context > 0) {
      std::mt19937 gen(11);
      std::uniform_int_distribution<int32_t> len(c.min_context, c.context);
      for (int32_t& l : lens) l = len(gen);
    }
    check(cudaMalloc(&d_lens, lens.size() * 4), "lens");
    check(cudaMalloc(&d_tables, ids.size() * 4), "tables");
    check(cudaMemcpy(d_lens, lens.data(), lens.size() * 4, cudaMemcpyHostToDevice), "lens copy");
    check(cudaMemcpy(d_tables, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice), "tables copy");
    meta.context_lens = d_lens;
    meta.block_tables = d_tables;
    meta.num_seqs = c.batch;
    meta.max_blocks_per_seq = blocks_per_seq;
    meta.max_query_len = 1;
    meta.max_context_len = c.context;
    const int64_t q_elems = int64_t(c.batch) * kKvHeads * kGroup * kHeadDim;
    check(cudaMalloc(&q, q_elems * 2), "q");
    check(cudaMalloc(&out, q_elems * 2), "out");
    check(cudaMalloc(&ref, q_elems * 2), "ref");
    fill_random<<<1024, 256>>>(reinterpret_cast<unsigned char*>(q), q_elems * 2, 5, true);
    num_splits = forced_splits > 0
                     ? forced_splits
                     : decode_attention_splits(c.batch, kKvHeads, c.context, resident, min_waves);
    const int64_t ws = decode_attention_workspace_floats(c.batch, kKvHeads * kGroup, kHeadDim, num_splits);
    if (ws) check(cudaMalloc(&workspace, ws * 4), "workspace");
    check(cudaMalloc(&counters, int64_t(c.batch) * kKvHeads * 4), "split counters");
    check(cudaMemset(counters, 0, int64_t(c.batch) * kKvHeads * 4), "split counters");
    const double tokens = std::accumulate(lens.begin(), lens.end(), 0.0);
    kv_bytes = tokens * kKvHeads * (2.0 * kv.head_bytes() + (kv_is_quantized(KV) ? 8 : 0));
    check(cudaDeviceSynchronize(), "setup");
  }
  ~Problem() {
    for (void* p : {kv.k, kv.v, static_cast<void*>(kv.k_scale), static_cast<void*>(kv.v_scale),
                    static_cast<void*>(d_lens), static_cast<void*>(d_tables), static_cast<void*>(q),
                    static_cast<void*>(out), static_cast<void*>(ref), static_cast<void*>(workspace),
                    static_cast<void*>(counters)})
      cudaFree(p);
  }

  template <class Loop>
  void launch(__nv_bfloat16* dst) {
    const int Hq = kKvHeads * kGroup;
    DecodeArgs a{meta.context_lens, meta.block_tables, meta.max_blocks_per_seq,
                 FastDivider(uint32_t(kv.block_size)), Hq, kGroup, num_splits, 1, 1.f / std::sqrt(float(kHeadDim)), workspace,
                 workspace ? workspace + int64_t(meta.num_seqs) * Hq * num_splits * kHeadDim : nullptr,
                 counters};
    Tensor tq(q, DType::BF16, Device::CUDA, {meta.num_seqs, Hq * kHeadDim});
    Tensor tout(dst, DType::BF16, Device::CUDA, {meta.num_seqs, Hq * kHeadDim});
    launch_typed<__nv_bfloat16, KV, kHeadDim, kGroup, Loop>(tq, kv, meta, a, tout, Stream{});
  }
};

float max_abs_diff(const __nv_bfloat16* a, const __nv_bfloat16* b, int64_t n) {
  std::vector<__nv_bfloat16> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  check(cudaMemcpy(x.data(), a, n * 2, cudaMemcpyDeviceToHost), "diff copy");
  check(cudaMemcpy(y.data(), b, n * 2, cudaMemcpyDeviceToHost), "diff copy");
  float worst = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    const float d = std::fabs(__bfloat162float(x[size_t(i)]) - __bfloat162float(y[size_t(i)]));
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  return worst;
}

template <KvDType KV, class Loop>
void run_variant(Problem<KV>& p, const char* kv_name, const Case& c, int reps) {
  const int ctas = ctas_per_sm<__nv_bfloat16, KV, kHeadDim, kGroup, Loop>();
  p.template launch<Loop>(p.out);  // warm-up (and the output compared below)
  check(cudaDeviceSynchronize(), "warm-up");
  cudaEvent_t t0, t1;
  cudaEventCreate(&t0);
  cudaEventCreate(&t1);
  cudaEventRecord(t0);
  for (int r = 0; r < reps; ++r) p.template launch<Loop>(p.out);
  cudaEventRecord(t1);
  check(cudaEventSynchronize(t1), "timing");
  float ms = 0.f;
  cudaEventElapsedTime(&ms, t0, t1);
  const double us = 1e3 * ms / reps;
  const int64_t n = int64_t(c.batch) * kKvHeads * kGroup * kHeadDim;
  char loop[64];
  if constexpr (is_mma_loop<Loop>)
    std::snprintf(loop, sizeof loop, "tensor cores min_ctas %d", Loop::MIN_CTAS);
  else
    std::snprintf(loop, sizeof loop, "vec %2d unroll %d min_ctas %d", Loop::VEC, Loop::UNROLL,
                  Loop::MIN_CTAS);
  std::printf("%-5s %-19s %-28s ctas/SM %d  splits %2d  %7.1f us  %5.2f TB/s  max|diff| %.3g\n",
              kv_name, c.name, loop, ctas, p.num_splits, us, p.kv_bytes / (us * 1e-6) / 1e12,
              max_abs_diff(p.out, p.ref, n));
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
}

// only_case >= 0: that case alone, production loop at the engine's min_waves (for a profiler).
template <KvDType KV, class... Loops>
void run_dtype(const char* kv_name, int reps, int sms, int only_case) {
  using Production = ProductionLoop<__nv_bfloat16, KV, kGroup, true>;
  const Case cases[] = {{"256x1024", 256, 1024, 0, 256},          {"256x1024/16", 256, 1024, 0, 16},
                        {"256xU[100,2048]/16", 256, 2048, 100, 16}, {"128x1024", 128, 1024, 0, 256},
                        {"32x4096", 32, 4096, 0, 256}};
  const int resident = sms * ctas_per_sm<__nv_bfloat16, KV, kHeadDim, kGroup, Production>();
  for (int ci = 0; ci < int(std::size(cases)); ++ci) {
    const Case& c = cases[ci];
    if (only_case >= 0 && ci != only_case) continue;
    // Splits from the production loop's occupancy, as the engine picks them, for the engine's
    // min_waves and its neighbours.
    for (int waves : {1, 2, 4}) {
      if (only_case >= 0 && waves != default_decode_min_waves(KV)) continue;
      Problem<KV> p(c, resident, waves);
      p.template launch<Production>(p.ref);
      std::printf("waves %d: ", waves);
      run_variant<KV, Production>(p, kv_name, c, reps);
      if (waves != default_decode_min_waves(KV) || only_case >= 0) continue;
      (run_variant<KV, Loops>(p, kv_name, c, reps), ...);
    }
  }
}

// The production loop at forced split counts on equal-context batches of few sequences (where
// the split policy decides the time): which S the policy should pick, per dtype.
template <KvDType KV, class... Loops>
void sweep_splits(const char* kv_name, int reps, int sms) {
  using Production = ProductionLoop<__nv_bfloat16, KV, kGroup, true>;
  const Case cases[] = {{"32x4096", 32, 4096, 0, 16},
                        {"32x4224", 32, 4224, 0, 16},
                        {"64x2048", 64, 2048, 0, 16},
                        {"128x1024", 128, 1024, 0, 16},
                        {"16x8192", 16, 8192, 0, 16}};
  const int resident = sms * ctas_per_sm<__nv_bfloat16, KV, kHeadDim, kGroup, Production>();
  for (const Case& c : cases) {
    for (int waves : {1, 2}) {
      Problem<KV> p(c, resident, waves);
      std::printf("policy waves %d: ", waves);
      p.template launch<Production>(p.ref);
      run_variant<KV, Production>(p, kv_name, c, reps);
    }
    for (int s : {1, 2, 3, 4, 5, 6, 8, 12, 16}) {
      Problem<KV> p(c, resident, 1, s);
      p.template launch<Production>(p.ref);
      std::printf("forced:         ");
      run_variant<KV, Production>(p, kv_name, c, reps);
      ((std::printf("forced:         "), run_variant<KV, Loops>(p, kv_name, c, reps)), ...);
    }
  }
}

}  // namespace
}  // namespace nanovllm::cuda::decode_detail

int main(int argc, char** argv) {
  using namespace nanovllm;
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
  const std::string only_dtype = argc > 2 ? argv[2] : "";
  const int only_case = argc > 3 ? std::atoi(argv[3]) : -1;
  int sms = 0;
  cuda::decode_detail::check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), "SM count");
  using cuda::decode_detail::LoopConfig;
  if (only_dtype == "splits") {
    cuda::decode_detail::sweep_splits<KvDType::BF16>("bf16", reps, sms);
    cuda::decode_detail::sweep_splits<KvDType::INT8>("int8", reps, sms);
    return 0;
  }
  if (only_dtype.empty() || only_dtype == "bf16")
    cuda::decode_detail::run_dtype<KvDType::BF16, LoopConfig<8, 4, 0>, LoopConfig<8, 8, 0>,
                                   LoopConfig<4, 4, 0>, LoopConfig<8, 4, 8>>("bf16", reps, sms, only_case);
  if (only_dtype.empty() || only_dtype == "int8")
    cuda::decode_detail::run_dtype<KvDType::INT8, cuda::decode_detail::MmaLoop<3>, LoopConfig<16, 4, 0>,
                                   LoopConfig<16, 2, 0>>(
        "int8", reps, sms, only_case);
  if (only_dtype.empty() || only_dtype == "fp8_e4m3")
    cuda::decode_detail::run_dtype<KvDType::FP8_E4M3, LoopConfig<16, 4, 0>>("fp8_e4m3", reps, sms,
                                                                          only_case);
  if (only_dtype.empty() || only_dtype == "int4")
    cuda::decode_detail::run_dtype<KvDType::INT4, LoopConfig<32, 4, 0>>("int4", reps, sms, only_case);
  return 0;
}
