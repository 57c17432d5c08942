// Projection densities: each coordinate becomes a normalised Gaussian on a grid of n_bins.
#pragma once

#include <cstdint>

namespace repap::projection {

/// Writes out[r, :] (n_rows x n_bins, float32) for the coordinates x[r] (float or double).
/// Row r belongs to axis r % 3 and uses sigma[r % 3] (fractional units). Returns a Status
/// bitmask; rows of bad coordinates are written as zeros.
template <typename T>
int project_cpu(const T* x, int64_t n_rows, int n_bins, const float sigma[3], bool periodic,
                float* out);

/// Own bin of each coordinate (-1 for a bad one); returns a Status bitmask.
template <typename T>
int bin_index_cpu(const T* x, int64_t n, int n_bins, bool periodic, int64_t* out);

#ifdef REPAP_WITH_CUDA
/// Same as project_cpu on device pointers, enqueued on `stream` of `device`; the Status bitmask
/// is OR-ed into the device int `*status` (read it after the stream).
void project_cuda(const void* x, bool x_is_double, int64_t n_rows, int n_bins,
                  const float sigma[3], bool periodic, float* out, int* status, int device,
                  void* stream);

/// Same as bin_index_cpu on device pointers.
void bin_index_cuda(const void* x, bool x_is_double, int64_t n, int n_bins, bool periodic,
                    int64_t* out, int* status, int device, void* stream);
#endif

}  // namespace repap::projection
