// Row softmax CPU twin: same op and signature as the CUDA kernel; rows split over threads
// with at::parallel_for; max, sum of exponentials and output all computed in fp32.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#define KG_DISPATCH_FLOATS(TYPE, NAME, ...)                               \
  AT_DISPATCH_SWITCH(TYPE, NAME,                                          \
                     AT_DISPATCH_CASE(at::ScalarType::Float, __VA_ARGS__) \
                     AT_DISPATCH_CASE(at::ScalarType::Half, __VA_ARGS__)  \
                     AT_DISPATCH_CASE(at::ScalarType::BFloat16, __VA_ARGS__))

namespace {

template <typename T>
void softmax_rows(T* out, const T* x, int64_t rows, int64_t cols) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(cols, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> e(static_cast<size_t>(cols));
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * cols;
      T* outr = out + r * cols;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < cols; ++i) m = std::max(m, static_cast<float>(xr[i]));
      float sum = 0.f;
      for (int64_t i = 0; i < cols; ++i) {
        e[i] = std::exp(static_cast<float>(xr[i]) - m);
        sum += e[i];
      }
      const float inv = 1.f / sum;
      for (int64_t i = 0; i < cols; ++i) outr[i] = static_cast<T>(e[i] * inv);
    }
  });
}

}  // namespace

void softmax_cpu(at::Tensor& out, const at::Tensor& input) {
  TORCH_CHECK(input.device().is_cpu() && out.device().is_cpu(), "softmax_cpu: tensors must be on the CPU");
  TORCH_CHECK(input.is_contiguous() && out.is_contiguous(), "softmax_cpu: tensors must be contiguous");
  TORCH_CHECK(input.scalar_type() == out.scalar_type(), "softmax_cpu: input and out must share a dtype");
  TORCH_CHECK(input.dim() >= 1, "softmax_cpu: input must have at least one dimension");
  TORCH_CHECK(out.sizes() == input.sizes(), "softmax_cpu: out must have the shape of input");
  const int64_t cols = input.size(-1);
  const int64_t rows = cols == 0 ? 0 : input.numel() / cols;
  if (rows == 0) return;
  KG_DISPATCH_FLOATS(input.scalar_type(), "softmax_cpu", [&] {
    softmax_rows<scalar_t>(out.data_ptr<scalar_t>(), input.data_ptr<scalar_t>(), rows, cols);
  });
}
