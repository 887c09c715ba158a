#pragma once
// Decode attention over an INT8, FP8 E4M3 or INT4 cache on tensor cores, for 16-bit activations
// (F32 models keep the CUDA-core kernel's FP32 math): head_dim 64 or 128, G = Hq / Hkv <= 8.
//
// Why: the CUDA-core loop (decode_attention.cuh) spends G FMAs, a byte permute and an FADD on
// every V element and G x 2 dp4a plus shuffles on every K word; ncu finds it issue-bound at ~3.2
// TB/s while BF16 reaches ~4.3. Here a warp takes 16 tokens per iteration and the arithmetic
// goes to the tensor cores, transposed so that no fragment carries padding (the query heads, at
// most 8, are the mma's N side):
// - S^T = K q^T with mma.sync m16n8k32 s8 x s8 -> s32: the stored K bytes are the A operand as
//   loaded (no conversion), q the B operand in the same two int8 levels as the dp4a loop
//   (q x scale ~= qscale x (254 hi + lo)), so the integer scores are exactly that loop's; for
//   G <= 4 both levels ride in one mma (high levels in columns 0-3, low in 4-7).
// - O^T += V^T P^T with mma.sync m16n8k16 f16 x f16 -> f32: a V byte v becomes the FP16 1152 + v
//   with one byte permute and one LOP3 per pair (0x64xx is 1024 + xx, xx = v ^ 0x80); the
//   1152 x sum(P) this adds is accumulated by one more mma (ones x P^T) and subtracted at the
//   end. P is p x v_scale x 2^e in FP16, 2^e fixed per warp from its first token's v_scale so
//   that P stays in FP16's normal range whatever the model's V magnitudes.
// FP8 E4M3 takes the same fragments with FP16 in place of the integer tricks: every E4M3 value is
// an FP16 value, so one cvt.f16x2.e4m3x2 per pair converts K and V exactly; S^T = K q^T is
// m16n8k16 f16 x f16 -> f32 with q x softmax scale / 2^e in FP16 (finer than the BF16 q itself), one
// k-step per K word (its two pairs are the k slots 2c, 2c + 1 and 2c + 8, 2c + 9), and V needs
// no bias.
// INT4 takes the INT8 path after two LOP3s a word: a word's low nibbles (its even elements) x 16
// and its high nibbles (odd elements) x 16 become two int8 words, q's levels are built in that
// element order, and 1/16 joins q's scale. Its V pairs (2t, 2t + 1) share byte t: the low
// nibbles become 1032 + v (0x64xx with xx = v ^ 8), the high ones 1152 + 16 v (xx = (v ^ 8) << 4),
// each with its own bias and the high rows divided by 16 at the end.
//
// Fragment layouts (PTX mma, lane = 4 g + c). The head dimension is permuted so that each lane
// reads contiguous bytes. In S^T, rows are the tokens g and g + 8, k-step j's fragment words
// {c, c + 4} (A and B alike) are the lane's bytes [c D/4, (c+1) D/4) words 2j and 2j + 1, and
// the lane's outputs are heads 2c, 2c + 1 of its two tokens. In O^T, the k side is the tokens
// 2c, 2c+1, 2c+8, 2c+9 (a lane reads bytes [g D/8, (g+1) D/8) of their V rows; P^T of head g
// for them comes from the S^T lanes by four shuffles), m-tile t's rows g and g + 8 are the real
// dims g D/8 + 2t and g D/8 + 2t + 1, and the lane's outputs are heads 2c and 2c + 1, the heads of
// its own softmax state.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <type_traits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/decode_attention_common.cuh"
#include "backend/cuda/kv_codec.cuh"
#include "backend/cuda/launch.cuh"
#include "core/paged_kv.h"

namespace nanovllm::cuda::decode_detail {

// The loop tag of the tensor-core kernel (launch_typed dispatches on it); MIN_CTAS sets the
// register budget (4: <= 128 per thread, what head_dim 128 needs without spilling; 3: <= 168).
template <int MIN_CTAS_>
struct MmaLoop {
  static constexpr int WARP_TOKENS = 16;             // tokens per warp and iteration
  static constexpr int STEP = kWarps * WARP_TOKENS;  // tokens per CTA iteration
  static constexpr int MIN_CTAS = MIN_CTAS_;
};
template <class Loop>
constexpr bool is_mma_loop = false;
template <int N>
constexpr bool is_mma_loop<MmaLoop<N>> = true;

// c += A x B, int8 operands (m16n8k32), s32 accumulation.
__device__ __forceinline__ void mma_s8(int (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                       uint32_t a3, uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// c += A x B, FP16 operands (m16n8k16), FP32 accumulation.
__device__ __forceinline__ void mma_f16(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                        uint32_t a3, uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// The word 0x64806480 (or another), opaque to the compiler (see pair_biased_half2); `zero`
// is any runtime value that is 0.
__device__ __forceinline__ uint32_t biased_half2_word(uint32_t zero, uint32_t word = 0x64806480u) {
  return word | zero;
}

// Field MASK of byte b of x and of byte b of y as an FP16 pair: one byte permute to
// [x.b, -, y.b, -] and one LOP3 that keeps the field, sets the high bytes to 0x64 and flips the
// field's top bit (0x64xx is 1024 + xx). INT8 (MASK 0x00ff00ff, bias 0x64806480): v becomes
// 1152 + v (xx = v ^ 0x80 = v + 128). INT4 low nibbles (0x000f000f, 0x64086408): 1032 + v; high
// nibbles (0x00f000f0, 0x64806480): 1152 + 16 v. bias is biased_half2_word(): (p & MASK) ^ bias
// is one LOP3 only with one of its two constants in a register; with both as immediates the
// compiler splits it into two (+32 instructions a warp iteration at head_dim 128), so bias
// reaches it as a runtime value.
template <uint32_t MASK>
__device__ __forceinline__ uint32_t pair_biased_half2(uint32_t x, uint32_t y, int b, uint32_t bias) {
  const uint32_t picked = __byte_perm(x, y, uint32_t(b | ((4 + b) << 8)));
  uint32_t out;
  asm("lop3.b32 %0, %1, %2, %3, 0x6a;" : "=r"(out) : "r"(picked), "n"(MASK), "r"(bias));
  return out;  // 0x6a: (a & b) ^ c
}

// 2^x by the SFU alone (ex2.approx.ftz): exp2f adds a range test and two predicated multiplies
// per call to keep results below 2^-126 as denormals, which P (in FP16) and the rescale factor
// cannot use anyway; -inf gives 0.
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// K words of a lane (bytes [c D/4, (c+1) D/4) of one token row), V words (bytes [r D/8,
// (r+1) D/8)) as 16-byte (or 8-byte) loads.
template <int WORDS>
__device__ __forceinline__ void load_words(const char* p, uint32_t (&w)[WORDS]) {
  if constexpr (WORDS == 1) {
    w[0] = __ldcs(reinterpret_cast<const uint32_t*>(p));
  } else if constexpr (WORDS % 4 == 0) {
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
template <class T, KvDType KV, int D, int MAXG, class Loop>
__global__ void __launch_bounds__(kThreads, Loop::MIN_CTAS)
    decode_attention_mma_kernel(const T* __restrict__ q, PagedKvLayer kv, DecodeArgs a,
                                T* __restrict__ out) {
  start_after_previous_kernel();
  constexpr bool kFp8 = KV == KvDType::FP8_E4M3, kInt4 = KV == KvDType::INT4;
  static_assert(KV == KvDType::INT8 || kFp8 || kInt4, "INT8, FP8 E4M3 or INT4 caches");
  static_assert(D == 64 || D == 128, "head_dim 64 or 128");
  static_assert(MAXG <= 8, "query heads are the mma's 8 columns");
  constexpr int HB = kInt4 ? D / 2 : D;     // bytes of a (token, head) row
  constexpr int KW = D / 16;                // K words per lane and token (dims [c D/4, (c+1) D/4)), INT4 unpacked
  constexpr int KLW = kInt4 ? D / 32 : KW;  // of them loaded (INT4: 8 dims a word)
  constexpr int VD = D / 8;                 // V dims per lane (dims [g D/8, (g+1) D/8))
  constexpr int VLW = kInt4 ? D / 64 : D / 32;  // V words per lane and token
  constexpr int MT = D / 16;  // m-tiles of O^T
  constexpr int WT = Loop::WARP_TOKENS;
  constexpr uint32_t kAll = 0xffffffffu;
  __shared__ float s_acc[kWarps][MAXG][D];
  __shared__ float s_ml[kWarps][MAXG][2];

  const CtaWork work = cta_work(a);
  if (empty_split_done<T, D>(work, a, out)) return;
  const int seq = work.seq, kv_head = work.kv_head, split = work.split, ctx = work.ctx;
  const int begin = work.begin, end = work.end;
  const int64_t q_row = work.q_row;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, c = lane & 3;
  const int G = a.group;

  // ---- q x softmax scale (log2 units), dims [c D/4, (c+1) D/4) ----
  // INT8: two int8 levels. kPacked (G <= 4): the B columns (lane g) are head g & 3's high level
  // for g < 4 and its low level for g >= 4, so one mma chain gives both levels (S^T columns 2c,
  // 2c + 1 of lanes c < 2 hold the high level of heads 2c, 2c + 1, lanes c + 2 their low level).
  // Otherwise lane g holds head g's two levels and each k-step is two mma.
  // FP8: lane g holds head g as FP16 pairs (qhi, D / 8 words) of q / 2^e, e from the head's
  // max |q| (no FP16 overflow or subnormals whatever q's magnitude), 2^e back in qscale.
  constexpr bool kPacked = !kFp8 && MAXG <= 4;
  constexpr int QW = kFp8 ? D / 8 : KW;
  const int qh = kPacked ? (g & 3) : g;  // the head of this lane's q
  uint32_t qhi[QW], qlo[(kPacked || kFp8) ? 1 : KW];
  // score = qscale x (254 hi.k + lo.k) x k_scale (INT8, INT4), qscale x (q / 2^e).k x k_scale
  // (FP8), for heads 2c, 2c + 1
  float qscale_e[2];
  {
    constexpr float kLog2e = 1.4426950408889634f;
    float qf[D / 4];  // in the order of the lane's K bytes (INT4: as unpacked)
    float amax = 0.f;
#pragma unroll
    for (int i = 0; i < D / 4; ++i) {
      // INT4's unpacked word 2m holds elements 8m + {0, 2, 4, 6}, word 2m + 1 8m + {1, 3, 5, 7}
      const int dim = kInt4 ? 8 * (i / 8) + 2 * (i % 4) + (i / 4) % 2 : i;
      qf[i] = qh < G ? to_f(q[(q_row + qh) * D + c * (D / 4) + dim]) * a.scale : 0.f;
      amax = fmaxf(amax, fabsf(qf[i]));
    }
    amax = fmaxf(amax, __shfl_xor_sync(kAll, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(kAll, amax, 2));
    float qscale;
    if constexpr (kFp8) {
      int e = 0;
      if (amax > 0.f) frexpf(amax, &e);
      const float down = ldexpf(1.f, -e);  // exact
#pragma unroll
      for (int w = 0; w < QW; ++w) qhi[w] = pack_half2(qf[2 * w] * down, qf[2 * w + 1] * down);
      qscale = ldexpf(kLog2e, e);
    } else {
      uint32_t hi[KW], lo[KW];
      qscale = split_query_int8<D / 4>(qf, amax, hi, lo) * (kInt4 ? kLog2e / 16.f : kLog2e);
#pragma unroll
      for (int w = 0; w < KW; ++w) {
        if constexpr (kPacked) {
          qhi[w] = g < 4 ? hi[w] : lo[w];
        } else {
          qhi[w] = hi[w];
          qlo[w] = lo[w];
        }
      }
    }
    const int ch = kPacked ? (c & 1) : c;  // lanes c and c + 2 share heads when packed
    qscale_e[0] = __shfl_sync(kAll, qscale, 4 * (2 * ch));
    qscale_e[1] = __shfl_sync(kAll, qscale, 4 * (2 * ch + 1));
  }

  const int32_t* table = a.block_tables + int64_t(seq) * a.max_blocks_per_seq;
  const int hkv = kv.num_kv_heads;
  const int64_t stride = int64_t(hkv) * HB;  // bytes per slot
  const int bs = kv.block_size;
  const int vtok[4] = {2 * c, 2 * c + 1, 2 * c + 8, 2 * c + 9};  // this lane's V tokens
  // Loop-invariant offsets of this lane's data from the first slot of a warp iteration's 16
  // tokens, head and lane parts included: K bytes of tokens g, g + 8, V bytes of the vtok
  // tokens, scale elements of tokens g, g + 8. Unsigned 32-bit (16 slots of a few KB), so an
  // address is one 64-bit row pointer plus a zero-extended register, with the cache bases kept
  // in uniform registers; one register each under the 128-register budget.
  const uint32_t k_lane = uint32_t(kv_head * HB + c * 4 * KLW), v_lane = uint32_t(kv_head * HB + g * 4 * VLW);
  const uint32_t k_off[2] = {k_lane + uint32_t(g * stride), k_lane + uint32_t((g + 8) * stride)};
  const uint32_t v_off[4] = {v_lane + uint32_t(vtok[0] * stride), v_lane + uint32_t(vtok[1] * stride),
                             v_lane + uint32_t(vtok[2] * stride), v_lane + uint32_t(vtok[3] * stride)};
  const uint32_t s_off[2] = {uint32_t(g * hkv + kv_head), uint32_t((g + 8) * hkv + kv_head)};
  const char* const kcache = static_cast<const char*>(kv.k);
  const char* const vcache = static_cast<const char*>(kv.v);
  const char* const kbase = kcache + k_lane;  // this lane's K / V bytes of slot 0 (partial tiles)
  const char* const vbase = vcache + v_lane;
  // P^T of head g for tokens 2c, 2c + 8 lives in lane 4 (2c) + g / 2, for 2c + 1, 2c + 9 in the
  // next row's lane; which of that lane's two heads: g & 1.
  const int p_src0 = 4 * (2 * c) + g / 2, p_src1 = p_src0 + 4;
  const uint32_t zero = uint32_t(G) >> 31;  // G > 0: the shift gives 0
  const uint32_t v_bias = biased_half2_word(zero);                 // INT8, INT4's high nibbles
  const uint32_t v_bias_lo = biased_half2_word(zero, 0x64086408u);  // INT4's low nibbles

  float acc[MT][4];  // O^T [dims g D/8 + 2t, +1][heads 2c, 2c + 1], x 2^e, biased by 1152 sum(P)
  float bias[4] = {0.f, 0.f, 0.f, 0.f};  // sum(P) of heads 2c, 2c + 1 (c0/c2, c1/c3)
#pragma unroll
  for (int t = 0; t < MT; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.f;
  float m2[2] = {-FLT_MAX, -FLT_MAX};  // running max of heads 2c, 2c + 1 (log2 units; finite)
  float lsum[2] = {0.f, 0.f};          // this lane's share of their running sums
  float vmul = 0.f;                    // 2^e (0: not chosen yet, the warp has seen no token)

  // One warp iteration over tokens [t0, t0 + 16). FULL: all of them attended and in one cache
  // block (no per-token checks or lookups); otherwise each token is checked and looked up.
  // FULL takes the cache block id of t0 (looked up an iteration ahead).
  auto iteration = [&](auto full, int t0, int32_t block_id) {
    constexpr bool FULL = decltype(full)::value;
    uint32_t kw[2][KLW];         // tokens g, g + 8, as loaded
    uint32_t vw[4][VLW];         // tokens vtok
    float ks[2], vs[2];          // scales of tokens g, g + 8
    bool valid[2];
    if constexpr (FULL) {
      // slot of token t0 + i is slot0 + i (32-bit: a layer's cache has < 2^31 slots and
      // < 2^31 scales)
      const uint32_t blk = a.block_size.quotient(uint32_t(t0));
      const uint32_t slot0 =
          uint32_t(block_id) * uint32_t(bs) + a.block_size.remainder(uint32_t(t0), blk);
      const uint64_t row = uint64_t(slot0) * uint32_t(stride);  // one 32 x 32 -> 64 multiply
      const char* const krow = kcache + row;
      const char* const vrow = vcache + row;
      const uint32_t sp = slot0 * uint32_t(hkv);
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        load_words<KLW>(krow + k_off[i], kw[i]);
        ks[i] = __ldcs(kv.k_scale + (sp + s_off[i]));
        vs[i] = __ldcs(kv.v_scale + (sp + s_off[i]));
        valid[i] = true;
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) load_words<VLW>(vrow + v_off[i], vw[i]);
    } else {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int pos = t0 + g + 8 * i;
        valid[i] = pos < end;
#pragma unroll
        for (int w = 0; w < KLW; ++w) kw[i][w] = 0u;
        ks[i] = vs[i] = 0.f;
        if (valid[i]) {
          const int64_t sl = slot_of(a, table, pos);
          load_words<KLW>(kbase + sl * stride, kw[i]);
          ks[i] = __ldcs(kv.k_scale + sl * hkv + kv_head);
          vs[i] = __ldcs(kv.v_scale + sl * hkv + kv_head);
        }
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int pos = t0 + vtok[i];
#pragma unroll
        for (int w = 0; w < VLW; ++w) vw[i][w] = 0u;
        if (pos < end) load_words<VLW>(vbase + slot_of(a, table, pos) * stride, vw[i]);
      }
    }
    // P x 2^e stays in FP16's normal range: e from the v_scale of the warp's first token (lane
    // 0's token t0), fixed from then on (2^e exact; the acc is unscaled once at the end).
    if (vmul == 0.f) {
      const float v0 = __shfl_sync(kAll, vs[0], 0);
      int e = 0;
      if (v0 > 0.f) frexpf(v0, &e);
      vmul = ldexpf(1.f, -e);
    }

    // ---- S^T = K q^T: tokens g, g + 8 (rows) x heads 2c, 2c + 1 ----
    float x[2][2];  // [token g, g + 8][head 2c, 2c + 1], log2 units
    if constexpr (kFp8) {
      float s[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int j = 0; j < KW; ++j) {
        uint32_t k0[2], k1[2];  // tokens g, g + 8: dims 4j, 4j + 1 and 4j + 2, 4j + 3 of the lane's
        e4m3x4_to_half2x2(kw[0][j], k0[0], k0[1]);
        e4m3x4_to_half2x2(kw[1][j], k1[0], k1[1]);
        mma_f16(s, k0[0], k1[0], k0[1], k1[1], qhi[2 * j], qhi[2 * j + 1]);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int e = 0; e < 2; ++e) x[i][e] = valid[i] ? s[2 * i + e] * (qscale_e[e] * ks[i]) : -INFINITY;
    } else {
      uint32_t k8[2][KW];  // int8 words of tokens g, g + 8 (INT4: unpacked, x 16)
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int w = 0; w < KLW; ++w) {
          if constexpr (kInt4) {
            k8[i][2 * w] = (kw[i][w] << 4) & 0xf0f0f0f0u;  // even elements
            k8[i][2 * w + 1] = kw[i][w] & 0xf0f0f0f0u;     // odd elements
          } else {
            k8[i][w] = kw[i][w];
          }
        }
      int score[4];  // 254 hi + lo of [token g, g + 8][head 2c, 2c + 1]
      if constexpr (kPacked) {
        int s[4] = {0, 0, 0, 0};
#pragma unroll
        for (int j = 0; j < D / 32; ++j)
          mma_s8(s, k8[0][2 * j], k8[1][2 * j], k8[0][2 * j + 1], k8[1][2 * j + 1], qhi[2 * j], qhi[2 * j + 1]);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const int other = __shfl_xor_sync(kAll, s[k], 2);  // the other level, lane c ^ 2
          score[k] = c < 2 ? s[k] * 254 + other : other * 254 + s[k];
        }
      } else {
        int shi[4] = {0, 0, 0, 0}, slo[4] = {0, 0, 0, 0};
#pragma unroll
        for (int j = 0; j < D / 32; ++j) {
          mma_s8(shi, k8[0][2 * j], k8[1][2 * j], k8[0][2 * j + 1], k8[1][2 * j + 1], qhi[2 * j], qhi[2 * j + 1]);
          mma_s8(slo, k8[0][2 * j], k8[1][2 * j], k8[0][2 * j + 1], k8[1][2 * j + 1], qlo[2 * j], qlo[2 * j + 1]);
        }
#pragma unroll
        for (int k = 0; k < 4; ++k) score[k] = shi[k] * 254 + slo[k];
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          x[i][e] = valid[i] ? float(score[2 * i + e]) * (qscale_e[e] * ks[i]) : -INFINITY;
    }

    // ---- online softmax of heads 2c, 2c + 1 over the 16 tokens (8 lanes share each) ----
    float mx[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) mx[e] = fmaxf(x[0][e], x[1][e]);
#pragma unroll
    for (int o = 4; o < 32; o *= 2)
#pragma unroll
      for (int e = 0; e < 2; ++e) mx[e] = fmaxf(mx[e], __shfl_xor_sync(kAll, mx[e], o));
    // One branch for both heads (a head whose max did not grow is rescaled by exactly 1).
    if (mx[0] > m2[0] || mx[1] > m2[1]) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float m_new = fmaxf(m2[e], mx[e]);
        const float factor = exp2_ftz(m2[e] - m_new);
        m2[e] = m_new;
        lsum[e] *= factor;
        bias[e] *= factor;
        bias[e + 2] *= factor;
#pragma unroll
        for (int t = 0; t < MT; ++t) {
          acc[t][e] *= factor;
          acc[t][e + 2] *= factor;
        }
      }
    }
    float p[2][2];
#pragma unroll
    for (int e = 0; e < 2; ++e)
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        p[i][e] = exp2_ftz(x[i][e] - m2[e]);  // 0 for an invalid token
        lsum[e] += p[i][e];
      }
    // P^T as the B fragment: lane (g, c) needs head g at tokens 2c, 2c+1 (b0), 2c+8, 2c+9 (b1).
    const float w0 = vs[0] * vmul, w1 = vs[1] * vmul;  // tokens g, g + 8
    const uint32_t own0 = pack_half2(p[0][0] * w0, p[1][0] * w1);  // head 2c
    const uint32_t own1 = pack_half2(p[0][1] * w0, p[1][1] * w1);  // 2c + 1
    const uint32_t from0_h0 = __shfl_sync(kAll, own0, p_src0), from0_h1 = __shfl_sync(kAll, own1, p_src0);
    const uint32_t from1_h0 = __shfl_sync(kAll, own0, p_src1), from1_h1 = __shfl_sync(kAll, own1, p_src1);
    const uint32_t t_even = g < G ? ((g & 1) ? from0_h1 : from0_h0) : 0u;  // tokens 2c, 2c + 8
    const uint32_t t_odd = g < G ? ((g & 1) ? from1_h1 : from1_h0) : 0u;   // 2c + 1, 2c + 9
    const uint32_t pb0 = __byte_perm(t_even, t_odd, 0x5410u);  // tokens 2c, 2c + 1
    const uint32_t pb1 = __byte_perm(t_even, t_odd, 0x7632u);  // tokens 2c + 8, 2c + 9
    if constexpr (!kFp8) {
      constexpr uint32_t kOnes = 0x3C003C00u;
      mma_f16(bias, kOnes, kOnes, kOnes, kOnes, pb0, pb1);
    }

    // ---- O^T += V^T P^T: m-tile t is bytes 2t (row g) and 2t + 1 (row g + 8) of the V rows ----
#pragma unroll
    for (int t = 0; t < MT; ++t) {
      if constexpr (kFp8) {
        const int w = (2 * t) / 4, b = (2 * t) % 4;
        // [x.b, y.b, x.(b+1), y.(b+1)] of tokens 2c, 2c + 1 and of 2c + 8, 2c + 9
        const uint32_t sel = uint32_t(b | ((4 + b) << 4) | ((b + 1) << 8) | ((5 + b) << 12));
        uint32_t a[4];
        e4m3x4_to_half2x2(__byte_perm(vw[0][w], vw[1][w], sel), a[0], a[1]);
        e4m3x4_to_half2x2(__byte_perm(vw[2][w], vw[3][w], sel), a[2], a[3]);
        mma_f16(acc[t], a[0], a[1], a[2], a[3], pb0, pb1);
      } else if constexpr (kInt4) {
        // byte t holds dims 2t (low nibble, row g) and 2t + 1 (high nibble, row g + 8)
        constexpr uint32_t kLo = 0x000f000fu, kHi = 0x00f000f0u;
        const int w = t / 4, b = t % 4;
        mma_f16(acc[t], pair_biased_half2<kLo>(vw[0][w], vw[1][w], b, v_bias_lo),
                pair_biased_half2<kHi>(vw[0][w], vw[1][w], b, v_bias),
                pair_biased_half2<kLo>(vw[2][w], vw[3][w], b, v_bias_lo),
                pair_biased_half2<kHi>(vw[2][w], vw[3][w], b, v_bias), pb0, pb1);
      } else {
        const int w = (2 * t) / 4, b = (2 * t) % 4;
        constexpr uint32_t kByte = 0x00ff00ffu;
        mma_f16(acc[t], pair_biased_half2<kByte>(vw[0][w], vw[1][w], b, v_bias),
                pair_biased_half2<kByte>(vw[0][w], vw[1][w], b + 1, v_bias),
                pair_biased_half2<kByte>(vw[2][w], vw[3][w], b, v_bias),
                pair_biased_half2<kByte>(vw[2][w], vw[3][w], b + 1, v_bias), pb0, pb1);
      }
    }
  };

  // A warp's 16 tokens start at a multiple of 16, so they share one cache block when 16 | bs.
  int t0 = begin + warp * WT;
  if (bs % WT == 0) {
    // The next iteration's block-table entry is read one iteration early, so that the data
    // loads do not wait for a table lookup first.
    int32_t next_block = t0 + WT <= end ? table[a.block_size.quotient(uint32_t(t0))] : 0;
#pragma unroll 1
    for (; t0 + WT <= end; t0 += Loop::STEP) {
      const int32_t block_id = next_block;
      const int tn = t0 + Loop::STEP;
      if (tn + WT <= end) next_block = table[a.block_size.quotient(uint32_t(tn))];
      iteration(std::true_type{}, t0, block_id);
    }
  }
#pragma unroll 1
  for (; t0 < end; t0 += Loop::STEP) iteration(std::false_type{}, t0, 0);

  // ---- this warp's state of heads 2c, 2c + 1 into shared memory (real dims), then the merge ----
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    lsum[e] += __shfl_xor_sync(kAll, lsum[e], 4);
    lsum[e] += __shfl_xor_sync(kAll, lsum[e], 8);
    lsum[e] += __shfl_xor_sync(kAll, lsum[e], 16);
  }
  const float unmul = vmul > 0.f ? 1.f / vmul : 1.f;  // a power of two: exact
  // INT4: rows g hold 1032 + v, rows g + 8 1152 + 16 v
  constexpr float kBiasRowG = kInt4 ? 1032.f : 1152.f;
  const float unmul_g8 = kInt4 ? unmul * (1.f / 16.f) : unmul;
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const int h = 2 * c + e;
    if (h < G) {
#pragma unroll
      for (int t = 0; t < MT; ++t) {
        s_acc[warp][h][g * VD + 2 * t] = (acc[t][e] - kBiasRowG * bias[e]) * unmul;
        s_acc[warp][h][g * VD + 2 * t + 1] = (acc[t][e + 2] - 1152.f * bias[e + 2]) * unmul_g8;
      }
      if (g == 0) {
        s_ml[warp][h][0] = m2[e] * 0.6931471805599453f;  // natural-log units, as the merge expects
        s_ml[warp][h][1] = lsum[e];
      }
    }
  }
  __syncthreads();
  merge_warps_and_store<T, D, MAXG>(s_acc, s_ml, G, q_row, split, a, out);
  if (a.num_splits > 1) merge_splits_if_last<T, D>(a, seq, kv_head, q_row, ctx, out);
}

}  // namespace nanovllm::cuda::decode_detail
