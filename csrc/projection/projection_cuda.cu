// CUDA projection: one warp per row, lanes over bins (coalesced stores), a warp-shuffle sum.
// Every bin is evaluated (no window): the kernel is bound by the output's memory traffic.
#include <cuda_runtime.h>

#include <algorithm>

#include "common/cuda_check.h"
#include "projection/projection.h"
#include "projection/projection_math.h"

namespace repap::projection {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;

// Weights are recomputed for the write instead of held per lane: the kernel is bound by the
// output's memory traffic, and this keeps any n_bins in registers.
template <typename T>
__global__ void project_kernel(const T* __restrict__ x, int64_t n_rows, int n_bins, float3 c,
                               bool periodic, float* __restrict__ out, int* status) {
  const int lane = threadIdx.x & 31;
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t stride = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t r = first; r < n_rows; r += stride) {
    const T xv = x[r];
    float* o = out + r * n_bins;
    const int s = coordinate_status(xv, periodic);
    if (s != kOk) {
      if (lane == 0) atomicOr(status, s);
      for (int k = lane; k < n_bins; k += 32) o[k] = 0.0f;
      continue;
    }
    const BinPos p = locate(xv, n_bins, periodic);
    const OffsetRange range = offset_range(p, n_bins, periodic);
    const int a = static_cast<int>(r % 3);
    const float ca = a == 0 ? c.x : (a == 1 ? c.y : c.z);
    float sum = 0.0f;
    for (int j = range.lo + lane; j <= range.hi; j += 32) sum += weight(j, p, ca);
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    const float inv = 1.0f / sum;
    // consecutive lanes write consecutive bins (one wrap at most): coalesced stores
    for (int j = range.lo + lane; j <= range.hi; j += 32)
      o[bin_of_offset(j, p, n_bins)] = weight(j, p, ca) * inv;
  }
}

template <typename T>
__global__ void bin_index_kernel(const T* __restrict__ x, int64_t n, int n_bins, bool periodic,
                                 int64_t* __restrict__ out, int* status) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const int s = coordinate_status(x[i], periodic);
    if (s != kOk) atomicOr(status, s);
    out[i] = s == kOk ? locate(x[i], n_bins, periodic).k0 : -1;
  }
}

unsigned grid_for(int64_t items, int64_t per_block) {
  const int64_t blocks = (items + per_block - 1) / per_block;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, int64_t{1} << 20));
}

}  // namespace

void project_cuda(const void* x, bool x_is_double, int64_t n_rows, int n_bins,
                  const float sigma[3], bool periodic, float* out, int* status, int device,
                  void* stream) {
  if (n_rows == 0) return;
  const DeviceGuard guard(device);
  const float3 c = make_float3(exponent_coefficient(sigma[0], n_bins),
                               exponent_coefficient(sigma[1], n_bins),
                               exponent_coefficient(sigma[2], n_bins));
  const unsigned grid = grid_for(n_rows, kWarpsPerBlock);
  auto s = static_cast<cudaStream_t>(stream);
  if (x_is_double)
    project_kernel<<<grid, kThreads, 0, s>>>(static_cast<const double*>(x), n_rows, n_bins, c,
                                             periodic, out, status);
  else
    project_kernel<<<grid, kThreads, 0, s>>>(static_cast<const float*>(x), n_rows, n_bins, c,
                                             periodic, out, status);
  REPAP_CUDA_CHECK(cudaGetLastError());
}

void bin_index_cuda(const void* x, bool x_is_double, int64_t n, int n_bins, bool periodic,
                    int64_t* out, int* status, int device, void* stream) {
  if (n == 0) return;
  const DeviceGuard guard(device);
  const unsigned grid = grid_for(n, kThreads);
  auto s = static_cast<cudaStream_t>(stream);
  if (x_is_double)
    bin_index_kernel<<<grid, kThreads, 0, s>>>(static_cast<const double*>(x), n, n_bins,
                                               periodic, out, status);
  else
    bin_index_kernel<<<grid, kThreads, 0, s>>>(static_cast<const float*>(x), n, n_bins,
                                               periodic, out, status);
  REPAP_CUDA_CHECK(cudaGetLastError());
}

}  // namespace repap::projection
