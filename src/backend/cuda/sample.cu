// Sampling on the GPU with the CPU sampler's rule (src/backend/cpu/sample.cpp): tokens ordered by
// logit descending, ties by lower index; greedy = the first; temperature alone (no top-k, no
// top-p) = the Gumbel-max race, argmax of logit / T + gumbel_from_key(key, index), one pass;
// with top-k or top-p, weights
// w = exp((logit - max) / temperature) over the top_k first tokens, top_p keeps the shortest
// prefix whose mass reaches top_p * total, and the token is the first whose running mass exceeds
// uniform_from_counter(seed, step) * kept mass. Instead of sorting the vocabulary, each prefix
// is found by a radix select over the 32-bit order key of the logits (12-, 12- and 8-bit digit
// passes with count and mass histograms), ties resolved by index; one block per row.
#include <cfloat>
#include <climits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "core/random.h"

namespace nanovllm::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kBins = 4096;  // radix levels: key bits 31..20, 19..8 (4096 bins), 7..0 (256)

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
  float hist_mass[kBins];  // per digit of the current level: weight mass and token count
  int hist_count[kBins];
  float red_f[32];
  int red_i[32];
  unsigned long long red_u64[32];
  int chosen_digit;
  float above;
  float gumbel_ceiling[kGumbelBuckets];  // gumbel_bucket_ceiling of each bucket (race rows)
};

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
__device__ unsigned long long block_max_u64(unsigned long long x, Shared& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = 16; o > 0; o >>= 1) x = max(x, __shfl_xor_sync(0xffffffffu, x, o));
  __syncthreads();
  if (lane == 0) s.red_u64[warp] = x;
  __syncthreads();
  x = lane < int(blockDim.x >> 5) ? s.red_u64[lane] : 0ull;
  for (int o = 16; o > 0; o >>= 1) x = max(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
// Exclusive prefix sum over the threads in thread order; *total gets the sum of all.
__device__ float block_exclusive_scan(float x, float* total, Shared& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float inc = x;
  for (int o = 1; o < 32; o <<= 1) {
    const float y = __shfl_up_sync(0xffffffffu, inc, o);
    if (lane >= o) inc += y;
  }
  __syncthreads();
  if (lane == 31) s.red_f[warp] = inc;
  __syncthreads();
  const float wsum = lane < int(blockDim.x >> 5) ? s.red_f[lane] : 0.f;
  float winc = wsum;
  for (int o = 1; o < 32; o <<= 1) {
    const float y = __shfl_up_sync(0xffffffffu, winc, o);
    if (lane >= o) winc += y;
  }
  const float warp_before = __shfl_sync(0xffffffffu, winc - wsum, warp);
  *total = __shfl_sync(0xffffffffu, winc, 31);
  return warp_before + inc - x;
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
// use_mass) reaches target: cum >= target, or cum > target when strict. relative: target is a
// fraction of keep's total measure (summed by the first level's histogram, so no extra pass).
// Three radix levels (12, 12, 8 key bits), each one pass over the row; a warp whose tokens all
// fall into one digit adds once (the first level of a row of similar logits would otherwise
// serialize on one shared-memory address); the digit is found by a block scan over the bins.
// Returns the prefix; its measure goes to *measure and its last token to *last.
__device__ Prefix select_prefix(const RowCtx& r, const Prefix& keep, bool use_mass, float target,
                                bool relative, bool strict, float* measure, int* last, Shared& s) {
  uint32_t prefix = 0, mask = 0;
  float above = 0.f;
  const int lane = threadIdx.x & 31, t = threadIdx.x;
  for (int level = 0; level < 3; ++level) {
    const int shift = level == 0 ? 20 : level == 1 ? 8 : 0;
    const int nbins = level == 2 ? 256 : kBins;
    for (int i = t; i < nbins; i += blockDim.x) {
      s.hist_mass[i] = 0.f;
      s.hist_count[i] = 0;
    }
    __syncthreads();
    for (int base = t - lane; base < r.V; base += blockDim.x) {  // warp-uniform trip count
      const int i = base + lane;
      bool take = false;
      float w = 0.f;
      uint32_t digit = 0xffffffffu;
      if (i < r.V) {
        const float v = r.x[i];
        const uint32_t k = order_bits(v);
        if ((k & mask) == prefix && in_prefix(keep, k, i)) {
          take = true;
          digit = (k >> shift) & uint32_t(nbins - 1);
          if (use_mass) w = r.weight(v);
        }
      }
      // Levels 1 and 2 take few tokens: a warp with none skips the histogram code entirely.
      if (!__any_sync(0xffffffffu, take)) continue;
      // A shuffle and a vote instead of __match_any_sync (much slower, and only the all-equal
      // case was used).
      if (__all_sync(0xffffffffu, digit == __shfl_sync(0xffffffffu, digit, 0))) {
        // one digit for the whole warp (so take is warp-uniform, and true: some lane took)
        if (take) {
          const float ws = use_mass ? warp_sum(w) : 0.f;
          if (lane == 0) {
            if (use_mass) atomicAdd(&s.hist_mass[digit], ws);
            atomicAdd(&s.hist_count[digit], 32);
          }
        }
      } else if (take) {
        if (use_mass) atomicAdd(&s.hist_mass[digit], w);
        atomicAdd(&s.hist_count[digit], 1);
      }
    }
    __syncthreads();
    // Thread t owns `per` consecutive digits in descending order, starting at nbins-1 - t*per.
    const int per = (nbins + int(blockDim.x) - 1) / int(blockDim.x);
    float local = 0.f;
    for (int j = 0; j < per; ++j) {
      const int idx = t * per + j;
      if (idx >= nbins) break;
      const int d = nbins - 1 - idx;
      local += use_mass ? s.hist_mass[d] : float(s.hist_count[d]);
    }
    float total = 0.f;
    float cum = above + block_exclusive_scan(local, &total, s);
    if (level == 0 && relative) target *= total;
    int cand = -1, lowest = -1;
    float cand_cum = 0.f, lowest_cum = 0.f;
    for (int j = 0; j < per; ++j) {
      const int idx = t * per + j;
      if (idx >= nbins) break;
      const int d = nbins - 1 - idx;
      if (s.hist_count[d] == 0) continue;
      const float m = use_mass ? s.hist_mass[d] : float(s.hist_count[d]);
      if (cand < 0 && (strict ? (cum + m > target) : (cum + m >= target))) {
        cand = d;
        cand_cum = cum;
      }
      lowest = d;
      lowest_cum = cum;
      cum += m;
    }
    const int win = block_reduce_i(cand >= 0 ? -t : INT_MIN, true, s);  // lowest t with a digit
    if (win != INT_MIN) {
      if (t == -win) {
        s.chosen_digit = cand;
        s.above = cand_cum;
      }
    } else {  // rounding left the target beyond the total: take the last token
      const int lt = block_reduce_i(lowest >= 0 ? t : -1, true, s);
      if (t == lt) {
        s.chosen_digit = lowest;
        s.above = lowest_cum;
      }
    }
    __syncthreads();
    prefix |= uint32_t(s.chosen_digit) << shift;
    mask |= uint32_t(nbins - 1) << shift;
    above = s.above;
  }
  const int ties = s.hist_count[s.chosen_digit];
  const float w = use_mass ? r.weight(from_order_bits(prefix)) : 1.f;
  const float need = (target - above) / w;
  int n = strict ? int(floorf(need)) + 1 : int(ceilf(need));
  n = max(1, min(n, ties));
  const int idx = nth_tied_index(r, keep, prefix, n, ties, s);
  *measure = above + float(n) * w;
  *last = idx;
  return Prefix{prefix, idx, false};
}

// grid S, block kThreads: logits [S, V] -> token_ids [S]. Passes over the row: greedy and the
// temperature-only race 1; otherwise 1 (max key and its lowest index), then 3 radix levels + 1
// tie resolution per prefix selected (top-k and top-p one each, the draw one).
__global__ void __launch_bounds__(kThreads) sample_kernel(const float* __restrict__ logits, int V,
                                                          const DeviceSamplingRow* rows,
                                                          int32_t* token_ids) {
  start_after_previous_kernel();
  __shared__ Shared s;
  const DeviceSamplingRow row = rows[blockIdx.x];
  const float* x = logits + int64_t(blockIdx.x) * V;
  const bool race = samples_by_gumbel_race(row.temperature, row.top_k, row.top_p, V);
  // Argmax of the logits (or of the Gumbel race keys), lowest index among equals: max of
  // (order key, ~index) in one pass.
  const float inv_t = 1.f / row.temperature;
  auto keyed = [](float k, int i) {
    return (static_cast<unsigned long long>(order_bits(k)) << 32) | uint32_t(~uint32_t(i));
  };
  unsigned long long best = 0;
  if (!race) {
    for (int i = threadIdx.x; i < V; i += kThreads) best = max(best, keyed(x[i], i));
  } else {
    for (int b = threadIdx.x; b < kGumbelBuckets; b += kThreads)
      s.gumbel_ceiling[b] = gumbel_bucket_ceiling(uint32_t(b));
    __syncthreads();
    // The loads of kUnroll entries go out before the branches that may skip their noise. The
    // loop is warp-uniform so the warp can share its best key after each round: an entry below
    // any key the warp has seen cannot win the row.
    constexpr int kUnroll = 4;
    const int lane = threadIdx.x & 31;
    float best_race_key = -INFINITY;
    for (int base = threadIdx.x - lane; base < V; base += kUnroll * kThreads) {
      float l[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int i = base + lane + u * kThreads;
        l[u] = i < V ? x[i] : -INFINITY;
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int i = base + lane + u * kThreads;
        if (i >= V || fmaf(l[u], inv_t, kGumbelUpperBound) < best_race_key) continue;
        const uint32_t bits = gumbel_bits(row.key, uint64_t(i));
        if (fmaf(l[u], inv_t, s.gumbel_ceiling[gumbel_bucket(bits)]) < best_race_key) continue;
        const float k = fmaf(l[u], inv_t, gumbel_from_bits(bits));
        best_race_key = fmaxf(best_race_key, k);
        best = max(best, keyed(k, i));
      }
      best_race_key = warp_max(best_race_key);
    }
  }
  best = block_max_u64(best, s);
  const uint32_t max_key = uint32_t(best >> 32);
  const int first = int(~uint32_t(best & 0xffffffffu));
  if (row.temperature == 0.f || race) {
    if (threadIdx.x == 0) token_ids[blockIdx.x] = first;
    return;
  }
  RowCtx r{x, V, from_order_bits(max_key), inv_t};
  Prefix keep{0, 0, true};
  float measure = 0.f;
  int last = first;
  if (row.top_k > 0 && row.top_k < V)
    keep = select_prefix(r, keep, false, float(row.top_k), false, false, &measure, &last, s);
  if (row.top_p < 1.f) {
    float kept_mass = 0.f;
    keep = select_prefix(r, keep, true, row.top_p, true, false, &kept_mass, &last, s);
    select_prefix(r, keep, true, row.uniform * kept_mass, false, true, &measure, &last, s);
  } else {
    select_prefix(r, keep, true, row.uniform, true, true, &measure, &last, s);
  }
  if (threadIdx.x == 0) token_ids[blockIdx.x] = last;
}

}  // namespace

void launch_sample(const Tensor& logits, const DeviceSamplingRow* rows, int32_t* token_ids,
                   const Stream& stream) {
  const int64_t S = logits.dim(0), V = logits.dim(1);
  if (S == 0) return;
  launch_kernel(sample_kernel, unsigned(S), kThreads, 0, stream, logits.ptr<const float>(), int(V),
                rows, token_ids);
  check_launch("sample");
}

}  // namespace nanovllm::cuda
