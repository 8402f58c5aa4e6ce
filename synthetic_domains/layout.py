"""The shared street-scene layout distribution.

:func:`sample_scene` draws one random street scene (camera, street cross
section, buildings, vegetation, markings, poles, signs, lights, vehicles,
people, riders, furniture) as a :class:`~synthetic_domains.scene.Scene`. Every
domain samples its scenes from this same distribution; the domains differ in
appearance (:mod:`synthetic_domains.styles`) and in a few capture details (the
ego-vehicle hood, :func:`add_ego_vehicle`), not in layout.
"""
import numpy as np

from . import objects as obj
from .elements import Element as E
from .materials import Material as M
from .scene import (
    FACING_SKY,
    LAYER_BACKDROP,
    LAYER_EGO,
    LAYER_FAR,
    LAYER_MARKING,
    LAYER_SIDE,
    LAYER_SKY,
    PLANE_SCREEN,
    SKY_DEPTH,
    Camera,
    Prim,
    Scene,
)

SCENE_KINDS = ('urban', 'suburban', 'rural')
_KIND_P = (0.5, 0.32, 0.18)
_CURB_W = 0.12


class Side:
    """Cross section of one side of the street.

    Args:
        sign (int): +1 for the right side, -1 for the left side.
    """

    def __init__(self, sign):
        self.sign = sign
        self.bands = []          # (inner |X|, outer |X|, element, material, v)
        self.walk = None         # (inner |X|, outer |X|) for pedestrians
        self.pole_x = None       # |X| of poles near the curb
        self.facade_x = None     # |X| of the facade plane, or None
        self.line_x = None       # |X| of the property line (walls, hedges)
        self.tree_x = None       # |X| of street trees
        self.forest_x = None     # |X| of a forest band (rural)

    def x(self, a):
        """Signed X of a lateral distance ``a`` on this side."""
        return self.sign * a


class Street:
    """Lateral structure of the street (lanes and both sides)."""

    def __init__(self):
        self.lanes = []          # (centre X, oncoming)
        self.lane_w = 2.6
        self.road = (-2.0, 2.0)  # (left X, right X)
        self.bike_lane = None    # (x0, x1)
        self.parking = []        # [(x0, x1)]
        self.service_lane = None
        self.sides = {}
        self.z_end = 100.0
        self.crosswalk = None    # (z0, z1)
        self.tram_lane = None


def sample_scene(rng, aspect):
    """Sample one street scene.

    Args:
        rng (np.random.Generator): Random source (the only one used).
        aspect (float): Image width / height the scene will be drawn at.

    Returns:
        Scene: The scene, not yet rasterised.
    """
    camera = Camera(f=rng.uniform(1.35, 1.8),
                    horizon=rng.uniform(0.38, 0.5),
                    vx=aspect * (0.5 + rng.uniform(-0.07, 0.07)),
                    aspect=aspect)
    kind = SCENE_KINDS[int(rng.choice(3, p=_KIND_P))]
    scene = Scene(camera, kind)
    street = _sample_street(rng, kind)
    _add_sky_and_far(scene, rng, street)
    _add_ground(scene, rng, street)
    _add_markings(scene, rng, street)
    _add_sides(scene, rng, street)
    _add_street_furniture(scene, rng, street)
    _add_traffic(scene, rng, street)
    _add_people(scene, rng, street)
    _add_bridge(scene, rng, street)
    return scene


# ---------------------------------------------------------------- street --
def _sample_street(rng, kind):
    """Sample lanes and the cross section of both sides."""
    st = Street()
    st.lane_w = lw = rng.uniform(2.4, 2.9)
    n_same = 1 if kind == 'rural' else int(rng.choice([1, 2], p=[.6, .4]))
    n_onc = 1 if kind == 'rural' else int(rng.choice([1, 2], p=[.6, .4]))
    ego = int(rng.integers(0, n_same))  # 0 = rightmost lane
    jitter = rng.uniform(-0.3, 0.3)
    centres = [(ego - i) * lw + jitter for i in range(n_same + n_onc)]
    st.lanes = [(c, i >= n_same) for i, c in enumerate(centres)]
    left, right = centres[-1] - lw / 2, centres[0] + lw / 2
    if kind != 'rural' and rng.random() < 0.3:
        st.bike_lane = (right, right + 1.1)
        right += 1.1
    for sign in (1, -1):
        if kind != 'rural' and rng.random() < (0.35 if sign > 0 else 0.15):
            if sign > 0:
                st.parking.append((right, right + 1.8))
                right += 1.8
            else:
                st.parking.append((left - 1.8, left))
                left -= 1.8
    st.road = (left, right)
    st.z_end = {'urban': rng.uniform(40, 150), 'suburban':
                rng.uniform(50, 200), 'rural': rng.uniform(150, 400)}[kind]
    for sign in (1, -1):
        edge = right if sign > 0 else -left
        st.sides[sign] = _sample_side(rng, kind, sign, edge, st)
    if kind != 'rural' and rng.random() < {'urban': .4, 'suburban': .2}[kind]:
        z0 = rng.uniform(5.0, 22.0)
        st.crosswalk = (z0, z0 + rng.uniform(2.2, 3.5))
    return st


def _sample_side(rng, kind, sign, edge, st):
    """Sample the bands of one side, from the road edge outwards."""
    side = Side(sign)
    a = edge

    def band(width, element, material, variant=0):
        nonlocal a
        side.bands.append((a, a + width, element, material, variant))
        a += width

    if kind == 'rural':
        if rng.random() < 0.6:
            band(rng.uniform(0.4, 1.2), E.GROUND, M.SOIL, 0)
        side.pole_x = a + rng.uniform(0.5, 2.0)
        band(rng.uniform(20.0, 40.0), E.TERRAIN, M.GRASS,
             int(rng.integers(0, 3)))
        if rng.random() < 0.6:
            side.forest_x = edge + rng.uniform(6.0, 20.0)
        side.tree_x = edge + rng.uniform(2.0, 6.0)
        return side
    if sign < 0 and st.service_lane is None and rng.random() < 0.1:
        band(_CURB_W, E.CURB, M.CURB)
        band(rng.uniform(1.0, 2.0), E.TERRAIN, M.GRASS, 1)
        band(_CURB_W, E.CURB, M.CURB)
        st.service_lane = (-a - 2.6, -a)
        band(2.6, E.SERVICE_LANE, M.ASPHALT, 1)
    band(_CURB_W, E.CURB, M.CURB)
    if rng.random() < (0.25 if kind == 'urban' else 0.45):
        side.tree_x = a + 0.6
        band(rng.uniform(0.9, 1.6), E.TERRAIN, M.GRASS, int(rng.integers(3)))
    walk_in = a
    if kind == 'urban' and rng.random() < 0.12:
        band(rng.uniform(4.0, 8.0), E.PEDESTRIAN_AREA, M.PAVING, 2)
    else:
        band(rng.uniform(1.8, 4.0) if kind == 'urban' else
             rng.uniform(1.4, 2.5), E.SIDEWALK, M.PAVING,
             int(rng.integers(0, 2)))
    side.walk = (walk_in, a)
    side.pole_x = walk_in + 0.35
    if side.tree_x is None and rng.random() < (0.35 if kind == 'urban'
                                               else 0.5):
        side.tree_x = a - 0.6
    if kind == 'suburban':
        side.line_x = a
        band(rng.uniform(1.5, 6.0), E.TERRAIN, M.GRASS,
             int(rng.integers(0, 3)))
    side.facade_x = a + (rng.uniform(0.0, 0.5) if kind == 'urban' else 0.0)
    band(60.0, E.SIDEWALK if kind == 'urban' else E.TERRAIN,
         M.PAVING if kind == 'urban' else M.GRASS, 1)
    return side


# ------------------------------------------------------- sky, far, ground --
def _add_sky_and_far(scene, rng, st):
    """Add the sky, distant mountains and the backdrop at the street end."""
    cam = scene.camera
    a = cam.aspect
    scene.add(Prim('poly', np.array([(-1, -1), (a + 1, -1), (a + 1, 2),
                                     (-1, 2)], float), E.SKY, M.SKY, 0, 1.0,
                   FACING_SKY, SKY_DEPTH, (PLANE_SCREEN, 0.0), LAYER_SKY))
    p_mount = {'urban': 0.05, 'suburban': 0.25, 'rural': 0.65}[scene.kind]
    if rng.random() < p_mount:
        xs = np.linspace(-0.1, a + 0.1, 9)
        amp = rng.uniform(0.02, 0.09)
        tops = cam.horizon - amp * rng.uniform(0.2, 1.0, size=len(xs))
        pts = np.concatenate([np.stack([xs, tops], 1),
                              [(a + 0.1, cam.horizon + 0.02),
                               (-0.1, cam.horizon + 0.02)]])
        scene.add(Prim('poly', pts, E.MOUNTAIN, M.ROCK, 0, 1.0, 0, 2000.0,
                       (PLANE_SCREEN, 0.0), LAYER_FAR))
    z = st.z_end
    if scene.kind == 'rural':
        _forest_backdrop(scene, rng, z)
        return
    x = -80.0
    while x < 80.0:
        w = rng.uniform(6.0, 18.0)
        h = rng.uniform(3.0, 14.0 if scene.kind == 'urban' else 6.0)
        if rng.random() < 0.25:
            obj.add_tree(scene, rng, x + w / 2, z + 0.5, 1.5, LAYER_BACKDROP)
        else:
            scene.zplane_rect(z, x, x + w, 0.0, h, E.BUILDING, M.FACADE,
                              int(rng.integers(0, 6)), rng.uniform(.85, 1.),
                              layer=LAYER_BACKDROP)
        x += w


def _forest_backdrop(scene, rng, z):
    """Add a tree line across the end of a rural road."""
    xs = np.linspace(-150.0, 150.0, 40)
    tops = rng.uniform(3.0, 8.0) + rng.uniform(-1.5, 1.5, size=len(xs))
    xy = np.concatenate([np.stack([xs, tops], 1), [(150.0, 0.0),
                                                   (-150.0, 0.0)]])
    scene.zplane_poly(z, xy, E.VEGETATION, M.FOLIAGE,
                      int(rng.integers(0, 4)), 0.8, layer=LAYER_BACKDROP)


def _add_ground(scene, rng, st):
    """Add the ground: side bands, the road and strips on the road."""
    near, z1 = scene.camera.near_z, st.z_end
    for sign, side in st.sides.items():
        for a0, a1, element, material, variant in side.bands:
            x0, x1 = sorted((side.x(a0), side.x(a1)))
            scene.ground_strip(x0, x1, near, z1, element, material, variant)
    left, right = st.road
    scene.ground_strip(left, right, near, z1, E.ROAD, M.ASPHALT,
                       int(rng.integers(0, 2)))
    if st.bike_lane is not None:
        scene.ground_strip(*st.bike_lane, near, z1, E.BIKE_LANE,
                           M.BIKE_LANE, int(rng.integers(0, 2)))
    for x0, x1 in st.parking:
        scene.ground_strip(x0, x1, near, z1, E.PARKING, M.ASPHALT, 1, 1.08)


def _add_markings(scene, rng, st):
    """Add lane markings, crosswalk, manholes, catch basins and rails."""
    near, z1 = scene.camera.near_z, st.z_end
    lw = st.lane_w
    paint = 1 if rng.random() < 0.2 else 0
    phase = rng.uniform(0.0, 6.0)
    for (c0, onc0), (c1, onc1) in zip(st.lanes[:-1], st.lanes[1:]):
        xb = (c0 + c1) / 2
        if onc0 != onc1 and rng.random() < 0.5:
            for dx in ((-0.12, 0.12) if rng.random() < 0.5 else (0.0,)):
                _line(scene, xb + dx, near, z1, 0.1, paint)
        else:
            _dashes(scene, xb, near, z1, phase)
    if rng.random() < 0.5:
        for xb in (st.lanes[-1][0] - lw / 2 + 0.25,
                   st.lanes[0][0] + lw / 2 - 0.25):
            _line(scene, xb, near, z1, 0.1, 0)
    if st.crosswalk is not None:
        _crosswalk(scene, rng, st)
    for _ in range(rng.poisson(0.8)):
        c = st.lanes[int(rng.integers(len(st.lanes)))][0]
        x, z = c + rng.uniform(-0.8, 0.8), rng.uniform(3.0, 30.0)
        circle = obj._circle(x, z, 0.35, n=12)
        scene.ground_poly(circle, E.MANHOLE, M.IRON, 0, 1.0, LAYER_MARKING)
    for _ in range(rng.poisson(0.4)):
        x = st.road[1] - 0.3 if rng.random() < 0.6 else st.road[0] + 0.3
        z = rng.uniform(3.0, 25.0)
        scene.ground_strip(x - 0.2, x + 0.2, z, z + 0.7, E.CATCH_BASIN,
                           M.IRON, 0, 1.0, LAYER_MARKING)
    if scene.kind == 'urban' and rng.random() < 0.08:
        st.tram_lane = st.lanes[int(rng.integers(len(st.lanes)))][0]
        for dx in (-0.55, 0.55):
            scene.ground_strip(st.tram_lane + dx - 0.07,
                               st.tram_lane + dx + 0.07, near, z1,
                               E.RAIL_TRACK, M.RAIL, 0, 1.0, LAYER_MARKING)


def _line(scene, x, z0, z1, width, paint):
    """Add a solid longitudinal lane line."""
    scene.ground_strip(x - width / 2, x + width / 2, z0, z1, E.LANE_MARKING,
                       M.PAINT, paint, 1.0, LAYER_MARKING)


def _dashes(scene, x, z0, z1, phase, length=2.3, gap=4.5, width=0.1):
    """Add a dashed longitudinal lane line."""
    z = z0 - phase
    while z < z1:
        a, b = max(z, z0), min(z + length, z1)
        if b > a:
            scene.ground_strip(x - width / 2, x + width / 2, a, b,
                               E.LANE_MARKING, M.PAINT, 0, 1.0,
                               LAYER_MARKING)
        z += length + gap


def _crosswalk(scene, rng, st):
    """Add a zebra or plain crosswalk, a stop line and curb cuts."""
    z0, z1 = st.crosswalk
    left, right = st.road
    if rng.random() < 0.7:
        x, w = left + rng.uniform(0.0, 0.4), rng.uniform(0.35, 0.5)
        while x < right:
            scene.ground_strip(x, min(x + w, right), z0, z1,
                               E.CROSSWALK_MARKING, M.PAINT, 0, 1.0,
                               LAYER_MARKING)
            x += 2 * w
    else:
        scene.ground_strip(left, right, z0, z1, E.CROSSWALK_PLAIN, M.PAVING,
                           2, 0.9, LAYER_MARKING)
        for z in (z0, z1 - 0.2):
            scene.ground_strip(left, right, z, z + 0.2, E.LANE_MARKING,
                               M.PAINT, 0, 1.0, LAYER_MARKING)
    same = [c for c, onc in st.lanes if not onc]
    xa, xb = min(same) - st.lane_w / 2, max(same) + st.lane_w / 2
    scene.ground_strip(xa, xb, z0 - 1.4, z0 - 1.1, E.LANE_MARKING, M.PAINT,
                       0, 1.0, LAYER_MARKING)
    for sign in (1, -1):
        edge = right if sign > 0 else left
        x0, x1 = sorted((edge, edge + sign * _CURB_W))
        scene.ground_strip(x0, x1, z0, z1, E.CURB_CUT, M.CURB, 0, 0.9,
                           LAYER_MARKING)


# ------------------------------------------------------------------ sides --
def _add_sides(scene, rng, st):
    """Add facades, walls, fences, hedges, guard rails and forest bands."""
    for side in st.sides.values():
        if side.facade_x is not None:
            _facades(scene, rng, st, side)
        if side.line_x is not None:
            _property_line(scene, rng, st, side)
        if side.forest_x is not None:
            _forest_band(scene, rng, st, side)
        if scene.kind == 'rural':
            _rural_edge(scene, rng, st, side)


def _facades(scene, rng, st, side):
    """Add building blocks (and gaps) along one side of the street."""
    urban = scene.kind == 'urban'
    xf = side.x(side.facade_x)
    z, prev_gap = scene.camera.near_z, False
    while z < st.z_end:
        length = rng.uniform(5.0, 20.0)
        z1 = min(z + length, st.z_end)
        if rng.random() < 0.13:
            if urban and rng.random() < 0.5:
                h = rng.uniform(1.0, 2.5)
                scene.xplane_poly(xf, [(z, 0), (z1, 0), (z1, h), (z, h)],
                                  E.WALL, M.WALL, int(rng.integers(0, 3)))
            z, prev_gap = z1 + rng.uniform(3.0, 8.0), True
            continue
        h = rng.uniform(5.0, 18.0) if urban else rng.uniform(3.5, 7.0)
        variant = int(rng.integers(0, 6))
        shade = rng.uniform(0.85, 1.1)
        if prev_gap:
            far = xf + side.sign * 15.0
            scene.zplane_poly(z, [(xf, 0), (far, 0), (far, h), (xf, h)],
                              E.BUILDING, M.FACADE, variant, shade * 0.85,
                              layer=LAYER_SIDE, depth=z)
            scene.prims[-1].order = (abs(xf) + 0.5) * 1000.0 + z
        scene.xplane_poly(xf, [(z, 0), (z1, 0), (z1, h), (z, h)],
                          E.BUILDING, M.FACADE, variant, shade)
        if urban and rng.random() < 0.15 and z1 - z > 4.0:
            bz = rng.uniform(z, z1 - 3.0)
            by = rng.uniform(2.0, min(h - 1.5, 5.0))
            scene.xplane_poly(xf, [(bz, by), (bz + 2.5, by),
                                   (bz + 2.5, by + 1.4), (bz, by + 1.4)],
                              E.BILLBOARD, M.PRINT, int(rng.integers(0, 3)),
                              order=abs(xf) * 1000.0 - 1.0)
        z, prev_gap = z1, False


def _property_line(scene, rng, st, side):
    """Add hedges, walls and fences along a suburban property line."""
    x = side.x(side.line_x)
    z = scene.camera.near_z
    while z < st.z_end:
        z1 = min(z + rng.uniform(5.0, 15.0), st.z_end)
        kind = int(rng.choice(4, p=[0.35, 0.25, 0.25, 0.15]))
        if kind == 0:
            n = max(int((z1 - z) / 1.0), 2)
            zs = np.linspace(z, z1, n)
            tops = rng.uniform(0.8, 1.4) + rng.uniform(-.1, .1, size=n)
            zy = np.concatenate([np.stack([zs, tops], 1), [(z1, 0), (z, 0)]])
            scene.xplane_poly(x, zy, E.VEGETATION, M.FOLIAGE,
                              int(rng.integers(0, 4)), 0.9)
        elif kind == 1:
            h = rng.uniform(0.6, 1.6)
            scene.xplane_poly(x, [(z, 0), (z1, 0), (z1, h), (z, h)], E.WALL,
                              M.WALL, int(rng.integers(0, 3)))
        elif kind == 2:
            h = rng.uniform(0.8, 1.5)
            scene.xplane_poly(x, [(z, 0), (z1, 0), (z1, h), (z, h)], E.FENCE,
                              M.FENCE, int(rng.integers(0, 3)))
        z = z1


def _forest_band(scene, rng, st, side):
    """Add a band of forest parallel to a rural road."""
    x = side.x(side.forest_x)
    zs = np.linspace(scene.camera.near_z, st.z_end, 40)
    tops = rng.uniform(3.0, 7.0) + rng.uniform(-1.0, 1.0, size=len(zs))
    zy = np.concatenate([np.stack([zs, tops], 1), [(st.z_end, 0),
                                                   (zs[0], 0)]])
    scene.xplane_poly(x, zy, E.VEGETATION, M.FOLIAGE, int(rng.integers(0, 4)),
                      0.85)


def _rural_edge(scene, rng, st, side):
    """Add guard rails, fences or noise-barrier walls along a rural road."""
    near, z1 = scene.camera.near_z, st.z_end
    edge = st.road[1] if side.sign > 0 else -st.road[0]
    u = rng.random()
    if u < 0.4:
        x = side.x(edge + 0.4)
        scene.xplane_poly(x, [(near, .35), (z1, .35), (z1, .6), (near, .6)],
                          E.GUARD_RAIL, M.METAL, 0)
        for z in np.arange(near, min(z1, 80.0), 3.0):
            scene.xplane_poly(x, [(z, 0), (z + .12, 0), (z + .12, .6),
                                  (z, .6)], E.GUARD_RAIL, M.METAL, 1)
    elif u < 0.65:
        x, h = side.x(edge + rng.uniform(3.0, 8.0)), rng.uniform(0.9, 1.5)
        scene.xplane_poly(x, [(near, 0), (z1, 0), (z1, h), (near, h)],
                          E.FENCE, M.FENCE, int(rng.integers(0, 3)))
    elif u < 0.8:
        x, h = side.x(edge + rng.uniform(1.0, 2.0)), rng.uniform(2.0, 3.5)
        scene.xplane_poly(x, [(near, 0), (z1, 0), (z1, h), (near, h)],
                          E.WALL, M.WALL, int(rng.integers(0, 3)))


# ----------------------------------------------------- poles, trees, etc. --
def _add_street_furniture(scene, rng, st):
    """Add street lights, utility poles, signs, traffic lights and trees."""
    kind = scene.kind
    for sign, side in st.sides.items():
        toward = -sign
        if kind == 'rural':
            if rng.random() < 0.5:
                _along(rng, 5.0, min(st.z_end, 150.0), 20.0, 30.0,
                       lambda z: _utility_pole(scene, rng, side.x(
                           side.pole_x), z))
        elif rng.random() < (0.65 if kind == 'urban' else 0.4):
            _along(rng, 4.0, min(st.z_end, 120.0), 12.0, 25.0,
                   lambda z: obj.add_street_light(scene, rng,
                                                  side.x(side.pole_x), z,
                                                  toward))
        if side.tree_x is not None and rng.random() < (
                0.8 if kind != 'urban' else 0.6):
            _along(rng, 3.0, min(st.z_end, 120.0), 6.0, 14.0,
                   lambda z: _street_tree(scene, rng, side, z))
        for _ in range(rng.poisson({'urban': 1.3, 'suburban': 0.8,
                                    'rural': 0.5}[kind])):
            front = rng.random() < (0.85 if sign > 0 else 0.45)
            obj.add_sign(scene, rng, side.x(side.pole_x + .1),
                         rng.uniform(4.0, 40.0), front, -toward
                         if rng.random() < 0.5 else toward)
        if kind != 'rural':
            for _ in range(rng.poisson(1.0 if kind == 'urban' else 0.5)):
                _furniture(scene, rng, side)
        if kind == 'urban' and rng.random() < 0.1:
            z = rng.uniform(5.0, 30.0)
            for dx in (0.0, 0.22, 0.4):
                obj.add_pole(scene, side.x(side.pole_x + dx), z + dx,
                             rng.uniform(2.5, 3.5), 0.08, E.POLEGROUP)
    _traffic_lights(scene, rng, st)


def _along(rng, z0, z1, gap0, gap1, add):
    """Call ``add(z)`` at random, roughly regular depths."""
    z = z0 + rng.uniform(0.0, gap0)
    while z < z1:
        add(z)
        z += rng.uniform(gap0, gap1)


def _utility_pole(scene, rng, x, z):
    """Add a wooden utility pole with a cross bar."""
    h = rng.uniform(6.0, 8.0)
    obj.add_pole(scene, x, z, h, 0.16, E.UTILITY_POLE, M.POLE, 2)
    scene.zplane_line(z, [(x - .8, h - .4), (x + .8, h - .4)], .1,
                      E.UTILITY_POLE, M.POLE, 2)


def _street_tree(scene, rng, side, z):
    """Add a street tree, with a tree pit in paved areas."""
    x = side.x(side.tree_x + rng.uniform(-0.2, 0.2))
    if scene.kind == 'urban' and rng.random() < 0.5:
        scene.ground_strip(x - .5, x + .5, z - .5, z + .5, E.GROUND, M.SOIL,
                           1, 1.0, LAYER_MARKING)
    obj.add_tree(scene, rng, x, z, rng.uniform(0.8, 1.3))


def _furniture(scene, rng, side):
    """Add one piece of street furniture on a sidewalk."""
    kind = ('bench', 'trash', 'hydrant', 'box', 'crate')[
        int(rng.choice(5, p=[.25, .3, .2, .15, .1]))]
    a = rng.uniform(*side.walk) if side.walk else side.pole_x
    obj.add_furniture(scene, rng, side.x(a), rng.uniform(3.5, 35.0), kind)


def _traffic_lights(scene, rng, st):
    """Add traffic lights at the crosswalk (and sometimes elsewhere)."""
    if st.crosswalk is None and rng.random() > 0.15:
        return
    z = st.crosswalk[0] - 0.6 if st.crosswalk else rng.uniform(8.0, 35.0)
    for sign, side in st.sides.items():
        if side.pole_x is None:
            continue
        obj.add_traffic_light(scene, rng, side.x(side.pole_x), z,
                              front=sign > 0 or rng.random() < 0.5)
    if rng.random() < 0.45:
        right = st.sides[1]
        xp, h = right.x(right.pole_x), rng.uniform(4.5, 5.5)
        end = st.lanes[0][0] - rng.uniform(0.0, 2.0)
        zm = z + 3.5
        obj.add_pole(scene, xp, zm, h + 0.2, 0.14)
        scene.zplane_line(zm, [(xp, h), (end, h)], 0.09, E.POLE, M.POLE, 0)
        for k in range(int(rng.integers(1, 3))):
            obj.add_traffic_light(scene, rng, end + k * 1.6, zm,
                                  pole_height=h - 0.05, hanging=True)


# ---------------------------------------------------------------- traffic --
_VEHICLE_TYPES = ('car', 'truck', 'bus', 'caravan', 'trailer', 'motorcycle',
                  'bicycle')
_VEHICLE_P = (0.74, 0.1, 0.07, 0.02, 0.01, 0.04, 0.02)


def _add_traffic(scene, rng, st):
    """Add moving vehicles in the lanes, parked cars, a tram and riders."""
    lam = {'urban': 1.8, 'suburban': 1.3, 'rural': 1.0}[scene.kind]
    zmax = min(st.z_end - 3.0, 90.0)
    for i, (c, oncoming) in enumerate(st.lanes):
        ego_lane = abs(c) < st.lane_w / 2
        zs = np.sort(rng.uniform(6.0 if ego_lane else 3.0, zmax,
                                 size=rng.poisson(lam)))
        free = 0.0
        for z in zs:
            if z < free:
                continue
            kind = _VEHICLE_TYPES[int(rng.choice(7, p=_VEHICLE_P))]
            x = c + rng.uniform(-0.3, 0.3)
            if kind in ('motorcycle', 'bicycle'):
                obj.add_two_wheeler(scene, rng, x, z, kind == 'motorcycle',
                                    True, rng.uniform(0.2, 0.45))
                free = z + 3.0
            else:
                free = z + obj.add_vehicle(scene, rng, kind, x, z,
                                           oncoming) + 1.5
    for x0, x1 in st.parking:
        _parked_row(scene, rng, (x0 + x1) / 2, x0 < 0)
    if not st.parking and scene.kind != 'rural' and rng.random() < 0.3:
        _parked_row(scene, rng, st.road[1] - 0.9, False)
    if st.tram_lane is not None and rng.random() < 0.75:
        obj.add_vehicle(scene, rng, 'tram', st.tram_lane,
                        rng.uniform(8.0, 35.0), st.tram_lane < 0)
    if scene.kind != 'rural':
        for _ in range(rng.poisson(0.8 if scene.kind == 'urban' else 0.4)):
            x = (sum(st.bike_lane) / 2 if st.bike_lane else
                 st.road[1] - 0.7)
            obj.add_two_wheeler(scene, rng, x + rng.uniform(-.2, .2),
                                rng.uniform(4.0, 40.0), False, True,
                                rng.uniform(0.2, 0.5))


def _parked_row(scene, rng, x, oncoming):
    """Add a row of parked cars along the curb."""
    z = rng.uniform(2.5, 8.0)
    while z < 60.0:
        if rng.random() < 0.75:
            kind = 'car' if rng.random() < 0.9 else 'caravan'
            z += obj.add_vehicle(scene, rng, kind, x + rng.uniform(-.1, .1),
                                 z, oncoming and rng.random() < 0.5)
        else:
            z += rng.uniform(2.0, 6.0)
        z += rng.uniform(0.5, 3.0)


# ----------------------------------------------------------------- people --
def _add_people(scene, rng, st):
    """Add pedestrians, crossing pedestrians, parked two-wheelers."""
    kind = scene.kind
    for side in st.sides.values():
        if side.walk is None:
            continue
        lam = {'urban': 4.0, 'suburban': 1.8, 'rural': 0.2}[kind]
        if side.walk[1] - side.walk[0] > 4.0:
            lam += 3.0
        for _ in range(rng.poisson(lam)):
            a = rng.uniform(side.walk[0] + .3, side.walk[1] - .3)
            z = rng.uniform(3.0, 45.0)
            obj.add_person(scene, rng, side.x(a), z)
            if rng.random() < 0.2:
                obj.add_person(scene, rng, side.x(a) + rng.uniform(.4, .7),
                               z + rng.uniform(-.5, .5))
            elif rng.random() < 0.06:
                obj.add_furniture(scene, rng, side.x(a) + 0.5, z - 0.2,
                                  'stroller')
        if kind == 'urban':
            for _ in range(rng.poisson(0.5)):
                a = rng.uniform(*side.walk)
                obj.add_two_wheeler(scene, rng, side.x(a),
                                    rng.uniform(4.0, 30.0), False, False,
                                    rng.uniform(0.6, 1.0))
            for _ in range(rng.poisson(0.2)):
                obj.add_two_wheeler(scene, rng, side.x(side.walk[0] + .5),
                                    rng.uniform(4.0, 30.0), True, False,
                                    rng.uniform(0.5, 1.0))
    if st.crosswalk is not None:
        z0, z1 = st.crosswalk
        for _ in range(rng.poisson(2.0)):
            obj.add_person(scene, rng, rng.uniform(*st.road),
                           rng.uniform(z0, z1))
        if rng.random() < 0.3:
            obj.add_two_wheeler(scene, rng, rng.uniform(*st.road),
                                rng.uniform(z0, z1), False, True,
                                rng.uniform(0.8, 1.0))


def _add_bridge(scene, rng, st):
    """Sometimes add an overpass across the street (with a train on it)."""
    if rng.random() > (0.0 if scene.kind == 'suburban' else 0.08):
        return
    z = rng.uniform(25.0, min(60.0, st.z_end - 2.0))
    lim = [s.facade_x or 150.0 for s in (st.sides[-1], st.sides[1])]
    x0, x1 = -lim[0], lim[1]
    y0 = rng.uniform(4.0, 5.5)
    y1 = y0 + rng.uniform(0.8, 1.5)
    scene.zplane_rect(z, x0, x1, y0, y1, E.BRIDGE, M.CONCRETE, 0)
    for xp in (st.road[0] - 1.0, st.road[1] + 0.2):
        scene.zplane_rect(z, xp, xp + 0.8, 0.0, y0, E.BRIDGE, M.CONCRETE, 1,
                          0.85)
    if rng.random() < 0.45:
        length = rng.uniform(20.0, 60.0)
        start = rng.uniform(x0, max(x0, x1 - length))
        scene.zplane_rect(z, start, start + length, y1, y1 + 2.4, E.TRAIN,
                          M.TRAIN_PAINT, int(rng.integers(0, 2)))
        scene.zplane_rect(z, start + .3, start + length - .3, y1 + 1.2,
                          y1 + 2.0, E.TRAIN, M.GLASS, 0)


# -------------------------------------------------------------- ego hood --
def add_ego_vehicle(scene, rng, height, element=E.EGO_VEHICLE):
    """Add the ego vehicle's hood (or a car mount) at the image bottom.

    Args:
        scene (Scene): Target scene.
        rng (np.random.Generator): Random source.
        height (float): Height of the hood at the image centre (fraction of
            the image height).
        element (Element): ``EGO_VEHICLE`` (a hood across the image) or
            ``CAR_MOUNT`` (a small mount at the bottom centre).
    """
    a = scene.camera.aspect
    if element == E.CAR_MOUNT:
        cx = a / 2 + rng.uniform(-0.1, 0.1)
        w = rng.uniform(0.1, 0.2)
        pts = [(cx - w, 1.01), (cx + w, 1.01), (cx + w * .6, 1 - height),
               (cx - w * .6, 1 - height)]
    else:
        xs = np.linspace(-0.01, a + 0.01, 17)
        t = (xs - a / 2) / (a / 2)
        ys = 1.0 - height * (1.0 - 0.45 * t ** 2)
        pts = np.concatenate([np.stack([xs, ys], 1), [(a + .01, 1.01),
                                                      (-.01, 1.01)]])
    scene.screen_poly(pts, element, M.HOOD, 0, 1.0, LAYER_EGO, 0.3)
