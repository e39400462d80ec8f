"""hw_offload: an integer transformer-block accelerator in SystemVerilog.

Layers (each tested against the one beside it): rtl/ executes instructions cycle-accurately
(driver.Accelerator over Verilator); golden.GoldenAccelerator executes the same instructions
in numpy, bit-exact; compiler.py turns a quantized decoder block (quant.py) into a weight image
and the block program (compiler.block_program, prefill and decode); model_session.ModelSession
runs a model's blocks on either device; backend.py is the torch.compile backend "rtl" and
cost.py prices the session's records.
"""


def __getattr__(name):
    # offload() lives in backend.py, which imports torch._dynamo: load it only when asked for
    if name == "offload":
        from .backend import offload
        return offload
    raise AttributeError(f"module 'hw_offload' has no attribute {name!r}")
