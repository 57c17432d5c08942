// CPU projection: OpenMP over blocks of rows. Each output row is written once, in order.
//
// Fast path (the window of non-zero bins fits in half the grid, as at the paper's sizes). The
// weight m bins from the own bin is A_m B^m (projection_math.h): A_m = exp(-c m (m - 1)) is a
// per-axis table, only B = exp(-c g) depends on the row. A block of rows is first planned with
// rows in the vector lanes (locating, two exponentials per row, the normalising sum by repeated
// products); then each row's window is built from powers of B in a few vector products and put
// into a staging line laid out by offset j (with its periodic images), and the row is one
// contiguous copy of G floats out of that line. Lines are filled rows ahead of their copy so
// that the copy's unaligned loads do not stall on store forwarding.
// Measured and dropped (2-core Zen 3): streaming (non-temporal) stores, slower here with two
// threads and no faster with one; the window's weights transposed out of the plan instead of
// built per row, no faster; the plan split by axis, slower. What is left at G = 50 is per-row
// work, at G = 200 memory.
// General path (wide windows, tiny grids): one exponential per bin of the window, then zeros and
// the wrapped window.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "projection/projection.h"
#include "projection/projection_math.h"

namespace repap::projection {
namespace {

// ---- general path ---------------------------------------------------------------------------

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

// ---- fast path ------------------------------------------------------------------------------

// Eight floats in one register on AVX2 and AVX-512 alike (GCC/Clang vector extensions: the
// build's -march picks the instructions). `vf_u` is the unaligned form for loads and stores.
constexpr int kLanes = 8;
typedef float vf __attribute__((vector_size(4 * kLanes)));
typedef float vf_u __attribute__((vector_size(4 * kLanes), aligned(4)));
typedef int vi __attribute__((vector_size(4 * kLanes)));

inline vf load(const float* p) { return *reinterpret_cast<const vf_u*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<vf_u*>(p) = v; }
inline vf broadcast(float s) { return vf{} + s; }

/// Weights at or below 2^-30 of the own bin are exact zeros (kArgCut), and so are powers of B
/// that small: flushing them before each product keeps every product a normal float (no
/// denormal slow paths) and gives the same zeros as the cut.
constexpr float kWeightCut = 9.3132257e-10f;  // 2^-30 = exp(-kArgCut)
inline vf flushed(vf v) { return v > kWeightCut ? v : vf{}; }
inline float flushed(float s) { return s > kWeightCut ? s : 0.0f; }

/// What the fast path needs of one axis: c, the window's half width, and A_m for
/// m = 1..span (span: the half width rounded up to whole vectors; zeros past the window).
struct Axis {
  float c = 0.0f;
  int half = 0;
  int span = 0;
  std::vector<float> a;
  std::vector<float> a_reversed;  // each vector of a, lanes reversed: m = i + 8 - l in lane l
};

int span_of(int half) { return (half + kLanes - 1) / kLanes * kLanes; }

Axis make_axis(float c, int half) {
  Axis axis;
  axis.c = c;
  std::vector<float> a;
  for (int m = 1; m <= half; ++m) {
    const double v = std::exp(-static_cast<double>(c) * m * (m - 1.0));
    if (!(v > kWeightCut)) break;  // so is every weight from here on (A_m B^m <= A_m)
    a.push_back(static_cast<float>(v));
  }
  axis.half = static_cast<int>(a.size());
  axis.span = span_of(axis.half);
  a.resize(static_cast<size_t>(axis.span), 0.0f);
  axis.a_reversed = a;
  for (int i = 0; i < axis.span; i += kLanes) {
    std::reverse(axis.a_reversed.begin() + i, axis.a_reversed.begin() + i + kLanes);
  }
  axis.a = std::move(a);
  return axis;
}

/// The staging line of a row holds w_j at index G + j, and when periodic also w_j at j for
/// positive j (its image G bins down) and at 2G + j for negative j (G bins up); zeros
/// everywhere else. Bin k of the row is then index G + k - k0. Rows only rewrite the window's
/// fixed indices, so the zeros stay. The window and its images must not overlap:
bool fast_path_fits(int half, int n_bins);

/// exp(a) for a <= 0 on a vector, zero below -kArgCut: exp_nonpositive, eight at a time.
inline vf exp_nonpositive(vf a) {
  const vf low = broadcast(-kArgCut);
  vf n;
  const vf e = exp_reduced(a < low ? low : a, n);
  const vf scale = (vf)((__builtin_convertvector(n, vi) + 127) << 23);  // 2^n
  return a < low ? vf{} : e * scale;
}

/// Rows are planned in blocks, eight rows to a vector (lane l holds row i + l, of axis
/// (i + l) % 3): own bin, status, B above and below, the normalisation. Then each row is written.
constexpr int kBlock = 3 * 64;  // a multiple of 3 and of kLanes: a vector's axes repeat per block

// Coordinates are located in double, four to a register (AVX2 and AVX-512 alike).
typedef double vd __attribute__((vector_size(32)));
typedef long long vl __attribute__((vector_size(32)));
typedef int vi4 __attribute__((vector_size(16)));
typedef float vf4 __attribute__((vector_size(16)));

inline vd floor_lanes(vd v) {
#if defined(__AVX__)
  return _mm256_floor_pd(v);  // compilers do not vectorise std::floor over lanes
#else
  for (int l = 0; l < 4; ++l) v[l] = std::floor(v[l]);
  return v;
#endif
}

/// The axes' constants laid out per lane, for a vector starting at a row of axis `phase`.
struct Lanes {
  vf minus_c;
  int half;           // the widest window of the three axes
  std::vector<vf> a;  // a[m - 1]: A_m of each lane's axis (zero past its window)
};

struct Plan {
  int k0[kBlock];
  int status[kBlock];
  float below[kBlock];  // 2 f, f the offset inside the own bin
  float above[kBlock];  // 2 (1 - f)
  float up[kBlock];    // B for the bins above the own bin, exp(-c above), flushed
  float down[kBlock];  // same below
  float inv[kBlock];   // 1 / (sum of the row's weights on the grid)
};

/// What coordinate_status and locate (projection_math.h) compute, for four coordinates, into
/// plan slots i .. i + 3.
template <bool periodic>
inline void locate4(vd x, int n_bins, Plan& plan, int i) {
  const vd g = vd{} + n_bins;
  const vl finite = x - x == 0.0;
  const vl inside = (x >= 0.0) & (x < 1.0);
  x = finite ? x : vd{};
  if constexpr (periodic) {
    x -= floor_lanes(x);
  } else {
    x = inside ? x : vd{};
  }
  vd u = x * g;
  vd k = floor_lanes(u);
  const vl over = k >= g;  // only by rounding, just below 1 (or wrapped onto 1.0)
  if constexpr (periodic) {
    k = over ? vd{} : k;
    u = over ? vd{} : u;
  } else {
    k = over ? g - 1.0 : k;
  }
  const vd f = u - k;
  const vi4 fin = __builtin_convertvector(finite, vi4);
  const vi4 ok = periodic ? vi4{} - 1 : __builtin_convertvector(inside, vi4);
  *reinterpret_cast<vi4*>(plan.status + i) =
      fin ? (ok ? vi4{} : vi4{} + int{kOutOfRange}) : vi4{} + int{kNonFinite};
  *reinterpret_cast<vi4*>(plan.k0 + i) = __builtin_convertvector(k, vi4);
  *reinterpret_cast<vf4*>(plan.below + i) = __builtin_convertvector(2.0 * f, vf4);
  *reinterpret_cast<vf4*>(plan.above + i) = __builtin_convertvector(2.0 - 2.0 * f, vf4);
}

template <bool periodic, typename T>
void plan_block(const T* x, int rows, int n_bins, const Lanes lanes[3], Plan& plan) {
  const int padded = (rows + kLanes - 1) / kLanes * kLanes;
  for (int i = 0; i < padded; i += 4) {
    vd xd = vd{} + 0.5;  // lanes past the last row: any valid coordinate
    for (int l = 0; l < 4 && i + l < rows; ++l) xd[l] = static_cast<double>(x[i + l]);
    locate4<periodic>(xd, n_bins, plan, i);
  }
  for (int i = 0; i < rows; i += kLanes) {
    const vf below = load(plan.below + i), above = load(plan.above + i);
    const vi k0 = *reinterpret_cast<const vi*>(plan.k0 + i);
    const Lanes& ln = lanes[i % 3];
    const vf bu = flushed(exp_nonpositive(ln.minus_c * above));
    const vf bd = flushed(exp_nonpositive(ln.minus_c * below));
    vf pu = broadcast(1.0f), pd = pu, sum = pu;
    if constexpr (periodic) {
      for (int m = 1; m <= ln.half; ++m) {
        pu = flushed(pu * bu);
        pd = flushed(pd * bd);
        sum += (pu + pd) * ln.a[m - 1];
      }
    } else {  // only the bins on the grid, up to its edges
      const vi last_up = n_bins - 1 - k0;
      for (int m = 1; m <= ln.half; ++m) {
        pu = flushed(pu * bu);
        pd = flushed(pd * bd);
        const vf am = ln.a[m - 1];
        sum += (m <= last_up ? pu * am : vf{}) + (m <= k0 ? pd * am : vf{});
      }
    }
    *reinterpret_cast<vf*>(plan.up + i) = bu;
    *reinterpret_cast<vf*>(plan.down + i) = bd;
    *reinterpret_cast<vf*>(plan.inv + i) = 1.0f / sum;
  }
}

/// Writes w_m = A_m B^m / sum for m = 1..span into line at base + m (up) or base - m, and at
/// image +/- m when periodic. B^1..B^8 are products of at most four normal factors.
template <bool periodic, bool up>
inline void write_side(const Axis& axis, float b, float inv, float* line, int base, int image) {
  const float b2 = flushed(b * b), b4 = flushed(b2 * b2);
  // lane l holds B^(1 + l) above the own bin and B^(8 - l) below it (stored descending), as
  // products of B, B^2 and B^4 chosen by the bits of the exponent minus one
  // (selected, not blended arithmetically: 1 + m (b - 1) loses b's low bits for small b)
  const vi odd = up ? vi{0, -1, 0, -1, 0, -1, 0, -1} : vi{-1, 0, -1, 0, -1, 0, -1, 0};
  const vi pair = up ? vi{0, 0, -1, -1, 0, 0, -1, -1} : vi{-1, -1, 0, 0, -1, -1, 0, 0};
  const vi quad = up ? vi{0, 0, 0, 0, -1, -1, -1, -1} : vi{-1, -1, -1, -1, 0, 0, 0, 0};
  const vf one = broadcast(1.0f);
  vf p = broadcast(b) * (odd ? broadcast(b) : one) * (pair ? broadcast(b2) : one) *
         (quad ? broadcast(b4) : one);
  p = flushed(p);
  const vf scale = broadcast(inv);
  const float* a = up ? axis.a.data() : axis.a_reversed.data();
  for (int i = 0; i < axis.span; i += kLanes) {
    const vf w = flushed(load(a + i) * p) * scale;
    if constexpr (up) {
      store(line + base + 1 + i, w);
      if constexpr (periodic) store(line + image + 1 + i, w);
    } else {
      store(line + base - kLanes - i, w);
      if constexpr (periodic) store(line + image - kLanes - i, w);
    }
    if (i + kLanes < axis.span) p = flushed(p * flushed(b4 * b4));  // times B^8
  }
}

/// Fills the staging line of a row (nothing for a bad coordinate).
template <bool periodic>
inline void write_window(const Plan& plan, int i, int n_bins, const Axis& axis, float* line) {
  if (plan.status[i] != kOk) return;
  const float inv = plan.inv[i];
  line[n_bins] = inv;  // own bin, exp(0)
  write_side<periodic, true>(axis, plan.up[i], inv, line, n_bins, 0);
  write_side<periodic, false>(axis, plan.down[i], inv, line, n_bins, 2 * n_bins);
}

/// Writes the row from its staging line (zeros for a bad coordinate).
inline void copy_row(const Plan& plan, int i, int n_bins, const float* line, float* o) {
  if (plan.status[i] != kOk) {
    std::memset(o, 0, sizeof(float) * n_bins);
    return;
  }
  const float* src = line + n_bins - plan.k0[i];
  // stores aligned to the output's 32 bytes, so that none splits a cache line, plus one
  // unaligned vector at each end (overlapping: the same values written twice)
  store(o, load(src));
  int k = static_cast<int>((32 - reinterpret_cast<uintptr_t>(o) % 32) % 32 / sizeof(float));
  for (; k + kLanes <= n_bins; k += kLanes) store(o + k, load(src + k));
  if (k < n_bins) store(o + n_bins - kLanes, load(src + n_bins - kLanes));
}

/// A row's line is filled kAhead rows before it is copied out: the unaligned loads of the copy
/// then find the window's stores already in L1 instead of stalling on store forwarding. kLines
/// lines, a multiple of 3, so that line l always serves axis l % 3.
constexpr int kAhead = 2;
constexpr int kLines = 3;

template <bool periodic, typename T>
int project_fast(const T* x, int64_t n_rows, int n_bins, const Axis axes[3], float* out) {
  const int64_t n_blocks = (n_rows + kBlock - 1) / kBlock;
  Lanes lanes[3];
  const int half = std::max({axes[0].half, axes[1].half, axes[2].half});
  for (int phase = 0; phase < 3; ++phase) {
    lanes[phase].half = half;
    lanes[phase].a.assign(static_cast<size_t>(half), vf{});
    for (int l = 0; l < kLanes; ++l) {
      const Axis& axis = axes[(phase + l) % 3];
      lanes[phase].minus_c[l] = -axis.c;
      for (int m = 1; m <= axis.half; ++m) lanes[phase].a[m - 1][l] = axis.a[m - 1];
    }
  }
  int status = kOk;
#pragma omp parallel reduction(| : status)
  {
    const size_t width = 2 * static_cast<size_t>(n_bins) + 1 + kLanes;  // indices 0 .. 2G
    std::vector<float> lines(kLines * width, 0.0f);
    alignas(64) Plan plan;
#pragma omp for schedule(static)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t first = b * kBlock;
      const int rows = static_cast<int>(std::min<int64_t>(kBlock, n_rows - first));
      plan_block<periodic>(x + first, rows, n_bins, lanes, plan);
      float* block_out = out + first * n_bins;
      for (int i = -kAhead; i < rows; ++i) {
        const int ahead = i + kAhead;
        if (ahead < rows) {
          write_window<periodic>(plan, ahead, n_bins, axes[ahead % 3],
                                 lines.data() + (ahead % kLines) * width);
        }
        if (i < 0) continue;
        status |= plan.status[i];
        copy_row(plan, i, n_bins, lines.data() + (i % kLines) * width,
                 block_out + int64_t{i} * n_bins);
      }
    }
  }
  return status;
}

bool fast_path_fits(int half, int n_bins) {
  return 2 * span_of(half) + 2 <= n_bins && n_bins >= kLanes;
}

}  // namespace

template <typename T>
int project_cpu(const T* x, int64_t n_rows, int n_bins, const float sigma[3], bool periodic,
                float* out) {
  float c[3];
  int half[3];
  Axis axes[3];
  bool fast = true;
  for (int a = 0; a < 3; ++a) {
    c[a] = exponent_coefficient(sigma[a], n_bins);
    half[a] = std::min(window_half_width(c[a]), n_bins);
    axes[a] = make_axis(c[a], half[a]);
    fast = fast && fast_path_fits(axes[a].half, n_bins);
  }
  if (fast) {
    return periodic ? project_fast<true>(x, n_rows, n_bins, axes, out)
                    : project_fast<false>(x, n_rows, n_bins, axes, out);
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
