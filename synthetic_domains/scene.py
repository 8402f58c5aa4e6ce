"""Camera, primitives and the scene container of the synthetic street scenes.

Coordinates: image coordinates are in *height units* (the image height is 1,
the width is the aspect ratio), so one scene can be rasterised at any pixel
size. The world is measured in *camera heights* (the camera is 1 above the
ground, looking along +Z; X points right, Y up). A pinhole camera with focal
length ``f`` (height units) projects ``(X, Y, Z)`` to
``x = vx + X * f / Z`` and ``y = horizon + (1 - Y) * f / Z``, so objects
shrink towards the horizon with the right perspective.

A :class:`Scene` is a list of flat 2-D primitives (polygons, ellipses,
poly-lines) drawn with the painter's algorithm. Each primitive carries its
label element, material and variant, a shade factor, the direction it faces
(for lighting), its depth and the plane it lies on (so textures can be laid
out in world coordinates: cobbles on the ground, windows on facades).
"""
# Facing of a primitive's surface, used by the lighting model.
FACING_FRONT = 0
FACING_LEFT = 1   # surface normal points to -X (a right-hand facade)
FACING_RIGHT = 2  # surface normal points to +X (a left-hand facade)
FACING_UP = 3     # ground
FACING_SKY = 4
NUM_FACINGS = 5

# Plane kinds for world-space texture coordinates.
PLANE_SCREEN = 0
PLANE_GROUND = 1
PLANE_X = 2
PLANE_Z = 3

# Drawing layers, painted in this order (objects are sorted by depth).
LAYER_SKY = 0
LAYER_FAR = 1
LAYER_GROUND = 2
LAYER_BACKDROP = 3
LAYER_MARKING = 4
LAYER_SIDE = 5
LAYER_OBJECT = 6
LAYER_EGO = 7

SKY_DEPTH = 1e4


class Camera:
    """Pinhole camera one unit above a flat ground plane.

    Args:
        f (float): Focal length in image-height units.
        horizon (float): Row of the horizon (0 = top, 1 = bottom).
        vx (float): Column of the vanishing point, in height units.
        aspect (float): Image width / height.
    """

    def __init__(self, f, horizon, vx, aspect):
        self.f = float(f)
        self.horizon = float(horizon)
        self.vx = float(vx)
        self.aspect = float(aspect)

    @property
    def near_z(self):
        """Depth whose ground row lies well below the image bottom."""
        return 0.5 * self.f / (1.0 - self.horizon)

    def project(self, points):
        """Project world points to image coordinates.

        Plain Python on purpose: scenes are built from many tiny polygons,
        for which numpy's per-call overhead dominates.

        Args:
            points (iterable): World points ``(X, Y, Z)`` with Z > 0.

        Returns:
            list[tuple]: Image points ``(x, y)`` in height units.
        """
        f, vx, hz = self.f, self.vx, self.horizon
        out = []
        for X, Y, Z in points:
            d = f / Z
            out.append((vx + X * d, hz + (1.0 - Y) * d))
        return out

    def scale_at(self, z):
        """Image size (height units) of one world unit at depth ``z``."""
        return self.f / z


class Prim:
    """One flat primitive of a scene.

    Args:
        shape (str): ``'poly'`` (``geom`` = list of ``(x, y)`` points),
            ``'ellipse'`` (``geom`` = ``(cx, cy, rx, ry)``) or ``'line'``
            (``geom`` = points of a poly-line of width ``thickness``).
        geom (list | tuple): Geometry in height units.
        element (Element): Label element.
        material (Material): Appearance material.
        variant (int): Colour variant of the material.
        shade (float): Multiplicative brightness of this primitive.
        facing (int): One of the ``FACING_*`` constants.
        depth (float): Depth used for sorting and haze.
        plane (tuple): ``(kind, param)`` with a ``PLANE_*`` kind.
        layer (int): One of the ``LAYER_*`` constants.
        thickness (float): Line width for ``'line'`` / ring width for
            outlined ellipses (0 = filled), in height units.
        order (float, optional): Sort key within the layer, painted from
            large to small (default ``depth``; far objects first).
    """
    __slots__ = ('shape', 'geom', 'element', 'material', 'variant', 'shade',
                 'facing', 'depth', 'plane', 'layer', 'thickness', 'order')

    def __init__(self, shape, geom, element, material, variant=0, shade=1.0,
                 facing=FACING_FRONT, depth=1.0, plane=(PLANE_SCREEN, 0.0),
                 layer=LAYER_OBJECT, thickness=0.0, order=None):
        self.shape = shape
        self.geom = geom
        self.element = int(element)
        self.material = int(material)
        self.variant = int(variant)
        self.shade = float(shade)
        self.facing = int(facing)
        self.depth = float(depth)
        self.plane = (int(plane[0]), float(plane[1]))
        self.layer = int(layer)
        self.thickness = float(thickness)
        self.order = self.depth if order is None else float(order)


class Scene:
    """A camera plus primitives and ground shadows.

    Args:
        camera (Camera): The scene camera.
        kind (str): Scene type name (``'urban'``, ``'suburban'``,
            ``'rural'``), kept for statistics.
    """

    def __init__(self, camera, kind='urban'):
        self.camera = camera
        self.kind = kind
        self.prims = []
        self.shadows = []  # list of (N, 2) polygons in height units

    # -- generic -------------------------------------------------------
    def add(self, prim):
        """Append a primitive and return it."""
        self.prims.append(prim)
        return prim

    def ordered_prims(self):
        """Primitives in painting order (layer, then ``order`` descending).

        The sort is stable, so primitives with equal keys (the parts of one
        object, ground strips) keep the order they were added in.
        """
        return sorted(self.prims, key=lambda p: (p.layer, -p.order))

    # -- world-space helpers --------------------------------------------
    def _zproject(self, z, xy):
        """Project points ``(X, Y)`` of the plane ``Z = z``."""
        cam = self.camera
        d = cam.f / z
        vx, hz = cam.vx, cam.horizon
        return [(vx + X * d, hz + (1.0 - Y) * d) for X, Y in xy]

    def ground_poly(self, xz, element, material, variant=0, shade=1.0,
                    layer=LAYER_GROUND):
        """Add a polygon lying on the ground.

        Args:
            xz (array-like): ``(N, 2)`` ground points ``(X, Z)``.
            element (Element): Label element.
            material (Material): Material.
            variant (int): Colour variant.
            shade (float): Brightness factor.
            layer (int): Drawing layer.

        Returns:
            Prim: The added primitive.
        """
        pts = [(X, 0.0, Z) for X, Z in xz]
        return self.add(Prim('poly', self.camera.project(pts), element,
                             material, variant, shade, FACING_UP,
                             min(p[2] for p in pts), (PLANE_GROUND, 0.0),
                             layer, order=0.0))

    def ground_strip(self, x0, x1, z0, z1, element, material, variant=0,
                     shade=1.0, layer=LAYER_GROUND):
        """Add a ground rectangle ``x0..x1`` by ``z0..z1``."""
        return self.ground_poly([(x0, z0), (x1, z0), (x1, z1), (x0, z1)],
                                element, material, variant, shade, layer)

    def xplane_poly(self, x, zy, element, material, variant=0, shade=1.0,
                    layer=LAYER_SIDE, depth=None, order=None):
        """Add a polygon on the vertical plane ``X = x`` (a side facade).

        Args:
            x (float): Lateral position of the plane.
            zy (array-like): ``(N, 2)`` points ``(Z, Y)`` on the plane.
            element (Element): Label element.
            material (Material): Material.
            variant (int): Colour variant.
            shade (float): Brightness factor.
            layer (int): Drawing layer.
            depth (float, optional): Depth of the primitive (default:
                nearest Z).
            order (float, optional): Sort key (default: ``|x| * 1000``, so
                outer planes are painted before inner ones in the side
                layer; objects pass their own depth).

        Returns:
            Prim: The added primitive.
        """
        pts = [(x, Y, Z) for Z, Y in zy]
        if depth is None:
            depth = min(p[2] for p in pts)
        if order is None:
            order = depth if layer == LAYER_OBJECT else abs(x) * 1000.0
        facing = FACING_LEFT if x > 0 else FACING_RIGHT
        return self.add(Prim('poly', self.camera.project(pts), element,
                             material, variant, shade, facing, depth,
                             (PLANE_X, x), layer, order=order))

    def zplane_poly(self, z, xy, element, material, variant=0, shade=1.0,
                    layer=LAYER_OBJECT, depth=None):
        """Add a polygon on the fronto-parallel plane ``Z = z``.

        Args:
            z (float): Depth of the plane.
            xy (array-like): ``(N, 2)`` points ``(X, Y)`` on the plane.
            element (Element): Label element.
            material (Material): Material.
            variant (int): Colour variant.
            shade (float): Brightness factor.
            layer (int): Drawing layer.
            depth (float, optional): Sort depth (default: ``z``).

        Returns:
            Prim: The added primitive.
        """
        return self.add(Prim('poly', self._zproject(z, xy), element,
                             material, variant, shade, FACING_FRONT,
                             z if depth is None else depth, (PLANE_Z, z),
                             layer))

    def zplane_rect(self, z, x0, x1, y0, y1, element, material, variant=0,
                    shade=1.0, layer=LAYER_OBJECT, depth=None):
        """Add an axis-aligned rectangle on the plane ``Z = z``."""
        return self.zplane_poly(z, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)],
                                element, material, variant, shade, layer,
                                depth)

    def zplane_ellipse(self, z, x, y, rx, ry, element, material, variant=0,
                       shade=1.0, layer=LAYER_OBJECT, depth=None,
                       ring=0.0):
        """Add an ellipse (or a ring of width ``ring``) on ``Z = z``.

        Args:
            z (float): Depth of the plane.
            x (float): Centre X.
            y (float): Centre Y (height above ground).
            rx (float): Half width (world units).
            ry (float): Half height (world units).
            element (Element): Label element.
            material (Material): Material.
            variant (int): Colour variant.
            shade (float): Brightness factor.
            layer (int): Drawing layer.
            depth (float, optional): Sort depth (default: ``z``).
            ring (float): Ring width in world units (0 = filled).

        Returns:
            Prim: The added primitive.
        """
        (cx, cy), = self._zproject(z, [(x, y)])
        s = self.camera.scale_at(z)
        return self.add(Prim('ellipse', (cx, cy, rx * s, ry * s),
                             element, material, variant, shade, FACING_FRONT,
                             z if depth is None else depth, (PLANE_Z, z),
                             layer, ring * s))

    def zplane_line(self, z, xy, width, element, material, variant=0,
                    shade=1.0, layer=LAYER_OBJECT, depth=None):
        """Add a poly-line of world width ``width`` on the plane ``Z = z``."""
        return self.add(Prim('line', self._zproject(z, xy), element,
                             material, variant, shade, FACING_FRONT,
                             z if depth is None else depth, (PLANE_Z, z),
                             layer, width * self.camera.scale_at(z)))

    def ground_shadow(self, xz):
        """Add a shadow polygon on the ground (``(N, 2)`` points X, Z)."""
        self.shadows.append(self.camera.project([(X, 0.0, Z)
                                                 for X, Z in xz]))

    def screen_poly(self, pts, element, material, variant=0, shade=1.0,
                    layer=LAYER_EGO, depth=0.5, order=0.0):
        """Add a polygon given directly in image coordinates."""
        return self.add(Prim('poly', [(float(x), float(y)) for x, y in pts],
                             element, material, variant, shade,
                             FACING_FRONT, depth, (PLANE_SCREEN, 0.0),
                             layer, order=order))

