// schedule_dependents_at_launch_completion on a captured chain: a normally launched kernel (in
// place of a cuBLASLt product, which the backend cannot launch with the PDL attribute) followed
// by two kernels launched with it. Their two programmatic edges move to the launch-completion
// port, and replays compute exactly what the eager chain did, with every intermediate poisoned
// before each replay (a kernel that ran before its input was written would read NaN).
#include <cuda_runtime.h>

#include "backend/cuda/graph_edges.h"
#include "backend/cuda/kernels.h"
#include "gpu_test_util.h"
#include "common/backend_op_cases.h"

namespace nanovllm {
namespace {

using namespace gpu_test;

struct EdgeCounts {
  size_t programmatic_port = 0, launch_completion_port = 0, full = 0;
};

EdgeCounts count_edges(cudaGraph_t graph) {
  size_t n = 0;
  EXPECT_EQ(cudaGraphGetEdges(graph, nullptr, nullptr, nullptr, &n), cudaSuccess);
  std::vector<cudaGraphNode_t> from(n), to(n);
  std::vector<cudaGraphEdgeData> data(n);
  EXPECT_EQ(cudaGraphGetEdges(graph, from.data(), to.data(), data.data(), &n), cudaSuccess);
  EdgeCounts c;
  for (const cudaGraphEdgeData& e : data) {
    if (e.type != cudaGraphDependencyTypeProgrammatic) ++c.full;
    else if (e.from_port == cudaGraphKernelNodePortLaunchCompletion) ++c.launch_completion_port;
    else if (e.from_port == cudaGraphKernelNodePortProgrammatic) ++c.programmatic_port;
  }
  return c;
}

TEST(CudaGraphEdges, ProgrammaticEdgesMoveToLaunchCompletionAndReplaysEqualEager) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  int major = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  if (major < 9) GTEST_SKIP() << "programmatic dependent launch needs sm_90";
  Gpu gpu;
  const DType dt = DType::BF16;
  const int64_t T = 1024, I = 1536;  // the first kernel runs several waves of 1024 rows
  testing::Rng rng(11);
  auto x = gpu.floats(dt, testing::random_floats(size_t(T * 2 * I), rng), {T, 2 * I});
  auto w1 = gpu.floats(dt, testing::random_floats(size_t(2 * I), rng, 0.5f, 1.5f), {2 * I});
  auto w2 = gpu.floats(dt, testing::random_floats(size_t(I), rng, 0.5f, 1.5f), {I});
  auto normed = gpu.poisoned(dt, {T, 2 * I});
  auto act = gpu.poisoned(dt, {T, I});
  auto out = gpu.poisoned(dt, {T, I});
  gpu.backend().synchronize();

  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  // normed = norm(x) (normal launch); act = silu(normed) x up; out = norm(act) (both overlapping)
  auto chain = [&] {
    const cuda::Stream normal{s, false}, overlapping{s, true};
    cuda::launch_rms_norm(x.tensor, nullptr, w1.tensor, 1e-6f, normed.tensor, normal);
    cuda::launch_silu_mul(normed.tensor, act.tensor, overlapping);
    cuda::launch_rms_norm(act.tensor, nullptr, w2.tensor, 1e-6f, out.tensor, overlapping);
  };
  chain();
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  const std::vector<float> eager = gpu.read(out);
  ASSERT_TRUE(all_finite(eager));

  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  chain();
  ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  const EdgeCounts before = count_edges(graph);
  EXPECT_EQ(before.programmatic_port, 2u);
  EXPECT_EQ(before.launch_completion_port, 0u);
  EXPECT_EQ(cuda::schedule_dependents_at_launch_completion(graph), 2u);
  const EdgeCounts after = count_edges(graph);
  EXPECT_EQ(after.programmatic_port, 0u);
  EXPECT_EQ(after.launch_completion_port, 2u);
  EXPECT_EQ(after.full, before.full);

  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  const std::vector<uint8_t> nan_2i = encode(dt, std::vector<float>(size_t(T * 2 * I), NAN));
  for (int round = 0; round < 5; ++round) {
    gpu.backend().copy_from_host(normed.buffer.data(), nan_2i.data(), normed.tensor.nbytes());
    gpu.backend().copy_from_host(act.buffer.data(), nan_2i.data(), act.tensor.nbytes());
    gpu.backend().copy_from_host(out.buffer.data(), nan_2i.data(), out.tensor.nbytes());
    gpu.backend().synchronize();
    ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    EXPECT_EQ(gpu.read(out), eager) << "replay " << round;
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
}

}  // namespace
}  // namespace nanovllm
