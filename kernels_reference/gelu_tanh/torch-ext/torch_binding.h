#pragma once

#include <torch/all.h>

// out = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))), elementwise.
void gelu_tanh(torch::Tensor& out, const torch::Tensor& input);
void gelu_tanh_cpu(torch::Tensor& out, const torch::Tensor& input);
