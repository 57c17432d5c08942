// One export function per kernel, collected by module.cpp.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>

namespace repap {

/// A raw data pointer passed from Python as an integer (``tensor.data_ptr()``).
template <typename T>
T* ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

void export_info(pybind11::module_& m);
void export_projection(pybind11::module_& m);
void export_lstm(pybind11::module_& m);
void export_sampler(pybind11::module_& m);

}  // namespace repap
