// CUDA projection, bound by the output's memory traffic. A block takes a tile of kRows rows:
// first one thread per row locates its coordinate and sets the row up (projection_tile.h:
// its own bin, window, exponent coefficients and log2 of 1 / sum, in shared memory); then all
// threads write the tile, which is contiguous in memory, as a flat array of W-float stores
// (W = 4, 2 or 1, dividing n_bins, so that a store stays in one row), consecutive threads on
// consecutive addresses. Each element inside its row's window costs two FMAs and one hardware
// exp2; outside, none. Nothing per bin is held, so any n_bins works.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "common/cuda_check.h"
#include "projection/projection.h"
#include "projection/projection_math.h"
#include "projection/projection_tile.h"

namespace repap::projection {
namespace {

constexpr int kThreads = 256;
constexpr int kRows = kThreads;  // rows per tile: one per thread in the first phase

template <int W>
struct Vec;
template <>
struct Vec<4> {
  using type = float4;
  static __device__ __forceinline__ float4 make(const float* v) {
    return make_float4(v[0], v[1], v[2], v[3]);
  }
};
template <>
struct Vec<2> {
  using type = float2;
  static __device__ __forceinline__ float2 make(const float* v) { return make_float2(v[0], v[1]); }
};
template <>
struct Vec<1> {
  using type = float;
  static __device__ __forceinline__ float make(const float* v) { return v[0]; }
};

/// W: floats per store (4, 2 or 1), chosen so that W divides n_bins: a store never spans two
/// rows, so each store reads its row's set-up once and the loop has no per-element row check.
template <typename T, int W, bool kNarrow>
__global__ void __launch_bounds__(kThreads) project_kernel(
    const T* __restrict__ x, int64_t n_rows, int n_bins, float3 c, int3 half, float3 norm,
    bool periodic, float* __restrict__ out, int* status) {
  __shared__ TileRow rows[kRows];
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int n_here = static_cast<int>(min(static_cast<int64_t>(kRows), n_rows - row0));
  if (threadIdx.x < n_here) {
    const int64_t r = row0 + threadIdx.x;
    const int a = static_cast<int>(r % 3);
    const float ca = a == 0 ? c.x : (a == 1 ? c.y : c.z);
    const int wa = a == 0 ? half.x : (a == 1 ? half.y : half.z);
    const float na = a == 0 ? norm.x : (a == 1 ? norm.y : norm.z);
    int s;
    rows[threadIdx.x] = tile_row(x[r], n_bins, periodic, ca, wa, na, s);
    if (s != kOk) atomicOr(status, s);
  }
  __syncthreads();
  // The tile (n_here rows, contiguous) as vectors of W floats; thread t takes vectors t,
  // t + kThreads, ...: its (row, first bin) advance by a fixed quotient and remainder.
  using V = typename Vec<W>::type;
  V* tile = reinterpret_cast<V*>(out + row0 * n_bins);
  const int per_row = n_bins / W;
  const int n_vec = n_here * per_row;
  const int d_row = kThreads / per_row, d_vec = kThreads % per_row;
  int row = threadIdx.x / per_row;
  int vec = threadIdx.x - row * per_row;
  for (int v = threadIdx.x; v < n_vec; v += kThreads) {
    const TileRow r = rows[row];
    float vals[W];
#pragma unroll
    for (int i = 0; i < W; ++i) vals[i] = tile_value<kNarrow>(vec * W + i, r, n_bins);
    tile[v] = Vec<W>::make(vals);
    vec += d_vec;
    row += d_row;
    if (vec >= per_row) vec -= per_row, ++row;
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
  // an int index over one tile's elements: kRows * n_bins must fit
  if (static_cast<int64_t>(kRows) * n_bins > int64_t{0x7fffffff})
    throw std::invalid_argument("project_cuda: n_bins too large");
  // widest store that divides a row and that the output's alignment allows
  const auto address = reinterpret_cast<uintptr_t>(out);
  const int width = (n_bins % 4 == 0 && address % 16 == 0) ? 4
                    : (n_bins % 2 == 0 && address % 8 == 0) ? 2 : 1;
  // the fast exponent where it is exact to 1e-6 of the value (projection_tile.h)
  const bool narrow = std::max({c.x, c.y, c.z}) * kLog2e > kMaxWideA;
  auto launch = [&](auto* typed) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(typed)>>;
    auto go = [&](auto width, auto narrow_form) {
      project_kernel<T, decltype(width)::value, decltype(narrow_form)::value>
          <<<grid, kThreads, 0, s>>>(typed, n_rows, n_bins, c, half, norm, periodic, out, status);
    };
    using std::integral_constant;
    using no = std::false_type;
    using yes = std::true_type;
    if (width == 4)
      narrow ? go(integral_constant<int, 4>{}, yes{}) : go(integral_constant<int, 4>{}, no{});
    else if (width == 2)
      narrow ? go(integral_constant<int, 2>{}, yes{}) : go(integral_constant<int, 2>{}, no{});
    else
      narrow ? go(integral_constant<int, 1>{}, yes{}) : go(integral_constant<int, 1>{}, no{});
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
