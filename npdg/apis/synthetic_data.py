"""Prepare the synthetic domains exactly as a user prepares the real ones."""
import os.path as osp

from mmengine.logging import print_log


def write_holdout_split(gta_root, val_fraction=0.15):
    """Write ``train.txt``/``val.txt`` frame lists for synthetic GTA5.

    The last ``val_fraction`` of the frames (by name) are held out so the
    source-domain accuracy can be measured on frames the model never saw.

    Args:
        gta_root (str): GTA5 root holding ``images/``.
        val_fraction (float): Fraction of frames to hold out.

    Returns:
        tuple[int, int]: Number of train and val frames.
    """
    from npdg.converters.common import write_holdout_lists
    return write_holdout_lists(gta_root, 'images', val_fraction)


def prepare_synthetic_domains(root='data/synthetic', seed=0, nproc=2, **gen_kwargs):
    """Generate (if needed) and convert the synthetic domains.

    Runs the same converters as the real data: GTA5 label ids -> train ids,
    Cityscapes ``labelIds`` -> ``labelTrainIds``, Mapillary 66 -> 19 classes
    (narrow mapping); BDD100K needs no conversion.

    Args:
        root (str): Output root; domains go to ``root/<name>``.
        seed (int): Generator seed.
        nproc (int): Worker processes for generation and conversion.
        **gen_kwargs: Passed to the generator.

    Returns:
        dict: The generator's manifest.
    """
    from npdg.converters.cityscapes import convert_cityscapes
    from npdg.converters.gta import convert_gta
    from npdg.converters.mapillary import convert_mapillary
    from synthetic_domains import generate_synthetic_domains

    manifest = generate_synthetic_domains(root, seed=seed, nproc=nproc, **gen_kwargs)
    made = set(manifest['domains'])
    print_log('Converting the synthetic domains with the real converters ...', logger='current')
    if 'cityscapes' in made:
        convert_cityscapes(osp.join(root, 'cityscapes'), nproc=nproc)
    if 'mapillary' in made:
        # training (when made): the oracle's train split
        counts = manifest['domains']['mapillary']['splits']
        convert_mapillary(osp.join(root, 'mapillary'), mapping='narrow', nproc=nproc,
                          splits=[s for s in ('training', 'validation') if counts.get(s)])
    if 'synthia' in made:
        from npdg.converters.synthia import convert_synthia, write_holdout_lists
        convert_synthia(osp.join(root, 'synthia'), nproc=nproc)
        n_train, n_val = write_holdout_lists(osp.join(root, 'synthia'))
        print_log(f'Synthetic SYNTHIA split: {n_train} train / {n_val} held-out frames.',
                  logger='current')
    if 'gta' in made:
        convert_gta(osp.join(root, 'gta'), nproc=nproc)
        n_train, n_val = write_holdout_split(osp.join(root, 'gta'))
        print_log(f'Synthetic GTA5 split: {n_train} train / {n_val} held-out frames.',
                  logger='current')
    return manifest
