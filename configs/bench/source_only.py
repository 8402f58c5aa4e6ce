# Benchmark regime (benchmarks/accuracy.py): the source-only arm. Starts from the
# warm start (configs/bench/pretrain_source.py, the stand-in for ImageNet
# weights; whole model) and trains 600 more iterations on synthetic GTA5 with
# SGD lr 0.01 (poly). Every arm of the benchmark shares this recipe; the NPDG
# recipe (./npdg.py) and its controls (configs/controls/bench_r18h/) only add hooks.
#
#   python tools/train.py configs/bench/source_only.py
#   python tools/test.py configs/bench/source_only.py work_dirs/source_only/iter_600.pth
_base_ = ['./pretrain_source.py']
# The checkpoint of the warm start (tools/train.py configs/bench/pretrain_source.py
# writes it here; benchmarks/accuracy.py passes the one it made).
warm_start = 'work_dirs/pretrain_source/iter_6000.pth'
load_from = '${warm_start}'
max_iters = 600
lr = 0.01
