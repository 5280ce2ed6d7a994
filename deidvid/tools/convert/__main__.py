import sys

from deidvid.tools.convert.main import main

sys.exit(main())
