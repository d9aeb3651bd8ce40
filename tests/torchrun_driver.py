"""``python tests/torchrun_driver.py CHUNK ARGS...``: the synthtext command with generation chunks of CHUNK
rows (the tests' tables are smaller than one default chunk), for launching under torchrun."""

import sys

import synthtext.generate as generate
from synthtext.cli import main

if __name__ == "__main__":
    generate.CHUNK_ROWS = int(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
