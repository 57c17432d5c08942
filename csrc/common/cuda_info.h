// What the extension was built with and which CUDA devices it can use.
#pragma once

#include <string>

namespace repap {

/// True when the CUDA kernels were compiled into this build.
bool cuda_compiled();
/// Number of CUDA devices the bundled runtime can use (0 without CUDA, driver or GPU).
int cuda_device_count();
/// CUDA runtime version the kernels were built against, e.g. 13000; 0 without CUDA.
int cuda_runtime_version();
/// Name of device `index`, or an empty string.
std::string cuda_device_name(int index);

}  // namespace repap
