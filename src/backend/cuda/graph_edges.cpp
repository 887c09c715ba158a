#include "backend/cuda/graph_edges.h"

#include <vector>

#include "backend/cuda/cuda_check.h"

namespace nanovllm::cuda {

size_t schedule_dependents_at_launch_completion(cudaGraph_t graph) {
  size_t n = 0;
  check_cuda(cudaGraphGetEdges(graph, nullptr, nullptr, nullptr, &n), "counting graph edges");
  std::vector<cudaGraphNode_t> from(n), to(n);
  std::vector<cudaGraphEdgeData> data(n);
  check_cuda(cudaGraphGetEdges(graph, from.data(), to.data(), data.data(), &n),
             "reading graph edges");
  size_t moved = 0;
  for (size_t i = 0; i < n; ++i) {
    if (data[i].type != cudaGraphDependencyTypeProgrammatic ||
        data[i].from_port != cudaGraphKernelNodePortProgrammatic)
      continue;
    cudaGraphEdgeData at_start = data[i];
    at_start.from_port = cudaGraphKernelNodePortLaunchCompletion;
    check_cuda(cudaGraphRemoveDependencies(graph, &from[i], &to[i], &data[i], 1),
               "removing a programmatic graph edge");
    check_cuda(cudaGraphAddDependencies(graph, &from[i], &to[i], &at_start, 1),
               "adding a launch-completion graph edge");
    ++moved;
  }
  return moved;
}

}  // namespace nanovllm::cuda
