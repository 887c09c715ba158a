#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/row_copy.h"
#include "backend/cpu/tensor_checks.h"

namespace nanovllm::cpu {

// out[T, H] = table[ids[t], :]; ids int32 [T], table F32 or BF16 [V, H], out F32
void embedding(const Tensor& ids, const Tensor& table, Tensor out) {
  check_tensor(ids, "embedding", "ids", DType::I32, 1);
  check_tensor(table, "embedding", "table", table.dtype == DType::BF16 ? DType::BF16 : DType::F32,
               2);
  check_tensor(out, "embedding", "out", DType::F32, 2);
  const int64_t T = ids.dim(0), V = table.dim(0), H = table.dim(1);
  check_dim(out, 0, T, "embedding", "out");
  check_dim(out, 1, H, "embedding", "out");
  const int32_t* id = ids.ptr<int32_t>();
  for (int64_t t = 0; t < T; ++t)
    NANOVLLM_CHECK(id[t] >= 0 && id[t] < V, "embedding: ids[", t, "] = ", id[t],
                   " is outside the vocabulary [0, ", V, ")");
  if (table.dtype == DType::BF16)
    copy_indexed_rows(table.ptr<uint16_t>(), id, T, H, out.ptr<float>());
  else
    copy_indexed_rows(table.ptr<float>(), id, T, H, out.ptr<float>());
}

}  // namespace nanovllm::cpu
