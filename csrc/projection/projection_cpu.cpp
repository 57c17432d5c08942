// CPU projection: OpenMP over rows; per row one vectorised pass over the window of bins whose
// weight can be non-zero, then a single write of zeros and the normalised window.
#include <algorithm>
#include <cstring>
#include <vector>

#include "projection/projection.h"
#include "projection/projection_math.h"

namespace repap::projection {
namespace {

template <typename T>
int project_row(T xv, int n_bins, float c, int half, bool periodic, float* o, float* buf) {
  const int status = coordinate_status(xv, periodic);
  if (status != kOk) {
    std::memset(o, 0, sizeof(float) * n_bins);
    return status;
  }
  const BinPos p = locate(xv, n_bins, periodic);
  const OffsetRange all = offset_range(p, n_bins, periodic);
  const int jlo = std::max(all.lo, -half), jhi = std::min(all.hi, half);
  const int n = jhi - jlo + 1;

  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int i = 0; i < n; ++i) {
    const float w = weight(jlo + i, p, c);
    buf[i] = w;
    sum += w;
  }
  const float inv = 1.0f / sum;

  if (n < n_bins) std::memset(o, 0, sizeof(float) * n_bins);
  const int k = bin_of_offset(jlo, p, n_bins);  // the window wraps around at most once
  const int first = std::min(n, n_bins - k);
#pragma omp simd
  for (int i = 0; i < first; ++i) o[k + i] = buf[i] * inv;
#pragma omp simd
  for (int i = first; i < n; ++i) o[i - first] = buf[i] * inv;
  return kOk;
}

}  // namespace

template <typename T>
int project_cpu(const T* x, int64_t n_rows, int n_bins, const float sigma[3], bool periodic,
                float* out) {
  float c[3];
  int half[3];
  for (int a = 0; a < 3; ++a) {
    c[a] = exponent_coefficient(sigma[a], n_bins);
    half[a] = std::min(window_half_width(c[a]), n_bins);
  }
  int status = kOk;
#pragma omp parallel reduction(| : status)
  {
    std::vector<float> buf(static_cast<size_t>(n_bins));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < n_rows; ++r) {
      const int a = static_cast<int>(r % 3);
      status |= project_row(x[r], n_bins, c[a], half[a], periodic, out + r * n_bins, buf.data());
    }
  }
  return status;
}

template <typename T>
int bin_index_cpu(const T* x, int64_t n, int n_bins, bool periodic, int64_t* out) {
  int status = kOk;
#pragma omp parallel for schedule(static) reduction(| : status)
  for (int64_t i = 0; i < n; ++i) {
    const int s = coordinate_status(x[i], periodic);
    status |= s;
    out[i] = s == kOk ? locate(x[i], n_bins, periodic).k0 : -1;
  }
  return status;
}

template int project_cpu<float>(const float*, int64_t, int, const float*, bool, float*);
template int project_cpu<double>(const double*, int64_t, int, const float*, bool, float*);
template int bin_index_cpu<float>(const float*, int64_t, int, bool, int64_t*);
template int bin_index_cpu<double>(const double*, int64_t, int, bool, int64_t*);

}  // namespace repap::projection
