// Known-bad project: a float32 ReLU whose kernel is fine (see EXPECTED.txt for what is wrong).
#include <ATen/ATen.h>
#include <algorithm>
#include <ATen/cuda/CUDAContext.h>

__global__ void relu_kernel(float* __restrict__ out, const float* __restrict__ x, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = fmaxf(x[i], 0.0f);
}

void relu(at::Tensor& out, const at::Tensor& input) {
  TORCH_CHECK(input.is_cuda() && input.is_contiguous() && input.scalar_type() == at::kFloat,
              "relu: contiguous float32 CUDA input expected");
  TORCH_CHECK(out.sizes() == input.sizes() && out.scalar_type() == at::kFloat, "relu: bad out");
  const int64_t n = input.numel();
  if (n == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 132 * 8));
  relu_kernel<<<blocks, 256, 0, at::cuda::getCurrentCUDAStream()>>>(out.data_ptr<float>(), input.data_ptr<float>(), n);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}
