// Row softmax for H100 (sm_90), fp32 accumulation, two reads and one write per element.
//   out[r, :] = exp(x[r, :] - max) / sum(exp(x[r, :] - max))
// Pass 1 keeps an online (max, sum) pair per thread, merged across the warp/block;
// pass 2 re-reads the row (L1/L2-resident) and writes the normalised values.
// Rows of <= 1024 elements get one warp each (4 rows per block, no block barrier);
// longer rows get a whole block. 16-byte vector loads when the row length and pointers
// allow; any other row length (4095, 50257, ...) takes the scalar path.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#define KG_DISPATCH_FLOATS(TYPE, NAME, ...)                               \
  AT_DISPATCH_SWITCH(TYPE, NAME,                                          \
                     AT_DISPATCH_CASE(at::ScalarType::Float, __VA_ARGS__) \
                     AT_DISPATCH_CASE(at::ScalarType::Half, __VA_ARGS__)  \
                     AT_DISPATCH_CASE(at::ScalarType::BFloat16, __VA_ARGS__))

// A named namespace, not an anonymous one: profilers show kernels as `kgref_softmax::...`, which
// tells them apart from PyTorch's own `(anonymous namespace)::` kernels.
namespace kgref_softmax {

constexpr int kVecBytes = 16;
constexpr int kWarpRowsPerBlock = 4;
constexpr int64_t kWarpRowMaxCols = 1024;

template <typename T>
struct alignas(kVecBytes) Pack {
  static constexpr int N = kVecBytes / sizeof(T);
  T v[N];
};

// Online softmax state: running max m and sum of exp(x - m).
struct MaxSum {
  float m;
  float s;
};

__device__ __forceinline__ MaxSum merge(MaxSum a, MaxSum b) {
  // -inf max means "no elements yet": avoid exp(-inf - -inf) = NaN.
  if (a.m == -INFINITY) return b;
  if (b.m == -INFINITY) return a;
  const float m = fmaxf(a.m, b.m);
  return {m, a.s * __expf(a.m - m) + b.s * __expf(b.m - m)};
}

__device__ __forceinline__ void push(MaxSum& st, float x) {
  if (x > st.m) {
    st.s = st.s * __expf(st.m - x) + 1.f;  // st.m == -inf gives s * 0 + 1
    st.m = x;
  } else {
    st.s += __expf(x - st.m);
  }
}

__device__ __forceinline__ MaxSum warp_merge(MaxSum st) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    MaxSum other{__shfl_xor_sync(0xffffffffu, st.m, offset), __shfl_xor_sync(0xffffffffu, st.s, offset)};
    st = merge(st, other);
  }
  return st;
}

// Whole-block merge (blockDim.x a multiple of 32, blockDim.y == 1); all threads get the result.
__device__ __forceinline__ MaxSum block_merge(MaxSum st) {
  __shared__ float sm[32];
  __shared__ float ss[32];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int num_warps = blockDim.x >> 5;
  st = warp_merge(st);
  if (lane == 0) {
    sm[warp] = st.m;
    ss[warp] = st.s;
  }
  __syncthreads();
  if (warp == 0) {
    MaxSum v = lane < num_warps ? MaxSum{sm[lane], ss[lane]} : MaxSum{-INFINITY, 0.f};
    v = warp_merge(v);
    if (lane == 0) {
      sm[0] = v.m;
      ss[0] = v.s;
    }
  }
  __syncthreads();
  return {sm[0], ss[0]};
}

// kWarp: blockDim = (32, kWarpRowsPerBlock), one warp per row. Otherwise blockDim = (n*32, 1).
template <typename T, bool kVec, bool kWarp>
__global__ void softmax_kernel(T* __restrict__ out, const T* __restrict__ x, int64_t rows, int64_t cols) {
  const int64_t row = kWarp ? static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y : blockIdx.x;
  if (kWarp && row >= rows) return;  // whole warp leaves together; the warp path has no block barrier
  const int tid = threadIdx.x;
  const int stride = blockDim.x;
  const T* xr = x + row * cols;
  T* outr = out + row * cols;
  constexpr int N = Pack<T>::N;

  MaxSum st{-INFINITY, 0.f};
  if constexpr (kVec) {
    const Pack<T>* xv = reinterpret_cast<const Pack<T>*>(xr);
    for (int64_t i = tid; i < cols / N; i += stride) {
      const Pack<T> p = xv[i];
#pragma unroll
      for (int j = 0; j < N; ++j) push(st, static_cast<float>(p.v[j]));
    }
  } else {
    for (int64_t i = tid; i < cols; i += stride) push(st, static_cast<float>(xr[i]));
  }
  st = kWarp ? warp_merge(st) : block_merge(st);
  const float row_max = st.m;
  const float inv_sum = 1.f / st.s;

  if constexpr (kVec) {
    const Pack<T>* xv = reinterpret_cast<const Pack<T>*>(xr);
    Pack<T>* ov = reinterpret_cast<Pack<T>*>(outr);
    for (int64_t i = tid; i < cols / N; i += stride) {
      const Pack<T> p = xv[i];
      Pack<T> o;
#pragma unroll
      for (int j = 0; j < N; ++j) o.v[j] = static_cast<T>(__expf(static_cast<float>(p.v[j]) - row_max) * inv_sum);
      ov[i] = o;
    }
  } else {
    for (int64_t i = tid; i < cols; i += stride)
      outr[i] = static_cast<T>(__expf(static_cast<float>(xr[i]) - row_max) * inv_sum);
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % kVecBytes == 0; }

int block_threads_for(int64_t work_items) {
  const int64_t warps = std::min<int64_t>(32, std::max<int64_t>(1, (work_items + 31) / 32));
  return static_cast<int>(warps * 32);
}

template <typename T, bool kVec>
void launch(T* out, const T* x, int64_t rows, int64_t cols, cudaStream_t stream) {
  constexpr int N = Pack<T>::N;
  if (cols <= kWarpRowMaxCols) {
    const dim3 block(32, kWarpRowsPerBlock);
    const int64_t blocks = (rows + kWarpRowsPerBlock - 1) / kWarpRowsPerBlock;
    softmax_kernel<T, kVec, true><<<static_cast<unsigned>(blocks), block, 0, stream>>>(out, x, rows, cols);
  } else {
    const int threads = block_threads_for(kVec ? cols / N : cols);
    softmax_kernel<T, kVec, false><<<static_cast<unsigned>(rows), threads, 0, stream>>>(out, x, rows, cols);
  }
}

}  // namespace kgref_softmax

using namespace kgref_softmax;

void softmax(at::Tensor& out, const at::Tensor& input) {
  TORCH_CHECK(input.is_cuda() && out.is_cuda(), "softmax: tensors must be on a CUDA device");
  TORCH_CHECK(input.is_contiguous() && out.is_contiguous(), "softmax: tensors must be contiguous");
  TORCH_CHECK(input.scalar_type() == out.scalar_type(), "softmax: input and out must share a dtype");
  TORCH_CHECK(input.dim() >= 1, "softmax: input must have at least one dimension");
  TORCH_CHECK(out.sizes() == input.sizes(), "softmax: out must have the shape of input");
  const int64_t cols = input.size(-1);
  const int64_t rows = cols == 0 ? 0 : input.numel() / cols;
  if (rows == 0) return;
  TORCH_CHECK(rows <= std::numeric_limits<int32_t>::max(), "softmax: too many rows for one launch");

  const at::cuda::OptionalCUDAGuard device_guard(device_of(input));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  KG_DISPATCH_FLOATS(input.scalar_type(), "softmax", [&] {
    const bool vec = cols % Pack<scalar_t>::N == 0 && aligned16(input.data_ptr()) && aligned16(out.data_ptr());
    if (vec) {
      launch<scalar_t, true>(out.data_ptr<scalar_t>(), input.data_ptr<scalar_t>(), rows, cols, stream);
    } else {
      launch<scalar_t, false>(out.data_ptr<scalar_t>(), input.data_ptr<scalar_t>(), rows, cols, stream);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}
