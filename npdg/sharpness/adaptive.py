"""The AdaSAP perturbation: a per-unit radius from importance, ASAM's scaling per unit.

AdaSAP (Bair et al., ICLR 2024) is sharpness-aware training in which each
prunable unit gets its own radius, smaller for more important units:

    rho_i = rho_max - (rho_max - rho_min) * s_hat_i

with ``s_hat`` the unit's importance min-max normalised within its layer to
[0, 1]. The weights of unit ``i`` move by ASAM's (adaptive SAM) step with
that radius, normalised over the unit's own entries:

    eps_i = rho_i * T_i^2 g_i / ||T_i g_i||,    T_i = |w_i| + eta

(``g`` the gradient at ``w``, ``eta`` = 0.01), so that ``||eps_i / T_i||`` is
``rho_i``: every unit moves by its radius relative to its own weights.

With ``normalization='global'`` (the default, ASAM's form) the norm is one
over every weight, ``eps = rho_entry * T^2 g / ||T g||``: the radii set each
unit's share of one step of relative size at most ``rho_max``. The per-unit
norm moves every unit by its whole radius relative to its own weights; with
radii up to 2 that collapsed training on the CPU benchmark (docs/results.md, AdaSAP).

A unit owns the entries that go when it is removed
(:func:`npdg.importance.unit_params.unit_slices`); an entry two units claim
(an attention projection's columns belong to a head, its rows to a width
group) belongs to the first. Entries no unit owns (classifier, input-side
columns) form one extra group with its own radius (``free_radius``).
"""
import torch

from npdg.importance.unit_params import unit_slices


def normalised_scores(scores):
    """Min-max normalise one layer's importance to [0, 1].

    Args:
        scores (Tensor): One layer's per-unit scores.

    Returns:
        Tensor: float64 in [0, 1]; 0.5 everywhere when all scores are equal
        (no unit is more important than another).
    """
    scores = torch.as_tensor(scores, dtype=torch.float64)
    low, high = scores.min(), scores.max()
    if float(high - low) <= 0:
        return torch.full_like(scores, 0.5)
    return (scores - low) / (high - low)


def unit_radii(scores, rho_min, rho_max):
    """Per-unit radii of every layer: ``rho_max - (rho_max - rho_min) * s_hat``.

    Args:
        scores (list[Tensor]): Per layer, the units' importance.
        rho_min (float): Radius of the most important unit of a layer.
        rho_max (float): Radius of the least important one.

    Returns:
        list[Tensor]: float64 radii, one vector per layer.
    """
    return [rho_max - (rho_max - rho_min) * normalised_scores(s) for s in scores]


class UnitIndex:
    """Which unit owns each parameter entry (built once per structure).

    Args:
        model (nn.Module): The bare segmentor.
        units (list): Its units (:func:`npdg.pruning.units.collect_units`).

    Attributes:
        owner (dict[str, Tensor]): Per parameter with owned entries, an int32
            tensor of its shape: the global unit number of each entry, -1 for
            entries no unit owns. Parameters absent here are owned by no unit.
        num_units (int): Units over all layers (global numbering follows
            ``units`` order, then each layer's unit index).
        slots (dict[str, Tensor]): ``owner`` flattened, with ``num_units`` (the
            slot of the entries no unit owns) in place of -1.
    """

    def __init__(self, model, units):
        params = dict(model.named_parameters())
        self.owner = {}
        self.offsets = []
        offset = 0
        for u in units:
            self.offsets.append(offset)
            for pname, dim, idxs, owner in unit_slices(u):
                p = params.get(pname)
                if p is None:
                    raise KeyError(f'UnitIndex: unit parameter {pname!r} is not a parameter of '
                                   'the model (units built for another structure?).')
                table = self.owner.get(pname)
                if table is None:
                    table = self.owner[pname] = torch.full(p.shape, -1, dtype=torch.int32,
                                                           device=p.device)
                ids = (owner.to(torch.int32) + offset).to(p.device)
                shape = [1] * p.dim()
                shape[dim] = -1
                view = table.index_select(dim, idxs.to(p.device))
                fill = ids.view(shape).expand_as(view)
                table.index_copy_(dim, idxs.to(p.device), torch.where(view < 0, fill, view))
            offset += u.num_units
        self.num_units = offset
        # flat slot of every owned entry, entries no unit owns in the extra slot num_units
        self.slots = {}
        for name, table in self.owner.items():
            flat = table.flatten().clone()
            flat[flat < 0] = offset
            self.slots[name] = flat

    def radius_vector(self, radii, device):
        """Concatenate per-layer radii into the global unit numbering."""
        if not radii:
            return torch.zeros(0, dtype=torch.float32, device=device)
        return torch.cat([torch.as_tensor(r, dtype=torch.float32) for r in radii]).to(device)


def adaptive_perturbation(named_params, grads, index, radii, free_radius, eta=0.01,
                          normalization='global'):
    """The AdaSAP weight perturbation of every parameter.

    Args:
        named_params (dict[str, Tensor]): Parameters by name (the weights ``w``).
        grads (dict[str, Tensor | None]): Their gradients at ``w`` (None or
            missing: not perturbed).
        index (UnitIndex): Entry -> unit table of the model's structure.
        radii (list[Tensor] | float): Per layer, the units' radii; a float
            gives every unit that radius (the uniform phase).
        free_radius (float): Radius of the entries no unit owns (one group).
        eta (float): ASAM's offset in ``T = |w| + eta``.
        normalization (str): ``'global'`` (one norm of ``T g`` over every
            entry, each entry scaled by its unit's radius: ASAM with per-unit
            radii) or ``'unit'`` (each unit's step normalised by its own
            ``||T_i g_i||``, so ``||eps_i / T_i|| = rho_i``).

    Returns:
        dict[str, Tensor]: ``eps`` per perturbed parameter (same shape).
    """
    if normalization not in ('unit', 'global'):
        raise ValueError(f"normalization must be 'unit' or 'global', got {normalization!r}.")
    names = [n for n in named_params if grads.get(n) is not None]
    if not names:
        return {}
    device = named_params[names[0]].device
    if isinstance(radii, (int, float)):
        rho = torch.full((index.num_units,), float(radii), dtype=torch.float32, device=device)
    else:
        rho = index.radius_vector(radii, device)
    rho = torch.cat([rho, torch.tensor([float(free_radius)], device=device)])
    free = index.num_units  # the slot of the entries no unit owns
    sq = torch.zeros(index.num_units + 1, dtype=torch.float64, device=device)
    terms = {}
    for n in names:
        w = named_params[n].detach()
        t = w.abs() + eta
        g = grads[n].detach().to(w.dtype)
        tg2 = (t * g).pow(2)
        slots = index.slots.get(n)
        if slots is None or normalization == 'global':
            sq[free] += tg2.sum(dtype=torch.float64)  # one bucket is enough for one norm
        else:
            sq.index_add_(0, slots.to(torch.long), tg2.flatten().double())
        terms[n] = (t, g, slots)
    if normalization == 'unit':
        norm = sq.sqrt()
    else:
        norm = sq.sum().sqrt().expand_as(sq)
    coef = torch.where(norm > 0, rho.double() / norm.clamp(min=1e-30),
                       torch.zeros_like(norm)).float()
    out = {}
    for n, (t, g, slots) in terms.items():
        scale = coef[free] if slots is None else coef[slots].view_as(g)
        out[n] = (scale * t * t * g).to(named_params[n].dtype)
    return out
