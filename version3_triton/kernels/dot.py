"""``dot``: the one ``tl.dot`` call of every kernel of versions 3 and 4 (not a kernel itself).

fp32 operands use true fp32 products (``input_precision="ieee"``, not TF32) so that fp32
runs match the eager reference; bf16/fp16 operands use the tensor cores (wgmma/mma on
NVIDIA, mfma on AMD) with fp32 accumulation.
"""
import triton
import triton.language as tl


@triton.jit
def dot(a, b, IEEE: tl.constexpr):
    """a: (M, K), b: (K, N) -> (M, N) fp32. IEEE: the operands are fp32."""
    if IEEE:
        return tl.dot(a, b, input_precision="ieee")
    else:
        return tl.dot(a, b)
