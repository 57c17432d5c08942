// Python bindings of the projection kernels: numpy arrays on CPU, raw device pointers on CUDA.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <stdexcept>

#include "bindings/exports.h"
#include "common/status.h"
#include "projection/projection.h"

namespace py = pybind11;

namespace repap {
namespace {

// The Python wrapper has already checked shapes and dtypes; these checks only keep a direct
// caller of the private module from writing out of bounds.
void require_c_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(std::string(name) + " must be C-contiguous");
}

template <typename F>
int dispatch_float(const py::array& x, F&& f) {
  if (x.dtype().is(py::dtype::of<float>())) return f(static_cast<const float*>(x.data()));
  if (x.dtype().is(py::dtype::of<double>())) return f(static_cast<const double*>(x.data()));
  throw std::invalid_argument("x must be float32 or float64");
}

int project_cpu(const py::array& x, int n_bins, std::array<float, 3> sigma, bool periodic,
                py::array_t<float> out) {
  require_c_contiguous(x, "x");
  require_c_contiguous(out, "out");
  if (!out.writeable()) throw std::invalid_argument("out must be writeable");
  const int64_t n_rows = x.size();
  if (out.size() != n_rows * n_bins) throw std::invalid_argument("out has the wrong size");
  float* o = out.mutable_data();
  return dispatch_float(x, [&](auto* px) {
    py::gil_scoped_release release;
    return projection::project_cpu(px, n_rows, n_bins, sigma.data(), periodic, o);
  });
}

int bin_index_cpu(const py::array& x, int n_bins, bool periodic, py::array_t<int64_t> out) {
  require_c_contiguous(x, "x");
  require_c_contiguous(out, "out");
  if (out.size() != x.size()) throw std::invalid_argument("out has the wrong size");
  int64_t* o = out.mutable_data();
  return dispatch_float(x, [&](auto* px) {
    py::gil_scoped_release release;
    return projection::bin_index_cpu(px, static_cast<int64_t>(x.size()), n_bins, periodic, o);
  });
}

#ifdef REPAP_WITH_CUDA
void project_cuda(std::uintptr_t x, bool x_is_double, int64_t n_rows, int n_bins,
                  std::array<float, 3> sigma, bool periodic, std::uintptr_t out,
                  std::uintptr_t status, int device, std::uintptr_t stream) {
  py::gil_scoped_release release;
  projection::project_cuda(reinterpret_cast<const void*>(x), x_is_double, n_rows, n_bins,
                           sigma.data(), periodic, reinterpret_cast<float*>(out),
                           reinterpret_cast<int*>(status), device,
                           reinterpret_cast<void*>(stream));
}

void bin_index_cuda(std::uintptr_t x, bool x_is_double, int64_t n, int n_bins, bool periodic,
                    std::uintptr_t out, std::uintptr_t status, int device,
                    std::uintptr_t stream) {
  py::gil_scoped_release release;
  projection::bin_index_cuda(reinterpret_cast<const void*>(x), x_is_double, n, n_bins, periodic,
                             reinterpret_cast<int64_t*>(out), reinterpret_cast<int*>(status),
                             device, reinterpret_cast<void*>(stream));
}
#else
[[noreturn]] void no_cuda() {
  throw std::runtime_error("repap was built without CUDA: reinstall on a machine with nvcc "
                           "(and without -DREPAP_CUDA=OFF) to use CUDA tensors");
}
void project_cuda(std::uintptr_t, bool, int64_t, int, std::array<float, 3>, bool, std::uintptr_t,
                  std::uintptr_t, int, std::uintptr_t) {
  no_cuda();
}
void bin_index_cuda(std::uintptr_t, bool, int64_t, int, bool, std::uintptr_t, std::uintptr_t, int,
                    std::uintptr_t) {
  no_cuda();
}
#endif

}  // namespace

void export_projection(py::module_& m) {
  // the status bits of common/status.h, read by repap._checks (one definition, in C++)
  m.attr("status_non_finite") = static_cast<int>(kNonFinite);
  m.attr("status_out_of_range") = static_cast<int>(kOutOfRange);
  m.def("project_cpu", &project_cpu, py::arg("x"), py::arg("n_bins"), py::arg("sigma"),
        py::arg("periodic"), py::arg("out").noconvert(),
        "Projection densities of contiguous float32/float64 coordinates into a float32 array; "
        "returns a status bitmask (1 non-finite, 2 outside [0, 1) when not periodic).");
  m.def("bin_index_cpu", &bin_index_cpu, py::arg("x"), py::arg("n_bins"), py::arg("periodic"),
        py::arg("out").noconvert(), "Own bin of each coordinate into an int64 array; returns a status bitmask.");
  m.def("project_cuda", &project_cuda, py::arg("x"), py::arg("x_is_double"), py::arg("n_rows"),
        py::arg("n_bins"), py::arg("sigma"), py::arg("periodic"), py::arg("out"),
        py::arg("status"), py::arg("device"), py::arg("stream"),
        "Projection densities on device pointers, enqueued on the given CUDA stream.");
  m.def("bin_index_cuda", &bin_index_cuda, py::arg("x"), py::arg("x_is_double"), py::arg("n"),
        py::arg("n_bins"), py::arg("periodic"), py::arg("out"), py::arg("status"),
        py::arg("device"), py::arg("stream"), "Own bin of each coordinate on device pointers.");
}

}  // namespace repap
