"""Train DSP's image decoder and style VAE on folders of content and style images.

Writes ``OUT/decoder.pth`` (decoder + style VAE state dicts + config, plus
optimiser/sampler state for resuming) and ``OUT/train_dsp.log``. Re-running
the same command continues from the last save.

Examples:
    python tools/train_dsp.py --content-dir data/gta/images --style-dir STYLES \\
        --vgg checkpoints/vgg19-dcbb9e9d.pth --out work_dirs/dsp --iters 160000
    # smoke test only (random VGG, meaningless result):
    python tools/train_dsp.py --content-dir A --style-dir B --random-vgg --out /tmp/dsp \\
        --iters 2 --size 32 --batch 2 --device cpu
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import npdg  # noqa: E402,F401  (compat shims + registration before mmseg)
from npdg.perturbation.dsp_training import DEFAULT_WEIGHTS, train_dsp  # noqa: E402


def parse_args(argv=None):
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` when ``None``.

    Returns:
        argparse.Namespace: Parsed arguments.
    """
    parser = argparse.ArgumentParser(description='Train the DSP decoder and style VAE')
    parser.add_argument('--content-dir', required=True, help='folder of content images')
    parser.add_argument('--style-dir', required=True, help='folder of style images')
    parser.add_argument('--vgg', help='ImageNet VGG-19 weights (torchvision or mmcv layout)')
    parser.add_argument('--random-vgg', action='store_true',
                        help='random VGG weights: SMOKE TESTS ONLY, the result is meaningless')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--iters', type=int, required=True, help='total iterations')
    parser.add_argument('--size', type=int, default=256, help='crop side (default 256)')
    parser.add_argument('--resize', type=int, default=None,
                        help='shorter side before cropping (default 2*size; 0 keeps size)')
    parser.add_argument('--batch', type=int, default=8, help='batch size (default 8)')
    parser.add_argument('--lr', type=float, default=1e-4, help='Adam learning rate')
    parser.add_argument('--lr-decay', type=float, default=5e-5,
                        help='lr_t = lr / (1 + lr_decay * t)')
    for name, value in DEFAULT_WEIGHTS.items():
        parser.add_argument(f'--{name}-weight', type=float, default=value,
                            help=f'weight of the {name} loss (default {value})')
    parser.add_argument('--latent-dim', type=int, default=512, help='VAE latent size')
    parser.add_argument('--hidden-dim', type=int, default=1024, help='VAE hidden width')
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda if any)')
    parser.add_argument('--workers', type=int, default=0, help='data loading workers')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--log-interval', type=int, default=10)
    parser.add_argument('--save-interval', type=int, default=1000)
    parser.add_argument('--no-resume', action='store_true',
                        help='start afresh even if OUT/decoder.pth exists')
    args = parser.parse_args(argv)
    if bool(args.vgg) == args.random_vgg:
        parser.error('give exactly one of --vgg PATH and --random-vgg')
    if args.iters < 1 or args.size < 8 or args.batch < 1:
        parser.error('--iters and --batch must be >= 1 and --size >= 8')
    return args


def main(argv=None):
    """Run the training; returns the checkpoint path."""
    args = parse_args(argv)
    weights = {name: getattr(args, f'{name}_weight') for name in DEFAULT_WEIGHTS}
    return train_dsp(
        args.content_dir, args.style_dir, args.out, args.iters, vgg=args.vgg,
        random_vgg=args.random_vgg, size=args.size, resize=args.resize, batch=args.batch,
        lr=args.lr, lr_decay=args.lr_decay, weights=weights, latent_dim=args.latent_dim,
        hidden_dim=args.hidden_dim, device=args.device, workers=args.workers, seed=args.seed,
        log_interval=args.log_interval, save_interval=args.save_interval,
        resume=not args.no_resume)


if __name__ == '__main__':
    main()
