#pragma once
// Launchers of the CUDA backend's kernels, callable from plain C++. Inputs are validated by
// CudaBackend before these are called; every launcher enqueues on `stream`, never allocates and
// never synchronizes, so all of them can be captured into a CUDA graph.
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/backend.h"

namespace nanovllm::cuda {

// Where a launcher enqueues. overlap_launches: its kernel may be scheduled before the previous
// kernel on the stream has finished (programmatic dependent launch; launch.cuh), set by the
// backend on sm_90+ unless NANOVLLM_PDL=0.
struct Stream {
  cudaStream_t handle = nullptr;
  bool overlap_launches = false;
};

// out[R, C] = src[indices[r], :] (int32 indices; rows outside [0, src rows) give zeros).
void launch_gather_rows(const Tensor& src, const Tensor& indices, Tensor out, const Stream& stream);

// A pending RMSNorm of an op's input rows: row t is a product of row t of `x` taken before x was
// normalized (the norm weight folded into the product's columns), so the op scales it by
// 1 / sqrt(mean(x[t]^2) + eps) first. x null: nothing pending.
struct RowRms {
  const void* x = nullptr;  // [T, width] in the op's activation dtype, rows contiguous
  int64_t width = 0;
  float eps = 0.f;
};

// out = x / rms(x) * w (w undefined: unit)
void launch_rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor out,
                     const Stream& stream);

// out[T, I] = silu(r g) * (r u), g = gate_up[:, :I], u = gate_up[:, I:], r the row's pending
// RMSNorm factor (1 when none)
void launch_silu_mul(const Tensor& gate_up, Tensor out, const Stream& stream,
                     const RowRms& pending = {});

// out[M, N] = x[M, K] . w[N, K]^T for M <= kSmallLinearMaxRows (BF16/F16 x and w, out in their
// dtype or F32; K % 8 == 0; 16-byte aligned x and w): the weight-streaming path of small batches.
constexpr int64_t kSmallLinearMaxRows = 8;
bool small_m_linear_supported(const Tensor& x, const Tensor& w, const Tensor& out);
// What the small-M kernel does around the product, so that a decode layer at small batch needs
// no separate norm, add or activation kernel (the CPU composes the same ops, backend.h):
// - input kRmsNorm: x is the residual stream, the product is taken of rms_norm(x) * norm_weight
//   (norm_weight [K] in x's dtype, or null / undefined for a unit weight; each row's 1 / rms
//   applied to its sums at the end);
// - input kSiluMul: x is gate_up [M, 2K], the product is taken of silu(gate) * up, rounded to x's
//   dtype as silu_mul stores it;
// - accumulate: out += the product, rounded once (out in x's dtype).
struct SmallMFusion {
  enum class Input { kPlain, kRmsNorm, kSiluMul };
  Input input = Input::kPlain;
  const Tensor* norm_weight = nullptr;
  float eps = 0.f;
  bool accumulate = false;
};
void launch_small_m_linear(const Tensor& x, const Tensor& w, Tensor out, const SmallMFusion& fusion,
                           const Stream& stream);

// out[T, N] += bias[N]
void launch_add_bias(const Tensor& bias, Tensor out, const Stream& stream);

// Backend::qkv_rope_store, with each qkv row first scaled by its pending RMSNorm factor.
void launch_qkv_rope_store(const Tensor& qkv, const QkvSpec& spec, const Tensor& positions,
                           const Tensor& slot_mapping, const PagedKvLayer& kv, Tensor q_out,
                           const Stream& stream, const RowRms& pending = {});

// Split-K workspace of decode attention: floats needed for `num_splits` partitions.
int64_t decode_attention_workspace_floats(int32_t num_seqs, int32_t num_heads, int32_t head_dim,
                                          int32_t num_splits);
// How many context partitions (split-K) decode attention uses: at least enough for min_waves
// waves of resident_ctas (CTAs the whole GPU holds at once), then up to twice that the S with
// the fewest waves per token, at most one split per 32 tokens of max_context_len (an upper
// bound; exceeding it on a graph replay stays correct). Each sequence's actual context is cut
// into that many ranges.
int32_t decode_attention_splits(int32_t num_seqs, int32_t num_kv_heads, int32_t max_context_len,
                                int32_t resident_ctas, int32_t min_waves);
// The same choice when every context of the batch is about as long as the longest
// (AttentionMeta::even_contexts): CTAs of equal work run in rounds of resident_ctas, so the S
// that leaves no thin last round with the fewest splits (one split per 32 tokens at most).
int32_t decode_attention_even_splits(int32_t num_seqs, int32_t num_kv_heads,
                                     int32_t max_context_len, int32_t resident_ctas);
// min_waves of the engine for a KV dtype (env NANOVLLM_DECODE_MIN_WAVES overrides it, for
// measurement): 2 for 16-bit and F32 caches, 1 for the quantized ones, whose CTAs read half the
// bytes or less, so a split's merge weighs more against what it saves in the tail (W1 on an
// H100, 2026-12-07: INT8 min_waves 1 / 2 / 3 / 4: 28,752 / 27,842 / 27,520 / 26,742 tok/s;
// BF16 2 / 3: 20,004 / 19,792).
constexpr int32_t kDefaultDecodeMinWaves = 2;
int32_t default_decode_min_waves(KvDType kv_dtype);
// CTAs of the decode kernel for these operands that one SM holds at once. fp8_int4_mma: FP8
// and INT4 caches under 16-bit activations take the tensor-core kernel INT8 takes
// (decode_attention_mma.cuh) instead of the CUDA-core loop.
int32_t decode_attention_ctas_per_sm(DType act, KvDType kv_dtype, int32_t head_dim,
                                     int32_t group_size, bool fp8_int4_mma);
// Whether the decode kernel has a fast path for this head_dim (else the tiled kernel runs).
bool decode_attention_supported(int32_t head_dim, int32_t group_size);

// q [T, Hq, D] with T == num_seqs (one token each). workspace: decode_attention_workspace_floats;
// split_counters: num_seqs x Hkv int32, zero at rest (both unused when num_splits == 1).
void launch_decode_attention(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                             float scale, Tensor out, float* workspace, int32_t* split_counters,
                             int32_t num_splits, bool fp8_int4_mma, const Stream& stream);

// Any mix of query lengths (prefill, chunked prefill, decode), causal, over the paged cache.
// BF16/F16 runs on tensor cores: head_dim 64/128 with the mma.sync register loop, other
// multiples of 16 (<= 256) with WMMA; anything else on CUDA cores.
void launch_prefill_attention(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                              float scale, Tensor out, const Stream& stream);
bool prefill_attention_mma_supported(DType act, int32_t head_dim);
void launch_prefill_attention_mma(const Tensor& q, const PagedKvLayer& kv,
                                  const AttentionMeta& meta, float scale, Tensor out,
                                  const Stream& stream);
bool prefill_attention_tensor_cores_supported(DType act, int32_t head_dim);
void launch_prefill_attention_tensor_cores(const Tensor& q, const PagedKvLayer& kv,
                                           const AttentionMeta& meta, float scale, Tensor out,
                                           const Stream& stream);

// Device-side parameters of one sampled row (SamplingRow widened for the kernel).
struct DeviceSamplingRow {
  uint64_t key;   // draw_key(seed, step): the race's per-token Gumbel noise comes from it
  float temperature;
  int32_t top_k;
  float top_p;
  float uniform;  // uniform_from_counter(seed, step), drawn on the host
};
// logits float32 [S, V] -> token_ids int32 [S] on the device.
void launch_sample(const Tensor& logits, const DeviceSamplingRow* rows, int32_t* token_ids,
                   const Stream& stream);

}  // namespace nanovllm::cuda
