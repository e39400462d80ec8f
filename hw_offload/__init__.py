"""hw_offload: an integer transformer-block accelerator in SystemVerilog.

Layers (each tested against the one beside it): rtl/ executes instructions cycle-accurately
(driver.Accelerator over Verilator); golden.GoldenAccelerator executes the same instructions
in numpy, bit-exact; compiler.compile_block turns a quantized decoder block (quant.py) into an
instruction stream and memory image; runtime.run_block executes it on either device.
"""
