"""Settings of one ``deidvid anonymise`` run (all recorded in the JSON report)."""

from __future__ import annotations

from dataclasses import dataclass, field

from deidvid.faces.find import FaceFinding


@dataclass
class AnonymiseOptions:
    """What to do to every video of a run.

    Attributes:
        method: a name from ``deidvid.methods.METHODS``.
        strength: residual AE only: perturbation RMS in [0, 1] units (None: as trained).
        seed: surrogate only: makes the choice of each track's surrogate reproducible.
        surrogate_look: surrogate only: ``any`` (either look, the farthest from the person)
            or ``same`` (the person's apparent look).
        keep_pulse: transplant the original's pulse into the output (None: the method's
            default, ``Method.keeps_pulse_by_default``: on for every bundled method).
        face_qp_offset: code the faces this many QP finer than the rest (None: 20 when the
            pulse is transplanted, else 0). A smooth (blurred, replaced) face has no texture
            to dither the pulse's sub-grey-level changes, so x264 rounds them away at the
            frame's quantiser (see README, pulse transplant).
        fallback: what covers a face that was seen but lost: ``blur`` or ``none``.
        identity_stride: the identity check scores every n-th frame of each track.
        keep_metadata: keep free-text container tags (title, comment, ...), which often
            name the people filmed; by default only technical tags are copied.
        threads: encoder threads (None: the encoder's default, for all cores); a batch's
            workers each use their share of the cores. Changes the bits, not the picture.
    """

    method: str = "blur"
    device: str = "cpu"
    strength: float | None = None
    seed: int = 0
    surrogate_look: str = "any"
    keep_pulse: bool | None = None
    face_qp_offset: int | None = None
    finding: FaceFinding = field(default_factory=FaceFinding)
    clip_len: int = 64
    overlap: int = 16
    fallback: str = "blur"  # "blur" | "none"
    fallback_seconds: float = 2.0
    crf: int = 16
    lossless: bool = False
    copy_audio: bool = True
    identity_check: bool = True
    identity_stride: int = 8
    keep_metadata: bool = False
    threads: int | None = None


#: The face's QP offset when the pulse is transplanted. Chosen on UBFC subjects 14 and 17 (the
#: validation split), 30 s, blur: session 5 (whole face coded finer), s14 POS 10 s waveform r
#: 0.80 / 0.90 / 0.954 / 0.964 / 0.971 at 0 / 5 / 12 / 15 / 20 QP finer; session 17 (only the
#: skin's box coded finer), 15 -> 20: s14 r 0.961 -> 0.967, s17 0.971 -> 0.976, POS SNR drop
#: -0.20 -> -0.29 / 0.38 -> 0.22 dB, files 1.43x / 1.38x (README, pulse transplant).
PULSE_FACE_QP_OFFSET = 20
