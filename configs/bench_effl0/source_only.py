# ImageNet benchmark regime (tools/compare.py, the default regime): the source-only
# arm. Starts from the warm start (./pretrain_source.py: EfficientNet-Lite0
# DeepLabV3+ from ImageNet, 3000 source iterations; whole model) and trains 600
# more iterations on synthetic GTA5 with SGD lr 0.01 (poly). 600, not 300: the
# pruned arms prune at 150 and need 450 fine-tune iterations (bar (d), chosen on
# held-out source: 150 fine-tune iterations lose 9.5 points, 450 lose 3.9). Every arm of the regime
# shares this recipe; ./npdg.py and the controls (configs/controls/bench_effl0/)
# only add hooks.
#
#   python tools/train.py configs/bench_effl0/source_only.py
#   python tools/test.py configs/bench_effl0/source_only.py work_dirs/source_only/iter_600.pth
_base_ = ['./pretrain_source.py']
# The checkpoint of the warm start (tools/train.py configs/bench_effl0/pretrain_source.py --work-dir
# work_dirs/pretrain_source_effl0 writes it here, apart from the from-scratch regime's
# work_dirs/pretrain_source; tools/compare.py passes the one it made).
warm_start = 'work_dirs/pretrain_source_effl0/iter_3000.pth'
load_from = '${warm_start}'
max_iters = 600
default_hooks = dict(checkpoint=dict(interval=150, max_keep_ckpts=2))
