// Build without CUDA: no device is ever usable.
#include "common/cuda_info.h"

namespace repap {

bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
int cuda_runtime_version() { return 0; }
std::string cuda_device_name(int) { return {}; }

}  // namespace repap
