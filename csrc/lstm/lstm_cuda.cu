// One LSTM cell step on the GPU for generation: the element-wise part after the matrix
// products, fused into one launch (instead of a dozen torch ops), with layer 0's input gates
// gathered from the bin and step tables, and a per-row mask so that structures that wait
// (a redraw, or finished) keep their state without the batch being compacted or synced; the
// state after an atom's last coordinate is saved as it is written.
#include <cuda_runtime.h>

#include "common/cuda_check.h"
#include "lstm/lstm.h"

namespace repap::lstm {
namespace {

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + __expf(-x)); }

__global__ void cell_step_kernel(const float* __restrict__ gates, const float* __restrict__ bias,
                                 const float* __restrict__ bin_rows,
                                 const float* __restrict__ step_rows,
                                 const int64_t* __restrict__ bins,
                                 const int64_t* __restrict__ steps, const bool* __restrict__ go,
                                 float* __restrict__ c, float* __restrict__ h,
                                 float* __restrict__ h_relu, float* __restrict__ saved_c,
                                 float* __restrict__ saved_h, int64_t batch, int hidden) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= batch * hidden) return;
  const int64_t b = i / hidden;
  const int u = static_cast<int>(i - b * hidden);
  if (go != nullptr && !go[b]) return;  // this row waits: state unchanged
  const int64_t four = 4 * static_cast<int64_t>(hidden);
  const float* g = gates + b * four;
  float pre[4];
#pragma unroll
  for (int q = 0; q < 4; ++q) pre[q] = g[q * hidden + u];
  if (bias != nullptr) {
#pragma unroll
    for (int q = 0; q < 4; ++q) pre[q] += bias[q * hidden + u];
  }
  if (bin_rows != nullptr) {
    const float* br = bin_rows + bins[b] * four;
    const float* sr = step_rows + steps[b] * four;
#pragma unroll
    for (int q = 0; q < 4; ++q) pre[q] += br[q * hidden + u] + sr[q * hidden + u];
  }
  // gate order of torch.nn.LSTM: i, f, g, o
  const float cn = sigmoid(pre[1]) * c[i] + sigmoid(pre[0]) * tanhf(pre[2]);
  const float hn = sigmoid(pre[3]) * tanhf(cn);
  c[i] = cn;
  h[i] = hn;
  if (h_relu != nullptr) h_relu[i] = hn > 0.0f ? hn : 0.0f;
  if (saved_c != nullptr && (steps[b] + 1) % 3 == 0) {  // the state an atom's redraw goes back to
    saved_c[i] = cn;
    saved_h[i] = hn;
  }
}

/// Rows that go back (back[b]) take their saved state; rows that restart become zero; the
/// others are not read or written (a redraw touches only its own rows' memory). One warp per
/// row: the flags are read once per row, not once per element.
__global__ void rewind_kernel(const bool* __restrict__ back, const bool* __restrict__ restart,
                              const float* __restrict__ saved_h,
                              const float* __restrict__ saved_c, float* __restrict__ h,
                              float* __restrict__ c, int64_t layers, int64_t batch,
                              int64_t hidden) {
  const int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (b >= batch) return;
  const bool to_saved = back[b];
  if (!to_saved && !restart[b]) return;
  for (int64_t l = 0; l < layers; ++l) {
    const int64_t off = (l * batch + b) * hidden;
    for (int64_t u = lane; u < hidden; u += 32) {
      h[off + u] = to_saved ? saved_h[off + u] : 0.0f;
      c[off + u] = to_saved ? saved_c[off + u] : 0.0f;
    }
  }
}

}  // namespace

void rewind_cuda(const bool* back, const bool* restart, const float* saved_h,
                 const float* saved_c, float* h, float* c, int64_t layers, int64_t batch,
                 int64_t hidden, int device, void* stream) {
  if (layers * batch * hidden == 0) return;
  const DeviceGuard guard(device);
  const int threads = 256;  // 8 rows per block
  rewind_kernel<<<static_cast<unsigned>((batch + 7) / 8), threads, 0,
                  static_cast<cudaStream_t>(stream)>>>(back, restart, saved_h, saved_c, h, c,
                                                       layers, batch, hidden);
  REPAP_CUDA_CHECK(cudaGetLastError());
}

void cell_step_cuda(const float* gates, const float* bias, const float* bin_rows, const float* step_rows,
                    const int64_t* bins, const int64_t* steps, const bool* go, float* c, float* h,
                    float* h_relu, float* saved_c, float* saved_h, int64_t batch, int64_t hidden,
                    int device, void* stream) {
  if (batch == 0) return;
  const DeviceGuard guard(device);
  const int threads = 256;
  const int64_t blocks = (batch * hidden + threads - 1) / threads;
  cell_step_kernel<<<static_cast<unsigned>(blocks), threads, 0,
                     static_cast<cudaStream_t>(stream)>>>(gates, bias, bin_rows, step_rows, bins, steps,
                                                          go, c, h, h_relu, saved_c, saved_h, batch,
                                                          static_cast<int>(hidden));
  REPAP_CUDA_CHECK(cudaGetLastError());
}

}  // namespace repap::lstm
