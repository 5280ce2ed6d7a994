"""``deidvid verify``: compare a de-identified video with its original (pulse, identity, quality).

:mod:`~deidvid.verify.options` (``VerifyOptions``) -> :mod:`~deidvid.verify.run` (the
two passes, wiring the accumulators of :mod:`deidvid.measure`) -> :mod:`~deidvid.verify.report`
(``VerifyReport``, JSON, summary, gates) -> :mod:`~deidvid.verify.tables` (rich tables);
:mod:`~deidvid.verify.series` (``VerifySeries``: the waveforms, distances, signals and frames
behind the report) -> :mod:`~deidvid.verify.html` (the ``--html`` page).
"""
