import sys

from deidvid.train.cli import main

sys.exit(main(sys.argv[1:]))
