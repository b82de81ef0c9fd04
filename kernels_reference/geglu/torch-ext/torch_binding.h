#pragma once

#include <torch/all.h>

// input: [..., 2*d]; out: [..., d] = gelu_tanh(input[..., :d]) * input[..., d:]
void geglu(torch::Tensor& out, const torch::Tensor& input);
void geglu_cpu(torch::Tensor& out, const torch::Tensor& input);
