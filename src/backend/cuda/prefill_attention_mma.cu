// Prefill / mixed attention on tensor cores with the FlashAttention-2 register loop (mma.sync
// m16n8k16, BF16/F16 in, FP32 accumulate), head_dim 64 or 128. The CTA tiling is the WMMA
// kernel's (prefill_common.cuh: 64 query rows = BQ tokens x GC heads of one GQA group; keys in
// tiles of 64 through the block table, causal), and each K/V tile is decoded once into shared
// memory in the activation type as there. What changes: S = Q K^T and O += P V stay in registers
// (each warp owns 16 query rows: S is 8 n-tiles of 8 keys, O is D/8 n-tiles of 8 dims), the
// online softmax works on the S fragments (a row lives in the 4 lanes of a quad), P becomes the A
// operand of P V without leaving registers, and Q, K and V fragments come from shared memory
// through ldmatrix (V transposed). No S, P or O tile in shared memory, no per-row scalar loops.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>
#include <type_traits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/kv_codec.cuh"
#include "backend/cuda/prefill_common.cuh"

namespace nanovllm::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kRows = 64;   // query rows per CTA, 16 per warp
constexpr int kKeys = 64;   // keys per tile
constexpr int kPad = 8;     // row padding (elements): rows 16-byte aligned, ldmatrix conflict-free

// How a key tile reaches shared memory: kDirect (the cache holds T) copies it with cp.async into
// one of two Ks/Vs buffers; kStaged (1-byte and 4-bit formats) copies the raw bytes and scales
// with cp.async into one of two staging buffers and decodes them into Ks/Vs; kSync (the rest:
// F32 or the other 16-bit type) loads, decodes and stores in one pass. kDirect and kStaged fetch
// tile t + 1 while tile t is computed.
enum class TileFill { kDirect, kStaged, kSync };
template <class T, KvDType KV>
constexpr TileFill tile_fill() {
  if constexpr ((KV == KvDType::BF16 && std::is_same_v<T, __nv_bfloat16>) ||
                (KV == KvDType::F16 && std::is_same_v<T, __half>))
    return TileFill::kDirect;
  else if constexpr (KV == KvDType::INT8 || KV == KvDType::FP8_E4M3 || KV == KvDType::INT4)
    return TileFill::kStaged;
  else
    return TileFill::kSync;
}

// Shared memory: Qs [64][D + 8] of T, Ks and Vs [bufs][64][D + 8] of T, and for kStaged the raw
// K and V tiles [2][64][head bytes] plus their scales [2][64] floats.
template <class T, KvDType KV, int D>
constexpr size_t mma_smem_bytes() {
  constexpr TileFill fill = tile_fill<T, KV>();
  constexpr size_t tile = size_t(kRows) * (D + kPad) * 2;
  constexpr size_t bufs = fill == TileFill::kDirect ? 2 : 1;
  constexpr size_t staged =
      fill == TileFill::kStaged ? 2 * 2 * (size_t(kKeys) * kv_head_bytes(KV, D) + kKeys * 4) : 0;
  return tile + 2 * bufs * tile + staged;
}

// 16 (or, for the scales, 4) bytes global -> shared without registers; src_bytes 0 writes zeros.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
                   static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
               "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async4(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(
                   static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
               "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int PENDING>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(PENDING));
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row_addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row_addr)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row_addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row_addr)));
}

template <class T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two floats rounded to T, packed (lo in the low half), and the rounded values back as floats.
template <class T>
__device__ __forceinline__ uint32_t pack_rounded(float& lo, float& hi) {
  const T l = from_f<T>(lo), h = from_f<T>(hi);
  lo = to_f(l);
  hi = to_f(h);
  const uint32_t lb = *reinterpret_cast<const uint16_t*>(&l), hb = *reinterpret_cast<const uint16_t*>(&h);
  return lb | (hb << 16);
}

template <class T, KvDType KV, int D>
__global__ void __launch_bounds__(kThreads) prefill_attention_mma_kernel(const T* __restrict__ q,
                                                                          PagedKvLayer kv,
                                                                          PrefillArgs a,
                                                                          T* __restrict__ out) {
  start_after_previous_kernel();
  constexpr int ld = D + kPad;
  constexpr int KSTEPS = D / 16;  // k-steps of S = Q K^T
  constexpr int DTILES = D / 8;   // n-tiles of O
  constexpr TileFill kFill = tile_fill<T, KV>();
  constexpr int kBufs = kFill == TileFill::kDirect ? 2 : 1;
  constexpr int HB = int(kv_head_bytes(KV, D));  // bytes of one stored head vector
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* Qs = reinterpret_cast<T*>(smem_raw);  // [64][ld]
  T* Ks = Qs + kRows * ld;                 // [kBufs][64][ld]
  T* Vs = Ks + kBufs * kKeys * ld;         // [kBufs][64][ld]
  char* raw_k = reinterpret_cast<char*>(Vs + kBufs * kKeys * ld);  // kStaged: [2][64][HB]
  char* raw_v = raw_k + 2 * kKeys * HB;                             // [2][64][HB]
  float* raw_ks = reinterpret_cast<float*>(raw_v + 2 * kKeys * HB);  // [2][64]
  float* raw_vs = raw_ks + 2 * kKeys;                                // [2][64]

  const PrefillTile tile = prefill_tile(a);
  if (tile.ntok <= 0) return;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int r = lane >> 2, c = lane & 3;
  const int32_t* table = a.block_tables + int64_t(tile.seq) * a.max_blocks_per_seq;
  constexpr int chunks = D / 8;  // 16-byte chunks of a row of T

  // Starts copying the key tile at kt into buffer b (kDirect: Ks/Vs, kStaged: the raw staging);
  // keys past the tile's last visible one are zeros. One commit group per call.
  auto fetch_tile = [&](int kt, int b) {
    const char* kbase = static_cast<const char*>(kv.k);
    const char* vbase = static_cast<const char*>(kv.v);
    constexpr int kPieces = kFill == TileFill::kDirect ? chunks : (HB + 15) / 16;
    for (int idx = tid; idx < kKeys * kPieces; idx += kThreads) {
      const int j = idx / kPieces, piece = idx % kPieces;
      const int pos = kt + j;
      const bool ok = pos < tile.num_keys;
      int64_t slot = 0;
      if (ok) slot = int64_t(table[pos / kv.block_size]) * kv.block_size + pos % kv.block_size;
      const int64_t off = (slot * kv.num_kv_heads + tile.kv_head) * HB + piece * 16;
      if constexpr (kFill == TileFill::kDirect) {
        cp_async16(Ks + (b * kKeys + j) * ld + piece * 8, kbase + off, ok ? 16 : 0);
        cp_async16(Vs + (b * kKeys + j) * ld + piece * 8, vbase + off, ok ? 16 : 0);
      } else {
        cp_async16(raw_k + (b * kKeys + j) * HB + piece * 16, kbase + off, ok ? 16 : 0);
        cp_async16(raw_v + (b * kKeys + j) * HB + piece * 16, vbase + off, ok ? 16 : 0);
        if (piece == 0) {
          const int64_t so = slot * kv.num_kv_heads + tile.kv_head;
          cp_async4(raw_ks + b * kKeys + j, kv.k_scale + so, ok ? 4 : 0);
          cp_async4(raw_vs + b * kKeys + j, kv.v_scale + so, ok ? 4 : 0);
        }
      }
    }
    cp_async_commit();
  };
  if constexpr (kFill != TileFill::kSync) fetch_tile(0, 0);

  load_query_tile(q, a, tile, kRows, kThreads, Qs, ld);

  // The two rows of this lane (r and r + 8 of its warp's 16): last visible key, -1 for none.
  int row_pos[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int i = warp * 16 + r + 8 * h;
    const int tk = i / a.gc, g = tile.g0 + i % a.gc;
    const bool ok = i < a.bq * a.gc && tk < tile.ntok && g < a.group;
    row_pos[h] = ok ? tile.first_pos + tile.tok0 + tk : -1;
  }
  __syncthreads();

  // ---- Q fragments of the warp's 16 rows, all k-steps (A operand, row-major) ----
  uint32_t qf[KSTEPS][4];
  {
    const int row = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
    const int col = (lane >> 4) * 8;
#pragma unroll
    for (int k = 0; k < KSTEPS; ++k) ldmatrix_x4(qf[k], Qs + row * ld + k * 16 + col);
  }

  float o[DTILES][4];
#pragma unroll
  for (int j = 0; j < DTILES; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  float m[2] = {-FLT_MAX, -FLT_MAX};  // running max of rows r, r + 8 (log2 units)
  float l[2] = {0.f, 0.f};            // this lane's share of their running sums

  for (int kt = 0, buf = 0; kt < tile.num_keys; kt += kKeys, buf ^= 1) {
    __syncthreads();  // the previous tile fully consumed (its buffers may be refilled)
    if constexpr (kFill != TileFill::kSync) {
      if (kt + kKeys < tile.num_keys) {
        fetch_tile(kt + kKeys, buf ^ 1);
        cp_async_wait<1>();  // this thread's copies of tile kt have landed
      } else {
        cp_async_wait<0>();
      }
    }
    if constexpr (kFill == TileFill::kStaged) {
      __syncthreads();  // every thread's raw copies of tile kt visible
      for (int idx = tid; idx < kKeys * chunks; idx += kThreads) {
        const int j = idx / chunks, e = (idx % chunks) * 8;
        float kr[8], vr[8];
        kv_load8<KV>(raw_k + (buf * kKeys + j) * HB, e, kr);
        kv_load8<KV>(raw_v + (buf * kKeys + j) * HB, e, vr);
        const float ks = raw_ks[buf * kKeys + j], vs = raw_vs[buf * kKeys + j];
        Vec<T, 8> kvv, vvv;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          kvv.v[i] = from_f<T>(kr[i] * ks);
          vvv.v[i] = from_f<T>(vr[i] * vs);
        }
        store_vec<T, 8>(Ks + j * ld + e, kvv);
        store_vec<T, 8>(Vs + j * ld + e, vvv);
      }
    } else if constexpr (kFill == TileFill::kSync) {
      for (int idx = tid; idx < kKeys * chunks; idx += kThreads) {
        const int j = idx / chunks, e = (idx % chunks) * 8;
        float kr[8], vr[8];
        load_key_value8<KV>(kv, table, kt + j, tile.num_keys, tile.kv_head, e, kr, vr);
        Vec<T, 8> kvv, vvv;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          kvv.v[i] = from_f<T>(kr[i]);
          vvv.v[i] = from_f<T>(vr[i]);
        }
        store_vec<T, 8>(Ks + j * ld + e, kvv);
        store_vec<T, 8>(Vs + j * ld + e, vvv);
      }
    }
    __syncthreads();
    const T* Kt = Ks + (kFill == TileFill::kDirect ? buf : 0) * kKeys * ld;  // this tile's keys
    const T* Vt = Vs + (kFill == TileFill::kDirect ? buf : 0) * kKeys * ld;

    // ---- S[16 x 64] = Q_w K^T: n-tile n holds keys 8n..8n+7 ----
    float s[8][4];
#pragma unroll
    for (int n = 0; n < 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      // x4: b0/b1 of k-steps k and k + 1 (matrices at dims 16k, 16k + 8, 16k + 16, 16k + 24)
      const T* krow = Kt + (8 * n + (lane & 7)) * ld + (lane >> 3) * 8;
#pragma unroll
      for (int k = 0; k < KSTEPS; k += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, krow + 16 * k);
        mma16816<T>(s[n], qf[k], b[0], b[1]);
        mma16816<T>(s[n], qf[k + 1], b[2], b[3]);
      }
    }

    // ---- online softmax on the fragments: c0, c1 are row r, c2, c3 row r + 8 ----
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int h = e >> 1, key = kt + 8 * n + 2 * c + (e & 1);
        s[n][e] = key <= row_pos[h] ? s[n][e] * a.scale : -INFINITY;
        mx[h] = fmaxf(mx[h], s[n][e]);
      }
    float alpha[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
      alpha[h] = exp2f(m[h] - mx[h]);
      m[h] = mx[h];
      l[h] *= alpha[h];
    }
#pragma unroll
    for (int j = 0; j < DTILES; ++j) {
      o[j][0] *= alpha[0];
      o[j][1] *= alpha[0];
      o[j][2] *= alpha[1];
      o[j][3] *= alpha[1];
    }
    // P as A fragments of the 4 key k-steps (16 keys each): a0/a1 from n-tile 2k, a2/a3 from
    // 2k + 1; rounded to T, and the rounded weights summed (what P V uses).
    uint32_t pf[4][4];
#pragma unroll
    for (int k = 0; k < 4; ++k)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float* sn = s[2 * k + half];
        float p0 = exp2f(sn[0] - m[0]), p1 = exp2f(sn[1] - m[0]);
        float p2 = exp2f(sn[2] - m[1]), p3 = exp2f(sn[3] - m[1]);
        pf[k][2 * half] = pack_rounded<T>(p0, p1);
        pf[k][2 * half + 1] = pack_rounded<T>(p2, p3);
        l[0] += p0 + p1;
        l[1] += p2 + p3;
      }

    // ---- O[16 x D] += P V: V tile [64 keys][D] row-major, B fragments by ldmatrix.trans ----
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      // x4.trans: b0/b1 of dim n-tiles j and j + 1 (matrices: keys 16k / 16k + 8, dims 8j / 8j + 8)
      const T* vrow = Vt + (16 * k + (lane & 7) + ((lane >> 3) & 1) * 8) * ld + (lane >> 4) * 8;
#pragma unroll
      for (int j = 0; j < DTILES; j += 2) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, vrow + 8 * j);
        mma16816<T>(o[j], pf[k], b[0], b[1]);
        mma16816<T>(o[j + 1], pf[k], b[2], b[3]);
      }
    }
  }

  // ---- rows r, r + 8: sum over the quad, normalize, store (c0/c1 dims 8j + 2c, + 1) ----
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
    if (row_pos[h] < 0) continue;
    const int i = warp * 16 + r + 8 * h;
    const int tk = i / a.gc, g = tile.g0 + i % a.gc;
    const int64_t t = tile.q_begin + tile.tok0 + tk;
    T* orow = out + (t * a.num_heads + int64_t(tile.kv_head) * a.group + g) * D;
    const float inv = l[h] > 0.f ? 1.f / l[h] : 0.f;
#pragma unroll
    for (int j = 0; j < DTILES; ++j) {
      orow[8 * j + 2 * c] = from_f<T>(o[j][2 * h] * inv);
      orow[8 * j + 2 * c + 1] = from_f<T>(o[j][2 * h + 1] * inv);
    }
  }
}

template <class T, KvDType KV, int D>
void launch_typed(const Tensor& q, const PagedKvLayer& kv, const PrefillLaunch& l, Tensor out,
                  const Stream& stream) {
  launch_with_smem(prefill_attention_mma_kernel<T, KV, D>, l.grid, kThreads,
                   mma_smem_bytes<T, KV, D>(),
                   stream, "paged_attention (prefill, mma): raising the shared-memory limit",
                   q.ptr<const T>(), kv, l.args, out.ptr<T>());
}

}  // namespace

bool prefill_attention_mma_supported(DType act, int32_t head_dim) {
  return (act == DType::BF16 || act == DType::F16) && (head_dim == 64 || head_dim == 128);
}

void launch_prefill_attention_mma(const Tensor& q, const PagedKvLayer& kv,
                                  const AttentionMeta& meta, float scale, Tensor out,
                                  const Stream& stream) {
  if (meta.num_seqs == 0 || q.dim(0) == 0) return;
  const int D = kv.head_dim;
  NANOVLLM_CHECK(prefill_attention_mma_supported(q.dtype, D),
                 "paged_attention (prefill, mma): needs bfloat16/float16 activations and head_dim "
                 "64 or 128, got ", dtype_name(q.dtype), " and ", D);
  // exp2 in the kernel: the scale carries log2(e)
  const PrefillLaunch l = plan_prefill(q, kv, meta, scale * 1.4426950408889634f, kRows);
  dispatch_kv(kv.dtype, [&](auto kvtag) {
    constexpr KvDType KV = decltype(kvtag)::value;
    auto with_d = [&](auto dconst) {
      constexpr int Dc = decltype(dconst)::value;
      if (q.dtype == DType::BF16) launch_typed<__nv_bfloat16, KV, Dc>(q, kv, l, out, stream);
      else launch_typed<__half, KV, Dc>(q, kv, l, out, stream);
    };
    if (D == 64) with_d(std::integral_constant<int, 64>{});
    else with_d(std::integral_constant<int, 128>{});
  });
  check_launch("paged_attention (prefill, mma)");
}

}  // namespace nanovllm::cuda
