import cv2
import numpy as np
import pytest

from deidvid.methods import Method, PasteMode, build_method
from deidvid.methods.blur import GaussianBlur
from deidvid.methods.pixelate import Pixelate
from deidvid.anonymise.clips import crossfade_weights, plan_clips
from deidvid.methods.surrogate import SurrogateFace
from deidvid.faces.geometry import CROP_SIZE, CropBox, crop_box, crop_size, cut_crop, face_mask, frame_window
from deidvid.anonymise.paste import paste_replace, paste_residual


@pytest.mark.parametrize("length", [1, 10, 63, 64, 65, 100, 128, 200, 1000])
@pytest.mark.parametrize("overlap", [0, 8, 16, 32])
def test_clip_plan_covers_every_frame_with_positive_weight(length, overlap):
    spans = plan_clips(length, 64, overlap)
    total = np.zeros(length)
    for s, e in spans:
        assert e - s == min(64, length) and 0 <= s < e <= length
        total[s:e] += crossfade_weights((s, e), length, overlap)
    assert (total > 0).all()


def test_crossfade_of_two_constant_clips_is_seamless():
    length, overlap = 100, 16
    spans = plan_clips(length, 64, overlap)
    values = [0.0, 1.0]  # clip outputs differ: the blend must ramp, never jump
    acc, wsum = np.zeros(length), np.zeros(length)
    for (s, e), v in zip(spans, values):
        w = crossfade_weights((s, e), length, overlap)
        acc[s:e] += w * v
        wsum[s:e] += w
    blended = acc / wsum
    assert np.abs(np.diff(blended)).max() < 2.0 / overlap


def test_crop_box_is_square_and_tight_around_face_region():
    lm = np.random.default_rng(0).random((68, 2)) * [80, 100] + [200, 150]
    box = crop_box(lm)
    assert box.side >= 100 and box.side < 100 * 1.6  # forehead band adds height
    centre = np.array([box.x0 + box.side / 2, box.y0 + box.side / 2])
    assert abs(centre[0] - 240) < 3


def test_cut_crop_at_frame_edge_replicates_border_and_keeps_size():
    frame = np.zeros((100, 120, 3), np.uint8)
    frame[:, :60] = 200
    crop = cut_crop(frame, CropBox(-40, -40, 80))
    assert crop.shape == (CROP_SIZE, CROP_SIZE, 3)
    assert crop[0, 0, 0] == 200  # replicated from the corner pixel
    assert frame_window(CropBox(500, 500, 10), 100, 120) is None


def test_residual_paste_changes_nothing_away_from_the_face():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (240, 320, 3)).astype(np.float32)
    before = frame.copy()
    box = CropBox(100, 60, 96)
    mask = np.zeros((CROP_SIZE, CROP_SIZE), np.float32)
    mask[32:96, 32:96] = 1
    paste_residual(frame, box, np.full((CROP_SIZE, CROP_SIZE, 3), 5.0, np.float32), mask)
    changed = np.abs(frame - before).max(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert ys.min() >= 60 and ys.max() < 60 + 96 and xs.min() >= 100 and xs.max() < 100 + 96
    np.testing.assert_allclose(frame[108, 148] - before[108, 148], 5.0, atol=1e-4)


def test_replace_paste_at_the_edge_only_touches_the_frame_part():
    frame = np.zeros((50, 50, 3), np.float32)
    paste_replace(frame, CropBox(30, 30, 40), np.full((CROP_SIZE, CROP_SIZE, 3), 255.0, np.float32),
                  np.ones((CROP_SIZE, CROP_SIZE), np.float32))
    assert frame[:30, :].max() == 0 and frame[:, :30].max() == 0
    assert frame[30:, 30:].min() == 255


def test_face_mask_covers_the_landmark_hull_and_fades_out(astronaut_landmarks):
    lm = astronaut_landmarks
    box = crop_box(lm)
    mask = face_mask(lm, box)
    inside = np.round(box.to_crop(lm.mean(axis=0, keepdims=True))).astype(int)[0]
    assert mask[inside[1], inside[0]] > 0.99
    assert mask[0, 0] < 0.01 and mask.max() <= 1.0 + 1e-6
    # every landmark away from the crop's fading border is fully covered
    pts = np.round(box.to_crop(lm)).astype(int)
    pts = pts[((pts >= 6) & (pts < CROP_SIZE - 6)).all(axis=1)]
    assert len(pts) > 50
    assert mask[pts[:, 1], pts[:, 0]].min() > 0.95
    assert mask[0].max() < 0.2 and mask[-1].max() < 0.2



def test_a_box_with_a_margin_keeps_the_face_size_and_the_mask_fades_inside_it(astronaut_landmarks):
    """A method asking for context (``crop_margin``, here the surrogate's) gets a larger square about the same centre
    whose crop keeps the face at the paper's 128 px; the face mask then fades out inside the
    crop, where on the tight crop it is cut by the crop's straight edges."""
    lm = astronaut_landmarks
    tight, wide = crop_box(lm), crop_box(lm, SurrogateFace.crop_margin)
    assert (tight.size, wide.size) == (CROP_SIZE, crop_size(SurrogateFace.crop_margin)) == (128, 176)
    assert abs(wide.side - 1.375 * tight.side) <= 1
    assert abs((wide.x0 + wide.side / 2) - (tight.x0 + tight.side / 2)) <= 1
    assert abs(wide.scale * tight.side - CROP_SIZE) < 1.0
    assert cut_crop(np.zeros((400, 400, 3), np.uint8), wide).shape == (176, 176, 3)
    band = 4  # crop pixels along every edge: the ramp that cuts a mask still high there (face_mask edge)

    def border(mask: np.ndarray) -> float:
        return float(max(mask[:band].max(), mask[-band:].max(), mask[:, :band].max(), mask[:, -band:].max()))

    tight_mask, wide_mask = face_mask(lm, tight), face_mask(lm, wide)
    assert wide_mask.shape == (176, 176)
    assert border(tight_mask) > 0.5 and border(wide_mask) < 0.05
    pts = np.round(wide.to_crop(lm)).astype(int)
    assert wide_mask[pts[:, 1], pts[:, 0]].min() > 0.95  # every landmark covered
    assert crop_size(0.3) % 16 == 0 and crop_size(0.0) == CROP_SIZE

def test_blur_matches_opencv_reference_and_removes_detail():
    rng = np.random.default_rng(0)
    clip = rng.random((3, CROP_SIZE, CROP_SIZE, 3)).astype(np.float32)
    out = GaussianBlur(12)(clip)
    ref = cv2.GaussianBlur(clip[1], (73, 73), 12, borderType=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(out[1], ref, atol=2e-3)
    assert out.std() < clip.std() / 10


def test_pixelate_gives_10x10_constant_blocks():
    clip = np.random.default_rng(0).random((2, 130, 130, 3)).astype(np.float32)
    out = Pixelate(10)(clip)
    block = out[0, :13, :13]
    assert np.ptp(block.reshape(-1, 3), axis=0).max() == 0
    np.testing.assert_allclose(block[0, 0], clip[0, :13, :13].mean(axis=(0, 1)), atol=1e-5)


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown method"):
        build_method("nope")


class _BatchRecorder(Method):
    """A method that adds 0.1 and records how it was called."""

    paste_mode = PasteMode.RESIDUAL

    def __init__(self) -> None:
        self.batches: list[int] = []

    def run(self, clips):  # noqa: ANN001, ANN201
        self.batches.append(len(clips))
        return [c.frames + 0.1 for c in clips]


def test_clips_of_faces_ending_on_the_same_frame_share_one_batch(astronaut_landmarks):
    from deidvid.anonymise.clips import ClipAccumulator
    from deidvid.faces.track import FaceTrack

    n = 10
    tracks = [
        FaceTrack(i, 0, np.repeat((astronaut_landmarks + 40 * i)[None], n, axis=0), np.ones(n, bool)) for i in range(2)
    ]
    recorder = _BatchRecorder()
    accumulator = ClipAccumulator(tracks, clip_len=6, overlap=2, residual=True)
    rgb = np.full((600, 600, 3), 100, np.uint8)
    for index in range(n):
        due = accumulator.add_frame(index, index / 30, rgb)
        if due:
            assert {clip.track_id for _, clip in due} == {0, 1} and all(clip.start == job.start for job, clip in due)
            for (job, clip), out in zip(due, recorder.run([clip for _, clip in due])):
                accumulator.add_output(job, clip, out)
    assert recorder.batches == [2, 2]  # two clips per track, both tracks' clips end together
    for index in range(n):
        assert accumulator.is_final(index, n - 1)
        results = accumulator.take(index)
        assert len(results) == 2
        for result in results:
            np.testing.assert_allclose(result.value, 0.1, atol=1e-6)  # cross-fade weights sum to one


def _whole_frame_composite(frame, results, method, lost):
    """Reference: every paste and cover on a float copy of the whole frame (as composite did before)."""
    from deidvid.anonymise.fallback import cover_region
    from deidvid.anonymise.paste import paste_face

    canvas = frame.rgb.astype(np.float32)
    for r in results:
        paste_face(canvas, r.track.at(frame.index), r.box, r.value, method.paste_mode, method.interpolation)
    for region in lost:
        cover_region(canvas, frame.rgb, region)
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("mode", [PasteMode.REPLACE, PasteMode.RESIDUAL])
def test_composite_of_the_touched_area_equals_the_whole_frame_composite(astronaut_landmarks, mode):
    """composite() converts only the faces' area to float: the frame must come out the same,
    faces cut by the frame edge and lost-face covers included."""
    from deidvid.anonymise.clips import FaceResult
    from deidvid.anonymise.run import composite
    from deidvid.faces.track import FaceTrack
    from deidvid.io.decode import Frame

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    method = GaussianBlur()
    method.paste_mode = mode
    results = []
    for shift in ([-150, -60], [60, 0]):  # one face cut by the left edge, one inside
        landmarks = astronaut_landmarks * 0.5 + shift
        track = FaceTrack(len(results), 0, landmarks[None], np.ones(1, bool))
        value = rng.random((CROP_SIZE, CROP_SIZE, 3)).astype(np.float32)
        results.append(FaceResult(track, crop_box(landmarks), value))
    lost = [np.array([250.0, 150.0, 330.0, 250.0])]  # reaches past the bottom-right corner
    frame = Frame(0, 0, 0.0, rgb)
    expected = _whole_frame_composite(frame, results, method, lost)
    got, (rows, cols) = composite(frame, results, method, lost)
    assert got.dtype == np.uint8 and got.shape == rgb.shape
    np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(got, rgb)
    outside = np.ones(rgb.shape[:2], bool)
    outside[rows, cols] = False
    np.testing.assert_array_equal(got[outside], rgb[outside])  # the encoder converts only the window
    assert outside.any() and not np.array_equal(got[rows, cols], rgb[rows, cols])
    untouched, nothing = composite(frame, [], method, [])
    assert untouched is rgb and nothing == (slice(0, 0), slice(0, 0))


def test_touched_area_is_the_union_of_the_boxes_inside_the_frame():
    from deidvid.anonymise.run import touched_area

    boxes = [CropBox(-10, 20, 30), CropBox(50, 40, 20)]
    assert touched_area(boxes, 100, 60) == (slice(20, 60), slice(0, 60))
    assert touched_area([CropBox(200, 200, 10)], 100, 60) == (slice(0, 0), slice(0, 0))
