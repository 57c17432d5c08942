// The generation loop's per-structure rules on the GPU (repap.sampling's CUDA batch), fused:
// what some 50 small torch ops did per step, in three launches. One warp per structure: its
// lanes read the structure's counters, lane 0 writes them back, and the warp copies the rows
// a rule moves (LSTM state and logits of a redrawn atom, new logits). The rules are those of
// repap.sampling (module doc); a test holds this path equal, structure by structure, to the
// same rules written as torch ops.
#include <cuda_runtime.h>

#include "common/cuda_check.h"
#include "sampler/sampler.h"
#include "sampler/sampler_math.h"

namespace repap::sampler {
namespace {

constexpr int kWarps = 8;  // structures per block of the warp-per-structure kernels

__global__ void before_draw_kernel(RuleRows r) {
  const int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (b >= r.n) return;
  const bool live = !r.done[b] && !r.failed[b];
  const int64_t k = r.k[b];
  r.k_first[b] = live && k == 0 ? k : -1;
  r.k_rest[b] = live && k != 0 ? k : -1;
  r.bins[b] = -1;
}

__device__ __forceinline__ void copy_row(float* dst, const float* src, int n, int lane) {
  for (int i = lane; i < n; i += 32) dst[i] = src[i];
}

__global__ void after_draw_kernel(RuleRows r, int64_t max_retries, int64_t max_restarts) {
  const int64_t b = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (b >= r.n) return;
  const bool live = !r.done[b] && !r.failed[b];
  const int64_t bin = r.bins[b];
  const int64_t k_drawn = r.k[b];
  int64_t k = k_drawn;
  int64_t tries = r.tries[b];
  int64_t restarts = r.restarts[b];
  __syncwarp();
  const bool clash = live && bin < 0;
  if (clash) ++tries;
  const bool restart = clash && tries > max_retries;
  const bool back = clash && !restart;
  if (back) k = (k / 3) * 3;  // the atom's first coordinate, its saved state and logits
  if (restart) ++restarts, tries = 0, k = 0;
  const bool drawn = live && bin >= 0;
  const bool last = drawn && k == r.n_coords - 1;
  if (lane == 0) {
    if (bin == kBadLogits) r.bad[b] = k_drawn;
    if (clash) ++r.attempt[b], ++r.redrawn[b];
    r.k[b] = k;
    r.tries[b] = tries;
    r.restarts[b] = restarts;
    if (restart && restarts > max_restarts) r.failed[b] = true;
    if (last) r.done[b] = true;
    r.go[b] = drawn && !last;
  }
  if (back || restart) {
    for (int l = 0; l < r.layers; ++l) {
      const int64_t off = (static_cast<int64_t>(l) * r.n + b) * r.hidden;
      if (back) {
        copy_row(r.h + off, r.saved_h + off, r.hidden, lane);
        copy_row(r.c + off, r.saved_c + off, r.hidden, lane);
      } else {
        for (int i = lane; i < r.hidden; i += 32) r.h[off + i] = 0.0f, r.c[off + i] = 0.0f;
      }
    }
    if (back) copy_row(r.logits + b * r.n_bins, r.saved_logits + b * r.n_bins, r.n_bins, lane);
  }
}

__global__ void after_step_kernel(RuleRows r, const float* __restrict__ new_logits) {
  const int64_t b = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (b >= r.n || !r.go[b]) return;
  const int64_t k = r.k[b] + 1;
  __syncwarp();
  const float* src = new_logits + b * r.n_bins;
  copy_row(r.logits + b * r.n_bins, src, r.n_bins, lane);
  const bool atom_start = k % 3 == 0;  // the logits of an atom's first coordinate: saved
  if (atom_start) copy_row(r.saved_logits + b * r.n_bins, src, r.n_bins, lane);
  if (lane == 0) {
    r.k[b] = k;
    if (atom_start) r.tries[b] = 0;
  }
}

unsigned blocks_for(int64_t items, int64_t per_block) {
  return static_cast<unsigned>((items + per_block - 1) / per_block);
}

}  // namespace

void rules_before_draw_cuda(const RuleRows& r, int device, void* stream) {
  if (r.n == 0) return;
  const DeviceGuard guard(device);
  before_draw_kernel<<<blocks_for(r.n, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(r);
  REPAP_CUDA_CHECK(cudaGetLastError());
}

void rules_after_draw_cuda(const RuleRows& r, int64_t max_retries, int64_t max_restarts,
                           int device, void* stream) {
  if (r.n == 0) return;
  const DeviceGuard guard(device);
  after_draw_kernel<<<blocks_for(r.n, kWarps), 32 * kWarps, 0,
                      static_cast<cudaStream_t>(stream)>>>(r, max_retries, max_restarts);
  REPAP_CUDA_CHECK(cudaGetLastError());
}

void rules_after_step_cuda(const RuleRows& r, const float* new_logits, int device, void* stream) {
  if (r.n == 0) return;
  const DeviceGuard guard(device);
  after_step_kernel<<<blocks_for(r.n, kWarps), 32 * kWarps, 0,
                      static_cast<cudaStream_t>(stream)>>>(r, new_logits);
  REPAP_CUDA_CHECK(cudaGetLastError());
}

}  // namespace repap::sampler
