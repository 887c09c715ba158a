// The decode-batch products of Qwen3-0.6B through cuBLASLt, in isolation: for each (rows M,
// features N, inputs K) the heuristic's candidates and split-K variants of its first choice,
// each timed over 28 copies of the weight (one per layer, as a decode step reads them: cold in
// L2) inside a CUDA graph. Prints microseconds per product and the weight bytes' bandwidth.
// With --prefetch it also asks whether the kernel before a product can hide the product's
// weight reads: each layer runs a SiLU-and-multiply sized stand-in and then the first choice, with
// and without the stand-in prefetching that layer's weights into L2 (cp.async.bulk.prefetch.L2).
// Usage: linear_bench [reps] [--prefetch]   (default 30)
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}
bool ok(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS; }

// silu(gate) * up over gate_up [rows, 2 I] -> out [rows, I], as the engine's silu_mul; the grid's
// threads first hand prefetch [bytes] to L2 in 4 KB bulk requests spread over the CTAs (bytes % 16 == 0).
__global__ void silu_mul_stand_in(const __nv_bfloat16* gate_up, __nv_bfloat16* out, int rows, int I,
                                  const char* prefetch, size_t bytes) {
  constexpr size_t kChunk = 4096;
  const size_t thread = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t threads = size_t(gridDim.x) * blockDim.x;
  // chunk k goes to CTA k % grid, so every SM issues a few (one SM alone drains them slowly)
  const size_t spread = size_t(threadIdx.x) * gridDim.x + blockIdx.x;
  for (size_t off = spread * kChunk; off < bytes; off += threads * kChunk) {
    const unsigned n = unsigned(bytes - off < kChunk ? bytes - off : kChunk);
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(prefetch + off), "r"(n) : "memory");
  }
  for (size_t i = thread; i < size_t(rows) * I; i += threads) {
    const size_t row = i / I, col = i % I;
    const float g = __bfloat162float(gate_up[row * 2 * I + col]);
    const float u = __bfloat162float(gate_up[row * 2 * I + I + col]);
    out[i] = __float2bfloat16(g / (1.f + __expf(-g)) * u);
  }
}

constexpr int kLayers = 28;
constexpr size_t kWorkspace = 32u << 20;

struct Shape {
  const char* name;
  int N, K;
};

struct Setup {
  cublasLtHandle_t lt;
  void* workspace;
  cudaStream_t stream;
};

// Row-major out[M, N] = x[M, K] w[N, K]^T, laid out as the engine does (lt_matmul.cpp).
struct Problem {
  cublasLtMatmulDesc_t desc{};
  cublasLtMatrixLayout_t a{}, b{}, c{};
  std::vector<void*> w;  // kLayers copies
  void *x = nullptr, *out = nullptr;
  void *stand_in_in = nullptr, *stand_in_out = nullptr;  // [M, 2 x 3072], [M, 3072] bf16
  int M, N, K;

  Problem(int M_, int N_, int K_) : M(M_), N(N_), K(K_) {
    cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    const cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t));
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof(n));
    cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, K, N, K);
    cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, K, M, K);
    cublasLtMatrixLayoutCreate(&c, CUDA_R_16BF, N, M, N);
    for (int l = 0; l < kLayers; ++l) {
      void* p = nullptr;
      check(cudaMalloc(&p, size_t(N) * K * 2), "w");
      check(cudaMemset(p, 0x3c, size_t(N) * K * 2), "w fill");  // bf16 0x3c3c ~ 0.0115
      w.push_back(p);
    }
    check(cudaMalloc(&x, size_t(M) * K * 2), "x");
    check(cudaMemset(x, 0x3c, size_t(M) * K * 2), "x fill");
    check(cudaMalloc(&out, size_t(M) * N * 2), "out");
  }
  ~Problem() {
    for (void* p : w) cudaFree(p);
    cudaFree(x);
    cudaFree(out);
    cudaFree(stand_in_in);
    cudaFree(stand_in_out);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(c);
    cublasLtMatmulDescDestroy(desc);
  }

  // Mean microseconds per product over reps passes of the 28 weights, replayed as one CUDA graph
  // (as the engine's decode steps run: no host launch cost in the time); < 0 if the algo fails.
  // Stand-in: nothing, the SiLU stand-in alone, or the stand-in before each product (prefetching
  // that product's weights or not). warm: every layer multiplies by copy 0 (L2-resident).
  enum class Before { kNothing, kStandInOnly, kStandIn, kStandInPrefetching };
  double time(const Setup& s, const cublasLtMatmulAlgo_t& algo, int reps, Before before = Before::kNothing,
              bool warm = false) {
    const float alpha = 1.f, beta = 0.f;
    const int I = 3072;
    if (before != Before::kNothing && !stand_in_in) {
      check(cudaMalloc(&stand_in_in, size_t(M) * 2 * I * 2), "stand-in in");
      check(cudaMemset(stand_in_in, 0x3c, size_t(M) * 2 * I * 2), "stand-in fill");
      check(cudaMalloc(&stand_in_out, size_t(M) * I * 2), "stand-in out");
    }
    auto once = [&](int l) {
      void* weight = w[warm ? 0 : size_t(l)];
      if (before != Before::kNothing) {
        const bool prefetch = before == Before::kStandInPrefetching;
        silu_mul_stand_in<<<264, 256, 0, s.stream>>>(
            static_cast<const __nv_bfloat16*>(stand_in_in), static_cast<__nv_bfloat16*>(stand_in_out), M, I,
            static_cast<const char*>(weight), prefetch ? size_t(N) * K * 2 : 0);
        if (before == Before::kStandInOnly) return CUBLAS_STATUS_SUCCESS;
      }
      return cublasLtMatmul(s.lt, desc, &alpha, weight, a, x, b, &beta, out, c, out, c, &algo, s.workspace,
                            kWorkspace, s.stream);
    };
    for (int l = 0; l < kLayers; ++l)
      if (!ok(once(l))) return -1.0;
    check(cudaStreamSynchronize(s.stream), "warm-up");
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    check(cudaStreamBeginCapture(s.stream, cudaStreamCaptureModeThreadLocal), "capture");
    for (int r = 0; r < reps; ++r)
      for (int l = 0; l < kLayers; ++l) once(l);
    check(cudaStreamEndCapture(s.stream, &graph), "end capture");
    check(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    check(cudaGraphLaunch(exec, s.stream), "graph warm-up");
    cudaEvent_t t0, t1;
    cudaEventCreate(&t0);
    cudaEventCreate(&t1);
    cudaEventRecord(t0, s.stream);
    check(cudaGraphLaunch(exec, s.stream), "graph");
    cudaEventRecord(t1, s.stream);
    check(cudaEventSynchronize(t1), "timing");
    float ms = 0.f;
    cudaEventElapsedTime(&ms, t0, t1);
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    return 1e3 * ms / (reps * kLayers);
  }
};

int attr_int(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attr) {
  int v = -1;
  size_t written = 0;
  cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &v, sizeof(v), &written);
  return v;
}

void report(const Problem& p, const char* shape, const char* variant, const cublasLtMatmulAlgo_t& algo,
            double us) {
  const double bytes = double(p.N) * p.K * 2;
  if (us < 0) {
    std::printf("%-8s M %3d  %-22s failed\n", shape, p.M, variant);
    return;
  }
  std::printf("%-8s M %3d  %-22s tile %3d splitK %2d  %7.2f us  %5.2f TB/s\n", shape, p.M, variant,
              attr_int(algo, CUBLASLT_ALGO_CONFIG_TILE_ID), attr_int(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
              us, bytes / (us * 1e-6) / 1e12);
}

// Per layer: the stand-in alone, the product alone (cold, warm), the pair, and the pair with the
// stand-in prefetching the product's weights. The pair's saving is what prefetching would buy.
void prefetch_report(Problem& p, const Setup& s, const char* shape, const cublasLtMatmulAlgo_t& algo, int reps) {
  using B = Problem::Before;
  const double stand_in = p.time(s, algo, reps, B::kStandInOnly);
  const double cold = p.time(s, algo, reps), warm = p.time(s, algo, reps, B::kNothing, true);
  const double pair = p.time(s, algo, reps, B::kStandIn);
  const double prefetched = p.time(s, algo, reps, B::kStandInPrefetching);
  std::printf("%-8s M %3d  stand-in %6.2f  product cold %6.2f warm %6.2f  pair %6.2f  pair+prefetch %6.2f us"
              "  (saves %5.2f us)\n",
              shape, p.M, stand_in, cold, warm, pair, prefetched, pair - prefetched);
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 30;
  const bool prefetch = argc > 2 && std::strcmp(argv[2], "--prefetch") == 0;
  Setup s{};
  if (!ok(cublasLtCreate(&s.lt))) return 1;
  check(cudaMalloc(&s.workspace, kWorkspace), "workspace");
  check(cudaStreamCreate(&s.stream), "stream");
  const Shape shapes[] = {{"qkv", 4096, 1024}, {"o_proj", 1024, 2048}, {"gate_up", 6144, 1024},
                          {"down", 1024, 3072}, {"lm_head", 151936, 1024}};
  for (int M : {16, 64, 128, 256}) {
    for (const Shape& sh : shapes) {
      Problem p(M, sh.N, sh.K);
      cublasLtMatmulPreference_t pref;
      cublasLtMatmulPreferenceCreate(&pref);
      size_t ws = kWorkspace;
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
      cublasLtMatmulHeuristicResult_t results[8];
      int found = 0;
      cublasLtMatmulAlgoGetHeuristic(s.lt, p.desc, p.a, p.b, p.c, p.c, pref, 8, results, &found);
      cublasLtMatmulPreferenceDestroy(pref);
      for (int i = 0; i < found; ++i) {
        char name[32];
        std::snprintf(name, sizeof(name), "heuristic #%d", i);
        report(p, sh.name, name, results[i].algo, p.time(s, results[i].algo, reps));
      }
      if (found == 0) continue;
      if (prefetch) {
        if (sh.N <= 6144) prefetch_report(p, s, sh.name, results[0].algo, reps);
        continue;
      }
      for (int split : {2, 4, 8, 16}) {
        cublasLtMatmulAlgo_t algo = results[0].algo;
        const cublasLtReductionScheme_t scheme = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
        cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split, sizeof(split));
        cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme, sizeof(scheme));
        cublasLtMatmulHeuristicResult_t checked{};
        char name[32];
        std::snprintf(name, sizeof(name), "#0 split-K %d", split);
        if (!ok(cublasLtMatmulAlgoCheck(s.lt, p.desc, p.a, p.b, p.c, p.c, &algo, &checked))) {
          std::printf("%-8s M %3d  %-22s not supported\n", sh.name, M, name);
          continue;
        }
        report(p, sh.name, name, algo, p.time(s, algo, reps));
      }
    }
  }
  return 0;
}
