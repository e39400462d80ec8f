"""python -m benchmarks.hw [--out DIR] [--clock-mhz 200]"""
from .bench_block import main

if __name__ == "__main__":
    main()
