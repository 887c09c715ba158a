#pragma once
// Rewrites of a captured CUDA graph's dependencies.
#include <cuda_runtime.h>

#include <cstddef>

namespace nanovllm::cuda {

// Capture turns a launch with programmatic stream serialization (launch.cuh) into an edge that
// fires when every block of the kernel before it has triggered (griddepcontrol.launch_dependents)
// or exited. cuBLASLt's kernels never trigger, so the backend's kernel after a product would
// still be scheduled only once the product has finished. This moves every such edge to the
// upstream kernel's launch-completion port (all of its blocks have started): the next kernel is
// scheduled during the product's last wave and waits in griddepcontrol.wait, as before, for the
// product's results. Returns the number of edges moved.
size_t schedule_dependents_at_launch_completion(cudaGraph_t graph);

}  // namespace nanovllm::cuda
