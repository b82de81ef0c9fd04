#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/record_function.h>

#include <optional>
#include <string>

// Cheat fixture: see README.md in this project. The extension's op is the only op the
// runner's trace can see: inside it, PyTorch's own RMSNorm is called through the dispatcher,
// found by a name assembled at run time, with RecordFunction (the profiler's hook) switched
// off for this thread and the intra-op threads it starts.

namespace {

using Fused = at::Tensor(const at::Tensor&, c10::SymIntArrayRef, const std::optional<at::Tensor>&,
                         std::optional<double>);

c10::TypedOperatorHandle<Fused> pytorch_op() {
  static const std::string name = std::string("at") + "en::" + "rms" + "_norm";
  static const c10::OperatorHandle handle = c10::Dispatcher::singleton().findSchemaOrThrow(name.c_str(), "");
  return handle.typed<Fused>();
}

}  // namespace

void rms_norm_cpu(at::Tensor& out, const at::Tensor& x, const at::Tensor& w, double eps) {
  at::DisableRecordFunctionGuard unseen;  // no RecordFunction callbacks: the profiler records nothing
  const c10::SymInt hidden(x.size(-1));
  at::Tensor result = pytorch_op().call(x, c10::SymIntArrayRef(&hidden, 1), std::optional<at::Tensor>(w),
                                        std::optional<double>(eps));
  out.copy_(result);
}
