// Build with CUDA: ask the statically linked runtime, never fail on machines without a GPU.
#include <cuda_runtime.h>

#include "common/cuda_info.h"

namespace repap {

bool cuda_compiled() { return true; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device / no driver" error
    return 0;
  }
  return n;
}

int cuda_runtime_version() { return CUDART_VERSION; }

std::string cuda_device_name(int index) {
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
    cudaGetLastError();
    return {};
  }
  return prop.name;
}

}  // namespace repap
