#include <torch/library.h>

#include "registration.h"
#include "torch_binding.h"

TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, ops) {
  ops.def("rms_norm(Tensor! out, Tensor input, Tensor weight, float eps) -> ()");
#if defined(CPU_KERNEL)
  ops.impl("rms_norm", torch::kCPU, &rms_norm_cpu);
#endif
}

REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
