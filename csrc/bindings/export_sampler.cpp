// Python bindings of the sampler kernel. Raw data pointers of contiguous tensors (float32
// logits and coordinates, int64 indices) that repap.sampling allocates and checks.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <utility>

#include "bindings/exports.h"
#include "sampler/sampler.h"
#include "sampler/sampler_math.h"

namespace py = pybind11;

namespace repap {
namespace {

void sample_step_cpu(std::uintptr_t logits, int64_t batch, int n_bins, int mode,
                     float temperature, std::uintptr_t coords, int n_coords, std::uintptr_t k,
                     std::uintptr_t structure, std::uintptr_t attempt, uint64_t seed,
                     std::array<float, 9> cell, float min_dist, std::uintptr_t bins) {
  py::gil_scoped_release release;
  sampler::sample_step_cpu(ptr<const float>(logits), batch, n_bins, mode, temperature,
                           ptr<float>(coords), n_coords, ptr<const int64_t>(k),
                           ptr<const int64_t>(structure), ptr<const int64_t>(attempt), seed,
                           cell.data(), min_dist, ptr<int64_t>(bins));
}

#ifdef REPAP_WITH_CUDA
void sample_step_cuda(std::uintptr_t logits, int64_t batch, int n_bins, int mode,
                      float temperature, std::uintptr_t coords, int n_coords, std::uintptr_t k,
                      std::uintptr_t structure, std::uintptr_t attempt, uint64_t seed,
                      std::array<float, 9> cell, float min_dist, std::uintptr_t bins, int device,
                      std::uintptr_t stream) {
  py::gil_scoped_release release;
  sampler::sample_step_cuda(ptr<const float>(logits), batch, n_bins, mode, temperature,
                            ptr<float>(coords), n_coords, ptr<const int64_t>(k),
                            ptr<const int64_t>(structure), ptr<const int64_t>(attempt), seed,
                            cell.data(), min_dist, ptr<int64_t>(bins), device,
                            reinterpret_cast<void*>(stream));
}
#else
void sample_step_cuda(std::uintptr_t, int64_t, int, int, float, std::uintptr_t, int,
                      std::uintptr_t, std::uintptr_t, std::uintptr_t, uint64_t,
                      std::array<float, 9>, float, std::uintptr_t, int, std::uintptr_t) {
  throw std::runtime_error("repap was built without CUDA: reinstall on a machine with nvcc "
                           "(and without -DREPAP_CUDA=OFF) to use CUDA tensors");
}
#endif

#ifdef REPAP_WITH_CUDA
void rules_before_draw(const sampler::RuleRows& r, int device, std::uintptr_t stream) {
  py::gil_scoped_release release;
  sampler::rules_before_draw_cuda(r, device, reinterpret_cast<void*>(stream));
}
void rules_after_draw(const sampler::RuleRows& r, int64_t max_retries, int64_t max_restarts,
                      int device, std::uintptr_t stream) {
  py::gil_scoped_release release;
  sampler::rules_after_draw_cuda(r, max_retries, max_restarts, device,
                                 reinterpret_cast<void*>(stream));
}
void rules_after_step(const sampler::RuleRows& r, std::uintptr_t new_logits, int device,
                      std::uintptr_t stream) {
  py::gil_scoped_release release;
  sampler::rules_after_step_cuda(r, ptr<const float>(new_logits), device,
                                 reinterpret_cast<void*>(stream));
}
#else
[[noreturn]] void no_cuda() {
  throw std::runtime_error("repap was built without CUDA: reinstall on a machine with nvcc "
                           "(and without -DREPAP_CUDA=OFF) to use CUDA tensors");
}
void rules_before_draw(const sampler::RuleRows&, int, std::uintptr_t) { no_cuda(); }
void rules_after_draw(const sampler::RuleRows&, int64_t, int64_t, int, std::uintptr_t) {
  no_cuda();
}
void rules_after_step(const sampler::RuleRows&, std::uintptr_t, int, std::uintptr_t) {
  no_cuda();
}
#endif

/// A pointer field of RuleRows as a Python int property (tensor.data_ptr()).
template <typename T>
void pointer_field(py::class_<sampler::RuleRows>& cls, const char* name,
                   T* sampler::RuleRows::*field) {
  cls.def_property(
      name, [field](const sampler::RuleRows& r) { return reinterpret_cast<std::uintptr_t>(r.*field); },
      [field](sampler::RuleRows& r, std::uintptr_t p) { r.*field = reinterpret_cast<T*>(p); });
}

}  // namespace

void export_sampler(py::module_& m) {
  py::class_<sampler::RuleRows> rows(m, "RuleRows",
                                     "Device pointers and sizes of a CUDA generation batch.",
                                     py::module_local());  // see export_lstm.cpp
  rows.def(py::init<>())
      .def_readwrite("n", &sampler::RuleRows::n)
      .def_readwrite("n_coords", &sampler::RuleRows::n_coords)
      .def_readwrite("n_bins", &sampler::RuleRows::n_bins)
      .def_readwrite("layers", &sampler::RuleRows::layers)
      .def_readwrite("hidden", &sampler::RuleRows::hidden);
  using R = sampler::RuleRows;
  for (auto [name, field] : {std::pair{"k", &R::k}, {"k_first", &R::k_first},
                             {"k_rest", &R::k_rest}, {"bins", &R::bins},
                             {"attempt", &R::attempt}, {"tries", &R::tries},
                             {"redrawn", &R::redrawn}, {"restarts", &R::restarts},
                             {"bad", &R::bad}})
    pointer_field(rows, name, field);
  for (auto [name, field] : {std::pair{"done", &R::done}, {"failed", &R::failed}, {"go", &R::go}})
    pointer_field(rows, name, field);
  for (auto [name, field] : {std::pair{"h", &R::h}, {"c", &R::c}, {"logits", &R::logits},
                             {"saved_logits", &R::saved_logits}})
    pointer_field(rows, name, field);
  for (auto [name, field] : {std::pair{"saved_h", &R::saved_h}, {"saved_c", &R::saved_c}})
    pointer_field(rows, name, field);
  m.def("rules_before_draw_cuda", &rules_before_draw, py::arg("rows"), py::arg("device"),
        py::arg("stream"), "Which structures draw a first or a next coordinate (CUDA).");
  m.def("rules_after_draw_cuda", &rules_after_draw, py::arg("rows"), py::arg("max_retries"),
        py::arg("max_restarts"), py::arg("device"), py::arg("stream"),
        "The redraw, restart, failure and finish rules after a step's draws (CUDA).");
  m.def("rules_after_step_cuda", &rules_after_step, py::arg("rows"), py::arg("new_logits"),
        py::arg("device"), py::arg("stream"),
        "New logits in, k advanced, an atom's first logits saved (CUDA).");

  m.def("sample_step_cpu", &sample_step_cpu,
        "Draw coordinate k[b] of every structure b with k[b] >= 0 (clash-masked at an atom's "
        "third coordinate); bins[b] = -1 where no bin is left.");
  m.def("sample_step_cuda", &sample_step_cuda, "sample_step_cpu on device pointers and a stream.");
  m.attr("sampler_max_cuda_bins") = sampler::kMaxCudaBins;
  m.attr("sampler_clash") = sampler::kClash;
  m.attr("sampler_softmax") = sampler::kSoftmax;
  m.attr("sampler_sigmoid") = sampler::kSigmoid;
  m.attr("sampler_bad_logits") = sampler::kBadLogits;
  m.def("sampler_bin_position", &sampler::bin_position, py::arg("bin"), py::arg("u"),
        py::arg("n_bins"), "Where a draw in `bin` with in-bin uniform u lands (for tests).");
}

}  // namespace repap
