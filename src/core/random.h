#pragma once
// Counter-based randomness: the draw for (seed, step) is a pure function, so a request samples
// the same tokens whatever batch it runs in, on the CPU and on the GPU alike.
#include <cmath>
#include <cstdint>

#include "core/half.h"

namespace nanovllm {

NANOVLLM_HD uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The random state of one draw: a pure function of (seed, step).
NANOVLLM_HD uint64_t draw_key(uint64_t seed, uint64_t step) { return splitmix64(splitmix64(seed) ^ step); }

// Uniform in [0, 1) with 24 bits of precision.
NANOVLLM_HD float uniform_from_counter(uint64_t seed, uint64_t step) {
  return float(draw_key(seed, step) >> 40) * (1.0f / 16777216.0f);
}

// Gumbel noise of token `index` in the draw `key`: -log(-log(u)), u uniform in (0, 1) from 23
// random bits, centred: (b + 0.5) / 2^23 is exact in float, from 2^-24 to 1 - 2^-24, so the noise
// is finite, between -2.81 and 16.64 (24 bits would round the top u to 1 and give +inf: a random
// token winning ~1% of 150k-entry races). argmax(logit / T + gumbel) samples softmax(logit / T);
// the float operations are the same on host and device (logf, not __logf) so both pick one token.
NANOVLLM_HD float gumbel_from_bits(uint32_t bits23) {
  const float u = (float(bits23) + 0.5f) * (1.0f / 8388608.0f);
  return -logf(-logf(u));
}
// The 23 random bits of token `index` in the draw `key`.
NANOVLLM_HD uint32_t gumbel_bits(uint64_t key, uint64_t index) {
  return uint32_t(splitmix64(key + index) >> 41);
}
NANOVLLM_HD float gumbel_from_key(uint64_t key, uint64_t index) {
  return gumbel_from_bits(gumbel_bits(key, index));
}

// The noise grows with its bits, so bits whose top kGumbelBucketBits are `bucket` give at most
// the noise of the bucket's largest bits; the margin covers logf's rounding (a few ulp of values
// <= 16.64). A race entry with fma(logit, 1 / T, ceiling) below the best key so far cannot win,
// so it skips its two logarithms: with flat logits (high temperature, an untrained model) the
// race then pays for the hash of most entries, not their noise. 255 of the 256 ceilings are
// <= 5.6 (u <= 1 - 2^-8); the last is the noise's maximum.
inline constexpr int kGumbelBucketBits = 8;
inline constexpr int kGumbelBuckets = 1 << kGumbelBucketBits;
NANOVLLM_HD uint32_t gumbel_bucket(uint32_t bits23) { return bits23 >> (23 - kGumbelBucketBits); }
NANOVLLM_HD float gumbel_bucket_ceiling(uint32_t bucket) {
  const uint32_t largest = ((bucket + 1) << (23 - kGumbelBucketBits)) - 1;
  return gumbel_from_bits(largest) + 1e-3f;
}

// Above every gumbel_from_key value (the largest, at bits 2^23 - 1, is ~16.64). A race entry with
// fma(logit, 1 / T, kGumbelUpperBound) below the best key so far cannot win (fma is monotone in its
// addend), so the race may skip its Gumbel noise without changing the token drawn.
inline constexpr float kGumbelUpperBound = 17.f;

// Whether a sampling row draws by the Gumbel race (temperature alone: no top-k cut below the
// vocabulary, no top-p) rather than by the sorted inverse CDF; CPU and GPU decide alike.
NANOVLLM_HD bool samples_by_gumbel_race(float temperature, int32_t top_k, float top_p, int64_t vocab) {
  return temperature != 0.f && (top_k <= 0 || top_k >= vocab) && top_p >= 1.f;
}

}  // namespace nanovllm
