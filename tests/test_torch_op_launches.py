"""benchmarks.torch_op_launches: which torch operators count as kernel launches.

Views, bare allocations, item() and the Triton interpreter's own argument copies are left
out; GEMMs, elementwise ops, reductions and copies are counted, once per call.
"""
import torch

from benchmarks.torch_op_launches import count_torch_ops, launches_a_kernel
from version3_triton import runtime
from version3_triton.kernels.rms_norm import rms_norm


def test_views_allocations_and_item_launch_nothing():
    torch.manual_seed(0)
    x, y = torch.randn(5, 24), torch.randn(24, 7)

    def step():
        x.view(24, 5).t().contiguous()    # views, then one copy kernel
        torch.empty(3)
        z = (x @ y).relu()
        z[1:, :3].add_(1.0)               # a slice (view) written in place
        return z.sum().item()

    assert count_torch_ops(step) == {"aten.clone.default": 1, "aten.mm.default": 1,
                                     "aten.relu.default": 1, "aten.add_.Tensor": 1,
                                     "aten.sum.default": 1}
    assert launches_a_kernel(torch.ops.aten.copy_.default)        # writes its input
    assert not launches_a_kernel(torch.ops.aten.transpose.int)
    assert not launches_a_kernel(torch.ops.aten._local_scalar_dense.default)


def test_a_triton_call_is_not_counted_as_torch_ops():
    # In the interpreter a launch copies its arguments through torch (set_, copy_); those
    # are the interpreter's plumbing, not the model's kernels.
    torch.manual_seed(0)
    x, w = torch.randn(6, 40), torch.randn(40)
    runtime.CALLS.clear()
    ops = count_torch_ops(lambda: rms_norm(x, w) * 2)
    assert runtime.CALLS["rms_norm_fwd"] == 1
    assert ops == {"aten.mul.Tensor": 1}
