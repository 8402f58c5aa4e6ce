"""The other source settings train and test end to end on their synthetic miniatures.

SYNTHIA as the source (-> Cityscapes, BDD100K, Mapillary) and Cityscapes as the source (real
to real: -> BDD100K, Mapillary): each real recipe (DeepLabV3+ R50, AdvStyle instead of DSP
since DSP needs weight files) trains a few iterations with a prune step, then is tested
on every other target; in process (the CLIs themselves are guarded by tests/test_tools.py).
"""
import json
import os
import os.path as osp

import pytest

from npdg.apis import experiment

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='module')
def real_source_data(tmp_path_factory):
    """Synthetic domains with SYNTHIA and a Cityscapes *train* split (the sources here)."""
    from npdg.apis.synthetic_data import prepare_synthetic_domains
    root = tmp_path_factory.mktemp('sources') / 'data'
    prepare_synthetic_domains(str(root), seed=2, nproc=1, num_images=dict(
        gta=4, cityscapes=dict(train=6, val=2), bdd100k=dict(train=0, val=2),
        mapillary=dict(training=0, validation=2), synthia=8))
    return root


def small_run_config(config, data_root, work_dir, iters=4, prune_at=2):
    """``config`` with AdvStyle (DSP needs weight files), as a small run on the miniature."""
    child = osp.join(work_dir, 'child.py')
    os.makedirs(work_dir, exist_ok=True)
    with open(child, 'w') as f:
        f.write(f"_base_ = [{osp.join(ROOT, config)!r}]\n"
                "perturbation = dict(_delete_=True, type='AdvStyle')\n")
    return experiment.recipe_run_config(child, data_root, work_dir, iters, prune_at, small=True)




SOURCES = {  # recipe: (source dataset, its folder, the targets tested)
    'configs/npdg/deeplab_cityscapes.py': ('CityscapesDataset', 'cityscapes',
                                           {'bdd100k', 'mapillary'}),
    'configs/npdg/deeplab_synthia.py': ('SynthiaDataset', 'synthia',
                                        {'cityscapes', 'bdd100k', 'mapillary'}),
}


@pytest.mark.parametrize('config', sorted(SOURCES))
def test_source_trains_prunes_and_tests_on_the_other_targets(config, real_source_data,
                                                              tmp_path):
    source_type, folder, targets = SOURCES[config]
    work = str(tmp_path / 'run')
    cfg = small_run_config(config, str(real_source_data), work)
    from mmengine.config import Config
    experiment.train(Config.fromfile(cfg), work)
    steps = json.load(open(osp.join(work, 'pruning', 'pruning_report.json')))['steps']
    assert [s['iter'] for s in steps] == [2]
    assert steps[0]['gflops_after'] < 0.8 * steps[0]['gflops_before']
    # the source really is the recipe's dataset, read from the miniature
    train = Config.fromfile(cfg).train_dataloader.dataset
    assert train.type == source_type
    assert train.data_root == osp.join(str(real_source_data), folder)
    metrics = experiment.test(Config.fromfile(cfg), osp.join(work, 'iter_4.pth'),
                              str(tmp_path / 't'))
    assert {k[:-len('/mIoU')] for k in metrics if k.endswith('/mIoU')} == targets
    assert metrics['gflops'] == pytest.approx(steps[0]['gflops_after'])
