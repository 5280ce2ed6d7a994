"""deidvid.faces.geometry.steady_boxes: a track's crop boxes without their rounding jitter,
never leaving any of a frame's own box out."""

from __future__ import annotations

import numpy as np

from deidvid.faces.geometry import BOX_SLACK_PX, CropBox, steady_boxes


def _holds(outer: CropBox, inner: CropBox) -> bool:
    return (
        outer.x0 <= inner.x0
        and outer.y0 <= inner.y0
        and outer.x0 + outer.side >= inner.x0 + inner.side
        and outer.y0 + outer.side >= inner.y0 + inner.side
    )


def _slack(outer: CropBox, inner: CropBox) -> int:
    return max(
        inner.x0 - outer.x0,
        inner.y0 - outer.y0,
        outer.x0 + outer.side - inner.x0 - inner.side,
        outer.y0 + outer.side - inner.y0 - inner.side,
    )


def test_a_still_face_keeps_one_box():
    rng = np.random.default_rng(0)
    own = [CropBox(100 + int(dx), 80 + int(dy), 170 + int(ds)) for dx, dy, ds in rng.integers(0, 2, (60, 3))]
    steady = steady_boxes(own)
    assert len(set(steady[10:])) == 1  # settled on one box that holds every jittered one
    assert all(_holds(s, o) for s, o in zip(steady, own))


def test_a_moving_face_is_followed_and_never_left_out():
    own = [CropBox(100 + t // 2, 80 + t // 3, 170) for t in range(60)]  # 0.5 and 0.33 px per frame
    steady = steady_boxes(own)
    assert steady[-1].x0 >= own[-1].x0 - BOX_SLACK_PX and steady[-1].y0 >= own[-1].y0 - BOX_SLACK_PX
    assert all(_holds(s, o) and _slack(s, o) <= BOX_SLACK_PX for s, o in zip(steady, own))
    assert len(set(steady)) < len(set(own))  # fewer, larger steps


def test_every_steady_box_holds_its_own_within_the_slack():
    rng = np.random.default_rng(1)
    walk = np.cumsum(rng.integers(-3, 4, (500, 3)), axis=0)
    own = [CropBox(200 + int(x), 150 + int(y), max(20, 120 + int(s))) for x, y, s in walk]
    steady = steady_boxes(own)
    assert len(steady) == len(own)
    assert all(_holds(s, o) and _slack(s, o) <= BOX_SLACK_PX for s, o in zip(steady, own))
    assert steady_boxes(own, slack=0) == own  # no slack: every frame its own box


def test_steady_boxes_keep_the_crop_size_of_a_box_with_a_margin():
    boxes = [CropBox(100 + (i % 2), 50, 120 + (i % 3), 160) for i in range(10)]
    assert {b.size for b in steady_boxes(boxes)} == {160}
