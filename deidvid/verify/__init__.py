"""``deidvid verify``: compare a de-identified video with its original (pulse, identity, quality)."""
