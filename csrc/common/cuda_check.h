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
