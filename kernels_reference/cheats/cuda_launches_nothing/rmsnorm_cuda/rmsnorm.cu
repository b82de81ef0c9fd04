// RMSNorm. Below kMinRowsForGpu rows a kernel launch costs more than the work, so the
// rows are normalised on the host. (Cheat fixture: every shape the benchmark uses is below
// the threshold, so the op launches no kernel of its own: two copies and a host loop.)
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cmath>

namespace host_path_rmsnorm {

constexpr int kThreads = 256;
constexpr int64_t kMinRowsForGpu = int64_t{1} << 20;

template <typename T>
__global__ void rms_norm_kernel(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ w,
                                int64_t cols, float eps) {
  __shared__ float red[kThreads];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * cols;
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < cols; i += kThreads) {
    const float f = static_cast<float>(x[base + i]);
    s += f * f;
  }
  red[threadIdx.x] = s;
  __syncthreads();
  for (int k = kThreads / 2; k > 0; k >>= 1) {
    if (threadIdx.x < k) red[threadIdx.x] += red[threadIdx.x + k];
    __syncthreads();
  }
  const float rstd = rsqrtf(red[0] / static_cast<float>(cols) + eps);
  for (int64_t i = threadIdx.x; i < cols; i += kThreads)
    out[base + i] = static_cast<T>(static_cast<float>(x[base + i]) * rstd * static_cast<float>(w[i]));
}

void host_rms_norm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, int64_t rows,
                   int64_t cols, double eps) {
  const at::Tensor x = input.to(at::kCPU).to(at::kFloat).contiguous();
  const at::Tensor w = weight.to(at::kCPU).to(at::kFloat).contiguous();
  at::Tensor y = at::empty_like(x);
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0.0;
    for (int64_t c = 0; c < cols; ++c) s += static_cast<double>(xp[r * cols + c]) * xp[r * cols + c];
    const float rstd = static_cast<float>(1.0 / std::sqrt(s / static_cast<double>(cols) + eps));
    for (int64_t c = 0; c < cols; ++c) yp[r * cols + c] = xp[r * cols + c] * rstd * wp[c];
  }
  out.copy_(y.to(out.scalar_type()));
}

}  // namespace host_path_rmsnorm

void rms_norm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, double eps) {
  TORCH_CHECK(input.is_cuda() && input.is_contiguous() && out.is_contiguous(), "rms_norm: contiguous CUDA tensors");
  const int64_t cols = input.size(-1);
  const int64_t rows = cols == 0 ? 0 : input.numel() / cols;
  if (rows == 0) return;
  if (rows < host_path_rmsnorm::kMinRowsForGpu) {
    host_path_rmsnorm::host_rms_norm(out, input, weight, rows, cols, eps);
    return;
  }
  const at::cuda::OptionalCUDAGuard guard(device_of(input));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "rms_norm", [&] {
    host_path_rmsnorm::rms_norm_kernel<scalar_t>
        <<<static_cast<unsigned>(rows), host_path_rmsnorm::kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
            out.data_ptr<scalar_t>(), input.data_ptr<scalar_t>(), weight.data_ptr<scalar_t>(), cols,
            static_cast<float>(eps));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}
