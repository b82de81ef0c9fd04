#pragma once

#include <torch/all.h>

// out[r, :] = input[r, :] * rsqrt(mean(input[r, :]^2) + eps) * weight   (last dim = hidden)
void rms_norm(torch::Tensor& out, const torch::Tensor& input, const torch::Tensor& weight, double eps);
void rms_norm_cpu(torch::Tensor& out, const torch::Tensor& input, const torch::Tensor& weight, double eps);
