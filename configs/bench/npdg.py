# Benchmark regime (benchmarks/accuracy.py): NPDG on the source-only recipe
# (./source_only.py: warm start, 600 iterations, SGD lr 0.01 poly) plus the NPDG hooks.
#
#   iterations   0 ......... 400 ......... 600
#                sparse training | prune | fine-tune (no sparsity term)
#   style perturbation (AdvStyle) on half of every batch throughout.
#
# How each setting was chosen (no target label was used): lam = 0.4 and
# stylized_ratio = 0.5 are the paper's; sparsity s is set so that the total
# proximal shrink over the sparse phase at omega = 1, s * sum(lr_t), equals the
# r-quantile of |gamma| over the units of the warm start (benchmarks/choose_sparsity.py
# prints the figures); prune_ratio r = 0.3 as in the demo.
_base_ = ['./source_only.py', '../_base_/npdg_hooks.py']

perturbation = dict(type='AdvStyle')
stylized_ratio = 0.5
ascent_steps = 1
lam = 0.4
num_styles = 4
stats_interval = 50
sparsity = 2e-2
prune_iters = [400]
prune_ratio = 0.3
target_flops_ratio = None
threshold = None

stats_batches = 1
trace_shape = (3, 64, 64)
flops_input = (3, 128, 256)
custom_hooks = ['${complexity_hook}', '${style_hook}', '${statistics_hook}',
                '${sparsity_hook}', '${pruning_hook}', '${checkpoint_hook}']
