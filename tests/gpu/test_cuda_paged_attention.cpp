// paged_attention on the GPU against the CPU backend (and, in F32, against the double-precision
// reference over the stored cache): decode batches (split-K kernel), prefill with cached
// prefixes, mixed batches, pure prefill; every KV dtype, GQA ratios 1/2/4/8, head_dim 64 and 128
// (and 8/32/256 through the tiled kernel), block sizes 16 and 256, odd lengths.
#include "attention_case_runner.h"
#include "scoped_env.h"

namespace nanovllm {
namespace {

using namespace gpu_test;

constexpr KvDType kKvDtypes[] = {KvDType::F32, KvDType::F16, KvDType::BF16,
                                 KvDType::INT8, KvDType::FP8_E4M3, KvDType::INT4};

std::string describe(const testing::PagedAttentionSpec& s, DType dt) {
  std::string q, c;
  for (size_t i = 0; i < s.q_lens.size(); ++i) {
    q += std::to_string(s.q_lens[i]) + ",";
    c += std::to_string(s.context_lens[i]) + ",";
  }
  return std::string(dname(dt)) + " kv=" + std::string(kv_dtype_name(s.dtype)) + " Hq=" +
         std::to_string(s.num_heads) + " Hkv=" + std::to_string(s.num_kv_heads) + " D=" +
         std::to_string(s.head_dim) + " bs=" + std::to_string(s.block_size) + " q=[" + q +
         "] ctx=[" + c + "]";
}

void check_case(Gpu& gpu, Backend& cpu, const testing::PagedAttentionSpec& spec, DType dt,
                uint64_t seed) {
  SCOPED_TRACE(describe(spec, dt));
  testing::PagedAttentionCase c = testing::make_paged_attention_case(spec, seed);
  const float scale = 1.f / std::sqrt(float(spec.head_dim));
  AttentionResult r = run_attention_case(gpu, cpu, c, dt, scale);
  ASSERT_TRUE(all_finite(r.gpu)) << "NaN/Inf (or an unwritten output) in the GPU result";
  EXPECT_LT(normalized_error(r.gpu, r.cpu), tolerance(dt, 2e-5));
  if (dt == DType::F32) {
    std::vector<double> ref = testing::reference_attention(c, testing::KvValues::Stored, scale);
    EXPECT_LT(normalized_error(r.gpu, ref), 2e-5) << "vs double reference";
  }
}

// Decode batches of odd and long contexts for each of `dtypes` x block size x head_dim x G x
// activation dtype.
template <size_t N>
void check_decode_sweep(Gpu& gpu, Backend& cpu, const KvDType (&dtypes)[N]) {
  uint64_t seed = 1;
  for (KvDType kvt : dtypes)
    for (int32_t bs : {16, 256})
      for (int32_t D : {64, 128})
        for (int32_t G : {1, 2, 4, 8})
          for (DType dt : {DType::F32, DType::BF16}) {
            testing::PagedAttentionSpec s;
            s.q_lens = {1, 1, 1, 1, 1, 1, 1};
            s.context_lens = {1, 7, 97, bs - 1, bs + 1, 600, 1100};
            s.num_kv_heads = 2;
            s.num_heads = 2 * G;
            s.head_dim = D;
            s.block_size = bs;
            s.dtype = kvt;
            check_case(gpu, cpu, s, dt, seed++);
          }
}

TEST(CudaPagedAttention, DecodeEveryKvDtypeAndGqaRatio) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  check_decode_sweep(gpu, *cpu, kKvDtypes);
}

// A decode batch (one query token per sequence) in cache blocks of 16 tokens.
testing::PagedAttentionSpec decode_spec(std::vector<int32_t> context_lens, int32_t num_kv_heads,
                                        int32_t num_heads, int32_t head_dim, KvDType dtype) {
  testing::PagedAttentionSpec s;
  s.q_lens.assign(context_lens.size(), 1);
  s.context_lens = std::move(context_lens);
  s.num_kv_heads = num_kv_heads;
  s.num_heads = num_heads;
  s.head_dim = head_dim;
  s.block_size = 16;
  s.dtype = dtype;
  return s;
}

// A BF16 decode case on the GPU against the CPU op; bound > 0: meta.max_context_len raised to
// it (a graph captured for longer contexts); even: meta.even_contexts set.
void expect_bf16_decode_matches_cpu(Gpu& gpu, Backend& cpu, const testing::PagedAttentionSpec& s,
                                    uint64_t seed, int32_t bound, bool even) {
  SCOPED_TRACE(describe(s, DType::BF16) + " max_context_len=" + std::to_string(bound) +
               (even ? " even" : ""));
  testing::PagedAttentionCase c = testing::make_paged_attention_case(s, seed);
  c.q = rounded(DType::BF16, c.q);
  const int64_t T = c.num_tokens, HD = int64_t(s.num_heads) * s.head_dim;
  DeviceAttentionCase d = upload_case(gpu, c, DType::BF16);
  if (bound) d.meta.max_context_len = bound;
  d.meta.even_contexts = even;
  const float scale = 1.f / std::sqrt(float(s.head_dim));
  auto out = gpu.poisoned(DType::BF16, {T, HD});
  gpu.backend().paged_attention(d.q.tensor, d.layer, d.meta, scale, out.tensor);
  std::vector<float> got = gpu.read(out), want(size_t(T * HD), 0.f);
  cpu.paged_attention(testing::host_tensor(c.q, {T, HD}), c.host_layer(), c.host_meta(), scale,
                      testing::host_tensor(want, {T, HD}));
  ASSERT_TRUE(all_finite(got)) << "NaN/Inf (or an unwritten output) in the GPU result";
  EXPECT_LT(normalized_error(got, want), tolerance(DType::BF16, 2e-5));
}

// The 16-byte-per-thread decode kernel: odd KV head counts and odd G (INT4 included), context 1,
// lengths that are multiples of nothing, many sequences (one split) and a single long one (many
// splits), and a max_context_len far above the actual contexts (a graph captured for 4096).
template <size_t N>
void check_odd_decode_shapes(Gpu& gpu, Backend& cpu, const KvDType (&dtypes)[N]) {
  uint64_t seed = 4000;
  for (KvDType kvt : dtypes)
    for (int32_t D : {64, 128})
      for (int32_t G : {1, 3, 5, 8})
        for (int32_t bound : {0, 4096}) {
          const testing::PagedAttentionSpec s =
              decode_spec({1, 2, 33, 255, 257, 1023, 1, 619, 1601}, 3, 3 * G, D, kvt);
          expect_bf16_decode_matches_cpu(gpu, cpu, s, seed++, bound, false);
        }
}

TEST(CudaPagedAttention, DecodeOddShapesAndSplitBounds) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  check_odd_decode_shapes(gpu, *cpu, kKvDtypes);
}

// FP8 and INT4 under BF16 activations on the CUDA-core loop (NANOVLLM_FP8_INT4_MMA=0; the
// default is the tensor-core kernel, which the tests above check).
TEST(CudaPagedAttention, DecodeFp8AndInt4OnCudaCores) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  ScopedEnv mma("NANOVLLM_FP8_INT4_MMA", "0");
  Gpu gpu;
  auto cpu = make_cpu_backend();
  constexpr KvDType kDtypes[] = {KvDType::FP8_E4M3, KvDType::INT4};
  check_decode_sweep(gpu, *cpu, kDtypes);
  check_odd_decode_shapes(gpu, *cpu, kDtypes);
}

// Batches of equal contexts flagged even_contexts (decode_attention_even_splits picks their
// split-K: one to many splits), with and without a graph's max_context_len bound, against the CPU.
TEST(CudaPagedAttention, DecodeEvenContextsMatchCpu) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  uint64_t seed = 8000;
  const std::vector<std::pair<int32_t, int32_t>> batches = {{1, 3001}, {5, 1000}, {40, 300}, {70, 97}};
  for (KvDType kvt : {KvDType::BF16, KvDType::INT8, KvDType::FP8_E4M3, KvDType::INT4})
    for (const auto& [batch, context] : batches)
      for (int32_t bound : {0, 4096}) {
        std::vector<int32_t> contexts(size_t(batch), context);
        contexts.back() = context * 9 / 10;  // even: within 80% of the longest
        const testing::PagedAttentionSpec s = decode_spec(std::move(contexts), 8, 16, 128, kvt);
        expect_bf16_decode_matches_cpu(gpu, *cpu, s, seed++, bound, true);
      }
}

// One sequence of a long context (the W4 shape: many splits of one KV head group) and a batch
// of 300 short ones (more CTAs than the GPU holds: one split), F32 against the double reference.
TEST(CudaPagedAttention, DecodeSplitExtremesMatchDoubleReference) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  uint64_t seed = 5000;
  for (KvDType kvt : {KvDType::BF16, KvDType::INT8, KvDType::INT4}) {
    for (int many : {0, 1}) {
      testing::PagedAttentionSpec s;
      if (many) {
        s.q_lens.assign(300, 1);
        s.context_lens.clear();
        for (int i = 0; i < 300; ++i) s.context_lens.push_back(1 + (i * 37) % 301);
      } else {
        s.q_lens = {1};
        s.context_lens = {3001};
      }
      s.num_kv_heads = 2;
      s.num_heads = 4;
      s.head_dim = 128;
      s.block_size = 256;
      s.dtype = kvt;
      check_case(gpu, *cpu, s, DType::F32, seed++);
    }
  }
}

// Cache blocks of sizes that are not multiples of 16: the tensor-core INT8 kernel finds each
// token's slot on its own there (with 16 | block_size a warp's 16 tokens share one block).
TEST(CudaPagedAttention, DecodeBlockSizesNotMultipleOf16) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  uint64_t seed = 7000;
  for (KvDType kvt : {KvDType::INT8, KvDType::BF16})
    for (int32_t bs : {1, 7, 24})
      for (int32_t D : {64, 128})
        for (DType dt : {DType::BF16, DType::F16}) {
          testing::PagedAttentionSpec s;
          s.q_lens = {1, 1, 1, 1, 1};
          s.context_lens = {1, 16, 47, 300, 1000};
          s.num_kv_heads = 2;
          s.num_heads = 4;
          s.head_dim = D;
          s.block_size = bs;
          s.dtype = kvt;
          check_case(gpu, *cpu, s, dt, seed++);
        }
}

TEST(CudaPagedAttention, DecodeF16AndOddHeadDims) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  uint64_t seed = 1000;
  for (KvDType kvt : kKvDtypes)
    for (int32_t D : {8, 32, 64, 256}) {
      testing::PagedAttentionSpec s;
      s.q_lens = {1, 1, 1};
      s.context_lens = {1, 17, 530};
      s.num_kv_heads = 4;
      s.num_heads = 8;
      s.head_dim = D;
      s.dtype = kvt;
      check_case(gpu, *cpu, s, DType::F16, seed++);
    }
}

TEST(CudaPagedAttention, PrefillWithPrefixAndMixedBatches) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  uint64_t seed = 2000;
  for (KvDType kvt : kKvDtypes)
    for (int32_t bs : {16, 256})
      for (int32_t D : {64, 128})
        for (int32_t G : {1, 2, 4, 8})
          for (DType dt : {DType::F32, DType::BF16}) {
            testing::PagedAttentionSpec s;
            // pure prefill, prefill after a cached prefix, a decode row, an odd chunk
            s.q_lens = {97, 7, 1, bs + 1, 33};
            s.context_lens = {97, 7 + bs - 1, 300, bs + 1 + 50, 33};
            s.num_kv_heads = 2;
            s.num_heads = 2 * G;
            s.head_dim = D;
            s.block_size = bs;
            s.dtype = kvt;
            check_case(gpu, *cpu, s, dt, seed++);
          }
}

TEST(CudaPagedAttention, F16Prefill) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  testing::PagedAttentionSpec s;
  s.q_lens = {64, 5};
  s.context_lens = {200, 5};
  s.num_kv_heads = 2;
  s.num_heads = 14;  // G = 7
  s.head_dim = 128;
  for (KvDType kvt : kKvDtypes) {
    s.dtype = kvt;
    check_case(gpu, *cpu, s, DType::F16, 3000 + int(kvt));
  }
}

// Long prompts over a long cached prefix (many 64-key tiles, the causal diagonal inside a tile),
// on the tensor-core kernel (D 64/128/80) and the CUDA-core one (D 40, not a multiple of 16).
TEST(CudaPagedAttention, LongPrefillOnTensorCoresAndOddHeadDims) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  uint64_t seed = 6000;
  for (KvDType kvt : {KvDType::BF16, KvDType::INT8, KvDType::INT4})
    for (int32_t D : {40, 64, 80, 128})
      for (DType dt : {DType::BF16, DType::F16}) {
        testing::PagedAttentionSpec s;
        s.q_lens = {700, 130, 1};
        s.context_lens = {1500, 130, 900};
        s.num_kv_heads = 2;
        s.num_heads = D == 80 ? 6 : 4;  // G = 3 or 2
        s.head_dim = D;
        s.block_size = 16;
        s.dtype = kvt;
        check_case(gpu, *cpu, s, dt, seed++);
      }
}

}  // namespace
}  // namespace nanovllm
