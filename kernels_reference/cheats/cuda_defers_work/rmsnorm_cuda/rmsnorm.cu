// RMSNorm with launch batching: small calls are queued and launched together every
// kBatch calls, amortising launch overhead. (Cheat fixture: a queued call returns before
// anything wrote its output; a later call does its work.)
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <vector>

namespace batched_rmsnorm {

constexpr int kThreads = 128;
constexpr size_t kBatch = 4;

template <typename T>
__global__ void rms_norm_rows(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ w,
                              int64_t cols, float eps) {
  __shared__ float warp_sums[kThreads / 32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * cols;
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < cols; i += kThreads) {
    const float f = static_cast<float>(x[base + i]);
    s += f * f;
  }
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = s;
  __syncthreads();
  float total = 0.f;
  for (int i = 0; i < kThreads / 32; ++i) total += warp_sums[i];
  const float rstd = rsqrtf(total / static_cast<float>(cols) + eps);
  for (int64_t i = threadIdx.x; i < cols; i += kThreads)
    out[base + i] = static_cast<T>(static_cast<float>(x[base + i]) * rstd * static_cast<float>(w[i]));
}

struct Pending {
  at::Tensor out, input, weight;  // held so the buffers stay valid until the batch runs
  double eps;
};

std::vector<Pending>& queue() {
  static auto* q = new std::vector<Pending>();  // never destroyed: no CUDA frees at exit
  return *q;
}

void launch(const Pending& p, cudaStream_t stream) {
  const int64_t cols = p.input.size(-1);
  const int64_t rows = cols == 0 ? 0 : p.input.numel() / cols;
  if (rows == 0) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.input.scalar_type(), "rms_norm", [&] {
    rms_norm_rows<scalar_t><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        p.out.data_ptr<scalar_t>(), p.input.data_ptr<scalar_t>(), p.weight.data_ptr<scalar_t>(), cols,
        static_cast<float>(p.eps));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace batched_rmsnorm

void rms_norm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, double eps) {
  TORCH_CHECK(input.is_cuda() && input.is_contiguous() && out.is_contiguous(), "rms_norm: contiguous CUDA tensors");
  auto& q = batched_rmsnorm::queue();
  q.push_back({out, input, weight, eps});
  if (q.size() < batched_rmsnorm::kBatch) return;
  const at::cuda::OptionalCUDAGuard guard(device_of(input));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  for (const auto& p : q) batched_rmsnorm::launch(p, stream);
  q.clear();
}
