"""version4_ultra: TinyLLaMA with fused transformer sub-blocks (five launches per layer
forward) and a decode kernel of one launch per layer.

Kernels run as version 3's do (``version3_triton.runtime``): compiled on a GPU, under
``TRITON_INTERPRET=1`` on CPU tensors where there is none.
"""
from version3_triton import runtime  # noqa: F401  (first: sets TRITON_INTERPRET)
from dataclasses import dataclass

from version1_baseline.spec import VersionSpec, option

from .model import TinyLlama, causal_lm_loss, describe

VERSION_NAME = "v4"

_DECODE_KERNELS = {"auto": None, "persistent": True, "staged": False}


@dataclass(frozen=True)
class Options:
    decode_kernel: str = option(
        "auto", "decode: one persistent launch per layer (GPU only), five staged launches, "
        "or auto (persistent where it can run)", choices=tuple(_DECODE_KERNELS))


def _prepare(model, options: Options, device, dtype):
    if options.decode_kernel not in _DECODE_KERNELS:
        raise ValueError(f"decode_kernel must be one of {', '.join(_DECODE_KERNELS)}, got "
                         f"{options.decode_kernel!r}")
    model.set_persistent_decode(_DECODE_KERNELS[options.decode_kernel])
    return model


SPEC = VersionSpec(name=VERSION_NAME, model_cls=TinyLlama, options=Options, prepare=_prepare,
                   describe=describe, loss_fn=causal_lm_loss)

__all__ = ["TinyLlama", "causal_lm_loss", "describe", "Options", "SPEC", "VERSION_NAME",
           "runtime"]
