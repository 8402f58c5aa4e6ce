"""Pixel-wise knowledge distillation for the fine-tune after a prune (plain PyTorch).

The loss is Hinton et al.'s soft-target term applied to every pixel of the
segmentation logits: with student logits ``s`` and teacher logits ``t`` of
shape ``(N, C, H, W)`` and temperature ``T``,

    L = weight * T^2 * mean over the N*H*W pixels of KL(softmax(t / T) || softmax(s / T)).

Its gradient with respect to ``s`` has a closed form,

    dL/ds = weight * T * (softmax(s / T) - softmax(t / T)) / (N * H * W),

which :class:`npdg.hooks.DistillationHook` adds to the gradient that reaches
the student's logits in the training step's own backward pass (the same as
adding ``L`` to the loss, without a second graph).
"""
import torch
import torch.nn.functional as F


def _check(student, teacher):
    if student.dim() != 4 or student.shape != teacher.shape:
        raise ValueError(f'distillation: student and teacher logits must both be (N, C, H, W) of '
                         f'one shape, got {tuple(student.shape)} and {tuple(teacher.shape)}.')


def pixel_kd_loss(student, teacher, temperature=1.0, weight=1.0):
    """The distillation loss ``L`` (differentiable in ``student``).

    Args:
        student (Tensor): Student logits ``(N, C, H, W)``.
        teacher (Tensor): Teacher logits of the same shape (no gradient taken).
        temperature (float): ``T`` (> 0).
        weight (float): Factor of the loss.

    Returns:
        Tensor: Scalar loss (float32).
    """
    _check(student, teacher)
    t = float(temperature)
    log_s = F.log_softmax(student.float() / t, dim=1)
    log_p = F.log_softmax(teacher.detach().float() / t, dim=1)
    kl = (log_p.exp() * (log_p - log_s)).sum(dim=1)   # (N, H, W)
    return weight * t * t * kl.mean()


def pixel_kd_grad(student, teacher, temperature=1.0, weight=1.0):
    """The gradient of :func:`pixel_kd_loss` with respect to ``student``, and the loss.

    Args:
        student (Tensor): Student logits ``(N, C, H, W)`` (not modified).
        teacher (Tensor): Teacher logits of the same shape.
        temperature (float): ``T`` (> 0).
        weight (float): Factor of the loss.

    Returns:
        tuple[Tensor, float]: The gradient (float32, the shape of ``student``)
        and the loss value.
    """
    _check(student, teacher)
    t = float(temperature)
    with torch.no_grad():
        log_s = F.log_softmax(student.detach().float() / t, dim=1)
        log_p = F.log_softmax(teacher.detach().float() / t, dim=1)
        p = log_p.exp()
        pixels = student.shape[0] * student.shape[2] * student.shape[3]
        loss = weight * t * t * (p * (log_p - log_s)).sum(dim=1).mean()
        grad = (log_s.exp() - p) * (weight * t / pixels)
    return grad, float(loss)


__all__ = ['pixel_kd_loss', 'pixel_kd_grad']
