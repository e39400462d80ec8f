"""python -m benchmarks.hw [--out DIR] [--clock-mhz 200]  |  --trace FILE.fst|FILE.vcd [--trace-preset chip16]"""
from .bench_block import main

if __name__ == "__main__":
    main()
