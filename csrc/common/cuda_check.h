// Turns a CUDA runtime error into a C++ exception (pybind11 maps it to RuntimeError).
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#define REPAP_CUDA_CHECK(expr)                                                      \
  do {                                                                              \
    cudaError_t err_ = (expr);                                                      \
    if (err_ != cudaSuccess)                                                        \
      throw std::runtime_error(std::string("repap CUDA error: ") +                  \
                               cudaGetErrorString(err_) + " (" #expr ")");          \
  } while (0)

namespace repap {

/// Makes `device` current for the scope and restores the caller's device after: a library
/// call must not change which device the caller's (torch's) next launch goes to. Both CUDA
/// runtimes in the process (torch's, and the one linked statically here) share the driver's
/// per-thread current context, so a leaked cudaSetDevice would move torch's work too.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    REPAP_CUDA_CHECK(cudaGetDevice(&previous_));
    if (device != previous_) {
      REPAP_CUDA_CHECK(cudaSetDevice(device));
      changed_ = true;
    }
  }
  ~DeviceGuard() {
    if (changed_) cudaSetDevice(previous_);  // no throw from a destructor
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

}  // namespace repap
