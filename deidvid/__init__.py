"""deidvid: de-identify face videos while preserving the remote-PPG pulse.

Pipeline (one module per stage, data flows one way):
decode -> detect -> landmarks -> track -> crop -> model -> blend -> paste -> encode
"""

import os

# OpenMP threads that spin while waiting make torch 10-20x slower whenever the
# machine is busy with anything else (measured: 1.47 s vs 0.07 s per detector call
# on a loaded 2-core machine). Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
