// Dense matmul CPU twin: same op and signature as the CUDA kernel. b is converted to fp32
// once; each task takes a band of rows of a and accumulates out rows in fp32
// (out[i, :] += a[i, k] * b[k, :], a streaming inner loop the compiler vectorises).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#define KG_DISPATCH_FLOATS(TYPE, NAME, ...)                               \
  AT_DISPATCH_SWITCH(TYPE, NAME,                                          \
                     AT_DISPATCH_CASE(at::ScalarType::Float, __VA_ARGS__) \
                     AT_DISPATCH_CASE(at::ScalarType::Half, __VA_ARGS__)  \
                     AT_DISPATCH_CASE(at::ScalarType::BFloat16, __VA_ARGS__))

void matmul_cpu(at::Tensor& out, const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK(a.device().is_cpu() && b.device().is_cpu() && out.device().is_cpu(), "matmul_cpu: tensors must be on the CPU");
  TORCH_CHECK(a.is_contiguous() && b.is_contiguous() && out.is_contiguous(), "matmul_cpu: tensors must be contiguous");
  TORCH_CHECK(a.scalar_type() == b.scalar_type() && a.scalar_type() == out.scalar_type(),
              "matmul_cpu: a, b and out must share a dtype");
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0), "matmul_cpu: expected a [M, K] and b [K, N]");
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  TORCH_CHECK(out.dim() == 2 && out.size(0) == M && out.size(1) == N, "matmul_cpu: out must be [M, N]");
  if (M == 0 || N == 0) return;
  KG_DISPATCH_FLOATS(a.scalar_type(), "matmul_cpu", [&] {
    const scalar_t* pa = a.data_ptr<scalar_t>();
    const scalar_t* pb = b.data_ptr<scalar_t>();
    scalar_t* po = out.data_ptr<scalar_t>();
    std::vector<float> bf(static_cast<size_t>(K * N));
    at::parallel_for(0, K * N, 65536, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) bf[i] = static_cast<float>(pb[i]);
    });
    const int64_t grain = std::max<int64_t>(1, 1048576 / std::max<int64_t>(1, N * std::max<int64_t>(K, 1)));
    at::parallel_for(0, M, grain, [&](int64_t begin, int64_t end) {
      std::vector<float> acc(static_cast<size_t>(N));
      for (int64_t i = begin; i < end; ++i) {
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t k = 0; k < K; ++k) {
          const float aik = static_cast<float>(pa[i * K + k]);
          const float* brow = bf.data() + k * N;
          for (int64_t j = 0; j < N; ++j) acc[j] += aik * brow[j];
        }
        for (int64_t j = 0; j < N; ++j) po[i * N + j] = static_cast<scalar_t>(acc[j]);
      }
    });
  });
}
