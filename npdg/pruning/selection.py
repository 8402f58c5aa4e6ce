"""Global unit selection: threshold, ratio budget, minimum kept per layer."""
import math

import torch


def max_removable(units, min_keep=1, min_keep_ratio=0.1, round_to=None):
    """How many units of a layer may go at most.

    Args:
        units: ChannelUnits or HeadUnits.
        min_keep (int): Keep at least this many units (heads: at least 1).
        min_keep_ratio (float): And at least this fraction of the layer.
        round_to (int, optional): Channels kept must be a multiple of this.

    Returns:
        int: The cap.
    """
    n = units.num_units
    keep = max(1, int(min_keep), int(math.ceil(min_keep_ratio * n)))
    if round_to and units.kind == 'channel' and n >= round_to:
        keep = int(math.ceil(keep / round_to) * round_to)
    return max(0, n - keep)


def _member_caps(units, min_keep, min_keep_ratio):
    """Per unit-layer: list of (root index set, cap) for every member layer."""
    caps = []
    for u in units:
        members = u.members() if hasattr(u, 'members') else []
        entry = []
        for _, idxs in members:
            n = len(idxs)
            keep = min(n, max(1, int(min_keep), int(math.ceil(min_keep_ratio * n))))
            entry.append((set(idxs), n - keep))
        caps.append(entry)
    return caps


def select_units(units, scores, budget, threshold=None, min_keep=1, min_keep_ratio=0.1,
                 round_to=None):
    """Pick the globally least important units.

    Units are ranked over all layers by score (ascending; ties broken by
    layer order, then index, so every rank decides the same). A unit is a
    candidate when its score is below ``threshold`` (any score when None);
    candidates are taken in order until ``budget`` units are chosen, skipping
    units whose layer is at its cap (:func:`max_removable`) or that would
    take a member layer of a coupled group (e.g. one producer of a concat)
    below its own minimum. With
    ``round_to``, each channel layer's choice is trimmed (least confident
    first) so the kept count is a multiple of ``round_to``.

    Args:
        units (list): ChannelUnits / HeadUnits.
        scores (list[Tensor]): Per-unit scores, aligned with ``units``.
        budget (int): Most units to remove in total.
        threshold (float, optional): Absolute score threshold.
        min_keep (int): Minimum kept per layer.
        min_keep_ratio (float): Minimum kept fraction per layer.
        round_to (int, optional): Channel rounding.

    Returns:
        list[list[int]]: Indices to remove, per entry of ``units`` (sorted).
    """
    if len(units) != len(scores):
        raise ValueError('select_units: one score vector per layer is needed.')
    rows = []
    for k, (u, s) in enumerate(zip(units, scores)):
        s = torch.as_tensor(s, dtype=torch.float64).flatten()
        if s.numel() != u.num_units:
            raise ValueError(f'select_units: {u.name} has {u.num_units} units but '
                             f'{s.numel()} scores.')
        for j, v in enumerate(s.tolist()):
            if threshold is None or v < threshold:
                rows.append((v, k, j))
    rows.sort()
    caps = [max_removable(u, min_keep, min_keep_ratio, round_to) for u in units]
    member_caps = _member_caps(units, min_keep, min_keep_ratio)
    member_used = [[0] * len(m) for m in member_caps]
    chosen = [[] for _ in units]
    left = int(budget)
    for v, k, j in rows:
        if left <= 0:
            break
        if len(chosen[k]) >= caps[k]:
            continue
        hits = [i for i, (idxs, _) in enumerate(member_caps[k]) if j in idxs]
        if any(member_used[k][i] >= member_caps[k][i][1] for i in hits):
            continue
        for i in hits:
            member_used[k][i] += 1
        chosen[k].append(j)
        left -= 1
    if round_to:
        for k, u in enumerate(units):
            if u.kind == 'channel' and u.num_units >= round_to:
                extra = (u.num_units - len(chosen[k])) % round_to
                if extra:
                    chosen[k] = chosen[k][:len(chosen[k]) - (round_to - extra)] \
                        if len(chosen[k]) >= round_to - extra else []
    return [sorted(c) for c in chosen]


def select_units_per_layer(units, scores, budget, threshold=None, min_keep=1,
                           min_keep_ratio=0.1, round_to=None):
    """Pick the least important units of every layer, the same share per layer.

    The budget is split over layers in proportion to their sizes (largest
    remainders first, ties by layer order), then each layer's share is
    chosen by :func:`select_units` within that layer (threshold, caps and
    rounding as there). A layer's cap can leave part of the budget unused.

    Args:
        units (list): ChannelUnits / HeadUnits.
        scores (list[Tensor]): Per-unit scores, aligned with ``units``.
        budget (int): Most units to remove in total.
        threshold (float, optional): Absolute score threshold.
        min_keep (int): Minimum kept per layer.
        min_keep_ratio (float): Minimum kept fraction per layer.
        round_to (int, optional): Channel rounding.

    Returns:
        list[list[int]]: Indices to remove, per entry of ``units`` (sorted).
    """
    if len(units) != len(scores):
        raise ValueError('select_units_per_layer: one score vector per layer is needed.')
    total = sum(u.num_units for u in units)
    budget = min(int(budget), total)
    if total == 0 or budget <= 0:
        return [[] for _ in units]
    exact = [budget * u.num_units / total for u in units]
    shares = [int(math.floor(e)) for e in exact]
    order = sorted(range(len(units)), key=lambda k: (-(exact[k] - shares[k]), k))
    for k in order[:budget - sum(shares)]:
        shares[k] += 1
    return [select_units([u], [s], k, threshold, min_keep, min_keep_ratio, round_to)[0]
            for u, s, k in zip(units, scores, shares)]


SCHEDULES = ('linear', 'geometric')


def cumulative_fraction(final, step, num_steps, schedule='linear'):
    """Share of the original units removed after step ``step`` of ``num_steps``.

    ``'linear'``: ``final * k / n``. ``'geometric'`` (DSS): every step removes
    the same share ``1 - (1 - final) ** (1 / n)`` of what remains, so after
    step k ``1 - (1 - final) ** (k / n)`` is gone.

    Args:
        final (float): Share removed after the last step, in [0, 1).
        step (int): Step number, 1-based.
        num_steps (int): Number of steps.
        schedule (str): ``'linear'`` or ``'geometric'``.

    Returns:
        float: The cumulative share.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f'schedule must be one of {SCHEDULES}, got {schedule!r}.')
    if schedule == 'linear':
        return final * step / num_steps
    return 1 - (1 - final) ** (step / num_steps)


def step_budget(total_units, ratio, step, num_steps, removed_so_far, schedule='linear'):
    """Units to remove at prune step ``step`` (1-based) of ``num_steps``.

    The cumulative target after step k is ``floor(total * f_k)`` of the
    original units, ``f_k`` from :func:`cumulative_fraction` (linear:
    ``ratio * k / n``).

    Args:
        total_units (int): Units before the first prune.
        ratio (float): Final fraction to remove, in [0, 1).
        step (int): Step number, 1-based.
        num_steps (int): Number of prune steps.
        removed_so_far (int): Units already removed.
        schedule (str): ``'linear'`` or ``'geometric'``.

    Returns:
        int: This step's budget (>= 0).
    """
    if schedule == 'linear':
        target = int(math.floor(ratio * total_units * step / num_steps))
    else:
        target = int(math.floor(total_units * cumulative_fraction(ratio, step, num_steps,
                                                                  schedule) + 1e-9))
    return max(0, target - removed_so_far)
