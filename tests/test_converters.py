"""Converters on hand-made label PNGs in their real encodings."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import npdg  # noqa: F401
from npdg.converters.cityscapes import convert_cityscapes
from npdg.converters.common import ConverterInputError, read_label_png
from npdg.converters.gta import convert_gta, write_gta_split_lists
from npdg.converters.mapillary import convert_mapillary

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# Hand-typed from the data spec (not from npdg.datasets.label_maps).
CS_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
NARROW = {13: 0, 24: 0, 41: 0, 2: 1, 15: 1, 17: 2, 6: 3, 3: 4, 45: 5, 47: 5,
          48: 6, 50: 7, 30: 8, 29: 9, 27: 10, 19: 11, 20: 12, 21: 12, 22: 12,
          55: 13, 61: 14, 54: 15, 58: 16, 57: 17, 52: 18}
WIDE = {13: 0, 24: 0, 7: 0, 8: 0, 10: 0, 14: 0, 23: 0, 2: 1, 15: 1, 9: 1,
        11: 1, 17: 2, 6: 3, 3: 4, 45: 5, 47: 5, 44: 5, 48: 6, 50: 7, 46: 7,
        49: 7, 30: 8, 29: 9, 27: 10, 19: 11, 20: 12, 21: 12, 22: 12, 55: 13,
        61: 14, 54: 15, 58: 16, 57: 17, 52: 18}


def expected(ids: np.ndarray, table: dict) -> np.ndarray:
    """Map ids pixel by pixel with a plain dict (reference)."""
    out = np.full(ids.shape, 255, np.uint8)
    for (r, c), v in np.ndenumerate(ids):
        out[r, c] = table.get(int(v), 255)
    return out


def save_palettised(path, ids):
    """Save ids as a 'P' PNG whose colours are unrelated to the indices."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = Image.fromarray(ids.astype(np.uint8), mode='P')
    palette = []
    for i in range(256):
        palette += [(i * 37 + 11) % 256, (i * 91 + 5) % 256, (250 - i) % 256]
    img.putpalette(palette)
    img.save(path)


def save_gray(path, ids):
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(ids.astype(np.uint8), mode='L').save(path)


def save_rgb(path, h, w):
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 80, np.uint8), mode='RGB').save(path)


def read_png(path):
    with Image.open(path) as img:
        assert img.mode == 'L'
        return np.array(img)


# ---------------------------------------------------------------- GTA5 ----
GTA_IDS = np.arange(36, dtype=np.uint8).reshape(6, 6)  # every id 0..33 + 2


def make_gta(root):
    """00001 palettised, 00004 grayscale, 00002 size mismatch, 00003 image
    without label, 00005 label without image."""
    save_rgb(f'{root}/images/00001.png', 6, 6)
    save_palettised(f'{root}/labels/00001.png', GTA_IDS)
    save_rgb(f'{root}/images/00002.png', 6, 6)
    save_palettised(f'{root}/labels/00002.png', np.full((7, 6), 7))
    save_rgb(f'{root}/images/00003.png', 6, 6)
    save_rgb(f'{root}/images/00004.png', 2, 3)
    save_gray(f'{root}/labels/00004.png', np.array([[26, 7, 0], [33, 1, 24]]))
    save_palettised(f'{root}/labels/00005.png', np.full((6, 6), 7))
    return root


def test_palettised_png_reads_as_indices(tmp_path):
    save_palettised(str(tmp_path / 'a.png'), GTA_IDS)
    with Image.open(tmp_path / 'a.png') as img:
        assert img.mode == 'P'
        assert not np.array_equal(np.array(img.convert('L')), GTA_IDS)
    np.testing.assert_array_equal(read_label_png(str(tmp_path / 'a.png')),
                                  GTA_IDS)


def test_gta_converts_every_id_and_reports_skips(tmp_path):
    root = make_gta(str(tmp_path / 'gta'))
    summary = convert_gta(root)
    out1 = read_png(f'{root}/labels/00001_labelTrainIds.png')
    np.testing.assert_array_equal(out1, expected(GTA_IDS, CS_TRAIN_ID))
    np.testing.assert_array_equal(
        read_png(f'{root}/labels/00004_labelTrainIds.png'),
        [[13, 0, 255], [18, 255, 11]])
    assert not osp.exists(f'{root}/labels/00002_labelTrainIds.png')
    assert summary.converted == 2 and summary.already_done == 0
    assert [n for n, _ in summary.skipped] == ['00002', '00003', '00005']
    reasons = dict(summary.skipped)
    assert reasons['00002'] == 'size mismatch: image 6x6, label 6x7'
    assert reasons['00003'] == 'image without label'
    assert reasons['00005'] == 'label without image'
    lines = [line for line in open(f'{root}/skipped_frames.txt')
             if not line.startswith('#')]
    assert lines == ['00002\tsize mismatch: image 6x6, label 6x7\n',
                     '00003\timage without label\n',
                     '00005\tlabel without image\n']
    text = summary.format()
    assert '2 converted, 0 already done, 3 skipped' in text
    assert '00002: size mismatch' in text
    # ids 34 and 35 are not label ids: reported, mapped to 255
    assert any('value 34' in w for w in summary.warnings)
    assert any('value 35' in w for w in summary.warnings)


def test_gta_idempotent_and_overwrite(tmp_path):
    root = make_gta(str(tmp_path / 'gta'))
    convert_gta(root)
    out_path = f'{root}/labels/00001_labelTrainIds.png'
    mtime = os.stat(out_path).st_mtime_ns
    again = convert_gta(root)
    assert (again.converted, again.already_done, len(again.skipped)) == \
        (0, 2, 3)
    assert os.stat(out_path).st_mtime_ns == mtime
    redo = convert_gta(root, overwrite=True)
    assert (redo.converted, redo.already_done) == (2, 0)


def test_gta_parallel_matches_serial(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root)
    for i in range(6, 10):
        save_rgb(f'{root}/images/0000{i}.png', 6, 6)
        save_palettised(f'{root}/labels/0000{i}.png', (GTA_IDS + i) % 36)
    summary = convert_gta(root, nproc=2)
    assert summary.converted == 6
    for i in range(6, 10):
        np.testing.assert_array_equal(
            read_png(f'{root}/labels/0000{i}_labelTrainIds.png'),
            expected((GTA_IDS + i) % 36, CS_TRAIN_ID))


def test_gta_bad_labels_are_skipped_or_flagged(tmp_path):
    root = str(tmp_path / 'gta')
    save_rgb(f'{root}/images/00001.png', 2, 2)
    save_rgb(f'{root}/labels/00001.png', 2, 2)  # colour-coded label
    save_rgb(f'{root}/images/00002.png', 2, 2)
    save_gray(f'{root}/labels/00002.png', np.array([[0, 18], [255, 5]]))
    save_rgb(f'{root}/images/00003.png', 2, 2)
    with open(f'{root}/labels/00003.png', 'wb') as f:
        f.write(b'not a png')
    summary = convert_gta(root)
    reasons = dict(summary.skipped)
    assert 'RGB image' in reasons['00001']
    assert 'cannot read' in reasons['00003']
    assert summary.converted == 1
    assert any('looks like train ids' in w and '00002' in w
               for w in summary.warnings)


def test_gta_input_errors_name_the_path(tmp_path):
    with pytest.raises(ConverterInputError, match='nowhere'):
        convert_gta(str(tmp_path / 'nowhere'))
    save_rgb(f'{tmp_path}/gta/images/00001.png', 2, 2)
    with pytest.raises(ConverterInputError, match='gta/labels'):
        convert_gta(str(tmp_path / 'gta'))
    os.makedirs(tmp_path / 'gta' / 'labels')
    with pytest.raises(ConverterInputError, match='No GTA5 frame'):
        convert_gta(str(tmp_path / 'gta'))


def test_gta_split_mat(tmp_path):
    from scipy.io import savemat
    root = make_gta(str(tmp_path / 'gta'))
    mat = str(tmp_path / 'split.mat')
    savemat(mat, {'trainIds': np.array([[1], [2], [4]]),
                  'valIds': np.array([[3]]), 'testIds': np.array([[5]])})
    counts = write_gta_split_lists(root, mat)
    assert counts == {'train': 3, 'val': 1, 'test': 1}
    assert open(f'{root}/train.txt').read() == '00001\n00002\n00004\n'
    assert open(f'{root}/val.txt').read() == '00003\n'
    assert open(f'{root}/test.txt').read() == '00005\n'
    savemat(mat, {'trainIds': np.array([[1]])})
    with pytest.raises(ConverterInputError, match='valIds'):
        write_gta_split_lists(root, mat)
    with pytest.raises(ConverterInputError, match='not found'):
        write_gta_split_lists(root, str(tmp_path / 'absent.mat'))


def test_gta_cli_runs_from_repo_root(tmp_path):
    root = make_gta(str(tmp_path / 'gta'))
    proc = subprocess.run(
        [sys.executable, 'tools/dataset_converters/gta.py', root,
         '--nproc', '2'], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert '2 converted, 0 already done, 3 skipped' in proc.stdout
    assert osp.isfile(f'{root}/labels/00001_labelTrainIds.png')


def test_gta_cli_input_error_exit_status(tmp_path, capsys):
    assert load_cli('gta').main([str(tmp_path / 'missing')]) == 2
    assert 'missing' in capsys.readouterr().err


def load_cli(name):
    """Import tools/dataset_converters/<name>.py as a module."""
    path = osp.join(REPO, 'tools', 'dataset_converters', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'cli_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------- Cityscapes ----
CS_IDS = np.arange(36, dtype=np.uint8).reshape(4, 9) % 34


def make_cityscapes(root):
    stem = f'{root}/gtFine/val/frankfurt/frankfurt_000000_000294'
    save_gray(stem + '_gtFine_labelIds.png', CS_IDS)
    stem = f'{root}/gtFine/train/aachen/aachen_000000_000019'
    save_gray(stem + '_gtFine_labelIds.png', CS_IDS[::-1])
    return root


def test_cityscapes_converts_all_splits(tmp_path):
    root = make_cityscapes(str(tmp_path / 'cs'))
    summary = convert_cityscapes(root)
    assert (summary.converted, summary.already_done) == (2, 0)
    out = read_png(f'{root}/gtFine/val/frankfurt/'
                   'frankfurt_000000_000294_gtFine_labelTrainIds.png')
    np.testing.assert_array_equal(out, expected(CS_IDS, CS_TRAIN_ID))
    out = read_png(f'{root}/gtFine/train/aachen/'
                   'aachen_000000_000019_gtFine_labelTrainIds.png')
    np.testing.assert_array_equal(out, expected(CS_IDS[::-1], CS_TRAIN_ID))
    assert summary.warnings == []
    again = convert_cityscapes(root)
    assert (again.converted, again.already_done) == (0, 2)


def test_cityscapes_splits_and_errors(tmp_path):
    root = make_cityscapes(str(tmp_path / 'cs'))
    summary = convert_cityscapes(root, splits=['val'])
    assert summary.converted == 1
    assert not osp.exists(f'{root}/gtFine/train/aachen/'
                          'aachen_000000_000019_gtFine_labelTrainIds.png')
    with pytest.raises(ConverterInputError, match='gtFine/test'):
        convert_cityscapes(root, splits=['test'])
    with pytest.raises(ConverterInputError, match='gtFine'):
        convert_cityscapes(str(tmp_path))
    os.makedirs(tmp_path / 'empty' / 'gtFine' / 'val')
    with pytest.raises(ConverterInputError, match='No \\*_gtFine_labelIds'):
        convert_cityscapes(str(tmp_path / 'empty'))


def test_cityscapes_cli(tmp_path, capsys):
    root = make_cityscapes(str(tmp_path / 'cs'))
    assert load_cli('cityscapes').main([root, '--splits', 'train']) == 0
    assert '1 converted' in capsys.readouterr().out


# ------------------------------------------------------------ Mapillary ----
MAP_IDS = np.arange(66, dtype=np.uint8).reshape(6, 11)


@pytest.mark.parametrize('layout', ['validation/v1.2/labels',
                                    'validation/labels'])
@pytest.mark.parametrize('mapping,table', [('narrow', NARROW),
                                           ('wide', WIDE)])
def test_mapillary_both_layouts_and_mappings(tmp_path, layout, mapping,
                                             table):
    root = str(tmp_path / 'mapillary')
    save_palettised(f'{root}/{layout}/a.png', MAP_IDS)
    save_palettised(f'{root}/{layout}/b.png', MAP_IDS[::-1, ::-1])
    summaries = convert_mapillary(root, mapping=mapping)
    assert summaries['validation'].converted == 2
    out_dir = f'{root}/validation/labels_cs19_{mapping}'
    np.testing.assert_array_equal(read_png(f'{out_dir}/a.png'),
                                  expected(MAP_IDS, table))
    np.testing.assert_array_equal(read_png(f'{out_dir}/b.png'),
                                  expected(MAP_IDS[::-1, ::-1], table))
    record = json.load(open(f'{out_dir}/mapping.json'))
    assert record['mapping'] == mapping
    assert {e['id']: e['train_id'] for e in record['table']} == \
        {i: table.get(i, 255) for i in range(66)}
    again = convert_mapillary(root, mapping=mapping)['validation']
    assert (again.converted, again.already_done) == (0, 2)


def test_mapillary_training_split_and_errors(tmp_path):
    root = str(tmp_path / 'mapillary')
    save_palettised(f'{root}/training/v1.2/labels/t.png', MAP_IDS)
    with pytest.raises(ConverterInputError) as err:
        convert_mapillary(root, splits=['validation', 'training'])
    message = str(err.value)
    assert 'validation/v1.2/labels' in message
    assert 'validation/labels' in message
    assert not osp.exists(f'{root}/training/labels_cs19_narrow')
    summaries = convert_mapillary(root, splits=['training'])
    assert summaries['training'].converted == 1
    with pytest.raises(ConverterInputError, match='medium'):
        convert_mapillary(root, mapping='medium', splits=['training'])
    with pytest.raises(ConverterInputError, match='nowhere'):
        convert_mapillary(str(tmp_path / 'nowhere'))


def test_mapillary_refuses_stale_table(tmp_path):
    root = str(tmp_path / 'mapillary')
    save_palettised(f'{root}/validation/labels/a.png', MAP_IDS)
    convert_mapillary(root)
    path = f'{root}/validation/labels_cs19_narrow/mapping.json'
    record = json.load(open(path))
    record['table'][41]['train_id'] = 255
    json.dump(record, open(path, 'w'))
    with pytest.raises(ConverterInputError, match='--overwrite'):
        convert_mapillary(root)
    redo = convert_mapillary(root, overwrite=True)['validation']
    assert redo.converted == 1
    assert json.load(open(path))['table'][41]['train_id'] == 0


def test_mapillary_unknown_values_warned(tmp_path, capsys):
    root = str(tmp_path / 'mapillary')
    save_palettised(f'{root}/validation/labels/a.png',
                    np.array([[13, 70], [65, 0]]))
    assert load_cli('mapillary').main([root, '--mapping', 'wide']) == 0
    out = capsys.readouterr().out
    assert '1 converted' in out and 'value 70' in out
    np.testing.assert_array_equal(
        read_png(f'{root}/validation/labels_cs19_wide/a.png'),
        [[0, 255], [255, 255]])
