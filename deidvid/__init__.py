"""deidvid: de-identify face videos while preserving the remote-PPG pulse.

Pipeline (one module per stage, data flows one way):
decode -> detect -> landmarks -> track -> crop -> model -> blend -> paste -> encode
"""

__version__ = "0.1.0"
