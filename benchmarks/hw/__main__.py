"""python -m benchmarks.hw [--out DIR] [--clock-mhz 200]  |  --trace FILE.fst|FILE.vcd [--trace-preset chip16]
  |  --configs chip16,edge16,fpga32 [--cycle-model fpga32] [--repeats 20]   (per-configuration comparison)"""
from .bench_block import main

if __name__ == "__main__":
    main()
