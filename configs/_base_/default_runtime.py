# Runtime shared by every npdg config.
default_scope = 'mmseg'
# Registers npdg's datasets, transforms, metrics and hooks in mmseg's registries
# (and applies npdg's compatibility shims) in every process.
custom_imports = dict(imports=['npdg'], allow_failed_imports=False)
# npdg's runner (npdg/engine/runner.py): resolves the '${name}' settings, converts
# SegFormer attention per head when the model is built, and adds the
# PrunedCheckpointHook; mmseg's tools/train.py and test.py build it via RUNNERS.
runner_type = 'NpdgRunner'
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # The npdg tools switch nccl to gloo on machines without CUDA.
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
tta_model = dict(type='SegTTAModel')
# GFLOPs / parameters of the evaluated model at this input size (C, H, W) are
# printed by tools/test.py and written to its metrics JSON (keys gflops, params_m).
custom_hooks = [
    dict(type='ModelComplexityHook', input_shape=(3, 512, 1024), on_val=False, on_test=True),
]
# Test-time augmentation (tools/test.py --tta): each target's images at six scales
# x two flips, softmax averaged by SegTTAModel; labels stay at their own resolution.
# MultiTargetDataset applies this one pipeline to every target.
tta_img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in tta_img_ratios],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadAnnotations')],
        [dict(type='CheckSegSample', num_classes=19)],
        [dict(type='PackSegInputs')],
    ]),
]
