"""Shared command-line helpers."""

from __future__ import annotations

import torch

from deidvid.cli.common import resolve_device, torch_built_with_gpu


def test_the_gpu_build_is_read_without_importing_torch_as_torch_reports_it() -> None:
    assert torch_built_with_gpu() == (torch.version.cuda is not None or torch.version.hip is not None)


def test_auto_device_is_what_torch_says() -> None:
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def test_cpu_needs_no_torch_import() -> None:
    """Asking for the CPU must not import torch (seconds of every run's start)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from deidvid.cli.common import resolve_device\n"
        "assert resolve_device('cpu') == 'cpu'\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_blur_without_identity_check_runs_without_torch(tmp_path) -> None:
    """The blur path (detector on ONNX Runtime, dlib, numpy) never imports torch: its start-up
    is seconds shorter. The identity check's recognisers are torch modules."""
    import subprocess
    import sys

    from deidvid.testing.synthetic_video import make_face_video

    video = make_face_video(tmp_path / "in.mp4", n_frames=6, size=(160, 120), audio=False)
    argv = ["deidvid", "anonymise", str(video), "-o", str(tmp_path / "out.mp4"), "--quiet", "--device", "cpu",
            "--method", "blur", "--no-identity-check"]
    code = (
        "import runpy, sys\n"
        f"sys.argv = {argv!r}\n"
        "try:\n"
        "    runpy.run_module('deidvid', run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "out.mp4").stat().st_size > 0
