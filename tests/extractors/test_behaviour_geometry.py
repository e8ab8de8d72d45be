"""The behaviour features' geometry (no models): pose conventions, crops, measures."""

from __future__ import annotations

import numpy as np
import pytest

from extractors import behaviour_geometry as geo


def _rot(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """A head rotation with the module's conventions (degrees): yaw > 0 nose to the
    image's right, pitch > 0 nose up, roll > 0 clockwise in the image."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    """A synthetic symmetric 'face': random points mirrored, eyes and a nose in front."""
    rng = np.random.default_rng(0)
    half = rng.normal(size=(234, 3)) * [1.0, 1.2, 0.4] + [0.8, 0, 0]
    pts = np.concatenate([half, half * [-1, 1, 1]])
    pts[[1, 235]] = [0, 0, -1.5]  # nose tip, toward the camera (z < 0)
    return pts  # point i and i + 234 are mirror images


def test_known_rotations_read_back_with_the_stated_signs(face: np.ndarray) -> None:
    for angles in ([20, 0, 0], [0, 15, 0], [0, 0, 10], [-25, 10, -12]):
        obs = 3.0 * face @ _rot(*angles).T + [100, 50, 0]
        s, r, _ = geo.umeyama(face, obs[None])
        np.testing.assert_allclose(geo.euler(r)[0], angles, atol=1e-6)
        assert s[0] == pytest.approx(3.0)
    # yaw > 0 moves the nose (z < 0) to the image's right
    nose = (face @ _rot(20, 0, 0).T)[1]
    assert nose[0] > 0


def test_a_mirror_flips_yaw_and_roll_and_keeps_pitch(face: np.ndarray) -> None:
    obs = face @ _rot(18, 9, 7).T
    # a mirrored image of the same head, each point named by where it lands (as the
    # mesh model names them): left and right swap
    mirrored = np.roll(obs * [-1, 1, 1], 234, axis=0)
    _, r, _ = geo.umeyama(face, mirrored[None])
    np.testing.assert_allclose(geo.euler(r)[0], [-18, 9, -7], atol=1e-6)


def test_an_in_plane_rotation_shifts_roll_by_its_angle(face: np.ndarray) -> None:
    obs = face @ _rot(10, 5, 3).T
    turn = np.radians(25)  # clockwise on screen (y down)
    m = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]])
    _, r0, _ = geo.umeyama(face, obs[None])
    _, r1, _ = geo.umeyama(face, (obs @ m.T)[None])
    assert geo.euler(r1)[0, 2] - geo.euler(r0)[0, 2] == pytest.approx(25, abs=1.0)


def test_crop_points_map_back_to_the_frame() -> None:
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[40:44, 90:94] = 255  # a white dot around (91.5, 41.5)
    mats = geo.roi_matrix(np.array([80.0]), np.array([60.0]), np.array([100.0]),
                          np.array([0.4]), 64)
    for flip in (False, True):
        c = geo.crop(frame[None], np.array([0]), mats, 64, np.array([flip]))
        ys, xs = np.nonzero(c[0, :, :, 0] > 0.5)
        back = geo.to_frame(np.array([[[xs.mean() + 0.5, ys.mean() + 0.5]]]), mats, 64,
                            np.array([flip]))
        np.testing.assert_allclose(back[0, 0], [92, 42], atol=1.0)


def test_per_second_is_zero_where_a_frame_is_missing() -> None:
    v = np.array([[0.0], [1.0], [3.0], [4.0]])
    t = np.array([0.0, 0.5, 1.0, 1.5])
    got = geo.per_second(v, t, np.array([True, True, False, True]))
    np.testing.assert_allclose(got[:, 0], [0, 2, 0, 0])


def test_gaze_angles_follow_the_eyeball_model() -> None:
    got = geo.gaze_angles(np.array([[0.0, 0.0], [geo.EYEBALL_RADIUS / 2, -1.0]]))
    np.testing.assert_allclose(got, [[0, 0], [30, -90]], atol=1e-9)
