// RMSNorm, one block per row. The launch goes to a high-priority side stream so it can
// "overlap" with whatever the caller queues next. (Cheat fixture: the caller's stream never
// waits for the side stream, so events recorded on the current stream do not cover the kernel.)
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

namespace side_stream_rmsnorm {

constexpr int kThreads = 256;

template <typename T>
__global__ void rms_norm_kernel(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ w,
                                int64_t cols, float eps) {
  const T* xr = x + static_cast<int64_t>(blockIdx.x) * cols;
  T* outr = out + static_cast<int64_t>(blockIdx.x) * cols;
  __shared__ float red[kThreads];
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    const float f = static_cast<float>(xr[i]);
    s += f * f;
  }
  red[threadIdx.x] = s;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k >>= 1) {
    if (threadIdx.x < k) red[threadIdx.x] += red[threadIdx.x + k];
    __syncthreads();
  }
  const float rstd = rsqrtf(red[0] / static_cast<float>(cols) + eps);
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x)
    outr[i] = static_cast<T>(static_cast<float>(xr[i]) * rstd * static_cast<float>(w[i]));
}

}  // namespace side_stream_rmsnorm

void rms_norm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, double eps) {
  TORCH_CHECK(input.is_cuda() && input.is_contiguous() && out.is_contiguous(), "rms_norm: contiguous CUDA tensors");
  const int64_t cols = input.size(-1);
  const int64_t rows = cols == 0 ? 0 : input.numel() / cols;
  if (rows == 0) return;
  const at::cuda::OptionalCUDAGuard guard(device_of(input));
  // Inputs are ready once the current stream's queued work is: the side stream waits for
  // that, then runs the kernel without blocking the caller.
  const cudaStream_t current = at::cuda::getCurrentCUDAStream();
  const cudaStream_t side = c10::cuda::getStreamFromPool(/*isHighPriority=*/true).stream();
  cudaEvent_t ready;
  C10_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
  C10_CUDA_CHECK(cudaEventRecord(ready, current));
  C10_CUDA_CHECK(cudaStreamWaitEvent(side, ready, 0));
  C10_CUDA_CHECK(cudaEventDestroy(ready));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "rms_norm", [&] {
    side_stream_rmsnorm::rms_norm_kernel<scalar_t><<<static_cast<unsigned>(rows), side_stream_rmsnorm::kThreads,
                                                     0, side>>>(
        out.data_ptr<scalar_t>(), input.data_ptr<scalar_t>(), weight.data_ptr<scalar_t>(), cols,
        static_cast<float>(eps));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}
