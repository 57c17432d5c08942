// Per-element math of the projection density, shared by the CPU loop and the CUDA kernel
// so that the two cannot drift.
//
// A coordinate x on a grid of G bins (centres (k + 0.5) / G) gets the row
//   M_k = exp(-d_k^2 / (2 sigma^2)) / C,   d_k = x - centre_k (wrapped when periodic).
// Everything is evaluated in bin units relative to the coordinate's own bin k0: with
// u = x G = k0 + f, the bin k = k0 + j lies (f - 1/2 - j) bins away, and
//   (d_k^2 - d_k0^2) G^2 = m ((m - 1) + 2 (1 - f))  for j = m > 0,
//                          m ((m - 1) + 2 f)        for j = -m < 0,
// so M_k is proportional to exp(-c m ((m - 1) + g)) with c = 1 / (2 (sigma G)^2) and g = 2(1 - f)
// or 2f. Both terms are non-negative: no cancellation, so the exponent has float rounding error
// only, even for sigma far below a bin. The own bin gets exp(0) = 1, so the sum never underflows.
// The CPU kernel uses the same exponent split as exp(-c m (m - 1)) exp(-c g)^m: a table per axis
// times powers of one exponential per row, every factor at most 1.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/host_device.h"
#include "common/status.h"

namespace repap::projection {

/// Weights below exp(-kArgCut) = 2^-30 of the row's own bin are written as exact zeros. This
/// keeps the exponential on its fast path (glibc's vector expf slows down far below) and lets the
/// CPU loop evaluate only a window of bins; the error is below 1e-9 per element.
constexpr float kArgCut = 20.794415416798359f;  // 30 ln 2

/// Position of a coordinate on the grid: its own bin k0 and its offset f inside it, kept as
/// below = 2 f and above = 2 (1 - f), each rounded once from double.
struct BinPos {
  int k0;
  float below;
  float above;
};

template <typename T>
REPAP_HD bool is_finite(T v) {
#if defined(__CUDA_ARCH__)
  return isfinite(v);
#else
  return std::isfinite(v);
#endif
}

/// Status of one input coordinate (see common/status.h).
template <typename T>
REPAP_HD int coordinate_status(T x, bool periodic) {
  if (!is_finite(x)) return kNonFinite;
  if (!periodic && !(x >= T(0) && x < T(1))) return kOutOfRange;
  return kOk;
}

/// Own bin and in-bin offset; periodic coordinates are wrapped into [0, 1) first. Done in double
/// so that float64 inputs keep their precision; the result is exact to float rounding.
template <typename T>
REPAP_HD BinPos locate(T x, int n_bins, bool periodic) {
  double xd = static_cast<double>(x);
  if (periodic) xd -= floor(xd);
  const double u = xd * n_bins;
  double k = floor(u);
  if (k >= n_bins) {  // only by rounding, when x sits just below 1 (or wrapped onto 1.0)
    if (periodic) return BinPos{0, 0.0f, 2.0f};
    k = n_bins - 1;
  }
  const double f = u - k;
  return BinPos{static_cast<int>(k), static_cast<float>(2.0 * f), static_cast<float>(2.0 - 2.0 * f)};
}

/// Coefficient c = 1 / (2 (sigma G)^2) of the exponent, for sigma in fractional units. Capped at
/// the largest float: a sigma far below a bin (sigma G < ~4e-20) would overflow c to infinity,
/// and infinity times the own bin's zero exponent is NaN; capped, the row stays one-hot (two
/// halves on an exact bin edge).
REPAP_HD float exponent_coefficient(float sigma, int n_bins) {
  const double s = static_cast<double>(sigma) * n_bins;
  const double c = 0.5 / (s * s);
  return static_cast<float>(c < 3.4028234663852886e38 ? c : 3.4028234663852886e38);
}

REPAP_HD float float_from_bits(int32_t i) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(i);
#else
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
#endif
}

/// exp(r + n ln 2) = exp(a) for a in [-kArgCut, 0], without the 2^n: Cody-Waite range reduction
/// a = n ln2 + r and a degree-5 minimax polynomial for exp(r) (Cephes expf coefficients, about
/// 1 ulp). Sets n. Generic so that the CPU's vectors (GCC vector extensions) share it.
template <typename F>
REPAP_HD F exp_reduced(F a, F& n) {
  n = (a * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(a / ln 2)
  const F r = (a - n * 0.693359375f) - n * -2.12194440e-4f;
  F p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return (p * r) * r + r + 1.0f;
}

/// exp(a) for a <= 0, exact zero below -kArgCut. Branch-free (vectorises).
REPAP_HD float exp_nonpositive(float a) {
  float n;
  const float e = exp_reduced(a < -kArgCut ? -kArgCut : a, n);
  const float scale = float_from_bits((static_cast<int32_t>(n) + 127) << 23);  // 2^n
  return a < -kArgCut ? 0.0f : e * scale;
}

/// Exponent (<= 0) of the unnormalised weight of the bin j bins away from the own bin.
REPAP_HD float weight_exponent(int j, BinPos p, float c) {
  const float m = static_cast<float>(j < 0 ? -j : j);
  const float g = j > 0 ? p.above : p.below;
  return -c * m * ((m - 1.0f) + g);
}

/// Unnormalised weight of the bin j bins away from the own bin (1 at j = 0).
REPAP_HD float weight(int j, BinPos p, float c) { return exp_nonpositive(weight_exponent(j, p, c)); }

/// Range [lo, hi] of offsets j (bin k0 + j, taken modulo n_bins when periodic) that covers each
/// bin once; when periodic each offset is the minimum image, |j - (f - 1/2)| <= n_bins / 2.
struct OffsetRange {
  int lo;
  int hi;
};

REPAP_HD OffsetRange offset_range(BinPos p, int n_bins, bool periodic) {
  if (!periodic) return OffsetRange{-p.k0, n_bins - 1 - p.k0};
  const float h = 0.5f * p.below - 0.5f;  // the point's offset from its own centre, in bins
  const int lo = static_cast<int>(ceil(h - 0.5f * n_bins));
  return OffsetRange{lo, lo + n_bins - 1};
}

/// Bin of offset j: k0 + j, wrapped into [0, n_bins) (one wrap at most).
REPAP_HD int bin_of_offset(int j, BinPos p, int n_bins) {
  int k = p.k0 + j;
  if (k < 0) k += n_bins;
  else if (k >= n_bins) k -= n_bins;
  return k;
}

/// Largest |j| whose weight can be non-zero for any offset in the bin: c (|j|^2 - |j|) <= kArgCut.
/// Saturates for huge sigma (c tiny or zero), where every bin is in the window.
inline int window_half_width(float c) {
  const double half = 0.5 * (1.0 + std::sqrt(1.0 + 4.0 * kArgCut / c));
  return half < 1e9 ? static_cast<int>(half) + 1 : 1000000000;
}

}  // namespace repap::projection
