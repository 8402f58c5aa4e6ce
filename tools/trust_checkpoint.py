"""Record checkpoint files as trusted, so npdg unpickles them fully.

npdg unpickles a local checkpoint fully only when npdg wrote it or you named
it (unpickling can run arbitrary code); anything else goes through torch's
safe loader. Checkpoints from your own npdg runs are recorded automatically.
Use this for a checkpoint you got elsewhere and trust, e.g. one written by
plain MMSeg or by npdg on another machine:

    python tools/trust_checkpoint.py work_dirs/colleague/iter_40000.pth

It records the file's SHA-256 in ``.npdg_trusted.json`` beside it (a changed
file is no longer trusted). ``NPDG_TRUSTED_CHECKPOINTS=FILE_OR_DIR[:...]``
does the same for one session.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from npdg.utils.checkpoint_io import MANIFEST, record_trusted  # noqa: E402


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description='Trust checkpoint files (npdg).')
    parser.add_argument('files', nargs='+', help='checkpoint files you trust')
    args = parser.parse_args(argv)
    for path in args.files:
        if not osp.isfile(path):
            parser.error(f'{path!r} is not a file.')
        record_trusted(path)
        print(f'trusted: {path} (recorded in {osp.join(osp.dirname(path) or ".", MANIFEST)})')


if __name__ == '__main__':
    main()
