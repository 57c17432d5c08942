// Build information, CUDA availability and the OpenMP thread count.
#include <pybind11/pybind11.h>

#include <stdexcept>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "bindings/exports.h"
#include "common/cuda_info.h"
#include "common/isa.h"

#ifndef REPAP_VERSION
#define REPAP_VERSION "unknown"
#endif
#ifndef REPAP_CXX_ARCH
#define REPAP_CXX_ARCH ""
#endif
#ifndef REPAP_CUDA_ARCHS
#define REPAP_CUDA_ARCHS ""
#endif

namespace py = pybind11;

namespace repap {
namespace {

int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("num_threads must be at least 1");
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}

py::dict build_info() {
  py::dict d;
  d["version"] = REPAP_VERSION;
  d["compiler"] = __VERSION__;
  d["cxx_arch"] = REPAP_CXX_ARCH;
  d["cpu_features_used"] = kernel_cpu_features();
#ifdef _OPENMP
  d["openmp"] = true;
#else
  d["openmp"] = false;
#endif
  d["num_threads"] = num_threads();
  d["cuda_compiled"] = cuda_compiled();
  d["cuda_runtime_version"] = cuda_runtime_version();
  d["cuda_architectures"] = REPAP_CUDA_ARCHS;
  const int n = cuda_device_count();
  d["cuda_device_count"] = n;
  py::list names;
  for (int i = 0; i < n; ++i) names.append(cuda_device_name(i));
  d["cuda_devices"] = names;
  return d;
}

}  // namespace

void export_info(py::module_& m) {
  m.def("cuda_available", [] { return cuda_device_count() > 0; },
        "True when CUDA kernels were compiled in and a CUDA device is usable.");
  m.def("build_info", &build_info, "What this build contains and which devices it sees.");
  m.def("get_num_threads", &num_threads, "OpenMP threads used by the CPU kernels.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"),
        "Set the OpenMP threads used by the CPU kernels.");
}

}  // namespace repap
