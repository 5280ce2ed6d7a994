"""The decode+encode floor of ``deidvid anonymise``: ``python -m deidvid.tools.floor IN OUT``.

Decodes ``IN`` with deidvid's own decoder and writes every frame unchanged with deidvid's
own writer (anonymise's default CRF, preset and threads; audio copied), no face
processing: what decoding and encoding alone cost. ``deidvid bench anonymise`` times it as
the "floor" row.
"""

from __future__ import annotations

import sys
from pathlib import Path

from deidvid.anonymise.options import AnonymiseOptions
from deidvid.io.decode import probe
from deidvid.io.encode import VideoWriter
from deidvid.io.yuv import UNCHANGED
from deidvid.timing import StageTimer, timed_frames


def decode_encode(src: Path, dst: Path) -> int:
    """Copy ``src``'s first video stream to ``dst`` through decoding and encoding; return the frames written."""
    opts = AnonymiseOptions()
    info = probe(src)
    with VideoWriter(dst, info, crf=opts.crf, lossless=opts.lossless, copy_audio=opts.copy_audio, threads=opts.threads) as writer:
        # anonymise's pass 2 with nothing to change: its frame source (decoded ahead in a thread,
        # overlapping the encoder), and frames written as a faceless frame is.
        for frame in timed_frames(src, info, StageTimer(), deep=not opts.lossless, keep_yuv=not opts.lossless):
            picture = frame.rgb if frame.deep is None else frame.deep
            writer.write(frame, picture, changed=UNCHANGED)
    return writer.frames_written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m deidvid.tools.floor IN OUT", file=sys.stderr)
        return 2
    decode_encode(Path(args[0]), Path(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
