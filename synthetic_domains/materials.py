"""Surface materials of the synthetic scenes (appearance, not labels).

A scene primitive carries a label :class:`~synthetic_domains.elements.Element`
and, separately, a :class:`Material` plus a variant index. The material says
what a surface looks like (asphalt, glass, car paint); each domain style
(:mod:`synthetic_domains.styles`) turns materials into its own colours and
textures. Several elements share materials (all road-like elements are
asphalt or paint) and one element uses several (a car is paint, glass, tyres
and lights), which is what makes the label maps non-trivial to predict from
colour alone.
"""
import enum


class Material(enum.IntEnum):
    """Appearance classes of scene primitives."""
    SKY = 0
    FACADE = 1
    WALL = 2
    FENCE = 3
    METAL = 4
    CONCRETE = 5
    FOLIAGE = 6
    TRUNK = 7
    GRASS = 8
    SOIL = 9
    ASPHALT = 10
    PAINT = 11
    IRON = 12
    BIKE_LANE = 13
    PAVING = 14
    CURB = 15
    RAIL = 16
    POLE = 17
    LAMP = 18
    HOUSING = 19
    SIGN_FACE = 20
    SIGN_BACK = 21
    FURNITURE = 22
    CAR_PAINT = 23
    GLASS = 24
    TYRE = 25
    REAR_LIGHT = 26
    HEAD_LIGHT = 27
    SKIN = 28
    CLOTH = 29
    HAIR = 30
    HOOD = 31
    ROCK = 32
    PRINT = 33
    BUS_PAINT = 34
    TRAIN_PAINT = 35
    TRUCK_PAINT = 36


#: Texture groups: materials in one group share a texture recipe per domain.
TEXTURE_GROUPS = ('smooth', 'sky', 'asphalt', 'paving', 'facade', 'foliage',
                  'grass', 'metal', 'glass', 'cloth')

_GROUP_OF = {
    Material.SKY: 'sky', Material.FACADE: 'facade', Material.WALL: 'paving',
    Material.FENCE: 'metal', Material.METAL: 'metal',
    Material.CONCRETE: 'paving', Material.FOLIAGE: 'foliage',
    Material.TRUNK: 'foliage', Material.GRASS: 'grass',
    Material.SOIL: 'grass', Material.ASPHALT: 'asphalt',
    Material.PAINT: 'asphalt', Material.IRON: 'metal',
    Material.BIKE_LANE: 'asphalt', Material.PAVING: 'paving',
    Material.CURB: 'paving', Material.RAIL: 'metal', Material.POLE: 'metal',
    Material.LAMP: 'smooth', Material.HOUSING: 'metal',
    Material.SIGN_FACE: 'smooth', Material.SIGN_BACK: 'metal',
    Material.FURNITURE: 'metal', Material.CAR_PAINT: 'smooth',
    Material.GLASS: 'glass', Material.TYRE: 'smooth',
    Material.REAR_LIGHT: 'smooth', Material.HEAD_LIGHT: 'smooth',
    Material.SKIN: 'smooth', Material.CLOTH: 'cloth', Material.HAIR: 'cloth',
    Material.HOOD: 'glass', Material.ROCK: 'grass', Material.PRINT: 'smooth',
    Material.BUS_PAINT: 'smooth', Material.TRAIN_PAINT: 'smooth',
    Material.TRUCK_PAINT: 'smooth',
}

#: Materials that emit light (kept bright in dark frames).
EMISSIVE = frozenset({Material.LAMP, Material.REAR_LIGHT,
                      Material.HEAD_LIGHT})

#: Canonical (game-like) colour variants per material, RGB 0..255. Domain
#: styles derive their palettes from these.
BASE_COLOURS = {
    Material.SKY: [(118, 168, 228)],
    Material.FACADE: [(176, 150, 120), (196, 186, 160), (150, 150, 156),
                      (170, 110, 90), (120, 140, 160), (210, 200, 180)],
    Material.WALL: [(160, 155, 145), (140, 120, 100), (180, 175, 165)],
    Material.FENCE: [(120, 115, 105), (90, 110, 90), (150, 150, 150)],
    Material.METAL: [(150, 152, 156), (110, 112, 118)],
    Material.CONCRETE: [(170, 168, 160), (140, 138, 132)],
    Material.FOLIAGE: [(56, 104, 38), (72, 118, 44), (44, 88, 40),
                       (90, 120, 50)],
    Material.TRUNK: [(84, 64, 44), (70, 56, 40)],
    Material.GRASS: [(104, 146, 64), (124, 150, 74), (96, 128, 60)],
    Material.SOIL: [(136, 112, 82), (120, 100, 78)],
    Material.ASPHALT: [(84, 84, 90), (96, 94, 98)],
    Material.PAINT: [(226, 226, 220), (230, 200, 60)],
    Material.IRON: [(52, 50, 48)],
    Material.BIKE_LANE: [(150, 70, 60), (70, 120, 80)],
    Material.PAVING: [(168, 162, 150), (150, 146, 140), (176, 150, 136)],
    Material.CURB: [(190, 188, 182)],
    Material.RAIL: [(120, 110, 100)],
    Material.POLE: [(128, 130, 134), (90, 92, 96), (108, 90, 70)],
    Material.LAMP: [(236, 60, 40), (250, 200, 60), (70, 230, 120),
                    (255, 240, 200)],
    Material.HOUSING: [(40, 42, 40), (150, 130, 40)],
    Material.SIGN_FACE: [(210, 40, 40), (40, 80, 190), (240, 210, 40),
                         (236, 236, 236)],
    Material.SIGN_BACK: [(140, 142, 146)],
    Material.FURNITURE: [(60, 90, 60), (110, 80, 50), (200, 40, 30),
                         (80, 80, 90)],
    Material.CAR_PAINT: [(200, 30, 30), (30, 60, 160), (230, 230, 230),
                         (30, 30, 34), (150, 150, 156), (60, 120, 70),
                         (220, 190, 40), (110, 60, 40)],
    Material.GLASS: [(46, 56, 70)],
    Material.TYRE: [(24, 24, 26)],
    Material.REAR_LIGHT: [(220, 30, 30)],
    Material.HEAD_LIGHT: [(240, 240, 220)],
    Material.SKIN: [(224, 180, 150), (170, 120, 90), (110, 76, 56)],
    Material.CLOTH: [(40, 40, 60), (160, 40, 40), (60, 90, 150),
                     (200, 200, 190), (80, 80, 80), (200, 150, 60),
                     (50, 100, 60)],
    Material.HAIR: [(40, 30, 24), (120, 90, 50), (20, 20, 20)],
    Material.HOOD: [(60, 62, 70)],
    Material.ROCK: [(120, 130, 126)],
    Material.PRINT: [(230, 120, 40), (40, 160, 210), (230, 230, 230)],
    Material.BUS_PAINT: [(230, 200, 40), (40, 120, 200), (220, 220, 220)],
    Material.TRAIN_PAINT: [(200, 200, 200), (210, 60, 40)],
    Material.TRUCK_PAINT: [(230, 230, 230), (60, 70, 120), (180, 50, 40)],
}


def texture_group(material):
    """Return the texture group name of a material.

    Args:
        material (Material): The material.

    Returns:
        str: One of :data:`TEXTURE_GROUPS`.
    """
    return _GROUP_OF[Material(material)]
