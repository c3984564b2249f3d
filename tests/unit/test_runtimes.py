"""The torch-free OpenVINO runtime's pre/post-processing against ultralytics' own functions."""

import numpy as np
import pytest
import torch
from ultralytics.data.augment import LetterBox
from ultralytics.utils import ops
from ultralytics.utils.nms import non_max_suppression

from surveillance_ray.runtimes import batch_shape, letterbox, letterbox_params, nms, scale_boxes


@pytest.mark.parametrize("shape", [(360, 480), (240, 320), (1080, 1920), (577, 101), (64, 64)])
@pytest.mark.parametrize("auto", [True, False])
def test_letterbox_is_ultralytics(shape: tuple[int, int], auto: bool) -> None:
    image = np.random.default_rng(1).integers(0, 255, (*shape, 3), np.uint8)
    ours = letterbox(image, (320, 320), auto=auto, stride=32)
    theirs = LetterBox((320, 320), auto=auto, stride=32)(image=image)
    assert ours.shape == theirs.shape and np.array_equal(ours, theirs)


@pytest.mark.parametrize(("model_shape", "frame_shape"), [((256, 320), (360, 480)), ((320, 320), (1080, 1920)),
                                                          ((640, 640), (577, 101))])
def test_scale_boxes_is_ultralytics(model_shape: tuple, frame_shape: tuple) -> None:
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, min(model_shape), (50, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 80, (50, 2))], axis=1).astype(np.float32)
    ours = scale_boxes(boxes.copy(), model_shape, frame_shape)
    theirs = ops.scale_boxes(model_shape, torch.from_numpy(boxes.copy()), frame_shape).numpy()
    assert np.allclose(ours, theirs, atol=1e-3)


@pytest.mark.parametrize("classes", [None, [0, 2]])
def test_nms_is_ultralytics(classes: list[int] | None) -> None:
    rng = np.random.default_rng(3)
    anchors, nc = 2100, 80
    pred = np.zeros((4 + nc, anchors), np.float32)
    # many overlapping boxes around 30 centres, as a detector's anchors give
    pred[0:2] = np.repeat(rng.uniform(20, 300, (30, 2)), 70, axis=0).T + rng.normal(0, 4, (2, anchors))
    pred[2:4] = rng.uniform(20, 60, (2, anchors))
    pred[4:] = rng.uniform(0, 0.3, (nc, anchors)) ** 3
    hot = rng.choice(anchors, 600, replace=False)
    pred[4 + rng.integers(0, 4, 600), hot] = rng.uniform(0.2, 0.95, 600)
    xyxy, conf, cls = nms(pred, conf=0.25, iou=0.7, max_det=300, classes=classes)
    ref = non_max_suppression(torch.from_numpy(pred[None]), 0.25, 0.7, classes=classes, max_det=300)[0].numpy()
    assert len(ref) > 20 and len(xyxy) == len(ref)
    assert np.array_equal(cls, ref[:, 5].astype(np.int32))
    assert np.allclose(conf, ref[:, 4]) and np.allclose(xyxy, ref[:, :4], atol=1e-4)


@pytest.mark.parametrize("shape", [(360, 480), (240, 320), (577, 101), (64, 64), (250, 100), (97, 251)])
def test_one_image_padded_to_its_batch_shape_is_ultralytics_auto(shape: tuple[int, int]) -> None:
    image = np.random.default_rng(4).integers(0, 255, (*shape, 3), np.uint8)
    common = batch_shape([shape], 320, 32)
    ours = letterbox(image, (320, 320), False, 32, common)
    assert np.array_equal(ours, LetterBox((320, 320), auto=True, stride=32)(image=image))


def test_crops_of_several_shapes_share_the_smallest_common_input() -> None:
    shapes = [(250, 100), (200, 90), (120, 60)]  # tall crops: 320 x 128 each alone
    assert batch_shape(shapes, 320, 32) == (320, 160)  # not a 320 x 320 square
    rng = np.random.default_rng(5)
    for shape in shapes:  # each at its own scale, centred: only more grey around it
        image = rng.integers(0, 255, (*shape, 3), np.uint8)
        alone = LetterBox((320, 320), auto=True, stride=32)(image=image)
        padded = letterbox(image, (320, 320), False, 32, (320, 160))
        (_, _), (top, _, left, _) = letterbox_params(shape, (320, 320), False, 32, (320, 160))
        (_, _), (top1, _, left1, _) = letterbox_params(shape, (320, 320), True, 32)
        inner = padded[top - top1:top - top1 + alone.shape[0], left - left1:left - left1 + alone.shape[1]]
        assert padded.shape[:2] == (320, 160) and np.array_equal(inner, alone)
