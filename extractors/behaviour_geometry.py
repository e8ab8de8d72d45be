"""Geometry of the behaviour features: crops, head pose against a reference face,
and the mesh, iris and body measurements (numpy only, no models).

Coordinates are the camera's: x to the right of the image, y down, z away from the
camera (MediaPipe's mesh depth, in the same pixel scale as x). Sign conventions,
stated once and used by every array:

* yaw > 0: the person turns to their own left (the nose moves to the image's right);
* pitch > 0: the person looks up;
* roll > 0: the head tilts toward the person's left shoulder (clockwise in the image);
* gaze yaw/pitch: the same senses as head yaw and pitch.

A mirrored video therefore flips the signs of yaw and roll and keeps pitch.
"""

from __future__ import annotations

import cv2
import numpy as np

# MediaPipe face-mesh indices (the person's right eye is on the image's left)
R_OUT, R_IN, R_UP, R_LOW = 33, 133, 159, 145
L_IN, L_OUT, L_UP, L_LOW = 362, 263, 386, 374
R_BROW, L_BROW = 105, 334
LIP_UP_OUT, LIP_UP_IN, LIP_LOW_IN, LIP_LOW_OUT = 0, 13, 14, 17
MOUTH_R, MOUTH_L = 61, 291
FOREHEAD, CHIN = 10, 152
#: Eyeball radius in eye widths (corner to corner): 12 mm / 28.5 mm, adult averages.
EYEBALL_RADIUS = 0.42
# MediaPipe pose indices
NOSE, L_SHOULDER, R_SHOULDER = 0, 11, 12
L_HAND = (15, 17, 19, 21)  # wrist, pinky, index, thumb
R_HAND = (16, 18, 20, 22)
UPPER_BODY = tuple(range(0, 23))


def roi_matrix(cx: np.ndarray, cy: np.ndarray, size: np.ndarray, angle: np.ndarray,
               out: int) -> np.ndarray:
    """(n, 2, 3) affine maps from frame pixels to an ``out`` x ``out`` crop of side
    ``size`` centred on (cx, cy), turned by ``angle`` (radians) so that a line at that
    angle in the frame is horizontal in the crop."""
    k = out / np.maximum(size, 1e-6)
    c, s = np.cos(angle) * k, np.sin(angle) * k
    m = np.empty((len(cx), 2, 3), np.float64)
    m[:, 0, 0], m[:, 0, 1] = c, s
    m[:, 1, 0], m[:, 1, 1] = -s, c
    m[:, 0, 2] = out / 2 - (c * cx + s * cy)
    m[:, 1, 2] = out / 2 - (-s * cx + c * cy)
    return m


def crop(frames: np.ndarray, which: np.ndarray, mats: np.ndarray, out: int,
         flip: np.ndarray | None = None) -> np.ndarray:
    """(n, out, out, 3) float32 crops in [0, 1] of ``frames[which]`` through ``mats``;
    crops where ``flip`` is true are mirrored left-right."""
    res = np.empty((len(which), out, out, 3), np.float32)
    for i, (f, m) in enumerate(zip(which, mats, strict=True)):
        c = cv2.warpAffine(frames[f], m, (out, out), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        res[i] = (c[:, ::-1] if flip is not None and flip[i] else c) / np.float32(255.0)
    return res


def to_frame(points: np.ndarray, mats: np.ndarray, out: int,
             flip: np.ndarray | None = None) -> np.ndarray:
    """Crop points (n, k, >=2) back to frame pixels; x, y mapped, z scaled."""
    p = points.astype(np.float64).copy()
    if flip is not None:
        p[flip, :, 0] = out - p[flip, :, 0]
    inv = np.stack([cv2.invertAffineTransform(m) for m in mats])
    xy = np.einsum("nij,nkj->nki", inv[:, :, :2], p[:, :, :2]) + inv[:, None, :, 2]
    res = p.copy()
    res[:, :, :2] = xy
    if p.shape[2] > 2:
        res[:, :, 2] = p[:, :, 2] * np.hypot(inv[:, 0, 0], inv[:, 1, 0])[:, None]
    return res


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item, scale s, rotation R and translation t with dst ~ s R src + t
    (least squares, no reflection): src (k, 3), dst (n, k, 3)."""
    mu_s = src.mean(0)
    mu_d = dst.mean(1)
    a = src - mu_s
    b = dst - mu_d[:, None]
    cov = np.einsum("nki,kj->nij", b, a) / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones((len(dst), 3))
    d[:, 2] = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    rot = u @ (d[:, :, None] * vt)
    scale = (sig * d).sum(1) / ((a ** 2).sum() / len(src))
    t = mu_d - scale[:, None] * np.einsum("nij,j->ni", rot, mu_s)
    return scale, rot, t


def euler(rot: np.ndarray) -> np.ndarray:
    """(n, 3) yaw, pitch, roll in degrees of rotations (n, 3, 3) (module conventions)."""
    f = rot @ np.array([0.0, 0.0, -1.0])  # where the face points (toward the camera at rest)
    yaw = np.arctan2(f[:, 0], -f[:, 2])
    pitch = np.arctan2(-f[:, 1], np.hypot(f[:, 0], f[:, 2]))
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    ry = np.zeros_like(rot)
    ry[:, 0, 0], ry[:, 0, 2], ry[:, 1, 1], ry[:, 2, 0], ry[:, 2, 2] = cy, -sy, 1, sy, cy
    rx = np.zeros_like(rot)
    rx[:, 0, 0], rx[:, 1, 1], rx[:, 1, 2], rx[:, 2, 1], rx[:, 2, 2] = 1, cp, sp, -sp, cp
    rr = np.swapaxes(ry @ rx, 1, 2) @ rot
    roll = np.arctan2(rr[:, 1, 0], rr[:, 0, 0])
    out: np.ndarray = np.degrees(np.stack([yaw, pitch, roll], 1))
    return out


def symmetric_reference(mesh: np.ndarray) -> np.ndarray:
    """A left-right symmetric reference face from one frontal mesh (468, 3): the mesh
    averaged with its own mirror image (points paired by nearest neighbour after
    alignment), in the module's axes (x from the right to the left outer eye corner,
    y from forehead to chin in the face plane, z = x cross y), centred, scaled so the
    outer eye corners are 1 apart. Yaw and roll 0 are the symmetric face; pitch 0 has
    the forehead-chin line in the image plane."""
    x = mesh - mesh.mean(0)
    flipped = x * np.array([-1.0, 1.0, 1.0])
    pair = np.arange(len(x))
    for _ in range(3):
        s, r, t = umeyama(flipped[pair], x[None])
        moved = s[0] * flipped @ r[0].T + t[0]
        pair = np.argmin(((x[:, None] - moved[None]) ** 2).sum(2), 1)
    s, r, t = umeyama(flipped[pair], x[None])
    sym = (x + s[0] * flipped[pair] @ r[0].T + t[0]) / 2
    ex = sym[L_OUT] - sym[R_OUT]
    ex /= np.linalg.norm(ex)
    ey = sym[CHIN] - sym[FOREHEAD]
    ey -= ex * (ey @ ex)
    ey /= np.linalg.norm(ey)
    axes = np.stack([ex, ey, np.cross(ex, ey)])
    ref: np.ndarray = (sym - sym.mean(0)) @ axes.T
    ref /= np.linalg.norm(ref[L_OUT] - ref[R_OUT])
    return ref


def _d(a: np.ndarray, i: int, j: int) -> np.ndarray:
    return np.asarray(np.linalg.norm(a[:, i] - a[:, j], axis=1))


def face_measures(front: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
    """Measures of frontalised meshes (n, 468, 3) in reference units (outer eye
    corners 1 apart; y down)."""
    eye_l = _d(front, L_UP, L_LOW) / _d(front, L_IN, L_OUT)
    eye_r = _d(front, R_UP, R_LOW) / _d(front, R_IN, R_OUT)
    eye_y_l = (front[:, L_UP, 1] + front[:, L_LOW, 1]) / 2
    eye_y_r = (front[:, R_UP, 1] + front[:, R_LOW, 1]) / 2
    brow = np.stack([eye_y_l - front[:, L_BROW, 1], eye_y_r - front[:, R_BROW, 1]], 1)
    mid_y = (front[:, LIP_UP_IN, 1] + front[:, LIP_LOW_IN, 1]) / 2
    lift = mid_y - (front[:, MOUTH_L, 1] + front[:, MOUTH_R, 1]) / 2
    lips = _d(front, LIP_UP_OUT, LIP_UP_IN) + _d(front, LIP_LOW_IN, LIP_LOW_OUT)
    ref_lips = _d(ref[None], LIP_UP_OUT, LIP_UP_IN) + _d(ref[None], LIP_LOW_IN, LIP_LOW_OUT)
    return {"eye_open": np.stack([eye_l, eye_r], 1), "brow_raise": brow,
            "mouth_open": _d(front, LIP_UP_IN, LIP_LOW_IN),
            "smile": np.stack([lift, _d(front, MOUTH_L, MOUTH_R)], 1),
            "lip_press": 1.0 - lips / ref_lips}


def eye_offsets(mesh: np.ndarray, iris: np.ndarray, inner: int, outer: int, up: int,
                low: int) -> np.ndarray:
    """(n, 2) iris centre relative to one eye, in eye widths: along the eye-corner
    line (> 0 toward the image's right) and across it (> 0 up), from the corners'
    midpoint and the lids' midpoint."""
    a, b = mesh[:, inner, :2], mesh[:, outer, :2]
    left_to_right = np.where((b[:, 0] > a[:, 0])[:, None], b - a, a - b)
    width = np.linalg.norm(left_to_right, axis=1)
    ex = left_to_right / np.maximum(width, 1e-6)[:, None]
    ey_down = np.stack([-ex[:, 1], ex[:, 0]], 1)
    centre_h = (a + b) / 2
    centre_v = (mesh[:, up, :2] + mesh[:, low, :2]) / 2
    u = ((iris - centre_h) * ex).sum(1) / np.maximum(width, 1e-6)
    v = -((iris - centre_v) * ey_down).sum(1) / np.maximum(width, 1e-6)
    return np.stack([u, v], 1)


def gaze_angles(offsets: np.ndarray) -> np.ndarray:
    """Eye-in-head yaw and pitch (degrees) for iris offsets in eye widths, on an
    eyeball of radius :data:`EYEBALL_RADIUS` eye widths."""
    return np.degrees(np.arcsin(np.clip(offsets / EYEBALL_RADIUS, -1.0, 1.0)))


def body_measures(points: np.ndarray, visible: np.ndarray, face_cy: np.ndarray,
                  face_h: np.ndarray, face_c: np.ndarray) -> dict[str, np.ndarray]:
    """Shoulder tilt (degrees, > 0 when the person's left shoulder is lower), shoulder
    height over the face centre (face heights, larger when the shoulders rise) and
    hand-face proximity per hand (left, right: 1 at the face centre, 0 at two face
    heights or farther, 0 when the hand is not visible)."""
    ls, rs = points[:, L_SHOULDER, :2], points[:, R_SHOULDER, :2]
    tilt = np.degrees(np.arctan2(ls[:, 1] - rs[:, 1], ls[:, 0] - rs[:, 0]))
    shrug = (face_cy - (ls[:, 1] + rs[:, 1]) / 2) / np.maximum(face_h, 1e-6)
    near = []
    for hand in (L_HAND, R_HAND):
        d = np.linalg.norm(points[:, hand, :2] - face_c[:, None], axis=2) / \
            np.maximum(face_h, 1e-6)[:, None]
        d = np.where(visible[:, hand], d, np.inf).min(1)
        near.append(np.clip(1.0 - d / 2.0, 0.0, 1.0))
    return {"shoulder_tilt": tilt, "shrug": shrug, "hands_near_face": np.stack(near, 1)}


def per_second(values: np.ndarray, times: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Frame-to-frame change of ``values`` (n, ...) per second; 0 at the first frame
    and where this or the previous frame is not valid."""
    out = np.zeros_like(values, dtype=np.float32)
    if len(values) < 2:
        return out
    dt = np.maximum(np.diff(times), 1e-6).reshape(-1, *([1] * (values.ndim - 1)))
    ok = (valid[1:] & valid[:-1]).reshape(-1, *([1] * (values.ndim - 1)))
    out[1:] = np.where(ok, np.diff(values, axis=0) / dt, 0.0)
    return out
