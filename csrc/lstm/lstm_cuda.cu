// One LSTM cell step on the GPU for generation: the element-wise part after the matrix
// products, fused into one launch (instead of a dozen torch ops), with layer 0's input gates
// gathered from the bin and step tables, and a per-row mask so that structures that wait
// (a redraw, or finished) keep their state without the batch being compacted or synced; the
// state after an atom's last coordinate is saved as it is written.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "common/cuda_check.h"
#include "lstm/lstm.h"

namespace repap::lstm {
namespace {

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + __expf(-x)); }
__device__ __forceinline__ float load(const float* p) { return *p; }
__device__ __forceinline__ float load(const __nv_bfloat16* p) { return __bfloat162float(*p); }

template <typename G>
__global__ void cell_step_kernel(CellStep a) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int hidden = a.hidden;
  if (i >= a.batch * hidden) return;
  const int64_t b = i / hidden;
  const int u = static_cast<int>(i - b * hidden);
  if (a.go != nullptr && !a.go[b]) return;  // this row waits: state unchanged
  const int64_t four = 4 * static_cast<int64_t>(hidden);
  const G* g = static_cast<const G*>(a.gates) + b * four;
  float pre[4];
#pragma unroll
  for (int q = 0; q < 4; ++q) pre[q] = load(g + q * hidden + u);
  if (a.bias != nullptr) {
#pragma unroll
    for (int q = 0; q < 4; ++q) pre[q] += a.bias[q * hidden + u];
  }
  if (a.bin_rows != nullptr) {
    const float* br = a.bin_rows + a.bins[b] * four;
    const float* sr = a.step_rows + a.steps[b] * four;
#pragma unroll
    for (int q = 0; q < 4; ++q) pre[q] += br[q * hidden + u] + sr[q * hidden + u];
  }
  // gate order of torch.nn.LSTM: i, f, g, o
  const float cn = sigmoid(pre[1]) * a.c[i] + sigmoid(pre[0]) * tanhf(pre[2]);
  const float hn = sigmoid(pre[3]) * tanhf(cn);
  a.c[i] = cn;
  a.h[i] = hn;
  const float relu = hn > 0.0f ? hn : 0.0f;
  if (a.h_relu != nullptr) a.h_relu[i] = relu;
  if (a.relu_lo != nullptr) static_cast<__nv_bfloat16*>(a.relu_lo)[i] = __float2bfloat16(relu);
  if (a.h_lo != nullptr)
    static_cast<__nv_bfloat16*>(a.h_lo)[b * a.h_lo_stride + u] = __float2bfloat16(hn);
  if (a.saved_c != nullptr && (a.steps[b] + 1) % 3 == 0) {  // the state a redraw goes back to
    a.saved_c[i] = cn;
    a.saved_h[i] = hn;
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

void cell_step_cuda(const CellStep& a, int device, void* stream) {
  if (a.batch == 0) return;
  const DeviceGuard guard(device);
  const int threads = 256;
  const int64_t blocks = (a.batch * a.hidden + threads - 1) / threads;
  auto s = static_cast<cudaStream_t>(stream);
  if (a.gates_bf16)
    cell_step_kernel<__nv_bfloat16><<<static_cast<unsigned>(blocks), threads, 0, s>>>(a);
  else
    cell_step_kernel<float><<<static_cast<unsigned>(blocks), threads, 0, s>>>(a);
  REPAP_CUDA_CHECK(cudaGetLastError());
}

}  // namespace repap::lstm
