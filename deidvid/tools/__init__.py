"""Developer tools run from ``deidvid bench`` / ``deidvid models``: benchmarks, weight converters,
recogniser calibration, the UBFC table. Nothing in the anonymise or verify path imports them."""
