"""version4_ultra: TinyLLaMA with fused transformer sub-blocks (five launches per layer
forward) and a decode kernel of one launch per layer.

Kernels run as version 3's do (``version3_triton.runtime``): compiled on a GPU, under
``TRITON_INTERPRET=1`` on CPU tensors where there is none.
"""
from version3_triton import runtime  # noqa: F401  (first: sets TRITON_INTERPRET)
from version1_baseline.spec import VersionSpec

from .model import TinyLlama, causal_lm_loss, describe

VERSION_NAME = "v4"


def _add_arguments(parser) -> None:
    parser.add_argument("--decode-kernel", default="auto", choices=["auto", "persistent",
                                                                     "staged"],
                        help="decode: one persistent launch per layer (GPU only), five staged "
                             "launches, or auto (persistent where it can run)")


def _prepare(model, args, device):
    choice = getattr(args, "decode_kernel", "auto")
    model.set_persistent_decode({"auto": None, "persistent": True, "staged": False}[choice])
    return model


SPEC = VersionSpec(name=VERSION_NAME, model_cls=TinyLlama, add_arguments=_add_arguments,
                   prepare=_prepare, describe=describe, loss_fn=causal_lm_loss)

__all__ = ["TinyLlama", "causal_lm_loss", "describe", "SPEC", "VERSION_NAME", "runtime"]
