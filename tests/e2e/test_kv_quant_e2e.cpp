// Quantized KV caches end to end on stories260K: INT8 greedy decoding follows the F32-KV reference
// (llama2.c's outputs) for at least 32 tokens or up to a near-tie; FP8 and INT4 run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "e2e/e2e_util.h"

namespace nanovllm::e2e {
namespace {

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

// The first generated position (up to `limit`) whose best and second-best F32 logits lie within
// `tie` of each other: there any lossy KV format (BF16 too) may pick the other token.
size_t first_near_tie(LLM& f32, const StoriesReference& ref, size_t limit, float tie) {
  std::vector<int32_t> ids = ref.prompt_ids;
  ids.insert(ids.end(), ref.output_ids.begin(), ref.output_ids.end());
  const std::vector<float> lp = f32.prompt_logprobs(ids);  // [n, 512]
  for (size_t k = 0; k < std::min(limit, ref.output_ids.size()); ++k) {
    std::vector<float> row(lp.begin() + (ref.prompt_ids.size() - 1 + k) * 512,
                           lp.begin() + (ref.prompt_ids.size() + k) * 512);
    std::partial_sort(row.begin(), row.begin() + 2, row.end(), std::greater<float>());
    if (row[0] - row[1] < tie) return k;
  }
  return limit;
}

// Runs every reference prompt under kv_dtype with prefix caching, chunked prefill and a KV cache
// small enough to preempt, all on.
std::vector<RequestOutput> run_all(const std::string& kv_dtype, EngineStats* stats = nullptr) {
  const auto refs = stories_references();
  Config c = cpu_config(kv_dtype);
  c.num_kvcache_blocks = 30;
  c.max_num_batched_tokens = 64;
  LLM llm(stories_dir().string(), c);
  auto out = llm.generate(id_prompts(refs), greedy_params(refs));
  for (size_t i = 0; i < refs.size(); ++i) {
    EXPECT_EQ(out[i].token_ids.size(), refs[i].output_ids.size()) << kv_dtype << " " << i;
    EXPECT_EQ(out[i].finish_reason, "length");
  }
  if (stats) *stats = llm.stats();
  return out;
}

// Measured (CPU, with the KV rotation of model/kv_rotation_plan.cpp: INT8/INT4 rotate K and V,
// FP8 at head_dim 8 does not), generated tokens equal to llama2.c's reference, for the 8 runs
// (Zoo 60/200, Once upon a time 60/200, Lily and Ben 60/200, The cat sat 60/200):
//   f32 (auto) 57 197 56 196 56 196 55 195  (all)
//   bf16       14  14 56 196 56 196  0   0  (flips at the two documented 0.0035/0.0037 near-ties)
//   int8       14  14 56 110 40  40  0   0  (Zoo: the 0.0035 near-tie at output 14; The cat sat:
//                                            the 0.0037 near-tie at output 0, as BF16; the others
//                                            diverge where the F32 top-2 gap is 0.03..0.12)
//   fp8_e4m3    2   2 44  44 28  28 14  14
//   int4        0   0  4   4  6   6  0   0
// INT8 vs BF16 KV: 57 95 56 110 40 40 14 14. Before the rotation INT8 kept The cat sat's near-tie
// (55 175); rotated it flips there like BF16 does, so four runs (not six) reach 32 tokens.
// So the "INT8 equals BF16/F32 for the first 32 tokens" holds on every prompt up to a
// near-tie (F32 top-2 logit gap < 0.01) that even BF16 KV does not survive.
constexpr size_t kAgree = 32;
constexpr float kNearTie = 0.01f;

TEST(KvQuantE2E, Int8GreedyMatchesTheF32ReferenceForAtLeast32Tokens) {
  const auto refs = stories_references();
  LLM f32(stories_dir().string(), cpu_config());
  EngineStats stats;
  const auto out = run_all("int8", &stats);
  EXPECT_EQ(stats.kv_cache_dtype, "int8");
  EXPECT_GT(stats.preemptions, 0);
  size_t full_32 = 0;
  for (size_t i = 0; i < refs.size(); ++i) {
    const size_t agree = common_prefix(out[i].token_ids, refs[i].output_ids);
    EXPECT_GE(agree, first_near_tie(f32, refs[i], kAgree, kNearTie)) << "reference " << i;
    full_32 += agree >= kAgree;
  }
  EXPECT_GE(full_32, 4u);  // all but the two "Zoo" and the two "The cat sat" runs (near-ties)
}

TEST(KvQuantE2E, Int8MatchesBf16KvUpToNearTies) {
  const auto refs = stories_references();
  LLM f32(stories_dir().string(), cpu_config());
  const auto a = run_all("bf16");
  const auto b = run_all("int8");
  for (size_t i = 0; i < refs.size(); ++i)
    EXPECT_GE(common_prefix(a[i].token_ids, b[i].token_ids),
              first_near_tie(f32, refs[i], kAgree, kNearTie))
        << "reference " << i;
}

// The original proposal's switch: kv_quant = true is the INT8 cache, outputs and all.
TEST(KvQuantE2E, KvQuantSwitchIsTheInt8Cache) {
  const auto refs = stories_references();
  Config quant = cpu_config();
  quant.kv_quant = true;
  LLM with_switch(stories_dir().string(), quant);
  LLM with_dtype(stories_dir().string(), cpu_config("int8"));
  const auto a = with_switch.generate(id_prompts(refs), greedy_params(refs));
  const auto b = with_dtype.generate(id_prompts(refs), greedy_params(refs));
  EXPECT_EQ(with_switch.stats().kv_cache_dtype, "int8");
  for (size_t i = 0; i < refs.size(); ++i) EXPECT_EQ(a[i].token_ids, b[i].token_ids) << i;
}

TEST(KvQuantE2E, Fp8AndInt4RunEveryReferencePrompt) {
  for (const char* dtype : {"fp8_e4m3", "int4"}) {
    EngineStats stats;
    run_all(dtype, &stats);
    EXPECT_EQ(stats.kv_cache_dtype, dtype);
    EXPECT_GT(stats.preemptions, 0);
  }
}

}  // namespace
}  // namespace nanovllm::e2e
