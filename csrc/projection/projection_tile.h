// The CUDA projection's per-row set-up and per-element value, as host-and-device functions so
// that a host harness can run the kernel's exact arithmetic (the exponential aside).
//
// The exponent of projection_math.h, -c m ((m - 1) + g), is for every offset j (either sign)
// -c j (j - 2h), with h = f - 1/2 the point's offset from its own bin's centre (in bins). In
// base 2 and with the row's normalisation folded in, the value of offset j is
//   2^(j (A j + B) + L),   A = -c log2(e),  B = 2 c h log2(e),  L = log2(1 / row sum):
// two FMAs and one hardware exp2 per element. The cut of projection_math.h (weights below
// 2^-30 of the own bin's are exact zeros) is j (A j + B) < -30. A j + B cancels where h is
// near +-1/2 and j = +-1, with an error that grows with |A|: measured against the CPU kernel
// on points at bin edges, 4e-7 of the value at |A| = 8 (sigma 0.3 bins), 1.1e-6 at 18. Rows
// with |A| > kMaxWideA take the header's cancellation-free form A m ((m - 1) + g) (m = |j|,
// g = 2(1 - f) or 2f): three more operations per element.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.h"
#include "projection/projection_math.h"

namespace repap::projection {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kCut2 = 30.0f;  // kArgCut in base 2
constexpr float kMaxWideA = 8.0f;  // |A| = c log2(e) up to which the fast form errs < 5e-7

struct TileRow {
  float a;  // A of the exponent j (A j + B), base 2
  float b;  // B
  float l;  // log2(1 / sum of the row's weights); -inf for a bad coordinate (row of zeros)
  float below, above;  // 2f and 2(1 - f), for the narrow form
  int k0;   // own bin
  int lo;   // first offset of the row's range (minimum image when periodic)
  int w;    // window: offsets beyond |j| = w are exact zeros
};

/// The row of coordinate x on axis coefficient c, window w; norm > 0: the periodic row sum in
/// closed form, norm * exp(c h^2) (see project_cuda), else the explicit sum over the window.
template <typename T>
REPAP_HD TileRow tile_row(T x, int n_bins, bool periodic, float c, int w, float norm, int& status) {
  TileRow r{};
  status = coordinate_status(x, periodic);
  if (status != kOk) {
    r.l = -INFINITY;
    return r;
  }
  const BinPos p = locate(x, n_bins, periodic);
  const OffsetRange range = offset_range(p, n_bins, periodic);
  const float h = 0.5f * p.below - 0.5f;
  r.k0 = p.k0;
  r.below = p.below;
  r.above = p.above;
  r.lo = range.lo;
  r.w = w;
  // c is capped at the largest float (exponent_coefficient): keep A finite, so that the
  // narrow form's (A m) at m = 0, or at an exact bin edge, is 0 and not inf * 0 = NaN
  r.a = fmaxf(-c * kLog2e, -3.4028234663852886e38f);
  r.b = 2.0f * c * h * kLog2e;
  if (norm > 0.0f) {
    r.l = -(log2f(norm) + c * h * h * kLog2e);
  } else {
    float sum = 0.0f;
    const int first = range.lo > -w ? range.lo : -w;
    const int last = range.hi < w ? range.hi : w;
    for (int j = first; j <= last; ++j) sum += weight(j, p, c);
    r.l = -log2f(sum);
  }
  return r;
}

REPAP_HD float fast_exp2(float e) {
#if defined(__CUDA_ARCH__)
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(e));
  return y;
#else
  return exp2f(e);
#endif
}

/// Value of bin k in row r; kNarrow: the cancellation-free exponent (|A| > kMaxWideA).
template <bool kNarrow>
REPAP_HD float tile_value(int k, const TileRow& r, int n_bins) {
  int j = k - r.k0;
  if (j < r.lo) j += n_bins;
  else if (j > r.lo + n_bins - 1) j -= n_bins;
  if (j < -r.w || j > r.w) return 0.0f;  // outside the window: no exponential at all
  float e;
  if (kNarrow) {
    const float m = static_cast<float>(j < 0 ? -j : j);
    e = (r.a * m) * ((m - 1.0f) + (j > 0 ? r.above : r.below));
  } else {
    const float jf = static_cast<float>(j);
    e = jf * (r.a * jf + r.b);
  }
  return e < -kCut2 ? 0.0f : fast_exp2(e + r.l);
}

}  // namespace repap::projection
