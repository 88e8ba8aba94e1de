"""Benchmark the training loop: `python benchmarks/bench.py [--no-scale] [--device cpu|cuda] [--threads N]`.

The same as `python -m lesson5 bench`; the code lives in `lesson5.bench` so the command line can reach it.
"""

import sys

from lesson5.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
