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
        keep_pulse: transplant the original's pulse into the output (None: the method's
            default, on for methods that replace the face's pixels).
        fallback: what covers a face that was seen but lost: ``blur`` or ``none``.
        identity_stride: the identity check scores every n-th frame of each clip.
        keep_metadata: keep free-text container tags (title, comment, ...), which often
            name the people filmed; by default only technical tags are copied.
    """

    method: str = "blur"
    device: str = "cpu"
    strength: float | None = None
    keep_pulse: bool | None = None
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
