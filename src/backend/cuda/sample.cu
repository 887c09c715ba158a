// Sampling on the GPU with the CPU sampler's rule (src/backend/cpu/sample.cpp): tokens ordered by
// logit descending, ties by lower index; greedy = the first; otherwise weights
// w = exp((logit - max) / temperature) over the top_k first tokens, top_p keeps the shortest
// prefix whose mass reaches top_p * total, and the token is the first whose running mass exceeds
// uniform_from_counter(seed, step) * kept mass. Instead of sorting the vocabulary, each prefix
// is found by a radix select over the 32-bit order key of the logits (four 8-bit digit passes
// with count and mass histograms), ties resolved by index; one block per row.
#include <cfloat>
#include <climits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace nanovllm::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kCopies = 8;  // privatized histograms, to spread shared-memory atomics

// Monotone map of a float onto uint32: larger float, larger key.
__device__ __forceinline__ uint32_t order_bits(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float from_order_bits(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// A prefix of the token order: tokens whose key is above `bits`, and those equal to it with an
// index <= idx. all = true keeps every token.
struct Prefix {
  uint32_t bits;
  int32_t idx;
  bool all;
};
__device__ __forceinline__ bool in_prefix(const Prefix& p, uint32_t key, int i) {
  return p.all || key > p.bits || (key == p.bits && i <= p.idx);
}

struct Shared {
  float hist_mass[kCopies][256];
  int hist_count[kCopies][256];
  float tot_mass[256];
  int tot_count[256];
  float red_f[32];
  int red_i[32];
  int chosen_digit;
  float above;
};

__device__ float block_sum_f(float x, Shared& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  x = warp_sum(x);
  __syncthreads();
  if (lane == 0) s.red_f[warp] = x;
  __syncthreads();
  x = lane < int(blockDim.x >> 5) ? s.red_f[lane] : 0.f;
  return warp_sum(x);
}
__device__ int block_reduce_i(int x, bool is_max, Shared& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = 16; o > 0; o >>= 1) {
    const int y = __shfl_xor_sync(0xffffffffu, x, o);
    x = is_max ? max(x, y) : (x + y);
  }
  __syncthreads();
  if (lane == 0) s.red_i[warp] = x;
  __syncthreads();
  x = lane < int(blockDim.x >> 5) ? s.red_i[lane] : (is_max ? INT_MIN : 0);
  for (int o = 16; o > 0; o >>= 1) {
    const int y = __shfl_xor_sync(0xffffffffu, x, o);
    x = is_max ? max(x, y) : (x + y);
  }
  return x;
}

struct RowCtx {
  const float* x;
  int V;
  float max_logit;
  float inv_t;
  __device__ float weight(float v) const { return __expf((v - max_logit) * inv_t); }
};

// The n-th (1-based) lowest index among tokens with key == bits inside `keep`.
__device__ int nth_tied_index(const RowCtx& r, const Prefix& keep, uint32_t bits, int n, int ties,
                              Shared& s) {
  if (n >= ties) {  // the last tie: the largest such index
    int best = -1;
    for (int i = threadIdx.x; i < r.V; i += blockDim.x) {
      const uint32_t k = order_bits(r.x[i]);
      if (k == bits && in_prefix(keep, k, i)) best = max(best, i);
    }
    return block_reduce_i(best, true, s);
  }
  int lo = 0, hi = r.V - 1;  // smallest I with count(ties with index <= I) >= n
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    int c = 0;
    for (int i = threadIdx.x; i <= mid; i += blockDim.x) {
      const uint32_t k = order_bits(r.x[i]);
      c += (k == bits && in_prefix(keep, k, i)) ? 1 : 0;
    }
    c = block_reduce_i(c, false, s);
    if (c >= n) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

// Shortest prefix of the token order (within keep) whose measure (token count, or mass when
// use_mass) reaches target: cum >= target, or cum > target when strict. Returns the prefix; its
// measure goes to *measure and its last token to *last.
__device__ Prefix select_prefix(const RowCtx& r, const Prefix& keep, bool use_mass, float target,
                                bool strict, float* measure, int* last, Shared& s) {
  uint32_t prefix = 0, mask = 0;
  float above = 0.f;
  const int copy = (threadIdx.x >> 5) % kCopies;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < kCopies * 256; i += blockDim.x) {
      (&s.hist_mass[0][0])[i] = 0.f;
      (&s.hist_count[0][0])[i] = 0;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < r.V; i += blockDim.x) {
      const float v = r.x[i];
      const uint32_t k = order_bits(v);
      if ((k & mask) != prefix || !in_prefix(keep, k, i)) continue;
      const int digit = (k >> shift) & 255;
      if (use_mass) atomicAdd(&s.hist_mass[copy][digit], r.weight(v));
      atomicAdd(&s.hist_count[copy][digit], 1);
    }
    __syncthreads();
    if (threadIdx.x < 256) {
      float m = 0.f;
      int c = 0;
      for (int j = 0; j < kCopies; ++j) {
        m += s.hist_mass[j][threadIdx.x];
        c += s.hist_count[j][threadIdx.x];
      }
      s.tot_mass[threadIdx.x] = m;
      s.tot_count[threadIdx.x] = c;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      float cum = above;
      int chosen = -1, lowest = -1;
      float cum_lowest = above;
      for (int d = 255; d >= 0; --d) {
        if (s.tot_count[d] == 0) continue;
        const float m = use_mass ? s.tot_mass[d] : float(s.tot_count[d]);
        if (strict ? (cum + m > target) : (cum + m >= target)) {
          chosen = d;
          break;
        }
        lowest = d;
        cum_lowest = cum;
        cum += m;
      }
      if (chosen < 0) {  // rounding left the target beyond the total: take the last token
        chosen = lowest;
        cum = cum_lowest;
      }
      s.chosen_digit = chosen;
      s.above = cum;
    }
    __syncthreads();
    prefix |= uint32_t(s.chosen_digit) << shift;
    mask |= 255u << shift;
    above = s.above;
  }
  const int ties = s.tot_count[s.chosen_digit];
  const float w = use_mass ? r.weight(from_order_bits(prefix)) : 1.f;
  const float need = (target - above) / w;
  int n = strict ? int(floorf(need)) + 1 : int(ceilf(need));
  n = max(1, min(n, ties));
  const int idx = nth_tied_index(r, keep, prefix, n, ties, s);
  *measure = above + float(n) * w;
  *last = idx;
  return Prefix{prefix, idx, false};
}

// grid S, block kThreads: logits [S, V] -> token_ids [S].
__global__ void __launch_bounds__(kThreads) sample_kernel(const float* __restrict__ logits, int V,
                                                          const DeviceSamplingRow* rows,
                                                          int32_t* token_ids) {
  __shared__ Shared s;
  const DeviceSamplingRow row = rows[blockIdx.x];
  const float* x = logits + int64_t(blockIdx.x) * V;
  // Argmax, lowest index among equals: max of the order key, then the lowest index holding it.
  uint32_t best = 0;
  for (int i = threadIdx.x; i < V; i += blockDim.x) best = max(best, order_bits(x[i]));
  const int best_i = block_reduce_i(int(best ^ 0x80000000u), true, s);
  const uint32_t max_key = uint32_t(best_i) ^ 0x80000000u;
  int first = INT_MAX;
  for (int i = threadIdx.x; i < V; i += blockDim.x)
    if (order_bits(x[i]) == max_key) first = min(first, i);
  first = -block_reduce_i(-first, true, s);
  if (row.temperature == 0.f) {
    if (threadIdx.x == 0) token_ids[blockIdx.x] = first;
    return;
  }
  RowCtx r{x, V, from_order_bits(max_key), 1.f / row.temperature};
  Prefix keep{0, 0, true};
  float measure = 0.f;
  int last = first;
  if (row.top_k > 0 && row.top_k < V)
    keep = select_prefix(r, keep, false, float(row.top_k), false, &measure, &last, s);
  float total = 0.f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const uint32_t k = order_bits(x[i]);
    if (in_prefix(keep, k, i)) total += r.weight(x[i]);
  }
  total = block_sum_f(total, s);
  float kept_mass = total;
  if (row.top_p < 1.f)
    keep = select_prefix(r, keep, true, row.top_p * total, false, &kept_mass, &last, s);
  select_prefix(r, keep, true, row.uniform * kept_mass, true, &measure, &last, s);
  if (threadIdx.x == 0) token_ids[blockIdx.x] = last;
}

}  // namespace

void launch_sample(const Tensor& logits, const DeviceSamplingRow* rows, int32_t* token_ids,
                   cudaStream_t stream) {
  const int64_t S = logits.dim(0), V = logits.dim(1);
  if (S == 0) return;
  sample_kernel<<<unsigned(S), kThreads, 0, stream>>>(logits.ptr<const float>(), int(V), rows,
                                                      token_ids);
  check_launch("sample");
}

}  // namespace nanovllm::cuda
