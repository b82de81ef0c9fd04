#pragma once

#include <torch/all.h>

// out[r, :] = softmax(input[r, :]) over the last dimension.
void softmax(torch::Tensor& out, const torch::Tensor& input);
void softmax_cpu(torch::Tensor& out, const torch::Tensor& input);
