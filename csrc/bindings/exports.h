// One export function per kernel, collected by module.cpp.
#pragma once

#include <pybind11/pybind11.h>

namespace repap {

void export_info(pybind11::module_& m);
void export_projection(pybind11::module_& m);
void export_lstm(pybind11::module_& m);
void export_sampler(pybind11::module_& m);

}  // namespace repap
