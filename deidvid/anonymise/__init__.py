"""Anonymising one video: options, models shared per batch, clip planning and cross-fade
accumulation, paste, the fail-closed fallback, and the run loop that wires them (``run``)."""
