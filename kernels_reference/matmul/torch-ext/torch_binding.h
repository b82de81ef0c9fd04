#pragma once

#include <torch/all.h>

// out[M, N] = a[M, K] @ b[K, N], fp32 accumulation, out in the inputs' dtype.
void matmul(torch::Tensor& out, const torch::Tensor& a, const torch::Tensor& b);
void matmul_cpu(torch::Tensor& out, const torch::Tensor& a, const torch::Tensor& b);
