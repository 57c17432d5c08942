// Python bindings of the LSTM element-wise kernels (lstm.h). They take raw data pointers of
// contiguous float32 tensors: repap.model.Step and repap.lstm allocate every buffer and check
// the shapes, and a per-step call must cost microseconds.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "bindings/exports.h"
#include "lstm/lstm.h"

namespace py = pybind11;

namespace repap {
namespace {

#ifdef REPAP_WITH_CUDA
void cell_step_cuda(const lstm::CellStep& args, int device, std::uintptr_t stream) {
  py::gil_scoped_release release;
  lstm::cell_step_cuda(args, device, reinterpret_cast<void*>(stream));
}
void rewind_cuda(std::uintptr_t back, std::uintptr_t restart, std::uintptr_t saved_h,
                 std::uintptr_t saved_c, std::uintptr_t h, std::uintptr_t c, int64_t layers,
                 int64_t batch, int64_t hidden, int device, std::uintptr_t stream) {
  py::gil_scoped_release release;
  lstm::rewind_cuda(ptr<const bool>(back), ptr<const bool>(restart), ptr<const float>(saved_h),
                    ptr<const float>(saved_c), ptr<float>(h), ptr<float>(c), layers, batch,
                    hidden, device, reinterpret_cast<void*>(stream));
}
#else
[[noreturn]] void no_cuda() {
  throw std::runtime_error("repap was built without CUDA: reinstall on a machine with nvcc "
                           "(and without -DREPAP_CUDA=OFF) to use CUDA tensors");
}
void cell_step_cuda(const lstm::CellStep&, int, std::uintptr_t) { no_cuda(); }
void rewind_cuda(std::uintptr_t, std::uintptr_t, std::uintptr_t, std::uintptr_t, std::uintptr_t,
                 std::uintptr_t, int64_t, int64_t, int64_t, int, std::uintptr_t) {
  no_cuda();
}
#endif

}  // namespace

void export_lstm(py::module_& m) {
  m.def(
      "lstm_step_forward_cpu",
      [](std::uintptr_t gx, std::uintptr_t rec, std::uintptr_t act, std::uintptr_t c_prev,
         std::uintptr_t c, std::uintptr_t h, int64_t batch, int64_t hidden) {
        py::gil_scoped_release release;
        lstm::step_forward_cpu(ptr<const float>(gx), ptr<const float>(rec), ptr<float>(act),
                               ptr<const float>(c_prev), ptr<float>(c), ptr<float>(h), batch,
                               hidden);
      },
      "One LSTM cell step on data pointers (act may alias rec, c_prev may alias c).");
  m.def(
      "dropout_mask_cpu",
      [](uint64_t seed, float p, int64_t steps, int64_t batch, int64_t hidden,
         int64_t row_offset, std::uintptr_t out) {
        py::gil_scoped_release release;
        lstm::dropout_mask_cpu(seed, p, steps, batch, hidden, row_offset, ptr<float>(out));
      },
      "Inverted-dropout mask (0 or 1/(1-p)) of a T x B x H tensor, keyed by (seed, row, t, j).");
  using C = lstm::CellStep;
  // module_local: a second build of the module (bench: -march=native beside the portable one)
  // loads in the same process without a clash of registered types
  py::class_<C> cell(m, "CellStep", "Arguments of lstm_cell_step_cuda: sizes, device pointers.",
                     py::module_local());
  cell.def(py::init<>())
      .def_readwrite("gates_bf16", &C::gates_bf16)
      .def_readwrite("h_lo_stride", &C::h_lo_stride)
      .def_readwrite("batch", &C::batch)
      .def_readwrite("hidden", &C::hidden);
  // pointer fields as Python ints (tensor.data_ptr(); 0: absent)
  auto field = [&cell](const char* name, auto C::*member) {
    using P = std::remove_reference_t<decltype(std::declval<C&>().*member)>;
    cell.def_property(
        name, [member](const C& a) { return reinterpret_cast<std::uintptr_t>(a.*member); },
        [member](C& a, std::uintptr_t p) { a.*member = reinterpret_cast<P>(p); });
  };
  field("gates", &C::gates);
  field("bias", &C::bias);
  field("bin_rows", &C::bin_rows);
  field("step_rows", &C::step_rows);
  field("bins", &C::bins);
  field("steps", &C::steps);
  field("go", &C::go);
  field("c", &C::c);
  field("h", &C::h);
  field("h_relu", &C::h_relu);
  field("relu_lo", &C::relu_lo);
  field("h_lo", &C::h_lo);
  field("saved_c", &C::saved_c);
  field("saved_h", &C::saved_h);
  m.def("lstm_cell_step_cuda", &cell_step_cuda, py::arg("args"), py::arg("device"),
        py::arg("stream"), "One masked LSTM cell step of generation (CellStep) on the GPU.");
  m.def("lstm_rewind_cuda", &rewind_cuda,
        "The redraw rule on device pointers: rows back take the saved state, restart rows zero.");
}

}  // namespace repap
