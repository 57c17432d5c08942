// CUDA projection, bound by the output's memory traffic. A block takes a tile of kRows rows:
// first one thread per row locates its coordinate and sums the row's weights over the window
// where they are non-zero (shared memory keeps the row's position and 1 / sum); then all
// threads write the tile, which is contiguous in memory, as a flat array in 16-byte stores,
// consecutive threads on consecutive addresses. Each element's weight is evaluated once for
// the write (one exponential inside the row's window, none outside); nothing per bin is
// held, so any n_bins works.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "common/cuda_check.h"
#include "projection/projection.h"
#include "projection/projection_math.h"

namespace repap::projection {
namespace {

constexpr int kThreads = 256;
constexpr int kRows = kThreads;  // rows per tile: one per thread in the first phase

struct RowInfo {
  BinPos p;
  float c;    // exponent coefficient of the row's axis
  float inv;  // 1 / (sum of the row's weights); 0 for a bad coordinate (row of zeros)
  int lo;     // first offset of the row's range (minimum image when periodic)
  int w;      // window: weights beyond |offset| = w are exact zeros (window_half_width)
};

/// Offset of bin k from the row's own bin, inside the row's range [lo, lo + n_bins - 1].
__device__ __forceinline__ int offset_of_bin(int k, const RowInfo& r, int n_bins) {
  int j = k - r.p.k0;
  if (j < r.lo) j += n_bins;
  else if (j > r.lo + n_bins - 1) j -= n_bins;
  return j;
}

__device__ __forceinline__ float value(int k, const RowInfo& r, int n_bins) {
  const int j = offset_of_bin(k, r, n_bins);  // outside the window: no exponential at all
  if (j < -r.w || j > r.w) return 0.0f;
  // the header's exponent; the exponential on the special-function unit (ex2.approx: a few
  // ulp, against ~15 instructions of the portable polynomial), zero below the cut as there
  const float a = weight_exponent(j, r.p, r.c);
  return a < -kArgCut ? 0.0f : __expf(a) * r.inv;
}

template <typename T, bool kVector>
__global__ void __launch_bounds__(kThreads) project_kernel(
    const T* __restrict__ x, int64_t n_rows, int n_bins, float3 c, int3 half, float3 norm,
    bool periodic, float* __restrict__ out, int* status) {
  __shared__ RowInfo rows[kRows];
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int n_here = static_cast<int>(min(static_cast<int64_t>(kRows), n_rows - row0));
  if (threadIdx.x < n_here) {
    const int64_t r = row0 + threadIdx.x;
    const T xv = x[r];
    RowInfo info{};
    const int s = coordinate_status(xv, periodic);
    if (s != kOk) {
      atomicOr(status, s);
      info.p = BinPos{0, 0.0f, 0.0f};
      info.lo = 0;
      info.w = 0;
      info.inv = 0.0f;
    } else {
      const int a = static_cast<int>(r % 3);
      info.c = a == 0 ? c.x : (a == 1 ? c.y : c.z);
      const int w = a == 0 ? half.x : (a == 1 ? half.y : half.z);
      info.p = locate(xv, n_bins, periodic);
      const OffsetRange range = offset_range(info.p, n_bins, periodic);
      info.lo = range.lo;
      info.w = w;
      const float nrm = a == 0 ? norm.x : (a == 1 ? norm.y : norm.z);
      if (nrm > 0.0f) {  // the sum in closed form (see project_cuda)
        const float d0 = 0.5f * info.p.below - 0.5f;  // from the own bin's centre, in bins
        info.inv = 1.0f / (nrm * expf(info.c * d0 * d0));
      } else {
        float sum = 0.0f;  // weights beyond the window are exact zeros
        for (int j = max(range.lo, -w); j <= min(range.hi, w); ++j)
          sum += weight(j, info.p, info.c);
        info.inv = 1.0f / sum;
      }
    }
    rows[threadIdx.x] = info;
  }
  __syncthreads();
  float* tile = out + row0 * n_bins;
  const int n = n_here * n_bins;
  if (kVector) {  // 16-byte stores: the tile starts 16-byte aligned (kRows * 4 bytes per bin)
    // Each thread walks the tile in strides of 4 * kThreads elements; its (row, bin) advance by
    // a fixed quotient and remainder, so no division per store (one per thread, here).
    const int n4 = n / 4;
    constexpr int kStride = 4 * kThreads;
    const int d_row = kStride / n_bins, d_bin = kStride % n_bins;
    int row = (4 * threadIdx.x) / n_bins;
    int bin = 4 * threadIdx.x - row * n_bins;
    for (int v = threadIdx.x; v < n4; v += kThreads) {
      int k = bin, rw = row;
      RowInfo r = rows[rw];  // in registers for the 4 elements (reloaded on a row change)
      float vals[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        vals[i] = value(k, r, n_bins);
        if (++k == n_bins && i < 3) k = 0, r = rows[++rw];
      }
      reinterpret_cast<float4*>(tile)[v] = make_float4(vals[0], vals[1], vals[2], vals[3]);
      bin += d_bin;
      row += d_row;
      if (bin >= n_bins) bin -= n_bins, ++row;
    }
    for (int e = 4 * n4 + threadIdx.x; e < n; e += kThreads) {
      const int rr = e / n_bins;
      tile[e] = value(e - rr * n_bins, rows[rr], n_bins);
    }
  } else {
    for (int e = threadIdx.x; e < n; e += kThreads) {
      const int row = e / n_bins;
      tile[e] = value(e - row * n_bins, rows[row], n_bins);
    }
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
  const int3 half = make_int3(window_half_width(c.x), window_half_width(c.y),
                              window_half_width(c.z));
  // A periodic row whose window does not wrap sums a Gaussian sampled at unit spacing over
  // every bin where it is non-zero: by Poisson summation that sum is sqrt(pi / c), relative to
  // the own bin's weight exp(c d0^2), up to 2 exp(-pi^2 / c) (5e-9 at c = 1/2, sigma of one
  // bin) and the 2^-30 tail cut: no loop over the window. norm = 0 keeps the explicit sum.
  auto closed_form = [&](float ca, int wa) {
    const bool ok = periodic && ca <= 0.5f && 2 * int64_t{wa} + 1 <= n_bins;
    return ok ? std::sqrt(3.14159265358979 / ca) : 0.0;
  };
  const float3 norm = make_float3(static_cast<float>(closed_form(c.x, half.x)),
                                  static_cast<float>(closed_form(c.y, half.y)),
                                  static_cast<float>(closed_form(c.z, half.z)));
  const int64_t blocks = (n_rows + kRows - 1) / kRows;
  if (blocks > int64_t{0x7fffffff}) throw std::invalid_argument("project_cuda: too many rows");
  const dim3 grid(static_cast<unsigned>(blocks));
  auto s = static_cast<cudaStream_t>(stream);
  const bool vector = reinterpret_cast<uintptr_t>(out) % 16 == 0;
  // an int index over one tile's elements: kRows * n_bins must fit
  if (static_cast<int64_t>(kRows) * n_bins > int64_t{0x7fffffff})
    throw std::invalid_argument("project_cuda: n_bins too large");
  auto launch = [&](auto* typed) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(typed)>>;
    if (vector)
      project_kernel<T, true><<<grid, kThreads, 0, s>>>(typed, n_rows, n_bins, c, half, norm,
                                                        periodic, out, status);
    else
      project_kernel<T, false><<<grid, kThreads, 0, s>>>(typed, n_rows, n_bins, c, half, norm,
                                                         periodic, out, status);
  };
  if (x_is_double)
    launch(static_cast<const double*>(x));
  else
    launch(static_cast<const float*>(x));
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
