"""hw_offload: an integer transformer-block accelerator in SystemVerilog.

Layers (each tested against the one beside it): rtl/ executes instructions cycle-accurately
(driver.Accelerator over Verilator); golden.GoldenAccelerator executes the same instructions
in numpy, bit-exact; compiler.compile_block turns a quantized decoder block (quant.py) into an
instruction stream and memory image; runtime.run_block executes it on either device.
"""


def __getattr__(name):
    # offload() lives in backend.py, which imports torch._dynamo: load it only when asked for
    if name == "offload":
        from .backend import offload
        return offload
    raise AttributeError(f"module 'hw_offload' has no attribute {name!r}")
