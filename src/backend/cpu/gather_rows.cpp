#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/row_copy.h"
#include "backend/cpu/tensor_checks.h"

namespace nanovllm::cpu {

// out[S, H] = x[indices[s], :]; x F32 [T, H], indices int32 [S]
void gather_rows(const Tensor& x, const Tensor& indices, Tensor out) {
  check_tensor(x, "gather_rows", "x", DType::F32, 2);
  check_tensor(indices, "gather_rows", "indices", DType::I32, 1);
  check_tensor(out, "gather_rows", "out", DType::F32, 2);
  const int64_t T = x.dim(0), H = x.dim(1), S = indices.dim(0);
  check_dim(out, 0, S, "gather_rows", "out");
  check_dim(out, 1, H, "gather_rows", "out");
  const int32_t* idx = indices.ptr<int32_t>();
  for (int64_t s = 0; s < S; ++s)
    NANOVLLM_CHECK(idx[s] >= 0 && idx[s] < T, "gather_rows: indices[", s, "] = ", idx[s],
                   " is outside the rows [0, ", T, ")");
  NANOVLLM_CHECK(x.data != out.data || S == 0, "gather_rows: out must not alias x");
  copy_indexed_rows(x.ptr<float>(), idx, S, H, out.ptr<float>());
}

}  // namespace nanovllm::cpu
