// CUDA sampler: one thread per structure, the per-structure math of sampler_math.h. The
// scratch row lives in local memory (G <= kMaxCudaBins, checked by the host wrapper).
#include <cuda_runtime.h>

#include "common/cuda_check.h"
#include "sampler/sampler.h"
#include "sampler/sampler_math.h"

namespace repap::sampler {
namespace {

__global__ void sample_step_kernel(const float* logits, int64_t batch, int n_bins, int mode,
                                   float inv_t, float* coords, int n_coords, const int64_t* k,
                                   const int64_t* structure, const int64_t* attempt,
                                   uint64_t seed, Geometry g, int64_t* bins) {
  const int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (b >= batch || k[b] < 0) return;
  float work[kMaxCudaBins];
  float u_bin, u_pos;
  uniforms(seed, structure[b], k[b], attempt[b], u_bin, u_pos);
  float* row = coords + b * n_coords;
  const Draw d = draw_coordinate(logits + b * n_bins, n_bins, mode, inv_t, row,
                                 static_cast<int>(k[b]), g, u_bin, u_pos, work);
  bins[b] = d.bin;
  if (d.bin >= 0) row[k[b]] = d.value;
}

}  // namespace

void sample_step_cuda(const float* logits, int64_t batch, int n_bins, int mode, float temperature,
                      float* coords, int n_coords, const int64_t* k, const int64_t* structure,
                      const int64_t* attempt, uint64_t seed, const float* cell, float min_dist,
                      int64_t* bins, int device, void* stream) {
  check_arguments(n_bins, temperature, /*cuda=*/true);
  if (batch == 0) return;
  Geometry g;
  for (int i = 0; i < 9; ++i) g.cell[i] = cell[i];  // host values, passed by value
  g.min_dist2 = min_dist > 0.0f ? min_dist * min_dist : 0.0f;
  const DeviceGuard guard(device);
  const int threads = 128;
  const int64_t blocks = (batch + threads - 1) / threads;
  sample_step_kernel<<<static_cast<unsigned>(blocks), threads, 0,
                       static_cast<cudaStream_t>(stream)>>>(logits, batch, n_bins, mode,
                                                            1.0f / temperature, coords, n_coords,
                                                            k, structure, attempt, seed, g, bins);
  REPAP_CUDA_CHECK(cudaGetLastError());
}

}  // namespace repap::sampler
