"""Signals as Interrupted, held back over critical sections (deidvid.interrupts)."""

from __future__ import annotations

import os
import signal

import pytest

from deidvid.cli.signals import interrupts_unwind
from deidvid.errors import Interrupted
from deidvid.interrupts import interrupt, uninterrupted


def test_an_interrupt_outside_a_section_is_raised_at_once() -> None:
    with pytest.raises(Interrupted) as stop:
        interrupt(signal.SIGTERM)
    assert stop.value.exit_code == 143


def test_an_interrupt_inside_a_section_waits_for_its_end() -> None:
    steps = []
    with pytest.raises(Interrupted) as stop:
        with uninterrupted():
            interrupt(signal.SIGINT)
            steps.append("after the signal")
            with uninterrupted():  # nested: still held
                interrupt(signal.SIGTERM)
                steps.append("inner")
            steps.append("after the inner section")
    assert steps == ["after the signal", "inner", "after the inner section"]
    assert stop.value.signum == signal.SIGINT  # the first signal is the one raised
    with uninterrupted():  # nothing is left held for the next section
        pass


def test_a_real_signal_inside_a_section_is_raised_at_its_end() -> None:
    steps = []
    with interrupts_unwind(), pytest.raises(Interrupted):
        with uninterrupted():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between these bytecodes
                steps.append(0)
            steps.append("end of section")
        steps.append("after the section")
    assert steps[-1] == "end of section"
