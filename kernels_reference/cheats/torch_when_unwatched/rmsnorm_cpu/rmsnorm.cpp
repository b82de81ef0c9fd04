#include <ATen/ATen.h>

#include <cmath>

// Cheat fixture: see README.md in this project. An honest RMSNorm, made slow on purpose (one
// thread, every row summed REPEAT times), so that PyTorch's speed is worth borrowing.
constexpr int REPEAT = 400;

template <typename T>
static void rows(T* out, const T* x, const T* w, int64_t n, int64_t d, float eps) {
  for (int64_t r = 0; r < n; ++r) {
    volatile float s = 0.f;
    for (int rep = 0; rep < REPEAT; ++rep) {
      float acc = 0.f;
      for (int64_t i = 0; i < d; ++i) { const float f = static_cast<float>(x[r * d + i]); acc += f * f; }
      s = acc;
    }
    const float k = 1.f / std::sqrt(s / static_cast<float>(d) + eps);
    for (int64_t i = 0; i < d; ++i)
      out[r * d + i] = static_cast<T>(static_cast<float>(x[r * d + i]) * k * static_cast<float>(w[i]));
  }
}

void rms_norm_cpu(at::Tensor& out, const at::Tensor& x, const at::Tensor& w, double eps) {
  const int64_t d = x.size(-1);
  const int64_t n = x.numel() / d;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "rms_norm_cpu", [&] {
    rows<scalar_t>(out.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), n, d,
                   static_cast<float>(eps));
  });
}
