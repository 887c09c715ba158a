#pragma once
// Decode attention over an INT8 cache on tensor cores: mma.sync m16n8k16 with FP16 operands and
// FP32 accumulation, head_dim 128, G = Hq / Hkv <= 8, BF16/F16 activations.
//
// Why: on CUDA cores each INT8 element costs a byte permute, an FADD (decode) and G FMAs, and the
// kernel is bound by instruction issue at ~2.6 TB/s while BF16 reaches ~4 TB/s. Here a warp takes
// 16 tokens per iteration: S = Q K^T and O += P V are 2 x 16 mma instructions, and INT8 becomes
// FP16 two elements at a time (byte permute into 0x64xx = 1024 + (x + 128), then one HSUB2).
// Every INT8 value is exact in FP16, q is rescaled by a power of two to fit FP16's range (exact),
// and products accumulate in FP32, so S matches the CUDA-core kernel; P is rounded to FP16 before
// P V (as the tensor-core prefill rounds P to the activation type).
//
// Fragment layouts (PTX m16n8k16, lane = 4 r + c): A rows are the G query heads (rows >= G and
// 8..15 are zero), so only a0/a2 and c0/c1 carry data. The head dimension is permuted so that
// each lane reads contiguous bytes: in S = Q K^T, k-step j's fragment dims {2c, 2c+1, 2c+8, 2c+9}
// are the real dims 32c + 4j + {0..3} (a lane reads bytes [32c, 32c + 32) of token r's K row); in
// O += P V, n-tile j's fragment column n is the real dim 16n + j (a lane reads bytes [16r, 16r +
// 16) of the V rows of tokens 2c, 2c+1, 2c+8, 2c+9), so its c0/c1 are dims 32c + j, 32c + 16 + j.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <type_traits>

#include "backend/cuda/decode_attention_common.cuh"
#include "core/paged_kv.h"

namespace nanovllm::cuda::decode_detail {

constexpr int kMmaHeadDim = 128;
constexpr int kMmaMaxGroup = 8;
constexpr int kMmaWarpTokens = 16;                        // tokens per warp and iteration
constexpr int kMmaStep = kWarps * kMmaWarpTokens;        // tokens per CTA iteration
constexpr int kMmaMinCtas = 3;                           // register budget: <= 168 per thread

// Whether the tensor-core kernel serves this bucket (F32 models keep exact FP32 math).
template <class T>
constexpr bool mma_decode_for(KvDType kv, int head_dim) {
  return !std::is_same_v<T, float> && kv == KvDType::INT8 && head_dim == kMmaHeadDim;
}

// c0, c1 += (A x B) rows 0-7: A's rows 8-15 are zero, so their outputs are discarded.
__device__ __forceinline__ void mma_rows0to7(float& c0, float& c1, uint32_t a0, uint32_t a2,
                                             uint32_t b0, uint32_t b1) {
  [[maybe_unused]] float d2, d3;
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%10,%10};\n"
      : "+f"(c0), "+f"(c1), "=f"(d2), "=f"(d3)
      : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1), "f"(0.f));
}

// Two INT8 values, already XOR 0x80 (x + 128 as a byte), picked by a byte-permute selector of
// the form 0x4?4? out of u, as an FP16 pair: (0x64 << 8 | byte) is 1024 + byte, minus 1152.
__device__ __forceinline__ uint32_t int8_pair_to_half2(uint32_t u, uint32_t selector) {
  const uint32_t biased = __byte_perm(u, 0x64646464u, selector);
  const __half2 v = __hsub2(*reinterpret_cast<const __half2*>(&biased),
                            __half2half2(__ushort_as_half(0x6480)));  // 1152
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// grid (B, Hkv, S), block kThreads (4 warps, each its own 16-token slices of the CTA's range).
// q, out: [B, Hq, 128] of T.
template <class T>
__global__ void __launch_bounds__(kThreads, kMmaMinCtas)
    decode_attention_int8_mma_kernel(const T* __restrict__ q, PagedKvLayer kv, DecodeArgs a,
                                     T* __restrict__ out) {
  constexpr int D = kMmaHeadDim;
  __shared__ float s_acc[kWarps][kMmaMaxGroup][D];
  __shared__ float s_ml[kWarps][kMmaMaxGroup][2];

  const int seq = blockIdx.x, kv_head = blockIdx.y, split = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int r = lane >> 2, c = lane & 3;  // fragment row (head / token) and column group
  const int G = a.group;
  const int ctx = a.context_lens[seq];
  const int per = split_tokens(ctx, a);
  const int begin = split * per;
  const int end = min(ctx, begin + per);
  if (a.num_splits > 1 && begin >= end) return;
  const int64_t q_row = int64_t(seq) * a.num_heads + int64_t(kv_head) * G;

  // ---- q of head r, dims [32c, 32c + 32), as the A fragments of the 8 k-steps ----
  float qf[32];
  float qmax = 0.f;
#pragma unroll
  for (int i = 0; i < 32; ++i) {
    qf[i] = r < G ? to_f(q[(q_row + r) * D + 32 * c + i]) : 0.f;
    qmax = fmaxf(qmax, fabsf(qf[i]));
  }
  qmax = fmaxf(qmax, __shfl_xor_sync(0xffffffffu, qmax, 1));
  qmax = fmaxf(qmax, __shfl_xor_sync(0xffffffffu, qmax, 2));
  int q_exp = 0;  // q x 2^-q_exp stays below 2^14 in FP16 (exact: a power of two)
  if (qmax > 16384.f) frexpf(qmax * (1.f / 16384.f), &q_exp);
  const float q_mul = ldexpf(1.f, -q_exp);
  uint32_t qa[8][2];  // [k-step][a0, a2]
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    qa[j][0] = pack_half2(qf[4 * j] * q_mul, qf[4 * j + 1] * q_mul);
    qa[j][1] = pack_half2(qf[4 * j + 2] * q_mul, qf[4 * j + 3] * q_mul);
  }
  // Scores in log2 units: dot x softmax scale x 2^q_exp x k_scale x log2(e).
  const float score_mul = a.scale * ldexpf(1.f, q_exp) * 1.4426950408889634f;

  float acc[16][2];  // [n-tile j][c0, c1]: O[head r][dims 32c + j, 32c + 16 + j]
#pragma unroll
  for (int j = 0; j < 16; ++j) acc[j][0] = acc[j][1] = 0.f;
  float m2 = -FLT_MAX;  // running max of head r (log2 units); finite, see the CUDA-core kernel
  float lsum = 0.f;     // this lane's share of head r's running sum

  const int32_t* table = a.block_tables + int64_t(seq) * a.max_blocks_per_seq;
  const char* kbase = static_cast<const char*>(kv.k) + int64_t(kv_head) * D;
  const char* vbase = static_cast<const char*>(kv.v) + int64_t(kv_head) * D;
  const int64_t stride = int64_t(kv.num_kv_heads) * D;  // bytes per slot
  const int bs = kv.block_size;
  const bool bs_pow2 = (bs & (bs - 1)) == 0;
  const int bs_shift = __ffs(bs) - 1;
  auto slot_of = [&](int pos) {
    return bs_pow2 ? int64_t(table[pos >> bs_shift]) * bs + (pos & (bs - 1))
                   : int64_t(table[pos / bs]) * bs + pos % bs;
  };
  const int vtok[4] = {2 * c, 2 * c + 1, 2 * c + 8, 2 * c + 9};  // this lane's V / P tokens

  for (int t0 = begin + warp * kMmaWarpTokens; t0 < end; t0 += kMmaStep) {
    // ---- loads: K of tokens r and 8 + r (bytes [32c, 32c + 32)), V of the vtok tokens (bytes
    // [16r, 16r + 16)), and the scales of the vtok tokens (K: their scores, V: their P) ----
    uint4 kr[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int pos = t0 + 8 * i + r;
      if (pos < end) {
        const uint4* p = reinterpret_cast<const uint4*>(kbase + slot_of(pos) * stride + 32 * c);
        kr[i][0] = __ldcs(p);
        kr[i][1] = __ldcs(p + 1);
      } else {
        kr[i][0] = kr[i][1] = make_uint4(0u, 0u, 0u, 0u);
      }
    }
    uint4 vr[4];
    float ks[4], vs[4];
    bool valid[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int pos = t0 + vtok[i];
      valid[i] = pos < end;
      if (valid[i]) {
        const int64_t slot = slot_of(pos);
        vr[i] = __ldcs(reinterpret_cast<const uint4*>(vbase + slot * stride + 16 * r));
        ks[i] = __ldcs(kv.k_scale + slot * kv.num_kv_heads + kv_head);
        vs[i] = __ldcs(kv.v_scale + slot * kv.num_kv_heads + kv_head);
      } else {
        vr[i] = make_uint4(0u, 0u, 0u, 0u);
        ks[i] = vs[i] = 0.f;
      }
    }
    // ---- S = Q K^T: two n-tiles of 8 tokens, 8 k-steps of 16 dims ----
    float s[2][2] = {{0.f, 0.f}, {0.f, 0.f}};  // [tile][c0, c1]: tokens 8 tile + 2c + {0, 1}
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const uint32_t w[8] = {kr[i][0].x, kr[i][0].y, kr[i][0].z, kr[i][0].w,
                             kr[i][1].x, kr[i][1].y, kr[i][1].z, kr[i][1].w};
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const uint32_t u = w[j] ^ 0x80808080u;
        mma_rows0to7(s[i][0], s[i][1], qa[j][0], qa[j][1], int8_pair_to_half2(u, 0x4140u),
                     int8_pair_to_half2(u, 0x4342u));
      }
    }
    // ---- online softmax of head r over the 16 tokens (the 4 lanes of a row share it) ----
    const float x[4] = {valid[0] ? s[0][0] * ks[0] * score_mul : -INFINITY,
                        valid[1] ? s[0][1] * ks[1] * score_mul : -INFINITY,
                        valid[2] ? s[1][0] * ks[2] * score_mul : -INFINITY,
                        valid[3] ? s[1][1] * ks[3] * score_mul : -INFINITY};
    float mx = fmaxf(fmaxf(m2, x[0]), fmaxf(x[1], fmaxf(x[2], x[3])));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float factor = exp2f(m2 - mx);
    m2 = mx;
    lsum *= factor;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      acc[j][0] *= factor;
      acc[j][1] *= factor;
    }
    float p[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      p[i] = exp2f(x[i] - mx);  // 0 for an invalid token
      lsum += p[i];
    }
    // P x v_scale as the A fragment: a0 = tokens 2c, 2c+1; a2 = tokens 2c+8, 2c+9
    const uint32_t pa0 = r < G ? pack_half2(p[0] * vs[0], p[1] * vs[1]) : 0u;
    const uint32_t pa2 = r < G ? pack_half2(p[2] * vs[2], p[3] * vs[3]) : 0u;
    // ---- O += P V: 16 n-tiles; byte j of this lane's 16 V bytes belongs to n-tile j ----
    const uint32_t vw[4][4] = {{vr[0].x, vr[0].y, vr[0].z, vr[0].w},
                               {vr[1].x, vr[1].y, vr[1].z, vr[1].w},
                               {vr[2].x, vr[2].y, vr[2].z, vr[2].w},
                               {vr[3].x, vr[3].y, vr[3].z, vr[3].w}};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      // bytes of tokens (2c, 2c+1) and (2c+8, 2c+9) interleaved: [a0 b0 a1 b1], [a2 b2 a3 b3]
      const uint32_t t0w = vw[0][k] ^ 0x80808080u, t1w = vw[1][k] ^ 0x80808080u;
      const uint32_t t2w = vw[2][k] ^ 0x80808080u, t3w = vw[3][k] ^ 0x80808080u;
      const uint32_t lo01 = __byte_perm(t0w, t1w, 0x5140u), hi01 = __byte_perm(t0w, t1w, 0x7362u);
      const uint32_t lo23 = __byte_perm(t2w, t3w, 0x5140u), hi23 = __byte_perm(t2w, t3w, 0x7362u);
      mma_rows0to7(acc[4 * k][0], acc[4 * k][1], pa0, pa2, int8_pair_to_half2(lo01, 0x4140u),
                   int8_pair_to_half2(lo23, 0x4140u));
      mma_rows0to7(acc[4 * k + 1][0], acc[4 * k + 1][1], pa0, pa2,
                   int8_pair_to_half2(lo01, 0x4342u), int8_pair_to_half2(lo23, 0x4342u));
      mma_rows0to7(acc[4 * k + 2][0], acc[4 * k + 2][1], pa0, pa2,
                   int8_pair_to_half2(hi01, 0x4140u), int8_pair_to_half2(hi23, 0x4140u));
      mma_rows0to7(acc[4 * k + 3][0], acc[4 * k + 3][1], pa0, pa2,
                   int8_pair_to_half2(hi01, 0x4342u), int8_pair_to_half2(hi23, 0x4342u));
    }
  }

  // ---- this warp's state of head r into shared memory (real dims), then the common merge ----
  lsum += __shfl_xor_sync(0xffffffffu, lsum, 1);
  lsum += __shfl_xor_sync(0xffffffffu, lsum, 2);
  if (r < G) {
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      s_acc[warp][r][32 * c + j] = acc[j][0];
      s_acc[warp][r][32 * c + 16 + j] = acc[j][1];
    }
    if (c == 0) {
      s_ml[warp][r][0] = m2 * 0.6931471805599453f;  // back to natural-log units
      s_ml[warp][r][1] = lsum;
    }
  }
  __syncthreads();
  merge_warps_and_store<T, D, kMmaMaxGroup>(s_acc, s_ml, G, q_row, split, a, out);
}

}  // namespace nanovllm::cuda::decode_detail
