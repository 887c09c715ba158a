#pragma once
// Decode attention over an INT8 cache on tensor cores, for 16-bit activations (F32 models keep
// the CUDA-core kernel's FP32 math): head_dim 64 or 128, G = Hq / Hkv <= 8.
//
// Why: the CUDA-core loop (decode_attention.cuh) spends G FMAs, a byte permute and an FADD on
// every V element and G x 2 dp4a plus shuffles on every K word; ncu finds it issue-bound at ~3.2
// TB/s while BF16 reaches ~4.3. Here a warp takes 16 tokens per iteration and the arithmetic
// goes to the tensor cores:
// - S = Q K^T with mma.sync m16n8k32 s8 x s8 -> s32: the stored K bytes are the B operand as
//   loaded (no conversion), q is the A operand in the same two int8 levels as the dp4a loop
//   (q x scale ~= qscale x (254 hi + lo)), so the integer scores are exactly that loop's.
// - O += P V with mma.sync m16n8k16 f16 x f16 -> f32: a V byte v becomes the FP16 1152 + v with
//   one byte permute and one LOP3 per pair (0x64xx is 1024 + xx, xx = v ^ 0x80); the 1152 x
//   sum(P) this adds is accumulated by one more mma against ones and subtracted at the end. P is
//   p x v_scale x 2^e in FP16, 2^e fixed per CTA from its first token's v_scale so that P stays
//   in FP16's normal range whatever the model's V magnitudes.
//
// Fragment layouts (PTX mma, lane = 4 r + c). Rows of A are the G query heads (rows >= G and
// 8..15 are zero, so only a0/a2 and c0/c1 carry data). The head dimension is permuted so that each
// lane reads contiguous bytes: in S, k-step j's fragment words {c, c + 4} (A and B alike) are the
// lane's bytes [c D/4, (c+1) D/4) words 2j and 2j + 1 of token r (tile 0) and 8 + r (tile 1);
// in O, n-tile j's column n is the real dim n D/8 + j (a lane reads bytes [r D/8, (r+1) D/8) of
// the V rows of tokens 2c, 2c+1, 2c+8, 2c+9, the tokens of its S outputs), so its c0/c1 are the
// dims 2c D/8 + j and (2c+1) D/8 + j.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>

#include "backend/cuda/common.cuh"
#include "backend/cuda/decode_attention_common.cuh"
#include "core/paged_kv.h"

namespace nanovllm::cuda::decode_detail {

// The loop tag of the tensor-core kernel (launch_typed dispatches on it); MIN_CTAS sets the
// register budget (3: <= 168 per thread, 4: <= 128, spilling a little).
template <int MIN_CTAS_>
struct Int8MmaLoop {
  static constexpr int WARP_TOKENS = 16;             // tokens per warp and iteration
  static constexpr int STEP = kWarps * WARP_TOKENS;  // tokens per CTA iteration
  static constexpr int MIN_CTAS = MIN_CTAS_;
};
template <class Loop>
constexpr bool is_int8_mma_loop = false;
template <int N>
constexpr bool is_int8_mma_loop<Int8MmaLoop<N>> = true;

// c0, c1 += (A x B) rows 0-7, int8 operands (m16n8k32); A's rows 8-15 are zero.
__device__ __forceinline__ void mma_s8_rows0to7(int& c0, int& c1, uint32_t a0, uint32_t a2,
                                                uint32_t b0, uint32_t b1) {
  [[maybe_unused]] int d2, d3;
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%10,%10};\n"
      : "+r"(c0), "+r"(c1), "=r"(d2), "=r"(d3)
      : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1), "r"(0));
}

// c0, c1 += (A x B) rows 0-7, FP16 operands, FP32 accumulation (m16n8k16).
__device__ __forceinline__ void mma_f16_rows0to7(float& c0, float& c1, uint32_t a0, uint32_t a2,
                                                 uint32_t b0, uint32_t b1) {
  [[maybe_unused]] float d2, d3;
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%10,%10};\n"
      : "+f"(c0), "+f"(c1), "=f"(d2), "=f"(d3)
      : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1), "f"(0.f));
}

// Byte b of x and byte b of y (INT8 values v) as the FP16 pair (1152 + v_x, 1152 + v_y): one
// byte permute to [x.b, -, y.b, -] and one LOP3 that clears the high bytes, sets them to 0x64 and
// flips the sign bit of the low ones (0x64xx is 1024 + xx, xx = v ^ 0x80 = v + 128).
__device__ __forceinline__ uint32_t int8_pair_biased_half2(uint32_t x, uint32_t y, int b) {
  const uint32_t picked = __byte_perm(x, y, uint32_t(b | ((4 + b) << 8)));
  return (picked & 0x00ff00ffu) ^ 0x64806480u;
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// K words of a lane (bytes [c D/4, (c+1) D/4) of one token row), V words (bytes [r D/8,
// (r+1) D/8)) as 16-byte (or 8-byte) loads.
template <int WORDS>
__device__ __forceinline__ void load_words(const char* p, uint32_t (&w)[WORDS]) {
  static_assert(WORDS % 2 == 0, "8-byte granularity");
  if constexpr (WORDS % 4 == 0) {
#pragma unroll
    for (int i = 0; i < WORDS / 4; ++i) {
      const uint4 u = __ldcs(reinterpret_cast<const uint4*>(p) + i);
      w[4 * i] = u.x; w[4 * i + 1] = u.y; w[4 * i + 2] = u.z; w[4 * i + 3] = u.w;
    }
  } else {
#pragma unroll
    for (int i = 0; i < WORDS / 2; ++i) {
      const uint2 u = __ldcs(reinterpret_cast<const uint2*>(p) + i);
      w[2 * i] = u.x; w[2 * i + 1] = u.y;
    }
  }
}

// grid (Hkv, S, B), block kThreads (4 warps, each its own 16-token slices of the CTA's range).
// q, out: [B, Hq, D] of T (16-bit).
template <class T, int D, int MAXG, class Loop>
__global__ void __launch_bounds__(kThreads, Loop::MIN_CTAS)
    decode_attention_int8_mma_kernel(const T* __restrict__ q, PagedKvLayer kv, DecodeArgs a,
                                     T* __restrict__ out) {
  static_assert(D == 64 || D == 128, "head_dim 64 or 128");
  static_assert(MAXG <= 8, "query heads are the rows 0-7 of the mma");
  constexpr int KW = D / 16;      // K words per lane and token
  constexpr int VW = D / 32;      // V words per lane and token
  constexpr int NT = D / 8;       // n-tiles of O (one per V byte of the lane)
  constexpr int WT = Loop::WARP_TOKENS;
  __shared__ float s_acc[kWarps][MAXG][D];
  __shared__ float s_ml[kWarps][MAXG][2];

  const int seq = blockIdx.z, kv_head = blockIdx.x, split = blockIdx.y;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int r = lane >> 2, c = lane & 3;
  const int G = a.group;
  const int ctx = a.context_lens[seq];
  const int per = split_tokens(ctx, a);
  const int begin = split * per;
  const int end = min(ctx, begin + per);
  const int64_t q_row = int64_t(seq) * a.num_heads + int64_t(kv_head) * G;
  if (a.num_splits > 1 && begin >= end) {
    if (ctx == 0 && split == 0)
      for (int idx = threadIdx.x; idx < G * D; idx += kThreads) out[q_row * D + idx] = from_f<T>(0.f);
    return;
  }

  // ---- q of head r, dims [c D/4, (c+1) D/4), x softmax scale, in two int8 levels ----
  uint32_t qhi[KW], qlo[KW];
  float qscale;  // score = qscale x (254 hi.k + lo.k) x k_scale
  {
    float qf[D / 4];
    float amax = 0.f;
#pragma unroll
    for (int i = 0; i < D / 4; ++i) {
      qf[i] = r < G ? to_f(q[(q_row + r) * D + c * (D / 4) + i]) * a.scale : 0.f;
      amax = fmaxf(amax, fabsf(qf[i]));
    }
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
    const float unit = amax / 127.f;
    const float inv = amax > 0.f ? 127.f / amax : 0.f;
#pragma unroll
    for (int j = 0; j < KW; ++j) {
      uint32_t hw = 0u, lw = 0u;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const float x = qf[4 * j + b];
        const float hi = fminf(fmaxf(rintf(x * inv), -127.f), 127.f);
        const float lo = fminf(fmaxf(rintf((x - hi * unit) * inv * 254.f), -127.f), 127.f);
        hw |= (uint32_t(int(hi)) & 0xffu) << (8 * b);
        lw |= (uint32_t(int(lo)) & 0xffu) << (8 * b);
      }
      qhi[j] = hw;
      qlo[j] = lw;
    }
    qscale = unit / 254.f * 1.4426950408889634f;  // scores in log2 units
  }

  const int32_t* table = a.block_tables + int64_t(seq) * a.max_blocks_per_seq;
  const char* kbase = static_cast<const char*>(kv.k) + int64_t(kv_head) * D + c * (D / 4);
  const char* vbase = static_cast<const char*>(kv.v) + int64_t(kv_head) * D + r * (D / 8);
  const int64_t stride = int64_t(kv.num_kv_heads) * D;  // bytes per slot
  const int bs = kv.block_size;
  // A warp's 16 tokens start at a multiple of 16, so they share one cache block when 16 | bs.
  const bool one_block = bs % WT == 0;
  auto slot_of = [&](int pos) {
    const uint32_t blk = a.block_size.quotient(uint32_t(pos));
    return int64_t(table[blk]) * bs + a.block_size.remainder(uint32_t(pos), blk);
  };
  auto scale_at = [&](const float* s, int64_t slot) {
    return __ldcs(s + slot * kv.num_kv_heads + kv_head);
  };

  // P x 2^e stays in FP16's normal range: e from the CTA's first v_scale (2^e exact).
  float vmul = 1.f;
  if (begin < end) {
    const float v0 = scale_at(kv.v_scale, slot_of(begin));
    if (v0 > 0.f) {
      int e;
      frexpf(v0, &e);
      vmul = ldexpf(1.f, -e);
    }
  }

  float acc[NT][2];  // [n-tile j][c0, c1]: O[head r][dims 2c D/8 + j, (2c+1) D/8 + j], x 2^e, biased
  float bias[2] = {0.f, 0.f};  // sum of P of head r (both columns of the ones tile)
#pragma unroll
  for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = 0.f;
  float m2 = -FLT_MAX;  // running max of head r (log2 units); finite: exp2(m2 - m_new) stays 1
  float lsum = 0.f;     // this lane's share of head r's running sum
  const int vtok[4] = {2 * c, 2 * c + 1, 2 * c + 8, 2 * c + 9};  // this lane's S / P / V tokens

#pragma unroll 1
  for (int t0 = begin + warp * WT; t0 < end; t0 += Loop::STEP) {
    int64_t base = 0;  // slot of token t0 + i is base + i when one_block
    if (one_block) base = slot_of(t0);
    auto slot = [&](int i) { return one_block ? base + i : slot_of(t0 + i); };

    uint32_t kw[2][KW];  // tokens r, 8 + r
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      if (t0 + 8 * i + r < end) {
        load_words<KW>(kbase + slot(8 * i + r) * stride, kw[i]);
      } else {
#pragma unroll
        for (int w = 0; w < KW; ++w) kw[i][w] = 0u;
      }
    }
    uint32_t vw[4][VW];
    float ks[4], vs[4];
    bool valid[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      valid[i] = t0 + vtok[i] < end;
      if (valid[i]) {
        const int64_t s = slot(vtok[i]);
        load_words<VW>(vbase + s * stride, vw[i]);
        ks[i] = scale_at(kv.k_scale, s);
        vs[i] = scale_at(kv.v_scale, s);
      } else {
#pragma unroll
        for (int w = 0; w < VW; ++w) vw[i][w] = 0u;
        ks[i] = vs[i] = 0.f;
      }
    }

    // ---- S = Q K^T: two n-tiles of 8 tokens, D/32 k-steps, q's two levels ----
    int shi[2][2] = {{0, 0}, {0, 0}}, slo[2][2] = {{0, 0}, {0, 0}};
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < D / 32; ++j) {
        mma_s8_rows0to7(shi[i][0], shi[i][1], qhi[2 * j], qhi[2 * j + 1], kw[i][2 * j], kw[i][2 * j + 1]);
        mma_s8_rows0to7(slo[i][0], slo[i][1], qlo[2 * j], qlo[2 * j + 1], kw[i][2 * j], kw[i][2 * j + 1]);
      }

    // ---- online softmax of head r over the 16 tokens (the 4 lanes of a row share it) ----
    float x[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int d = shi[k >> 1][k & 1] * 254 + slo[k >> 1][k & 1];
      x[k] = valid[k] ? float(d) * (qscale * ks[k]) : -INFINITY;
    }
    float mx = fmaxf(fmaxf(x[0], x[1]), fmaxf(x[2], x[3]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    if (mx > m2) {
      const float factor = exp2f(m2 - mx);
      m2 = mx;
      lsum *= factor;
      bias[0] *= factor;
      bias[1] *= factor;
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        acc[j][0] *= factor;
        acc[j][1] *= factor;
      }
    }
    float p[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      p[k] = exp2f(x[k] - m2);  // 0 for an invalid token
      lsum += p[k];
    }
    // P as the A fragment: a0 = tokens 2c, 2c+1; a2 = tokens 2c+8, 2c+9 (zero for rows >= G)
    const uint32_t pa0 = r < G ? pack_half2(p[0] * vs[0] * vmul, p[1] * vs[1] * vmul) : 0u;
    const uint32_t pa2 = r < G ? pack_half2(p[2] * vs[2] * vmul, p[3] * vs[3] * vmul) : 0u;
    mma_f16_rows0to7(bias[0], bias[1], pa0, pa2, 0x3C003C00u, 0x3C003C00u);  // x ones

    // ---- O += P V: n-tile j is byte j of this lane's V bytes ----
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const int w = j / 4, b = j % 4;
      mma_f16_rows0to7(acc[j][0], acc[j][1], pa0, pa2, int8_pair_biased_half2(vw[0][w], vw[1][w], b),
                       int8_pair_biased_half2(vw[2][w], vw[3][w], b));
    }
  }

  // ---- this warp's state of head r into shared memory (real dims), then the common merge ----
  lsum += __shfl_xor_sync(0xffffffffu, lsum, 1);
  lsum += __shfl_xor_sync(0xffffffffu, lsum, 2);
  if (r < G) {
    const float unmul = 1.f / vmul;  // a power of two: exact
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      s_acc[warp][r][2 * c * (D / 8) + j] = (acc[j][0] - 1152.f * bias[0]) * unmul;
      s_acc[warp][r][(2 * c + 1) * (D / 8) + j] = (acc[j][1] - 1152.f * bias[1]) * unmul;
    }
    if (c == 0) {
      s_ml[warp][r][0] = m2 * 0.6931471805599453f;  // natural-log units, as the merge expects
      s_ml[warp][r][1] = lsum;
    }
  }
  __syncthreads();
  merge_warps_and_store<T, D, MAXG>(s_acc, s_ml, G, q_row, split, a, out);
  if (a.num_splits > 1) merge_splits_if_last<T, D>(a, seq, kv_head, q_row, ctx, out);
}

}  // namespace nanovllm::cuda::decode_detail
