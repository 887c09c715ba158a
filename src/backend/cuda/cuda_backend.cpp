#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "backend/attention_checks.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/lt_matmul.h"
#include "backend/cuda/op_profiler.h"
#include "backend/cuda/pinned_staging.h"
#include "backend/cuda/split_workspace.h"
#include "core/kv_quant.h"
#include "core/kv_rotation.h"
#include "core/random.h"

namespace nanovllm {

using cuda::check_cuda;

namespace {

constexpr size_t kLtWorkspaceBytes = size_t(32) << 20;
// Page-locked ring for step inputs: a decode step uploads ~30 KB, a 16k-token prefill ~1 MB.
constexpr size_t kStagingBytes = size_t(8) << 20;

struct MemoryCounters {
  std::atomic<size_t> current{0};
  std::atomic<size_t> peak{0};
};

// A measurement switch from the environment: unset gives `fallback`, "0" off, "1" on; anything
// else is an error naming the variable.
bool env_switch(const char* name, bool fallback) {
  const char* env = std::getenv(name);
  if (!env) return fallback;
  const std::string v = env;
  NANOVLLM_CHECK(v == "0" || v == "1", "cuda backend: ", name, " is '", v, "', expected 0 or 1");
  return v == "1";
}

bool is_float_dtype(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

void check_tensor(const Tensor& t, const char* op, const char* name, int ndim) {
  NANOVLLM_CHECK(t.defined(), op, ": tensor '", name, "' is undefined");
  NANOVLLM_CHECK(t.device == Device::CUDA, op, ": tensor '", name, "' must be on the CUDA device");
  NANOVLLM_CHECK(t.ndim == ndim, op, ": tensor '", name, "' must have ", ndim,
                 " dimensions, got ", t.shape_string());
}
void check_dtype(const Tensor& t, const char* op, const char* name, DType dtype) {
  NANOVLLM_CHECK(t.dtype == dtype, op, ": tensor '", name, "' must be ", dtype_name(dtype), ", got ",
                 dtype_name(t.dtype));
}
void check_dim(const Tensor& t, int axis, int64_t expected, const char* op, const char* name) {
  NANOVLLM_CHECK(t.dim(axis) == expected, op, ": tensor '", name, "' has shape ", t.shape_string(),
                 ", expected size ", expected, " in dimension ", axis);
}
// A per-channel weight [n] in the activation dtype or float32.
void check_weight(const Tensor& w, DType act, int64_t n, const char* op, const char* name) {
  check_tensor(w, op, name, 1);
  NANOVLLM_CHECK(w.dtype == act || w.dtype == DType::F32, op, ": tensor '", name, "' must be ",
                 dtype_name(act), " or float32, got ", dtype_name(w.dtype));
  check_dim(w, 0, n, op, name);
}

class CudaGraphStep final : public CapturedStep {
 public:
  CudaGraphStep(cudaGraphExec_t exec, cudaStream_t stream) : exec_(exec), stream_(stream) {}
  ~CudaGraphStep() override { cudaGraphExecDestroy(exec_); }
  void replay() override { check_cuda(cudaGraphLaunch(exec_, stream_), "graph replay"); }

 private:
  cudaGraphExec_t exec_;
  cudaStream_t stream_;
};

}  // namespace

struct CudaBackend::State {
  int device = 0;
  cudaStream_t stream = nullptr;
  std::shared_ptr<MemoryCounters> memory = std::make_shared<MemoryCounters>();
  std::unique_ptr<cuda::LtMatmul> matmul;
  std::unique_ptr<cuda::PinnedStaging> staging;  // every host-to-device copy goes through it
  bool capturing = false;
  cuda::SplitWorkspace split_workspace;  // decode attention's split-K partials and counters
  // Sampling rows and sampled ids on the device, grown as needed (sample is never captured).
  cuda::DeviceSamplingRow* sample_rows = nullptr;
  int32_t* sample_ids = nullptr;
  int64_t sample_capacity = 0;
  std::vector<cuda::DeviceSamplingRow> host_rows;
  int num_sms = 1;
  std::string device_name;  // cudaDeviceProp::name
  // env NANOVLLM_DECODE_MIN_WAVES, else the KV dtype's (cuda::default_decode_min_waves).
  std::optional<int32_t> decode_min_waves;
  bool decode_even_splits = true;  // env NANOVLLM_DECODE_EVEN_SPLITS=0: off (for measurement)
  // The fused ops (norm_linear, linear_residual, silu_mul_linear_residual) run as one small-M
  // kernel at <= 8 rows; env NANOVLLM_FUSED_SMALL_M=0: as their composition (for measurement).
  bool fuse_small_m = true;
  // The model folds RMSNorm weights into the products (Backend::folds_norm_weights) for BF16;
  // env NANOVLLM_FOLD_NORMS=0: not (for measurement). W1 on an H100 (2026-12-07, 231f529) +0.7% /
  // +2.5% (BF16 / INT8 KV), and its BF16 end-to-end GPU test passes (docs/cuda_kernels.md).
  bool fold_norms = true;
  // FP8 and INT4 decode attention on the tensor-core kernel INT8 takes; env
  // NANOVLLM_FP8_INT4_MMA=0: the CUDA-core loop (for measurement). W1 on an H100 (2026-12-07,
  // 231f529): FP8 +2.4%, INT4 +29% (docs/cuda_kernels.md).
  bool fp8_int4_mma = true;
  // Kernels may be scheduled while the previous one drains (programmatic dependent launch):
  // sm_90+, off with NANOVLLM_PDL=0 (for measurement) and while ops are being profiled.
  bool overlap_launches = false;
  // Resident decode-attention CTAs per SM, per (activation, kv dtype, head_dim, G) bucket.
  std::map<std::tuple<int, int, int32_t, int32_t>, int32_t> decode_occupancy;
  // Per-op timing (NANOVLLM_PROFILE_OPS=1), else null.
  std::unique_ptr<cuda::OpProfiler> profiler;

  ~State() {
    if (stream) cudaStreamSynchronize(stream);
    profiler.reset();
    staging.reset();
    matmul.reset();
    cudaFree(sample_rows);
    cudaFree(sample_ids);
    if (stream) cudaStreamDestroy(stream);
  }
  int32_t decode_ctas_per_sm(DType act, KvDType kv, int32_t head_dim, int32_t group) {
    const auto key = std::make_tuple(int(act), int(kv), head_dim, group);
    auto it = decode_occupancy.find(key);
    if (it == decode_occupancy.end())
      it = decode_occupancy
               .emplace(key, cuda::decode_attention_ctas_per_sm(act, kv, head_dim, group,
                                                                fp8_int4_mma))
               .first;
    return it->second;
  }
  cuda::Stream launch_stream() const { return {stream, overlap_launches}; }
  // The profiler to time an op with: null when profiling is off or a graph is being captured.
  cuda::OpProfiler* prof() const { return profiler && !capturing ? profiler.get() : nullptr; }
  void not_capturing(const char* op) const {
    NANOVLLM_CHECK(!capturing, op, ": cannot run inside CUDA graph capture");
  }
};

bool cuda_device_present() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

std::unique_ptr<Backend> make_cuda_backend(int device) {
  return std::make_unique<CudaBackend>(device);
}

CudaBackend::CudaBackend(int device) : state_(std::make_unique<State>()) {
  int n = 0;
  check_cuda(cudaGetDeviceCount(&n), "counting CUDA devices");
  NANOVLLM_CHECK(device >= 0 && device < n, "cuda backend: device ", device, " does not exist (",
                 n, " CUDA devices)");
  state_->device = device;
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
  check_cuda(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking), "creating the stream");
  state_->matmul = std::make_unique<cuda::LtMatmul>(kLtWorkspaceBytes);
  state_->staging = std::make_unique<cuda::PinnedStaging>(kStagingBytes, state_->stream);
  check_cuda(cudaDeviceGetAttribute(&state_->num_sms, cudaDevAttrMultiProcessorCount, device),
             "querying the SM count");
  cudaDeviceProp prop{};
  check_cuda(cudaGetDeviceProperties(&prop, device), "querying the device's name and version");
  state_->device_name = prop.name;
  if (const char* waves = std::getenv("NANOVLLM_DECODE_MIN_WAVES")) {
    char* end = nullptr;
    const long w = std::strtol(waves, &end, 10);
    NANOVLLM_CHECK(end != waves && *end == '\0' && w >= 1 && w <= 64,
                   "cuda backend: NANOVLLM_DECODE_MIN_WAVES is '", waves,
                   "', expected an integer in [1, 64]");
    state_->decode_min_waves = int32_t(w);
  }
  state_->decode_even_splits = env_switch("NANOVLLM_DECODE_EVEN_SPLITS", true);
  state_->fuse_small_m = env_switch("NANOVLLM_FUSED_SMALL_M", true);
  state_->fold_norms = env_switch("NANOVLLM_FOLD_NORMS", true);
  state_->fp8_int4_mma = env_switch("NANOVLLM_FP8_INT4_MMA", true);
  if (cuda::OpProfiler::enabled_by_env())
    state_->profiler = std::make_unique<cuda::OpProfiler>(state_->stream);
  state_->overlap_launches =
      env_switch("NANOVLLM_PDL", true) && prop.major >= 9 && !state_->profiler;
}

CudaBackend::~CudaBackend() = default;

std::string CudaBackend::device_name() const { return state_->device_name; }

DType CudaBackend::activation_dtype(DType model_dtype) const {
  return model_dtype == DType::BF16 || model_dtype == DType::F16 ? model_dtype : DType::F32;
}

// ---- memory ----

Buffer CudaBackend::allocate(size_t bytes) {
  state_->not_capturing("allocate");
  void* p = nullptr;
  const size_t size = bytes == 0 ? 256 : bytes;
  const cudaError_t st = cudaMalloc(&p, size);
  if (st != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free allocation error
    throw_error("cuda backend: cannot allocate ", bytes, " bytes of device memory (",
                cudaGetErrorString(st), ")");
  }
  auto mem = state_->memory;
  const size_t now = mem->current.fetch_add(size) + size;
  size_t peak = mem->peak.load();
  while (now > peak && !mem->peak.compare_exchange_weak(peak, now)) {
  }
  return Buffer(p, bytes, [mem, size](void* q) {
    cudaFree(q);
    mem->current.fetch_sub(size);
  });
}

void CudaBackend::copy_from_host(void* device_dst, const void* host_src, size_t bytes) {
  state_->not_capturing("copy_from_host");
  state_->staging->copy_to_device(device_dst, host_src, bytes);
}

void CudaBackend::copy_to_host(void* host_dst, const void* device_src, size_t bytes) {
  state_->not_capturing("copy_to_host");
  if (bytes == 0) return;
  check_cuda(cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, state_->stream),
             "copy_to_host");
  check_cuda(cudaStreamSynchronize(state_->stream), "copy_to_host (synchronize)");
}

void CudaBackend::synchronize() {
  state_->not_capturing("synchronize");
  check_cuda(cudaStreamSynchronize(state_->stream), "synchronize");
}

MemoryInfo CudaBackend::memory_info() const {
  MemoryInfo info;
  check_cuda(cudaMemGetInfo(&info.free_bytes, &info.total_bytes), "memory_info");
  return info;
}

size_t CudaBackend::peak_allocated_bytes() const { return state_->memory->peak.load(); }

void CudaBackend::reset_peak_allocated_bytes() {
  state_->memory->peak.store(state_->memory->current.load());
}

// ---- ops ----

void CudaBackend::embedding(const Tensor& ids, const Tensor& table, Tensor out) {
  const char* op = "embedding";
  check_tensor(ids, op, "ids", 1);
  check_dtype(ids, op, "ids", DType::I32);
  check_tensor(table, op, "table", 2);
  check_tensor(out, op, "out", 2);
  NANOVLLM_CHECK(is_float_dtype(table.dtype), op, ": table must be a float tensor");
  check_dtype(out, op, "out", table.dtype);
  check_dim(out, 0, ids.dim(0), op, "out");
  check_dim(out, 1, table.dim(1), op, "out");
  cuda::OpTimer timer(state_->prof(), op);
  cuda::launch_gather_rows(table, ids, out, state_->launch_stream());
}

void CudaBackend::gather_rows(const Tensor& x, const Tensor& indices, Tensor out) {
  const char* op = "gather_rows";
  check_tensor(x, op, "x", 2);
  check_tensor(indices, op, "indices", 1);
  check_dtype(indices, op, "indices", DType::I32);
  check_tensor(out, op, "out", 2);
  NANOVLLM_CHECK(is_float_dtype(x.dtype), op, ": x must be a float tensor");
  check_dtype(out, op, "out", x.dtype);
  check_dim(out, 0, indices.dim(0), op, "out");
  check_dim(out, 1, x.dim(1), op, "out");
  cuda::OpTimer timer(state_->prof(), op);
  cuda::launch_gather_rows(x, indices, out, state_->launch_stream());
}

void CudaBackend::rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor out) {
  const char* op = "rms_norm";
  check_tensor(x, op, "x", 2);
  check_tensor(out, op, "out", 2);
  check_dtype(out, op, "out", x.dtype);
  check_dim(out, 0, x.dim(0), op, "out");
  check_dim(out, 1, x.dim(1), op, "out");
  if (weight.defined()) check_weight(weight, x.dtype, x.dim(1), op, "weight");
  cuda::OpTimer timer(state_->prof(), op);
  cuda::launch_rms_norm(x, weight, eps, out, state_->launch_stream());
}

namespace {

// The checks of linear and linear_residual: x [T, K], w [N, K], out [T, N] in x's dtype (or F32
// when allowed), bias [N].
void check_linear(const char* op, const Tensor& x, const Tensor& w, const Tensor* bias,
                  const Tensor& out, const char* out_name, bool f32_out_allowed) {
  check_tensor(x, op, "x", 2);
  check_tensor(w, op, "w", 2);
  check_tensor(out, op, out_name, 2);
  NANOVLLM_CHECK(is_float_dtype(x.dtype), op, ": x must be float32, float16 or bfloat16");
  check_dtype(w, op, "w", x.dtype);
  if (f32_out_allowed)
    NANOVLLM_CHECK(out.dtype == x.dtype || out.dtype == DType::F32, op, ": ", out_name,
                   " must be ", dtype_name(x.dtype), " or float32, got ", dtype_name(out.dtype));
  else
    check_dtype(out, op, out_name, x.dtype);
  check_dim(w, 1, x.dim(1), op, "w");
  check_dim(out, 0, x.dim(0), op, out_name);
  check_dim(out, 1, w.dim(0), op, out_name);
  NANOVLLM_CHECK(out.data != x.data, op, ": ", out_name, " must not alias x");
  if (bias) {
    check_tensor(*bias, op, "bias", 1);
    NANOVLLM_CHECK(is_float_dtype(bias->dtype), op, ": bias must be a float tensor");
    check_dim(*bias, 0, w.dim(0), op, "bias");
  }
}

// The profiler's name of a product: "linear 1024->4096", " (1 row)" at one row.
std::string product_label(const char* op, const Tensor& x, const Tensor& w) {
  return std::string(op) + " " + std::to_string(w.dim(1)) + "->" + std::to_string(w.dim(0)) +
         (x.dim(0) == 1 ? " (1 row)" : "");
}

}  // namespace

void CudaBackend::linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor out) {
  const char* op = "linear";
  check_linear(op, x, w, bias, out, "out", true);
  if (x.dim(0) == 0 || w.dim(0) == 0) return;
  cuda::OpProfiler* prof = state_->prof();
  cuda::OpTimer timer(prof, prof ? product_label(op, x, w) : std::string());
  if (x.dim(1) == 0) {
    check_cuda(cudaMemsetAsync(out.data, 0, out.nbytes(), state_->stream), "linear (K = 0)");
  } else if (cuda::small_m_linear_supported(x, w, out)) {
    cuda::launch_small_m_linear(x, w, out, {}, state_->launch_stream());
  } else {
    state_->matmul->run(x, w, out, state_->stream);
  }
  if (bias) cuda::launch_add_bias(*bias, out, state_->launch_stream());
}

void CudaBackend::linear_residual(const Tensor& x, const Tensor& w, const Tensor* bias,
                                  Tensor residual) {
  const char* op = "linear_residual";
  check_linear(op, x, w, bias, residual, "residual", false);
  if (x.dim(0) == 0 || w.dim(0) == 0 || x.dim(1) == 0) {
    if (bias && x.dim(0) > 0) cuda::launch_add_bias(*bias, residual, state_->launch_stream());
    return;
  }
  cuda::OpProfiler* prof = state_->prof();
  cuda::OpTimer timer(prof, prof ? product_label(op, x, w) : std::string());
  if (cuda::small_m_linear_supported(x, w, residual)) {
    cuda::SmallMFusion f;
    f.accumulate = true;
    cuda::launch_small_m_linear(x, w, residual, f, state_->launch_stream());
  } else {
    state_->matmul->run(x, w, residual, state_->stream, /*accumulate=*/true);
  }
  if (bias) cuda::launch_add_bias(*bias, residual, state_->launch_stream());
}

void CudaBackend::norm_linear(const Tensor& x, const Tensor& norm_weight, float eps,
                              const Tensor& w, const Tensor* bias, Tensor normed, Tensor out) {
  const char* op = "norm_linear";
  check_linear(op, x, w, bias, out, "out", false);
  const bool weighted = norm_weight.defined();
  if (weighted) check_weight(norm_weight, x.dtype, x.dim(1), op, "norm_weight");
  const bool fused = runs_fused_small_m(x, w, out) &&
                     (!weighted || (norm_weight.dtype == x.dtype &&
                                    reinterpret_cast<uintptr_t>(norm_weight.data) % 16 == 0));
  if (!fused) return Backend::norm_linear(x, norm_weight, eps, w, bias, normed, out);
  cuda::OpProfiler* prof = state_->prof();
  cuda::OpTimer timer(prof, prof ? product_label(op, x, w) : std::string());
  cuda::SmallMFusion f;
  f.input = cuda::SmallMFusion::Input::kRmsNorm;
  f.norm_weight = weighted ? &norm_weight : nullptr;
  f.eps = eps;
  cuda::launch_small_m_linear(x, w, out, f, state_->launch_stream());
  if (bias) cuda::launch_add_bias(*bias, out, state_->launch_stream());
}

void CudaBackend::silu_mul_linear_residual(const Tensor& gate_up, const Tensor& w, Tensor act,
                                           Tensor residual) {
  const char* op = "silu_mul_linear_residual";
  check_tensor(gate_up, op, "gate_up", 2);
  check_tensor(w, op, "w", 2);
  check_dim(gate_up, 1, 2 * w.dim(1), op, "gate_up");
  const bool fused = w.dim(1) % 8 == 0 && runs_fused_small_m(gate_up, w, residual) &&
                     residual.dtype == gate_up.dtype && residual.ndim == 2 &&
                     residual.dim(0) == gate_up.dim(0) && residual.dim(1) == w.dim(0);
  if (!fused) return Backend::silu_mul_linear_residual(gate_up, w, act, residual);
  check_dtype(w, op, "w", gate_up.dtype);
  cuda::OpProfiler* prof = state_->prof();
  cuda::OpTimer timer(prof, prof ? product_label(op, gate_up, w) : std::string());
  cuda::SmallMFusion f;
  f.input = cuda::SmallMFusion::Input::kSiluMul;
  f.accumulate = true;
  cuda::launch_small_m_linear(gate_up, w, residual, f, state_->launch_stream());
}

bool CudaBackend::runs_fused_small_m(const Tensor& x, const Tensor& w, const Tensor& out) const {
  return state_->fuse_small_m && cuda::small_m_linear_supported(x, w, out);
}

bool CudaBackend::folds_norm_weights(DType act) const {
  return state_->fold_norms && act == DType::BF16;
}

void CudaBackend::silu_mul(const Tensor& gate_up, Tensor out) { silu_mul_pending(gate_up, out, {}); }

void CudaBackend::silu_mul_pending(const Tensor& gate_up, Tensor out,
                                   const cuda::RowRms& pending) {
  const char* op = "silu_mul";
  check_tensor(gate_up, op, "gate_up", 2);
  check_tensor(out, op, "out", 2);
  NANOVLLM_CHECK(is_float_dtype(gate_up.dtype), op, ": gate_up must be a float tensor");
  check_dtype(out, op, "out", gate_up.dtype);
  check_dim(out, 0, gate_up.dim(0), op, "out");
  check_dim(gate_up, 1, 2 * out.dim(1), op, "gate_up");
  cuda::OpTimer timer(state_->prof(), op);
  cuda::launch_silu_mul(gate_up, out, state_->launch_stream(), pending);
}

void CudaBackend::qkv_rope_store(const Tensor& qkv, const QkvSpec& spec, const Tensor& positions,
                                 const Tensor& slot_mapping, const PagedKvLayer& kv, Tensor q_out) {
  qkv_rope_store_pending(qkv, spec, positions, slot_mapping, kv, q_out, {});
}

void CudaBackend::qkv_rope_store_pending(const Tensor& qkv, const QkvSpec& spec,
                                         const Tensor& positions, const Tensor& slot_mapping,
                                         const PagedKvLayer& kv, Tensor q_out,
                                         const cuda::RowRms& pending) {
  const char* op = "qkv_rope_store";
  const int64_t Hq = spec.num_heads, Hkv = spec.num_kv_heads, D = spec.head_dim;
  NANOVLLM_CHECK(Hq > 0 && Hkv > 0 && D > 0 && Hq % Hkv == 0, op, ": spec has num_heads ", Hq,
                 ", num_kv_heads ", Hkv, ", head_dim ", D,
                 "; expected positive sizes with num_heads a multiple of num_kv_heads");
  check_tensor(qkv, op, "qkv", 2);
  NANOVLLM_CHECK(is_float_dtype(qkv.dtype), op, ": qkv must be a float tensor");
  const int64_t T = qkv.dim(0);
  check_dim(qkv, 1, (Hq + 2 * Hkv) * D, op, "qkv");
  check_tensor(q_out, op, "q_out", 2);
  check_dtype(q_out, op, "q_out", qkv.dtype);
  check_dim(q_out, 0, T, op, "q_out");
  check_dim(q_out, 1, Hq * D, op, "q_out");
  check_tensor(positions, op, "positions", 1);
  check_dtype(positions, op, "positions", DType::I32);
  check_dim(positions, 0, T, op, "positions");
  check_tensor(slot_mapping, op, "slot_mapping", 1);
  check_dtype(slot_mapping, op, "slot_mapping", DType::I64);
  check_dim(slot_mapping, 0, T, op, "slot_mapping");
  if (spec.q_norm.defined()) check_weight(spec.q_norm, qkv.dtype, D, op, "q_norm");
  if (spec.k_norm.defined()) check_weight(spec.k_norm, qkv.dtype, D, op, "k_norm");
  NANOVLLM_CHECK(!spec.q_norm.defined() || !spec.k_norm.defined() ||
                     spec.q_norm.dtype == spec.k_norm.dtype,
                 op, ": q_norm and k_norm must have the same dtype");
  if (spec.inv_freq.defined()) {
    NANOVLLM_CHECK(D % 2 == 0, op, ": RoPE needs an even head_dim, got ", D);
    check_tensor(spec.inv_freq, op, "inv_freq", 1);
    check_dtype(spec.inv_freq, op, "inv_freq", DType::F32);
    check_dim(spec.inv_freq, 0, D / 2, op, "inv_freq");
  }
  NANOVLLM_CHECK(!spec.rotate_qk || kv_rotation_supported(D), op,
                 ": rotate_qk needs a power-of-two head_dim, got ", D);
  NANOVLLM_CHECK(kv.num_kv_heads == Hkv && kv.head_dim == D, op, ": kv cache has ",
                 kv.num_kv_heads, " heads of dim ", kv.head_dim, ", spec has ", Hkv, " of dim ", D);
  NANOVLLM_CHECK(kv.k && kv.v, op, ": kv cache values are null");
  NANOVLLM_CHECK(!kv_is_quantized(kv.dtype) || (kv.k_scale && kv.v_scale), op,
                 ": kv cache of dtype ", kv_dtype_name(kv.dtype), " needs k_scale and v_scale");
  cuda::OpTimer timer(state_->prof(), op);
  cuda::launch_qkv_rope_store(qkv, spec, positions, slot_mapping, kv, q_out,
                              state_->launch_stream(), pending);
}

void CudaBackend::paged_attention(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                                  float scale, Tensor out) {
  const char* op = "paged_attention";
  check_tensor(q, op, "q", 2);
  NANOVLLM_CHECK(is_float_dtype(q.dtype), op, ": q must be a float tensor");
  check_tensor(out, op, "out", 2);
  check_dtype(out, op, "out", q.dtype);
  check_attention_operands(op, q, kv, meta, out);
  const int64_t D = kv.head_dim, Hkv = kv.num_kv_heads;
  NANOVLLM_CHECK(D % 8 == 0 && D <= 256, op, ": the CUDA kernels need head_dim a multiple of 8 ",
                 "and at most 256, got ", D);
  NANOVLLM_CHECK(reinterpret_cast<uintptr_t>(kv.k) % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(kv.v) % 16 == 0,
                 op, ": kv cache values must be 16-byte aligned");
  if (meta.num_seqs == 0) return;
  const int32_t Hq = int32_t(q.dim(1) / D), G = Hq / int32_t(Hkv);
  const bool decode = meta.max_query_len == 1 && q.dim(0) == meta.num_seqs &&
                      cuda::decode_attention_supported(int32_t(D), G);
  if (!decode) {
    cuda::OpTimer timer(state_->prof(), "paged_attention (prefill/mixed)");
    cuda::launch_prefill_attention(q, kv, meta, scale, out, state_->launch_stream());
    return;
  }
  const int32_t resident =
      state_->num_sms * state_->decode_ctas_per_sm(q.dtype, kv.dtype, int32_t(D), G);
  const int32_t splits =
      meta.even_contexts && state_->decode_even_splits
          ? cuda::decode_attention_even_splits(meta.num_seqs, int32_t(Hkv), meta.max_context_len,
                                               resident)
          : cuda::decode_attention_splits(meta.num_seqs, int32_t(Hkv), meta.max_context_len,
                                          resident,
                                          state_->decode_min_waves.value_or(
                                              cuda::default_decode_min_waves(kv.dtype)));
  state_->split_workspace.reserve(
      cuda::decode_attention_workspace_floats(meta.num_seqs, Hq, int32_t(D), splits),
      splits > 1 ? int64_t(meta.num_seqs) * Hkv : 0, state_->capturing, state_->stream);
  cuda::OpTimer timer(state_->prof(), "paged_attention (decode)");
  cuda::launch_decode_attention(q, kv, meta, scale, out, state_->split_workspace.partials(),
                                state_->split_workspace.counters(), splits,
                                state_->fp8_int4_mma, state_->launch_stream());
}

void CudaBackend::sample(const Tensor& logits, std::span<const SamplingRow> rows,
                         int32_t* out_token_ids) {
  const char* op = "sample";
  state_->not_capturing(op);
  check_tensor(logits, op, "logits", 2);
  check_dtype(logits, op, "logits", DType::F32);
  const int64_t S = logits.dim(0), V = logits.dim(1);
  NANOVLLM_CHECK(int64_t(rows.size()) == S, op, ": ", rows.size(), " sampling rows for ", S,
                 " logits rows");
  NANOVLLM_CHECK(V > 0 || S == 0, op, ": logits have an empty vocabulary");
  NANOVLLM_CHECK(V < (int64_t(1) << 31), op, ": vocabulary too large");
  NANOVLLM_CHECK(out_token_ids || S == 0, op, ": out_token_ids is null");
  if (S == 0) return;
  auto& host = state_->host_rows;
  host.resize(size_t(S));
  for (int64_t r = 0; r < S; ++r) {
    const SamplingRow& row = rows[size_t(r)];
    NANOVLLM_CHECK(row.temperature >= 0.f && std::isfinite(row.temperature), op, ": row ", r,
                   " has temperature ", row.temperature, ", expected a finite value >= 0");
    NANOVLLM_CHECK(row.top_p > 0.f && row.top_p <= 1.f, op, ": row ", r, " has top_p ", row.top_p,
                   ", expected (0, 1]");
    const float temperature = samples_greedily(row) ? 0.f : row.temperature;  // the kernel's greedy
    host[size_t(r)] = {draw_key(row.seed, row.step), temperature, row.top_k, row.top_p,
                       uniform_from_counter(row.seed, row.step)};
  }
  if (S > state_->sample_capacity) {
    check_cuda(cudaStreamSynchronize(state_->stream), "sample (workspace)");
    cudaFree(state_->sample_rows);
    cudaFree(state_->sample_ids);
    state_->sample_rows = nullptr;
    state_->sample_ids = nullptr;
    state_->sample_capacity = 0;
    check_cuda(cudaMalloc(&state_->sample_rows, size_t(S) * sizeof(cuda::DeviceSamplingRow)),
               "sample: allocating rows");
    check_cuda(cudaMalloc(&state_->sample_ids, size_t(S) * sizeof(int32_t)), "sample: allocating ids");
    state_->sample_capacity = S;
  }
  state_->staging->copy_to_device(state_->sample_rows, host.data(), size_t(S) * sizeof(host[0]));
  {
    cuda::OpTimer timer(state_->prof(), op);
    cuda::launch_sample(logits, state_->sample_rows, state_->sample_ids, state_->launch_stream());
  }
  void* ids_host = state_->staging->readback(size_t(S) * sizeof(int32_t));
  check_cuda(cudaMemcpyAsync(ids_host, state_->sample_ids, size_t(S) * sizeof(int32_t),
                             cudaMemcpyDeviceToHost, state_->stream),
             "sample: copying token ids");
  check_cuda(cudaStreamSynchronize(state_->stream), "sample (synchronize)");
  std::memcpy(out_token_ids, ids_host, size_t(S) * sizeof(int32_t));
}

// ---- graphs ----

std::unique_ptr<CapturedStep> CudaBackend::capture(const std::function<void()>& step) {
  state_->not_capturing("capture");
  step();  // eager warm-up: workspaces and cuBLASLt plans reach their size outside capture
  check_cuda(cudaStreamSynchronize(state_->stream), "capture (warm-up)");
  check_cuda(cudaStreamBeginCapture(state_->stream, cudaStreamCaptureModeThreadLocal),
             "cudaStreamBeginCapture");
  state_->capturing = true;
  cudaGraph_t graph = nullptr;
  try {
    step();
  } catch (...) {
    state_->capturing = false;
    cudaStreamEndCapture(state_->stream, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    throw;
  }
  state_->capturing = false;
  check_cuda(cudaStreamEndCapture(state_->stream, &graph), "cudaStreamEndCapture");
  cudaGraphExec_t exec = nullptr;
  const cudaError_t st = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  check_cuda(st, "cudaGraphInstantiate");
  return std::make_unique<CudaGraphStep>(exec, state_->stream);
}

}  // namespace nanovllm
