"""The passes over scoring data that criteria share: gradients, Fisher, activations.

Each is a plain function of the segmentor, a :class:`~npdg.importance.scoring_data.
ScoringData` and what it is asked for; :class:`~npdg.importance.context.ScoringContext`
memoises them per prune step, so two criteria (or a FLOPs budget's trial prunes) never
run one twice. Every pass runs with the model in inference mode (BN on its running
statistics, dropout off): deterministic, per-sample gradients truly per sample, BN
statistics and ``.grad`` untouched.
"""
import torch
import torch.nn.functional as F


def seg_loss(model, inputs, data_samples):
    """The segmentor's training objective: the sum of its ``loss*`` terms.

    Args:
        model (nn.Module): Bare segmentor.
        inputs (Tensor): Normalised images (B, 3, H, W).
        data_samples (list): Their data samples (labels).

    Returns:
        Tensor: Scalar loss.
    """
    losses = model.loss(inputs, data_samples)
    return sum(v for k, v in losses.items() if 'loss' in k)


def domain_risk(losses, beta):
    """``mean_d R_d + beta * Var_d R_d`` (population variance over domains)."""
    stacked = torch.stack(list(losses))
    mean = stacked.mean()
    if beta == 0:
        return mean
    return mean + beta * ((stacked - mean) ** 2).mean()


def _inference(model, grad=True):
    from npdg.analysis.inference_path import inference_mode
    return inference_mode(model, grad=grad)


def risk_gradients(model, data, params, num_domains=0, beta=0.0):
    """Per batch, the gradient of the risk objective over pseudo-domains.

    The objective of a batch is ``J = mean_d R_d + beta * Var_d R_d`` over
    domain 0 (clean) and ``num_domains`` fixed style draws, ``R_d`` the loss on
    the batch in domain d; with ``num_domains=0`` it is the plain loss.

    Args:
        model (nn.Module): Bare segmentor.
        data (ScoringData): The batches.
        params (dict[str, Parameter]): The parameters to differentiate.
        num_domains (int): Style-drawn pseudo-domains besides the clean one.
        beta (float): Weight of the variance of the domain risks.

    Returns:
        list[dict]: Per batch, ``{name: gradient}`` (detached, CPU).
    """
    grads = []
    with _inference(model):
        for b, (_, samples) in enumerate(data.processed()):
            risks = [seg_loss(model, data.domain_inputs(b, d), samples)
                     for d in range(int(num_domains) + 1)]
            values = torch.autograd.grad(domain_risk(risks, float(beta)),
                                         list(params.values()), allow_unused=True)
            grads.append({n: (torch.zeros_like(p) if g is None else g).detach().cpu()
                          for (n, p), g in zip(params.items(), values)})
    return grads


def squared_gradients(model, data, params):
    """Per parameter, the mean over samples of the squared per-sample gradient.

    ``E[g^2]``, the diagonal of the empirical Fisher (the usual estimate of the
    Hessian's diagonal near a minimum): one backward pass per image.

    Args:
        model (nn.Module): Bare segmentor.
        data (ScoringData): The batches.
        params (dict[str, Parameter]): The parameters.

    Returns:
        dict: ``{name: E[g^2]}`` (float64, CPU).
    """
    total = {n: torch.zeros_like(p, device='cpu', dtype=torch.float64) for n, p in params.items()}
    count = 0
    with _inference(model):
        for inputs, samples in data.processed():
            for i in range(inputs.shape[0]):
                loss = seg_loss(model, inputs[i:i + 1], samples[i:i + 1])
                values = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
                for n, g in zip(params, values):
                    if g is not None:
                        total[n] += g.detach().double().cpu() ** 2
                count += 1
    return {n: v / max(1, count) for n, v in total.items()}


def mean_maps(model, data, domain='styled', size=None):
    """Dataset-mean feature map of every channel of every observed layer.

    Observed layers: affine BNs (their output, the channel's feature map) and
    multi-head attention modules (each head's per-token output norm before its
    gate), through the shared :class:`~npdg.statistics.observer.ActivationObserver`.
    Maps are resized (area) to ``size`` before averaging so images of any size
    can be pooled; the default is the first batch's map size of each layer.

    Args:
        model (nn.Module): Bare segmentor.
        data (ScoringData): The batches.
        domain (str): ``'clean'`` (source), ``'styled'`` (source in the
            pseudo-domains 1..3, pooled) or ``'target'`` (real target images:
            an oracle option).
        size (tuple, optional): Common (h, w) per layer; see above.

    Returns:
        dict[str, Tensor]: ``{layer name: (C, h, w)}`` float64 means.
    """
    from npdg.pruning.units import unit_layers
    from npdg.statistics.observer import ActivationObserver
    sums, counts, sizes = {}, {}, {}

    def add(name, maps):
        maps = maps.detach().double()
        target = size or sizes.setdefault(name, tuple(maps.shape[-2:]))
        if tuple(maps.shape[-2:]) != tuple(target):
            maps = F.adaptive_avg_pool2d(maps, target)
        sums[name] = sums.get(name, 0) + maps.sum(0)
        counts[name] = counts.get(name, 0) + maps.shape[0]

    def on_channels(name, module, x, out):
        if out.dim() == 4:  # the BN's output: the channel's feature map
            add(name, out)

    def on_heads(name, module, heads):
        h, w = module.last_hw
        norms = heads.norm(dim=-1)  # (B, heads, L)
        add(name, norms.reshape(norms.shape[0], norms.shape[1], h, w))

    with ActivationObserver(unit_layers(model), on_channels, on_heads), \
            _inference(model, grad=False):
        if domain == 'target':
            for inputs, _ in data.processed('target'):
                model._forward(inputs)
        else:
            domains = [0] if domain == 'clean' else [1, 2, 3]
            for b in range(len(data.processed())):
                for d in domains:
                    model._forward(data.domain_inputs(b, d))
    return {n: sums[n] / counts[n] for n in sums}
