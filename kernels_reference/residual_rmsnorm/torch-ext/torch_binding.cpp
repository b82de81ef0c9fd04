#include <torch/library.h>

#include "registration.h"
#include "torch_binding.h"

TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, ops) {
  ops.def(
      "residual_rms_norm(Tensor! out, Tensor! residual_out, Tensor input, Tensor residual, Tensor weight, "
      "float eps) -> ()");
#if defined(CUDA_KERNEL)
  ops.impl("residual_rms_norm", torch::kCUDA, &residual_rms_norm);
#endif
#if defined(CPU_KERNEL)
  ops.impl("residual_rms_norm", torch::kCPU, &residual_rms_norm_cpu);
#endif
}

REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
