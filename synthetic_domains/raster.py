"""Rasterise a scene into per-pixel layers.

One pass of OpenCV drawing writes the index of the visible primitive into
each pixel; every other layer (label element, material, colour variant,
shade, facing, depth, world texture coordinates) is then a table lookup, so
the cost is one ``fillPoly``/``ellipse``/``polylines`` call per primitive
plus a few full-frame numpy operations.
"""
import cv2
import numpy as np

from .scene import FACING_UP, PLANE_GROUND, PLANE_SCREEN, PLANE_X, PLANE_Z, SKY_DEPTH

_SHIFT = 4
_ONE = 1 << _SHIFT


class Layers:
    """Per-pixel layers of a rasterised scene.

    Attributes:
        pid (np.ndarray): ``(H, W)`` uint16 primitive index (into the
            per-primitive tables below).
        element, material, variant, facing (np.ndarray): Per-primitive int
            tables.
        shade, depth, plane_param (np.ndarray): Per-primitive float tables.
        plane_kind (np.ndarray): Per-primitive ``PLANE_*`` kinds.
        shadow (np.ndarray): ``(H, W)`` uint8, 1 where a ground shadow falls.
        camera (Camera): The scene camera.
    """

    def __init__(self, pid, prims, shadow, camera):
        self.pid = pid
        self.shadow = shadow
        self.camera = camera
        self.element = np.array([p.element for p in prims], np.uint8)
        self.material = np.array([p.material for p in prims], np.int64)
        self.variant = np.array([p.variant for p in prims], np.int64)
        self.facing = np.array([p.facing for p in prims], np.int64)
        self.shade = np.array([p.shade for p in prims], np.float32)
        self.depth = np.array([p.depth for p in prims], np.float32)
        self.plane_kind = np.array([p.plane[0] for p in prims], np.int64)
        self.plane_param = np.array([p.plane[1] for p in prims], np.float64)

    @property
    def shape(self):
        """``(H, W)`` of the layers."""
        return self.pid.shape

    def element_map(self):
        """Return the ``(H, W)`` uint8 map of label elements."""
        return self.element[self.pid]

    def material_map(self):
        """Return the ``(H, W)`` int map of materials."""
        return self.material[self.pid]

    def world_coords(self):
        """Texture coordinates, pixel footprints and depth of every pixel.

        Returns:
            dict: ``u``, ``v`` (world coordinates on each pixel's plane),
            ``fu``, ``fv`` (world size of one pixel along u and v) and
            ``depth`` (distance along Z), all ``(H, W)`` float arrays.
        """
        h, w = self.shape
        cam = self.camera
        px = 1.0 / h
        xs = (np.arange(w) + 0.5) * px - cam.vx
        ys = (np.arange(h) + 0.5) * px - cam.horizon
        dx = np.broadcast_to(xs[None, :], (h, w))
        dy = np.broadcast_to(ys[:, None], (h, w))
        kind = self.plane_kind[self.pid]
        param = self.plane_param[self.pid]
        f = cam.f
        # ground plane
        gy = np.maximum(dy, 1e-3)
        gz = np.minimum(f / gy, 5000.0)
        # plane X = param
        sx = np.where(param >= 0, 1.0, -1.0)
        xdx = np.where(dx * sx > 1e-3, dx, sx * 1e-3)
        xz = np.clip(param * f / xdx, 1e-3, 5000.0)
        # plane Z = param
        zz = np.maximum(param, 1e-3)
        depth = np.select(
            [kind == PLANE_GROUND, kind == PLANE_X, kind == PLANE_Z],
            [gz, xz, zz], self.depth[self.pid].astype(np.float64))
        u = np.select([kind == PLANE_GROUND, kind == PLANE_X],
                      [dx * gz / f, xz], dx * zz / f)
        v = np.select([kind == PLANE_GROUND, kind == PLANE_X],
                      [gz, 1.0 - dy * xz / f], 1.0 - dy * zz / f)
        base = depth * px / f
        fu = np.select([kind == PLANE_X],
                       [xz * base / np.maximum(np.abs(param), 1e-3)], base)
        fv = np.select([kind == PLANE_GROUND], [gz * base], base)
        screen = kind == PLANE_SCREEN
        u = np.where(screen, (dx + cam.vx) * 20.0, u)
        v = np.where(screen, (dy + cam.horizon) * 20.0, v)
        fu = np.where(screen, 20.0 * px, fu)
        fv = np.where(screen, 20.0 * px, fv)
        depth = np.where(kind == PLANE_SCREEN, self.depth[self.pid], depth)
        return {'u': u, 'v': v, 'fu': fu, 'fv': fv,
                'depth': np.minimum(depth, SKY_DEPTH)}

    def ground_mask(self):
        """Boolean ``(H, W)`` map of pixels on upward-facing surfaces."""
        return self.facing[self.pid] == FACING_UP


_LIMIT = 2 ** 28


def _fixed_all(prims, scale):
    """Convert every primitive's points to OpenCV fixed-point pixels at once.

    One vectorised conversion for the whole scene (primitives are tiny, so
    per-primitive numpy calls would dominate the cost).

    Args:
        prims (list[Prim]): Primitives in drawing order.
        scale (float): Pixels per height unit.

    Returns:
        list[np.ndarray]: Per primitive an ``(N, 1, 2)`` int32 array (the
        centre only, ``N = 1``, for ellipses).
    """
    flat, bounds = [], [0]
    for prim in prims:
        if prim.shape == 'ellipse':
            flat.append(prim.geom[:2])
        else:
            flat.extend(prim.geom)
        bounds.append(len(flat))
    pts = np.asarray(flat, np.float64).reshape(-1, 2) * (scale * _ONE)
    pts = np.clip(np.rint(pts), -_LIMIT, _LIMIT).astype(np.int32)
    return [pts[a:b].reshape(-1, 1, 2) for a, b in zip(bounds[:-1],
                                                        bounds[1:])]


def _draw(canvas, prim, pts, value, scale):
    """Draw one primitive (fixed-point points ``pts``) with ``value``."""
    if prim.shape == 'poly':
        cv2.fillPoly(canvas, [pts], value, cv2.LINE_8, _SHIFT)
    elif prim.shape == 'line':
        thick = max(1, int(round(prim.thickness * scale)))
        cv2.polylines(canvas, [pts], False, value, thick, cv2.LINE_8,
                      _SHIFT)
    elif prim.shape == 'ellipse':
        _, _, rx, ry = prim.geom
        centre = (int(pts[0, 0, 0]), int(pts[0, 0, 1]))
        axes = (max(int(round(rx * scale * _ONE)), 1),
                max(int(round(ry * scale * _ONE)), 1))
        thick = (-1 if prim.thickness <= 0 else
                 max(1, int(round(prim.thickness * scale))))
        cv2.ellipse(canvas, centre, axes, 0.0, 0.0, 360.0, value, thick,
                    cv2.LINE_8, _SHIFT)
    else:
        raise ValueError(f'Unknown primitive shape {prim.shape!r}')


class _Outline:
    """A bare polygon (used for shadows) in the shape of a primitive."""
    shape = 'poly'

    def __init__(self, geom):
        self.geom = geom


def rasterize(scene, height, width):
    """Rasterise a scene at a pixel size.

    Args:
        scene (Scene): The scene (its camera aspect should be
            ``width / height``).
        height (int): Image height in pixels.
        width (int): Image width in pixels.

    Returns:
        Layers: The per-pixel layers.
    """
    prims = scene.ordered_prims()
    if len(prims) >= 65535:
        raise ValueError(f'Scene has {len(prims)} primitives; at most 65534 '
                         'fit in the uint16 index map')
    pid = np.zeros((height, width), np.uint16)
    scale = float(height)
    for k, (prim, pts) in enumerate(zip(prims, _fixed_all(prims, scale))):
        _draw(pid, prim, pts, k, scale)
    shadow = np.zeros((height, width), np.uint8)
    if scene.shadows:
        # one call per polygon: a multi-contour fillPoly treats overlaps as
        # holes
        for pts in _fixed_all([_Outline(p) for p in scene.shadows], scale):
            cv2.fillPoly(shadow, [pts], 1, cv2.LINE_8, _SHIFT)
    return Layers(pid, prims, shadow, scene.camera)
