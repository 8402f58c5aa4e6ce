"""Builders for the objects of a synthetic street scene.

Every builder adds the primitives of one object to a
:class:`~synthetic_domains.scene.Scene` at a world position (``X`` lateral,
``Z`` depth, in camera heights). All parts of one object share the object's
depth, so the painter's algorithm keeps them together and in order. Sizes
are in camera heights (1 unit is about 1.3 m).
"""
import math

from .elements import Element as E
from .materials import Material as M
from .scene import LAYER_OBJECT

# (width, height, length) ranges per vehicle type, camera heights.
VEHICLE_DIMS = {
    'car': ((1.35, 1.5), (1.05, 1.25), (3.1, 3.7)),
    'truck': ((1.85, 1.95), (2.3, 2.9), (5.5, 8.0)),
    'bus': ((1.9, 2.0), (2.3, 2.5), (8.0, 9.5)),
    'tram': ((1.8, 1.9), (2.4, 2.6), (15.0, 22.0)),
    'caravan': ((1.65, 1.8), (1.9, 2.1), (4.0, 5.0)),
    'trailer': ((1.5, 1.7), (0.9, 1.2), (2.5, 3.2)),
}

_VEHICLE_LOOK = {
    # type: (element, body material, number of body variants)
    'car': (E.CAR, M.CAR_PAINT),
    'truck': (E.TRUCK, M.TRUCK_PAINT),
    'bus': (E.BUS, M.BUS_PAINT),
    'tram': (E.TRAIN, M.TRAIN_PAINT),
    'caravan': (E.CARAVAN, M.TRUCK_PAINT),
    'trailer': (E.TRAILER, M.METAL),
}


_UNIT_CIRCLES = {}


def _circle(cx, cy, rx, ry=None, n=12):
    """Return ``n`` points of an axis-aligned ellipse (circle if no ry)."""
    if n not in _UNIT_CIRCLES:
        _UNIT_CIRCLES[n] = [(math.cos(2 * math.pi * k / n),
                             math.sin(2 * math.pi * k / n)) for k in range(n)]
    ry = rx if ry is None else ry
    return [(cx + rx * c, cy + ry * s) for c, s in _UNIT_CIRCLES[n]]


def _side_profile(kind, length, height):
    """Side silhouette ``(Z, Y)`` of a vehicle, near end at Z = 0.

    Args:
        kind (str): Vehicle type.
        length (float): Vehicle length.
        height (float): Vehicle height.

    Returns:
        tuple: ``(body, windows)``: body polygon and a list of window
        polygons, each a list of ``(z, y)`` points.
    """
    L, H = length, height
    if kind == 'car':
        body = [(0, .2 * H), (0, .55 * H), (.2 * L, .62 * H), (.32 * L, H),
                (.74 * L, H), (.86 * L, .62 * H), (L, .55 * H), (L, .2 * H)]
        windows = [[(.25 * L, .64 * H), (.35 * L, .93 * H),
                    (.71 * L, .93 * H), (.8 * L, .64 * H)]]
    elif kind == 'truck':
        body = [(0, .15 * H), (0, H), (.72 * L, H), (.72 * L, .75 * H),
                (.92 * L, .75 * H), (L, .5 * H), (L, .15 * H)]
        windows = [[(.78 * L, .55 * H), (.78 * L, .7 * H), (.9 * L, .7 * H),
                    (.96 * L, .55 * H)]]
    elif kind in ('bus', 'tram'):
        body = [(0, .12 * H), (0, .95 * H), (.03 * L, H), (.97 * L, H),
                (L, .95 * H), (L, .12 * H)]
        windows = [[(.04 * L, .5 * H), (.04 * L, .86 * H), (.96 * L, .86 * H),
                    (.96 * L, .5 * H)]]
    else:  # caravan, trailer
        body = [(0, .15 * H), (0, H), (L, H), (L, .15 * H)]
        windows = ([[(.3 * L, .5 * H), (.3 * L, .75 * H), (.55 * L, .75 * H),
                     (.55 * L, .5 * H)]] if kind == 'caravan' else [])
    return body, windows


def add_vehicle(scene, rng, kind, x, z, oncoming=False, depth=None):
    """Add a vehicle seen from behind (or from the front when oncoming).

    Args:
        scene (Scene): Target scene.
        rng (np.random.Generator): Random source.
        kind (str): One of :data:`VEHICLE_DIMS`.
        x (float): Lateral centre.
        z (float): Depth of the face towards the camera.
        oncoming (bool): Show the front (head lights) instead of the rear.
        depth (float, optional): Sort depth (default ``z``).

    Returns:
        float: The vehicle length.
    """
    (w0, w1), (h0, h1), (l0, l1) = VEHICLE_DIMS[kind]
    W, H, L = rng.uniform(w0, w1), rng.uniform(h0, h1), rng.uniform(l0, l1)
    element, paint = _VEHICLE_LOOK[kind]
    variant = int(rng.integers(0, 16))
    depth = z if depth is None else depth
    _vehicle_side(scene, kind, x, z, W, H, L, element, paint, variant, depth)
    _vehicle_face(scene, rng, kind, x, z, W, H, element, paint, variant,
                  oncoming, depth)
    scene.ground_shadow([(x - .55 * W, z - .2), (x + .55 * W, z - .2),
                         (x + .55 * W, z + L), (x - .55 * W, z + L)])
    return L


def _vehicle_side(scene, kind, x, z, W, H, L, element, paint, variant,
                  depth):
    """Add the side of a vehicle that faces the camera axis, if visible."""
    if abs(x) < W / 2 + 0.1:
        return
    xs = x - W / 2 if x > 0 else x + W / 2
    body, windows = _side_profile(kind, L, H)
    scene.xplane_poly(xs, [(z + a, b) for a, b in body], element, paint,
                      variant, 0.8, depth=depth, layer=LAYER_OBJECT)
    for win in windows:
        scene.xplane_poly(xs, [(z + a, b) for a, b in win], element,
                          M.GLASS, 0, 0.9,
                          depth=depth, layer=LAYER_OBJECT)
    r = 0.23 * min(H, 1.3)
    wheel_zs = ((.16 * L, .84 * L) if kind != 'tram'
                else (.1 * L, .3 * L, .7 * L, .9 * L))
    for wz in wheel_zs:
        scene.xplane_poly(xs, _circle(z + wz, r, r, n=10), element, M.TYRE, 0,
                          1.0, depth=depth, layer=LAYER_OBJECT)
    if kind == 'tram':
        for wz in (.35 * L, .65 * L):
            scene.xplane_poly(xs, [(z + wz, H), (z + wz + .8, H + .5),
                                   (z + wz + .85, H + .5), (z + wz + .05, H)],
                              element, M.METAL, 0, 1.0, depth=depth,
                              layer=LAYER_OBJECT)


def _vehicle_face(scene, rng, kind, x, z, W, H, element, paint, variant,
                  oncoming, depth):
    """Add the rear (or front) face of a vehicle on the plane ``Z = z``."""
    x0, x1 = x - W / 2, x + W / 2
    if kind == 'car':
        scene.zplane_rect(z, x0, x1, .18 * H, .6 * H, element, paint,
                          variant, depth=depth)
        inset = .14 * W
        scene.zplane_poly(z, [(x0, .6 * H), (x1, .6 * H), (x1 - inset, H),
                              (x0 + inset, H)], element, paint, variant, .92,
                          depth=depth)
        scene.zplane_poly(z, [(x0 + .06 * W, .63 * H), (x1 - .06 * W, .63 * H),
                              (x1 - inset - .02, .93 * H),
                              (x0 + inset + .02, .93 * H)],
                          element, M.GLASS, 0, 1.0 if oncoming else .9,
                          depth=depth)
    else:
        scene.zplane_rect(z, x0, x1, .12 * H, H, element, paint, variant,
                          depth=depth)
        if kind in ('bus', 'tram') or (kind == 'truck' and oncoming):
            top = .9 * H if kind != 'truck' else .7 * H
            scene.zplane_rect(z, x0 + .06 * W, x1 - .06 * W, .5 * H, top,
                              element, M.GLASS, 0, 1.0, depth=depth)
        elif kind == 'truck':
            for k in range(1, 4):
                xx = x0 + k * W / 4
                scene.zplane_line(z, [(xx, .2 * H), (xx, .95 * H)], .03,
                                  element, M.METAL, 0, .8, depth=depth)
    wheel_w = .17 * W
    for xw in (x0, x1 - wheel_w):
        scene.zplane_rect(z, xw, xw + wheel_w, 0.0, .2 * H, element, M.TYRE,
                          0, depth=depth)
    light = M.HEAD_LIGHT if oncoming else M.REAR_LIGHT
    ly = .45 * H if kind == 'car' else .2 * H
    lw = .14 * W
    for xl in (x0 + .04 * W, x1 - .04 * W - lw):
        scene.zplane_rect(z, xl, xl + lw, ly, ly + .09 * H, element, light,
                          0, depth=depth)


def add_person(scene, rng, x, z, element=E.PERSON, height=None,
               with_shadow=True):
    """Add a standing or walking pedestrian facing the camera or sideways.

    Args:
        scene (Scene): Target scene.
        rng (np.random.Generator): Random source.
        x (float): Lateral position of the feet.
        z (float): Depth.
        element (Element): Label element (``PERSON`` normally).
        height (float, optional): Body height (default random adult/child).
        with_shadow (bool): Add a ground shadow.
    """
    h = height if height is not None else (
        rng.uniform(1.2, 1.45) if rng.random() > 0.1 else
        rng.uniform(0.75, 1.0))
    stance = rng.uniform(0.0, 0.22) * h
    top, bottom = int(rng.integers(0, 16)), int(rng.integers(0, 16))
    skin, hair = int(rng.integers(0, 3)), int(rng.integers(0, 3))
    lw, hip = 0.075 * h, 0.5 * h
    for sign in (-1, 1):
        foot = x + sign * stance / 2
        scene.zplane_poly(z, [(x + sign * .02 * h, hip),
                              (x + sign * .02 * h + sign * lw, hip),
                              (foot + sign * lw / 2, 0.0),
                              (foot - sign * lw / 2, 0.0)],
                          element, M.CLOTH, bottom, 0.85)
    sw, ww = 0.13 * h, 0.1 * h
    scene.zplane_poly(z, [(x - ww, hip - .02 * h), (x + ww, hip - .02 * h),
                          (x + sw, .82 * h), (x - sw, .82 * h)],
                      element, M.CLOTH, top)
    swing = rng.uniform(-0.06, 0.06) * h
    for sign in (-1, 1):
        scene.zplane_line(z, [(x + sign * sw, .8 * h),
                              (x + sign * (sw + .03 * h) + swing * sign,
                               .47 * h)], .055 * h, element, M.CLOTH, top,
                          0.9)
    scene.zplane_ellipse(z, x, .895 * h, .06 * h, .07 * h, element, M.SKIN,
                         skin)
    scene.zplane_poly(z, [(x - .062 * h, .9 * h), (x + .062 * h, .9 * h),
                          (x + .05 * h, .965 * h), (x - .05 * h, .965 * h)],
                      element, M.HAIR, hair)
    if with_shadow:
        scene.ground_shadow(_circle(x, z, 0.25, 0.2, n=8))


def add_two_wheeler(scene, rng, x, z, motor=False, rider=True,
                    compress=None):
    """Add a bicycle or motorcycle, optionally with its rider.

    Args:
        scene (Scene): Target scene.
        rng (np.random.Generator): Random source.
        x (float): Lateral centre.
        z (float): Depth.
        motor (bool): Motorcycle instead of bicycle.
        rider (bool): Add a rider (``BICYCLIST``/``MOTORCYCLIST``).
        compress (float, optional): Horizontal foreshortening (1 = pure side
            view, small = seen from behind); random when None.
    """
    c = rng.uniform(0.25, 1.0) if compress is None else compress
    c *= 1 if rng.random() < 0.5 else -1
    element = E.MOTORCYCLE if motor else E.BICYCLE
    r = 0.25 if motor else 0.26
    base = (0.95 if motor else 0.8) * abs(c) / 2
    sgn = math.copysign(1.0, c)
    back_x, front_x = x - base * sgn, x + base * sgn
    variant = int(rng.integers(0, 16))
    for wx in (back_x, front_x):
        if motor:
            scene.zplane_ellipse(z, wx, r, r * abs(c), r, element, M.TYRE)
        else:
            scene.zplane_ellipse(z, wx, r, r * abs(c), r, element, M.TYRE,
                                 ring=0.035)
    seat = (back_x + .35 * (front_x - back_x), 0.72 if motor else 0.7)
    bar = (back_x + .92 * (front_x - back_x), 0.85 if motor else 0.82)
    crank = (back_x + .45 * (front_x - back_x), r)
    if motor:
        scene.zplane_poly(z, [(back_x, .45), crank, (front_x, .5),
                              (bar[0], bar[1]), (seat[0], .68),
                              (back_x, .62)], element, M.CAR_PAINT, variant)
    else:
        back, front = (back_x, r), (front_x, r)
        for a, b in ((back, crank), (crank, seat), (seat, bar), (crank, bar),
                     (back, seat), (bar, front)):
            scene.zplane_line(z, [a, b], 0.035, element, M.CAR_PAINT,
                              variant)
    if rider:
        _add_rider(scene, rng, seat, bar, crank,
                   E.MOTORCYCLIST if motor else E.BICYCLIST, z)
    scene.ground_shadow(_circle(x, z, 0.6, 0.3, n=8))


def _add_rider(scene, rng, seat, bar, crank, element, z):
    """Add a seated rider above a two-wheeler's seat."""
    top = int(rng.integers(0, 16))
    helmet = int(rng.integers(0, 16))
    sx, sy = seat
    lean = (bar[0] - sx) * 0.35
    shoulder = (sx + lean, sy + 0.55)
    scene.zplane_line(z, [(sx, sy + .05), crank], 0.1, element, M.CLOTH,
                      int(rng.integers(0, 16)), 0.85)
    scene.zplane_poly(z, [(sx - .12, sy), (sx + .12, sy),
                          (shoulder[0] + .13, shoulder[1]),
                          (shoulder[0] - .13, shoulder[1])],
                      element, M.CLOTH, top)
    scene.zplane_line(z, [shoulder, bar], 0.07, element, M.CLOTH, top, 0.9)
    scene.zplane_ellipse(z, shoulder[0] + lean * .2, shoulder[1] + .13, .085,
                         .1, element, M.CAR_PAINT if element ==
                         E.MOTORCYCLIST else M.SKIN, helmet % 3)


def add_pole(scene, x, z, height, width=0.09, element=E.POLE,
             material=M.POLE, variant=0, depth=None):
    """Add a vertical pole from the ground to ``height``."""
    scene.zplane_line(z, [(x, 0.0), (x, height)], width, element, material,
                      variant, depth=depth)


def add_street_light(scene, rng, x, z, toward):
    """Add a street light: pole, arm towards the road and lamp head.

    Args:
        scene (Scene): Target scene.
        rng (np.random.Generator): Random source.
        x (float): Lateral position of the pole.
        z (float): Depth.
        toward (float): +1 if the road is to the right of the pole, else -1.
    """
    h = rng.uniform(5.0, 7.0)
    arm = rng.uniform(0.8, 1.6)
    variant = int(rng.integers(0, 3))
    add_pole(scene, x, z, h, 0.11, E.POLE, M.POLE, variant)
    end = x + toward * arm
    scene.zplane_line(z, [(x, h - 0.1), (end, h + 0.15)], 0.07,
                      E.STREET_LIGHT, M.POLE, variant)
    scene.zplane_poly(z, [(end - .3, h + .05), (end + .3, h + .05),
                          (end + .25, h + .22), (end - .25, h + .22)],
                      E.STREET_LIGHT, M.HOUSING, 0)
    scene.zplane_rect(z, end - .22, end + .22, h, h + .07, E.STREET_LIGHT,
                      M.LAMP, 3)


def add_traffic_light(scene, rng, x, z, front=True, pole_height=None,
                      hanging=False):
    """Add a traffic light (on its own pole unless ``hanging``).

    Args:
        scene (Scene): Target scene.
        rng (np.random.Generator): Random source.
        x (float): Lateral position.
        z (float): Depth.
        front (bool): Lamps visible (facing the camera).
        pole_height (float, optional): Pole height (random when None).
        hanging (bool): Box hangs from a mast arm at ``pole_height``.
    """
    h = pole_height if pole_height is not None else rng.uniform(2.6, 3.4)
    bw, bh = 0.26, 0.72
    if hanging:
        y1 = h
    else:
        add_pole(scene, x, z, h + 0.1, 0.09)
        y1 = h + 0.05
    y0 = y1 - bh
    housing = int(rng.integers(0, 2))
    scene.zplane_rect(z, x - bw / 2, x + bw / 2, y0, y1, E.TRAFFIC_LIGHT,
                      M.HOUSING, housing)
    if not front:
        return
    lit = int(rng.integers(0, 3))
    for k, variant in enumerate((0, 1, 2)):
        cy = y1 - (k + 0.5) * bh / 3
        scene.zplane_ellipse(z, x, cy, 0.085, 0.085, E.TRAFFIC_LIGHT, M.LAMP,
                             variant, 1.0 if k == lit else 0.3)


def add_sign(scene, rng, x, z, front=True, side=1):
    """Add a traffic sign on a pole, with its frame.

    Args:
        scene (Scene): Target scene.
        rng (np.random.Generator): Random source.
        x (float): Lateral position of the pole.
        z (float): Depth.
        front (bool): Show the front (``SIGN_FRONT``) or the back.
        side (int): +1 / -1: side of the pole the plate is mounted on.
    """
    h = rng.uniform(2.0, 2.8)
    add_pole(scene, x, z, h + 0.1, 0.08)
    shape = int(rng.integers(0, 4))
    r = rng.uniform(0.25, 0.36)
    cx, cy = x + side * (r + 0.1), h - r
    for dy in (-0.6 * r, 0.6 * r):
        scene.zplane_line(z, [(x, cy + dy), (cx, cy + dy)], 0.04,
                          E.SIGN_FRAME, M.METAL, 0)
    element = E.SIGN_FRONT if front else E.SIGN_BACK
    material = M.SIGN_FACE if front else M.SIGN_BACK
    variant = (0, 1, 2, 1)[shape] if front else 0
    if shape == 0:
        scene.zplane_ellipse(z, cx, cy, r, r, element, material, variant)
        if front:
            scene.zplane_ellipse(z, cx, cy, .7 * r, .7 * r, element, material,
                                 3)
    elif shape == 1:
        pts = [(cx - r, cy - .7 * r), (cx + r, cy - .7 * r), (cx, cy + r)]
        scene.zplane_poly(z, pts, element, material, variant)
        if front:
            scene.zplane_poly(z, [(cx - .6 * r, cy - .5 * r),
                                  (cx + .6 * r, cy - .5 * r),
                                  (cx, cy + .55 * r)], element, material, 3)
    elif shape == 2:
        scene.zplane_poly(z, [(cx - r, cy), (cx, cy + r), (cx + r, cy),
                              (cx, cy - r)], element, material, variant)
    else:
        scene.zplane_rect(z, cx - 1.2 * r, cx + 1.2 * r, cy - .8 * r,
                          cy + .8 * r, element, material, variant)
        if front:
            scene.zplane_rect(z, cx - .9 * r, cx + .9 * r, cy - .1 * r,
                              cy + .1 * r, element, material, 3)


def add_tree(scene, rng, x, z, size=1.0, layer=LAYER_OBJECT):
    """Add a tree: trunk and a crown of overlapping ellipses.

    Args:
        scene (Scene): Target scene.
        rng (np.random.Generator): Random source.
        x (float): Lateral position of the trunk.
        z (float): Depth.
        size (float): Overall scale.
        layer (int): Drawing layer (backdrop trees use ``LAYER_BACKDROP``).
    """
    trunk_h = rng.uniform(1.6, 2.8) * size
    trunk_w = rng.uniform(0.14, 0.26) * size
    scene.zplane_rect(z, x - trunk_w / 2, x + trunk_w / 2, 0.0, trunk_h + .3,
                      E.VEGETATION, M.TRUNK, int(rng.integers(0, 2)),
                      layer=layer)
    r = rng.uniform(1.0, 2.0) * size
    variant = int(rng.integers(0, 4))
    for _ in range(int(rng.integers(3, 7))):
        ox, oy = rng.uniform(-0.6, 0.6) * r, rng.uniform(-0.2, 0.8) * r
        rr = r * rng.uniform(0.55, 0.85)
        scene.zplane_ellipse(z, x + ox, trunk_h + oy + .3 * r, rr,
                             rr * rng.uniform(0.8, 1.1), E.VEGETATION,
                             M.FOLIAGE, variant, rng.uniform(0.8, 1.1),
                             layer=layer)
    scene.ground_shadow(_circle(x, z, 0.9 * r, 0.45 * r, n=10))


def add_furniture(scene, rng, x, z, kind):
    """Add street furniture (static/dynamic/void objects).

    Args:
        scene (Scene): Target scene.
        rng (np.random.Generator): Random source.
        x (float): Lateral position.
        z (float): Depth.
        kind (str): ``'bench'``, ``'trash'``, ``'hydrant'``, ``'box'``,
            ``'stroller'`` or ``'crate'`` (unlabeled).
    """
    v = int(rng.integers(0, 4))
    if kind == 'bench':
        scene.zplane_rect(z, x - .6, x + .6, .32, .38, E.BENCH, M.FURNITURE, v)
        scene.zplane_rect(z, x - .6, x + .6, .45, .7, E.BENCH, M.FURNITURE, v,
                          .85)
        for lx in (x - .5, x + .45):
            scene.zplane_rect(z, lx, lx + .05, 0, .32, E.BENCH, M.METAL, 1)
    elif kind == 'trash':
        scene.zplane_rect(z, x - .2, x + .2, 0, .75, E.TRASH_CAN, M.FURNITURE,
                          v)
        scene.zplane_rect(z, x - .23, x + .23, .75, .82, E.TRASH_CAN, M.METAL,
                          1)
    elif kind == 'hydrant':
        scene.zplane_rect(z, x - .1, x + .1, 0, .5, E.FIRE_HYDRANT,
                          M.FURNITURE, 2)
        scene.zplane_ellipse(z, x, .5, .1, .07, E.FIRE_HYDRANT, M.FURNITURE,
                             2, .8)
    elif kind == 'box':
        scene.zplane_rect(z, x - .3, x + .3, 0, 1.0, E.JUNCTION_BOX, M.METAL,
                          v % 2)
    elif kind == 'stroller':
        scene.zplane_rect(z, x - .25, x + .25, .25, .6, E.WHEELED_SLOW,
                          M.CLOTH, v)
        for wx in (x - .18, x + .18):
            scene.zplane_ellipse(z, wx, .1, .1, .1, E.WHEELED_SLOW, M.TYRE)
    else:
        scene.zplane_rect(z, x - .35, x + .35, 0, .55, E.UNLABELED,
                          M.CONCRETE, v % 2, .9)
