#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#ifdef NANOVLLM_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace nanovllm {

bool cuda_available() {
#ifdef NANOVLLM_HAVE_CUDA
  return cuda_device_present();
#else
  return false;
#endif
}

std::unique_ptr<Backend> make_backend(const std::string& device) {
  if (device == "cpu") return make_cpu_backend();
  if (device == "cuda") {
#ifdef NANOVLLM_HAVE_CUDA
    NANOVLLM_CHECK(cuda_device_present(), "device 'cuda': no CUDA device is present");
    return make_cuda_backend(0);
#else
    throw_error("device 'cuda': this build has no CUDA backend (rebuild with nvcc available)");
#endif
  }
  if (device == "auto") return cuda_available() ? make_backend("cuda") : make_cpu_backend();
  throw_error("device '", device, "': expected cpu, cuda or auto");
}

}  // namespace nanovllm
