// Python bindings of the sampler kernel. Raw data pointers of contiguous tensors (float32
// logits and coordinates, int64 indices) that repap.sampling allocates and checks.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <stdexcept>

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

}  // namespace

void export_sampler(py::module_& m) {
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
