import numpy as np
import pytest

from deidvid.io.turn import turned


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, np.int32])
@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 3), (6, 4, 4), (3, 2, 5)])
@pytest.mark.parametrize("turns", [-5, -1, 0, 1, 2, 3, 4, 6])
def test_turned_is_numpy_rot90(dtype, shape, turns):
    picture = np.random.default_rng(0).integers(0, 200, shape).astype(dtype)
    out = turned(picture, turns)
    np.testing.assert_array_equal(out, np.rot90(picture, turns))
    assert out.dtype == picture.dtype
    assert out.flags.c_contiguous


def test_turned_reads_strided_views():
    picture = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)[::2, 1:]
    np.testing.assert_array_equal(turned(picture, 1), np.rot90(picture, 1))
