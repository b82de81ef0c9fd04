#pragma once

__device__ __forceinline__ float relu_f(float x) { return fmaxf(x, 0.f); }
