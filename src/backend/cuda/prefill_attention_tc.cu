// Prefill / mixed attention on tensor cores (WMMA, BF16 or F16 in, FP32 accumulate), the
// FlashAttention-2 loop: a CTA owns 64 query rows (BQ consecutive query tokens of one sequence x
// GC query heads of one GQA group) and walks the keys they may see (causal; cached prefixes and
// earlier chunks through the block table) in tiles of 64 keys. Each K/V tile is decoded once into
// shared memory in the activation type (the quantized formats' scale applied in registers as it
// is filled: no dequantized copy in global memory). Each of the 4 warps owns 16 rows: S = Q K^T
// on tensor cores into shared memory, the online softmax by two lanes per row, P (rounded to the
// activation type) V accumulated on tensor cores into an FP32 output tile in shared memory.
#include <mma.h>

#include <cfloat>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/kv_codec.cuh"
#include "backend/cuda/prefill_common.cuh"

namespace nanovllm::cuda {
namespace {

namespace wmma = nvcuda::wmma;

constexpr int kThreads = 128;
constexpr int kRows = 64;  // query rows per CTA, 16 per warp
constexpr int kKeys = 64;  // keys per tile
constexpr int kPadAct = 8;  // row padding (elements) of the 16-bit tiles: keeps 32-byte alignment
constexpr int kPadF32 = 4;  // row padding of the float tiles

// Shared memory of one CTA, in bytes, for head_dim D: Qs, Ks, Vs [64][D + 8] of T,
// Ss [64][68] float, Ps [64][72] of T, Os [64][D + 4] float.
size_t tc_smem_bytes(int D) {
  return 2 * (3 * size_t(kRows) * (D + kPadAct) + size_t(kRows) * (kKeys + kPadAct)) +
         4 * (size_t(kRows) * (kKeys + kPadF32) + size_t(kRows) * (D + kPadF32));
}

template <class T, KvDType KV>
__global__ void __launch_bounds__(kThreads) prefill_attention_tc_kernel(const T* __restrict__ q,
                                                                         PagedKvLayer kv,
                                                                         PrefillArgs a,
                                                                         T* __restrict__ out) {
  start_after_previous_kernel();
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const int D = a.D, ldt = D + kPadAct, lds = kKeys + kPadF32, ldp = kKeys + kPadAct,
            ldo = D + kPadF32;
  T* Qs = reinterpret_cast<T*>(smem_raw);  // [64][ldt]
  T* Ks = Qs + kRows * ldt;                // [64][ldt]
  T* Vs = Ks + kKeys * ldt;                // [64][ldt]
  T* Ps = Vs + kKeys * ldt;                // [64][ldp]
  float* Ss = reinterpret_cast<float*>(Ps + kRows * ldp);  // [64][lds]
  float* Os = Ss + kRows * lds;                            // [64][ldo]

  const PrefillTile tile = prefill_tile(a);
  if (tile.ntok <= 0) return;
  const int kv_head = tile.kv_head, g0 = tile.g0, q_begin = tile.q_begin, tok0 = tile.tok0,
            ntok = tile.ntok, first_pos = tile.first_pos, num_keys = tile.num_keys;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int32_t* table = a.block_tables + int64_t(tile.seq) * a.max_blocks_per_seq;
  const int chunks = D / 8;           // 16-byte chunks of a row of T

  load_query_tile(q, a, tile, kRows, kThreads, Qs, ldt);
  for (int idx = tid; idx < kRows * ldo; idx += kThreads) Os[idx] = 0.f;

  // Softmax state: lane owns half (32 keys / D/2 outputs) of row `my_row` of its warp's 16.
  const int my_row = warp * 16 + (lane >> 1), half = lane & 1;
  const int my_tk = my_row / a.gc, my_g = g0 + my_row % a.gc;
  const bool row_ok = my_row < a.bq * a.gc && my_tk < ntok && my_g < a.group;
  const int row_pos = row_ok ? first_pos + tok0 + my_tk : -1;  // last visible key; -1: none
  float m = -FLT_MAX, l = 0.f;


  for (int kt = 0; kt < num_keys; kt += kKeys) {
    __syncthreads();  // the previous tile fully consumed (Qs and Os written, on the first pass)
    for (int idx = tid; idx < kKeys * chunks; idx += kThreads) {
      const int j = idx / chunks, e = (idx % chunks) * 8;
      float kr[8], vr[8];
      load_key_value8<KV>(kv, table, kt + j, num_keys, kv_head, e, kr, vr);
      Vec<T, 8> kvv, vvv;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        kvv.v[i] = from_f<T>(kr[i]);
        vvv.v[i] = from_f<T>(vr[i]);
      }
      store_vec<T, 8>(Ks + j * ldt + e, kvv);
      store_vec<T, 8>(Vs + j * ldt + e, vvv);
    }
    __syncthreads();

    // ---- S[16 x 64] = Q_w K^T ----
    const T* qw = Qs + warp * 16 * ldt;
    float* sw = Ss + warp * 16 * lds;
    for (int nt = 0; nt < kKeys / 16; ++nt) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> s_frag;
      wmma::fill_fragment(s_frag, 0.f);
      for (int kk = 0; kk < D; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> q_frag;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> k_frag;
        wmma::load_matrix_sync(q_frag, qw + kk, ldt);
        wmma::load_matrix_sync(k_frag, Ks + nt * 16 * ldt + kk, ldt);
        wmma::mma_sync(s_frag, q_frag, k_frag, s_frag);
      }
      wmma::store_matrix_sync(sw + nt * 16, s_frag, lds, wmma::mem_row_major);
    }
    __syncwarp();

    // ---- online softmax: this lane's 32 keys of its row ----
    const float* srow = Ss + my_row * lds + half * 32;
    T* prow = Ps + my_row * ldp + half * 32;
    float tile_max = -FLT_MAX;
    for (int c = 0; c < 32; ++c) {
      const int key = kt + half * 32 + c;
      if (key <= row_pos) tile_max = fmaxf(tile_max, srow[c] * a.scale);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    const float new_m = fmaxf(m, tile_max);
    const float alpha = new_m == -FLT_MAX ? 1.f : exp2f(m - new_m);
    float sum = 0.f;
    for (int c = 0; c < 32; ++c) {
      const int key = kt + half * 32 + c;
      const float p = key <= row_pos ? exp2f(srow[c] * a.scale - new_m) : 0.f;
      const T pt = from_f<T>(p);
      prow[c] = pt;
      sum += to_f(pt);  // the rounded weight: what the P.V product below uses
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * alpha + sum;
    m = new_m;
    float* orow = Os + my_row * ldo;
    for (int d = half * (D / 2); d < (half + 1) * (D / 2); ++d) orow[d] *= alpha;
    __syncwarp();

    // ---- O_w[16 x D] += P_w[16 x 64] V[64 x D] ----
    const T* pw = Ps + warp * 16 * ldp;
    float* ow = Os + warp * 16 * ldo;
    for (int dt = 0; dt < D; dt += 16) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> o_frag;
      wmma::load_matrix_sync(o_frag, ow + dt, ldo, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kKeys; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> p_frag;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> v_frag;
        wmma::load_matrix_sync(p_frag, pw + kk, ldp);
        wmma::load_matrix_sync(v_frag, Vs + kk * ldt + dt, ldt);
        wmma::mma_sync(o_frag, p_frag, v_frag, o_frag);
      }
      wmma::store_matrix_sync(ow + dt, o_frag, ldo, wmma::mem_row_major);
    }
    __syncwarp();
  }

  if (!row_ok) return;
  const int64_t t = q_begin + tok0 + my_tk;
  T* o = out + (t * a.num_heads + int64_t(kv_head) * a.group + my_g) * D;
  const float inv = l > 0.f ? 1.f / l : 0.f;
  const float* orow = Os + my_row * ldo;
  for (int d = half * (D / 2); d < (half + 1) * (D / 2); ++d) o[d] = from_f<T>(orow[d] * inv);
}

template <class T, KvDType KV>
void launch_typed(const Tensor& q, const PagedKvLayer& kv, const PrefillLaunch& l, Tensor out,
                  const Stream& stream) {
  launch_with_smem(prefill_attention_tc_kernel<T, KV>, l.grid, kThreads, tc_smem_bytes(l.args.D),
                   stream, "paged_attention (prefill, tensor cores): raising the shared-memory limit",
                   q.ptr<const T>(), kv, l.args, out.ptr<T>());
}

}  // namespace

bool prefill_attention_tensor_cores_supported(DType act, int32_t head_dim) {
  return (act == DType::BF16 || act == DType::F16) && head_dim % 16 == 0 && head_dim >= 16 &&
         head_dim <= 256;
}

void launch_prefill_attention_tensor_cores(const Tensor& q, const PagedKvLayer& kv,
                                           const AttentionMeta& meta, float scale, Tensor out,
                                           const Stream& stream) {
  if (meta.num_seqs == 0 || q.dim(0) == 0) return;
  const int D = kv.head_dim;
  NANOVLLM_CHECK(prefill_attention_tensor_cores_supported(q.dtype, D),
                 "paged_attention (prefill, tensor cores): needs bfloat16/float16 activations and "
                 "head_dim a multiple of 16 in [16, 256], got ", dtype_name(q.dtype), " and ", D);
  // exp2 in the kernel: the scale carries log2(e)
  const PrefillLaunch l = plan_prefill(q, kv, meta, scale * 1.4426950408889634f, kRows);
  dispatch_kv(kv.dtype, [&](auto kvtag) {
    constexpr KvDType KV = decltype(kvtag)::value;
    if (q.dtype == DType::BF16) launch_typed<__nv_bfloat16, KV>(q, kv, l, out, stream);
    else launch_typed<__half, KV>(q, kv, l, out, stream);
  });
  check_launch("paged_attention (prefill, tensor cores)");
}

}  // namespace nanovllm::cuda
