// The compiled core, repap._C: one export function per kernel.
#include <pybind11/pybind11.h>

#include "bindings/exports.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "repap compiled kernels (C++/OpenMP, optional CUDA)";
  repap::export_info(m);
  repap::export_projection(m);
  repap::export_lstm(m);
  repap::export_sampler(m);
}
