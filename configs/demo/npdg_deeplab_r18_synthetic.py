# CPU demo of NPDG: the demo baseline's recipe (configs/demo/deeplab_r18_synthetic.py:
# same model, data, 800 iterations, optimizer) plus the NPDG hooks.
#
#   iterations   0 ...... 500 ............ 800
#                sparse training  | prune | fine-tune (no sparsity term)
#   style perturbation (AdvStyle, adversarial) on half of every batch throughout.
#
# The settings below are the knobs: the hooks refer to them as '${name}', so
# `--cfg-options prune_ratio=0.5` (or a child config setting `prune_ratio = 0.5`)
# changes what runs, and the value that ran is in the work dir's config and in
# the pruning report.
_base_ = ['./deeplab_r18_synthetic.py', '../_base_/npdg_hooks.py']

perturbation = dict(type='AdvStyle')  # per-image RGB mean/std, adversarial (no pretrained net)
stylized_ratio = 0.5    # share of every batch re-styled (rest stays clean)
ascent_steps = 1        # gradient-ascent steps on the style per iteration
lam = 0.4               # w = lam * U + (1 - lam) * B (paper's best)
num_styles = 4          # K styles per content image for the statistics
stats_interval = 50     # statistics refresh period (iterations)
sparsity = 2e-2         # s: proximal shrink lr_t * s * omega per step (~0.14 over 500 it)
prune_iters = [500]     # prune after these iteration counts (several = iterative)
prune_ratio = 0.3       # r: fraction of all units (channel groups + heads) removed
target_flops_ratio = None  # or a FLOPs budget instead of r (with prune_ratio=None)
threshold = None        # t: only units with |gamma| < t may go (None: ratio only)

stats_batches = 8       # batches of 2 images per refresh: rank agreement of two estimates
#                         >= 0.8 from 8 on (benchmarks/results/stats_stability.md); sums
#                         accumulate across refreshes
trace_shape = (3, 64, 64)   # input that traces the dependency graph
flops_input = (3, 128, 256)  # (C, H, W) at which FLOPs are counted and reported
# The hooks: configs/_base_/npdg_hooks.py (named, reused by configs/controls/).
custom_hooks = ['${complexity_hook}', '${style_hook}', '${statistics_hook}',
                '${sparsity_hook}', '${pruning_hook}', '${checkpoint_hook}']
