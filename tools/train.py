"""Train a segmentor (mmseg's ``tools/train.py`` with npdg registered).

Example:
    python tools/train.py configs/npdg/deeplab_gta.py
    python tools/train.py CONFIG --resume            # latest checkpoint in work dir
    python tools/train.py CONFIG --resume PATH.pth   # a given checkpoint
    python tools/train.py CONFIG --amp               # fp16 on CUDA, bfloat16 on the CPU

--resume reads the checkpoint before the run starts (npdg.utils.resume): it
is taken from the work dir itself (``last_checkpoint`` names it relative to
the work dir; one outside it, as in a copied work dir, is not followed); a
damaged one gives way to the newest intact checkpoint with a warning
(``resume_damaged='error'``: stop instead); and a changed setting whose effect
the checkpoint already fixed (the ratio of a prune that is done, the sparsity
of a finished sparse phase, ...) stops the run before it writes anything
(``resume_settings='warn'``: continue with a warning). Both are config
options, e.g. ``--cfg-options resume_settings=warn``.
"""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mmengine.logging import print_log  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmseg.registry import RUNNERS  # noqa: E402

import npdg  # noqa: E402,F401  (compat shims + registration before mmseg)
from npdg.amp import enable_amp as _enable_amp  # noqa: E402
from npdg.compat import flush_denormals  # noqa: E402
from npdg.utils.config import add_common_args, check_eval_datasets, ensure_hook, load_config  # noqa: E402
from npdg.utils.resume import check_resume_settings, resolve_resume, resume_option  # noqa: E402
from npdg.utils.workdir_lock import WorkDirLock  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor (npdg)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', const='auto', default=None,
        help='resume from the latest checkpoint in the work dir, or from a given file')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: float16 + loss scaler on CUDA, '
                        'bfloat16 autocast on the CPU')
    add_common_args(parser)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def enable_amp(cfg):
    """Switch the optimizer wrapper to AMP (npdg.amp.enable_amp).

    CUDA: mmengine's AmpOptimWrapper (float16 autocast, dynamic loss scaler).
    CPU: npdg's CPUAmpOptimWrapper (bfloat16 autocast, no loss scaler).
    """
    before = cfg.optim_wrapper.get('type', 'OptimWrapper')
    kind = _enable_amp(cfg)
    if kind == before:
        print_log(f'AMP is already enabled in the config ({kind}).', logger='current',
                  level=logging.WARNING)
    else:
        print_log(f'[npdg] --amp: optim_wrapper.type={kind}', logger='current')


def shutdown_distributed():
    """Leave the process group together (gloo aborts a process that exits first)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def prepare_resume(cfg, explicit=None):
    """Choose and check the checkpoint of ``--resume`` before the run starts.

    The file is resolved in the work dir (:func:`npdg.utils.resume.
    resolve_resume`), read once (a damaged one falls back or stops, as
    ``resume_damaged`` says), and its settings are compared with the run's
    (with ``resume_settings='error'`` a conflict stops here, before the
    Runner dumps its config into the work dir). ``cfg.load_from`` is then set
    to the file, so mmengine resumes exactly from it.

    Args:
        cfg (mmengine.Config): The resolved config; changed in place.
        explicit (str, optional): ``--resume PATH``; None: the latest.
    """
    path, checkpoint, notes = resolve_resume(cfg.work_dir, explicit,
                                             resume_option(cfg, 'resume_damaged'))
    for note in notes:
        print_log(note, logger='current', level=logging.WARNING)
    if path is None:
        print_log(f'[npdg] --resume: no checkpoint in {cfg.work_dir} yet; training from the '
                  'start.', logger='current', level=logging.WARNING)
        cfg.resume, cfg.load_from = False, None
        return
    print_log(f'[npdg] --resume: resuming from {path}', logger='current')
    if checkpoint is not None and resume_option(cfg, 'resume_settings') == 'error':
        # raises on a conflict; the run's PrunedCheckpointHook logs the rest
        check_resume_settings(cfg, checkpoint, path, 'error', cfg.work_dir, log=False)
    cfg.resume, cfg.load_from = True, path


def main():
    args = parse_args()
    flush_denormals()  # CPU speed (npdg.compat.flush_denormals)
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if args.amp:
        enable_amp(cfg)
    # bit-exact resume; pruned checkpoints rebuilt and loaded strictly
    ensure_hook(cfg, 'RNGStateHook')
    ensure_hook(cfg, 'PrunedCheckpointHook')
    for key in ('resume_settings', 'resume_damaged'):
        resume_option(cfg, key)  # a bad value fails now
    # The val (source) and test (target) sets are checked now, not after training.
    check_eval_datasets(cfg)
    # One run per work dir: a second run into it refuses to start (a crashed
    # run's lock is detected by its dead PID and taken over).
    with WorkDirLock(cfg.work_dir):
        if args.resume is not None:
            prepare_resume(cfg, None if args.resume == 'auto' else args.resume)
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        runner.train()
    shutdown_distributed()


if __name__ == '__main__':
    main()
