"""Tests of the synthetic-domain generator (synthetic_domains)."""
import hashlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import npdg  # noqa: F401  (compat shims before mmseg)
from synthetic_domains import generate_synthetic_domains
from synthetic_domains.elements import Element, element_lut, label_palette
from synthetic_domains.generate import render_sample
from synthetic_domains.writers import split_counts_over_cities

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 6  # images per split in the shared fixture
CS_LABEL_IDS = set(range(34))
# Narrow (HRDA-family) Mapillary 66 -> 19 mapping, typed from data.md.
NARROW = {13: 0, 24: 0, 41: 0, 2: 1, 15: 1, 17: 2, 6: 3, 3: 4, 45: 5, 47: 5,
          48: 6, 50: 7, 30: 8, 29: 9, 27: 10, 19: 11, 20: 12, 21: 12, 22: 12,
          55: 13, 61: 14, 54: 15, 58: 16, 57: 17, 52: 18}
# Ids that only the wide (Rein-family) mapping maps to a class.
WIDE_ONLY = {7, 8, 9, 10, 11, 14, 23, 44, 46, 49}


def _files(root):
    """All files under ``root`` (relative POSIX paths), sorted."""
    out = []
    for d, _, names in os.walk(root):
        for n in names:
            out.append(os.path.relpath(os.path.join(d, n), root))
    return sorted(p.replace(os.sep, '/') for p in out)


def _digest(root):
    """SHA-256 over the names and bytes of every file under ``root``."""
    h = hashlib.sha256()
    for rel in _files(root):
        h.update(rel.encode())
        with open(os.path.join(root, rel), 'rb') as f:
            h.update(f.read())
    return h.hexdigest()


@pytest.fixture(scope='module')
def synth(tmp_path_factory):
    """A tiny generated set (N images per split, seed 0, one process)."""
    root = str(tmp_path_factory.mktemp('syn') / 'synthetic')
    manifest = generate_synthetic_domains(root, seed=0, num_images=N,
                                          gta_size_mismatches=2, nproc=1,
                                          verbose=False)
    return root, manifest


def _pairs(root):
    """``{domain: [(image_path, label_path), ...]}`` found on disk."""
    files = _files(root)
    out = {'gta': [], 'cityscapes': [], 'bdd100k': [], 'mapillary': []}
    for rel in files:
        if rel.startswith('gta/images/'):
            out['gta'].append((rel, rel.replace('/images/', '/labels/')))
        elif rel.startswith('cityscapes/leftImg8bit/'):
            lab = rel.replace('leftImg8bit/', 'gtFine/', 1).replace(
                '_leftImg8bit.png', '_gtFine_labelIds.png')
            out['cityscapes'].append((rel, lab))
        elif rel.startswith('bdd100k/images/10k/'):
            lab = rel.replace('images/10k/', 'labels/sem_seg/masks/').replace(
                '.jpg', '.png')
            out['bdd100k'].append((rel, lab))
        elif rel.startswith('mapillary/') and '/images/' in rel:
            lab = rel.replace('/images/', '/v1.2/labels/').replace('.jpg',
                                                                   '.png')
            out['mapillary'].append((rel, lab))
    return out


def test_layout_names_and_modes(synth):
    root, _ = synth
    files = _files(root)
    patterns = [
        r'gta/(images|labels)/000\d\d\.png',
        r'cityscapes/leftImg8bit/(train|val)/([a-z]+)/\2_\d{6}_\d{6}'
        r'_leftImg8bit\.png',
        r'cityscapes/gtFine/(train|val)/([a-z]+)/\2_\d{6}_\d{6}'
        r'_gtFine_labelIds\.png',
        r'bdd100k/images/10k/(train|val)/[0-9a-f]{8}-[0-9a-f]{8}\.jpg',
        r'bdd100k/labels/sem_seg/masks/(train|val)/[0-9a-f]{8}-[0-9a-f]{8}'
        r'\.png',
        r'mapillary/(training|validation)/images/[A-Za-z0-9_][A-Za-z0-9_-]'
        r'{21}\.jpg',
        r'mapillary/(training|validation)/v1\.2/labels/[A-Za-z0-9_]'
        r'[A-Za-z0-9_-]{21}\.png',
        r'manifest\.json',
    ]
    for rel in files:
        assert any(re.fullmatch(p, rel) for p in patterns), rel
    # 1 GTA set + 2 splits x 3 domains, N images each, image + label
    assert len(files) == 1 + 2 * N * 7
    cities = {rel.split('/')[3] for rel in files
              if rel.startswith('cityscapes/leftImg8bit/val/')}
    assert cities <= {'frankfurt', 'lindau', 'munster'}
    train_cities = {rel.split('/')[3] for rel in files
                    if rel.startswith('cityscapes/leftImg8bit/train/')}
    assert train_cities <= {'aachen', 'bochum', 'bremen'}
    pairs = _pairs(root)
    modes = {'gta': 'P', 'cityscapes': 'L', 'bdd100k': 'L', 'mapillary': 'P'}
    for domain, items in pairs.items():
        assert len(items) == (N if domain == 'gta' else 2 * N), domain
        for img, lab in items:
            assert os.path.isfile(os.path.join(root, lab)), lab
            assert Image.open(os.path.join(root, img)).mode == 'RGB'
            assert Image.open(os.path.join(root, lab)).mode == modes[domain]
    with Image.open(os.path.join(root, pairs['bdd100k'][0][0])) as im:
        assert im.format == 'JPEG'
    with Image.open(os.path.join(root, pairs['gta'][0][0])) as im:
        assert im.format == 'PNG'


def test_city_split_matches_real_proportions():
    assert split_counts_over_cities(500, 'val') == [
        ('frankfurt', 267), ('lindau', 59), ('munster', 174)]
    parts = split_counts_over_cities(7, 'train')
    assert sum(n for _, n in parts) == 7
    assert [c for c, _ in parts] == ['aachen', 'bochum', 'bremen']


def test_label_values_valid_per_encoding(synth):
    root, _ = synth
    allowed = {'gta': CS_LABEL_IDS, 'cityscapes': CS_LABEL_IDS,
               'bdd100k': set(range(19)) | {255},
               'mapillary': set(range(66))}
    for domain, items in _pairs(root).items():
        seen = set()
        for _, lab in items:
            seen |= set(np.unique(np.array(Image.open(
                os.path.join(root, lab)))).tolist())
        assert seen <= allowed[domain], (domain, seen - allowed[domain])
        assert len(seen) >= 8, (domain, seen)
    cs_ids = set()
    for _, lab in _pairs(root)['cityscapes']:
        cs_ids |= set(np.unique(np.array(Image.open(os.path.join(root, lab)))))
    assert 1 in cs_ids  # the Cityscapes ego-vehicle hood (label id 1)


def test_palettes_are_the_official_ones():
    cs = label_palette('cityscapes_id')
    assert cs[7 * 3:7 * 3 + 3] == [128, 64, 128]      # road
    assert cs[26 * 3:26 * 3 + 3] == [0, 0, 142]       # car
    mp = label_palette('mapillary_v1_2')
    assert len(mp) == 768
    assert mp[27 * 3:27 * 3 + 3] == [70, 130, 180]    # Mapillary sky


def test_encodings_are_consistent():
    from cityscapesscripts.helpers.labels import labels
    id2train = {lab.id: (255 if lab.trainId in (-1, 255) else lab.trainId)
                for lab in labels if lab.id >= 0}
    cs, train = element_lut('cityscapes_id'), element_lut(
        'cityscapes_train_id')
    mp = element_lut('mapillary_v1_2')
    for e in Element:
        assert train[e] == id2train[int(cs[e])], e
        # Where the narrow mapping keeps a Mapillary class, it must agree
        # with the Cityscapes encoding of the same element.
        if int(mp[e]) in NARROW and e != Element.POLEGROUP:
            assert NARROW[int(mp[e])] == train[e], e
    assert cs[Element.ROAD] == 7 and cs[Element.SKY] == 23
    assert mp[Element.LANE_MARKING] == 24 and mp[Element.CROSSWALK_MARKING] \
        == 23 and mp[Element.MANHOLE] == 41 and mp[Element.SIGN_BACK] == 49


def test_sizes_and_gta_mismatches(synth):
    root, manifest = synth
    expected = {'gta': (192, 106), 'cityscapes': (256, 128),
                'bdd100k': (224, 126)}
    mismatched = []
    for domain, items in _pairs(root).items():
        for img, lab in items:
            isz = Image.open(os.path.join(root, img)).size
            lsz = Image.open(os.path.join(root, lab)).size
            if domain in expected:
                assert isz == expected[domain], (img, isz)
            else:
                w, h = isz
                assert 160 <= w <= 256 and 1.2 <= w / h <= 1.8, (img, isz)
            if isz != lsz:
                mismatched.append(lab)
    assert all(p.startswith('gta/labels/') for p in mismatched)
    assert len(mismatched) == 2
    assert sorted(mismatched) == manifest['domains']['gta']['size_mismatches']


def test_mapillary_sizes_vary_and_scale_applies(tmp_path):
    m = generate_synthetic_domains(str(tmp_path / 's'), num_images=4,
                                   scale=0.5, domains=['gta', 'mapillary'],
                                   gta_size_mismatches=0, verbose=False)
    assert m['domains']['gta']['image_size'] == [96, 53]
    (lo, hi) = m['domains']['mapillary']['image_size_range']
    assert 80 <= lo[0] <= hi[0] <= 128 and lo != hi
    assert not os.path.exists(tmp_path / 's' / 'cityscapes')


def test_mapillary_v12_layout(tmp_path):
    root = tmp_path / 'm'
    generate_synthetic_domains(str(root), num_images=2,
                               mapillary_layout='v1.2',
                               domains=['mapillary'], verbose=False)
    labels = sorted(os.listdir(root / 'mapillary' / 'validation' / 'labels'))
    images = sorted(os.listdir(root / 'mapillary' / 'validation' / 'images'))
    assert [n[:-4] for n in labels] == [n[:-4] for n in images]
    assert not (root / 'mapillary' / 'validation' / 'v1.2').exists()


def test_deterministic_and_independent_of_nproc(synth, tmp_path):
    root, _ = synth
    again = str(tmp_path / 'again')
    generate_synthetic_domains(again, seed=0, num_images=N, nproc=2,
                               verbose=False)
    assert _digest(again) == _digest(root)
    other = str(tmp_path / 'other')
    generate_synthetic_domains(other, seed=1, num_images=N, nproc=1,
                               verbose=False)
    assert _digest(other) != _digest(root)
    # Not just different names: the GTA pixels differ too.
    a = np.array(Image.open(os.path.join(root, 'gta/images/00001.png')))
    b = np.array(Image.open(os.path.join(other, 'gta/images/00001.png')))
    assert a.shape == b.shape and np.abs(a.astype(int) - b).mean() > 5


def _train_ids(domain, key):
    """Render one sample and return its train-id map and RGB image."""
    rgb, elements, _, _ = render_sample(domain, key, 1.0)
    return element_lut('cityscapes_train_id')[elements], rgb, elements


def test_most_classes_present_and_layout_shared():
    present = {'gta': set(), 'cityscapes': set()}
    for domain in present:
        for i in range(40):
            ids, _, _ = _train_ids(domain, [3, len(domain), 0, i])
            present[domain] |= set(np.unique(ids).tolist())
    for domain, ids in present.items():
        ids.discard(255)
        assert len(ids) >= 17, (domain, sorted(ids))


def test_mapillary_fine_classes_make_mappings_differ():
    mp = element_lut('mapillary_v1_2')
    seen = set()
    for i in range(30):
        _, _, elements = _train_ids('mapillary', [5, 3, 1, i])
        seen |= set(np.unique(mp[elements]).tolist())
    assert {24, 2, 45, 13, 15, 27, 55} <= seen
    assert len(seen & WIDE_ONLY) >= 4, sorted(seen & WIDE_ONLY)
    assert 41 in seen  # manholes: road in the narrow mapping only


def _mean_colour(domain, n=16, cls=0):
    """Mean RGB of train-id ``cls`` pixels over ``n`` rendered samples."""
    acc, cnt = np.zeros(3), 0
    for i in range(n):
        ids, rgb, _ = _train_ids(domain, [11, 0, 0, i])
        m = ids == cls
        acc += rgb[m].sum(0)
        cnt += m.sum()
    return acc / max(cnt, 1)


def test_domain_appearance_differs():
    domains = ['gta', 'cityscapes', 'bdd100k', 'mapillary']
    road = {d: _mean_colour(d, cls=0) for d in domains}
    veg = {d: _mean_colour(d, cls=8) for d in domains}
    for i, a in enumerate(domains):
        for b in domains[i + 1:]:
            dist = np.linalg.norm(road[a] - road[b]) + np.linalg.norm(
                veg[a] - veg[b])
            assert dist > 15, (a, b, road[a], road[b], veg[a], veg[b])
    # Cityscapes is desaturated compared with GTA and Mapillary.
    def sat(c):
        return c.max() - c.min()
    assert sat(veg['cityscapes']) < sat(veg['gta']) < sat(veg['mapillary'])


def test_manifest_and_idempotence(tmp_path, capsys):
    root = str(tmp_path / 'idem')
    m = generate_synthetic_domains(root, num_images=1, domains=['gta'],
                                   gta_size_mismatches=0, verbose=True)
    path = os.path.join(root, 'manifest.json')
    with open(path) as f:
        on_disk = json.load(f)
    assert on_disk == m and m['complete'] is True
    assert m['params']['seed'] == 0 and m['params']['counts'] == {
        'gta': {'all': 1}}
    assert m['domains']['gta']['splits'] == {'all': 1}
    img = os.path.join(root, 'gta', 'images', '00001.png')
    stamp = os.stat(img).st_mtime_ns
    capsys.readouterr()
    again = generate_synthetic_domains(root, num_images=1, domains=['gta'],
                                       gta_size_mismatches=0, verbose=True)
    assert again == m and os.stat(img).st_mtime_ns == stamp
    assert 'skipping' in capsys.readouterr().out
    with pytest.raises(FileExistsError, match='overwrite'):
        generate_synthetic_domains(root, seed=1, num_images=1,
                                   domains=['gta'], gta_size_mismatches=0,
                                   verbose=False)
    new = generate_synthetic_domains(root, seed=1, num_images=2,
                                     domains=['gta'], gta_size_mismatches=0,
                                     overwrite=True, verbose=False)
    assert new['params']['seed'] == 1
    assert sorted(os.listdir(os.path.join(root, 'gta', 'images'))) == [
        '00001.png', '00002.png']
    # An interrupted run (incomplete manifest) is redone without asking.
    on_disk = dict(new, complete=False)
    with open(path, 'w') as f:
        json.dump(on_disk, f)
    redo = generate_synthetic_domains(root, seed=1, num_images=2,
                                      domains=['gta'], gta_size_mismatches=0,
                                      verbose=False)
    assert redo['complete'] is True
    # Data from an older generator version is regenerated without asking.
    old = dict(redo, params=dict(redo['params'], generator_version='0.0'))
    with open(path, 'w') as f:
        json.dump(old, f)
    capsys.readouterr()
    newer = generate_synthetic_domains(root, seed=1, num_images=2,
                                       domains=['gta'], gta_size_mismatches=0,
                                       verbose=True)
    assert 'regenerating' in capsys.readouterr().out
    assert newer == redo


def test_refuses_foreign_data_without_manifest(tmp_path):
    os.makedirs(tmp_path / 'x' / 'gta')
    with pytest.raises(FileExistsError, match='no manifest.json'):
        generate_synthetic_domains(str(tmp_path / 'x'), num_images=1,
                                   domains=['gta'], verbose=False)


@pytest.mark.parametrize('kwargs,match', [
    (dict(mapillary_layout='v2.0'), 'mapillary_layout'),
    (dict(appearance_shift=-1.0), 'appearance_shift'),
    (dict(num_images={'gta': {'val': 3}}), 'unknown splits'),
    (dict(num_images={'kitti': 3}), 'unknown domains'),
    (dict(domains=['kitti']), 'domains'),
    (dict(scale=0), 'scale'),
    (dict(num_images=-1), '>= 0'),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_synthetic_domains(str(tmp_path / 'bad'), verbose=False,
                                   **kwargs)


def test_cli_runs_from_repo_root(tmp_path):
    out = tmp_path / 'cli'
    proc = subprocess.run(
        [sys.executable, 'tools/make_synthetic_domains.py', '--out',
         str(out), '--num-per-split', '1', '--num-gta', '3',
         '--domains', 'gta', 'bdd100k', '--gta-size-mismatches', '1',
         '--nproc', '1'],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'gta/all: 3 images' in proc.stdout
    with open(out / 'manifest.json') as f:
        m = json.load(f)
    assert m['params']['counts'] == {'gta': {'all': 3},
                                     'bdd100k': {'train': 1, 'val': 1}}
    assert len(m['domains']['gta']['size_mismatches']) == 1


def test_appearance_shift_scales_the_targets_global_departures(tmp_path):
    from synthetic_domains.styles import get_style
    assert get_style('cityscapes', 1.0) is get_style('cityscapes')
    assert get_style('gta', 3.0) is get_style('gta')  # the source never moves
    base, far = get_style('bdd100k'), get_style('bdd100k', 2.0)
    assert far.hsv == pytest.approx((2 * base.hsv[0], 1 + 2 * (base.hsv[1] - 1),
                                     1 + 2 * (base.hsv[2] - 1)))
    assert far.contrast == pytest.approx(tuple(1 + 2 * (c - 1) for c in base.contrast))
    assert far.material_hsv == base.material_hsv and far.noise == base.noise
    # Same scene and label, another image; the GTA frame is byte-identical.
    key = [0, 1, 0, 5]
    rgb1, el1, _, _ = render_sample('cityscapes', key, 0.5)
    rgb3, el3, _, _ = render_sample('cityscapes', key, 0.5, 3.0)
    np.testing.assert_array_equal(el1, el3)
    assert np.abs(rgb1.astype(int) - rgb3.astype(int)).mean() > 5
    g1, _, _, _ = render_sample('gta', key, 0.5)
    g3, _, _, _ = render_sample('gta', key, 0.5, 3.0)
    np.testing.assert_array_equal(g1, g3)
    m = generate_synthetic_domains(str(tmp_path / 's'), num_images=1, domains=['gta'],
                                   appearance_shift=3.0, verbose=False)
    assert m['params']['appearance_shift'] == 3.0
    m = generate_synthetic_domains(str(tmp_path / 'd'), num_images=1, domains=['gta'],
                                   verbose=False)
    assert 'appearance_shift' not in m['params']  # older manifests stay valid
