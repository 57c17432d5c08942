// The compiled core, repap._C: one export function per kernel.
#include <pybind11/pybind11.h>

#ifndef REPAP_CXX_ARCH
#define REPAP_CXX_ARCH ""
#endif
#define REPAP_CXX_ARCH_NAME "-march=" REPAP_CXX_ARCH

#include <string>

#include "bindings/exports.h"
#include "common/isa.h"

PYBIND11_MODULE(_C, m) {
  // Before any kernel code can run: a build tuned for another CPU fails here, not by SIGILL.
  const std::string missing = repap::missing_cpu_features();
  if (!missing.empty())
    throw pybind11::import_error(
        "repap._C was compiled for " REPAP_CXX_ARCH_NAME " and uses CPU features this machine "
        "lacks (" + missing + "): rebuild here (pip install --force-reinstall --no-cache-dir "
        "repap, or make) or build portably with REPAP_ARCH=x86-64-v3");
  m.doc() = "repap compiled kernels (C++/OpenMP, optional CUDA)";
  repap::export_info(m);
  repap::export_projection(m);
  repap::export_lstm(m);
  repap::export_sampler(m);
}
