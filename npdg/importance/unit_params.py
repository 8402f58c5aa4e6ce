"""Which parameter entries belong to which unit: per-unit sums of per-parameter values.

Gradient criteria (Taylor, Hessian, domain-risk variance) compute a value per
parameter entry (``theta * g``, ``theta^2 * E[g^2]``) and need its sum over
everything a unit owns. A unit owns the entries that go when it is removed
on the *output* side:

* a channel group (:class:`npdg.pruning.units.ChannelUnits`): the output
  rows (weight and bias) of every conv/linear in the group and the weight and
  bias of every BN (and LayerNorm/GroupNorm) in the group, mapped to the
  group's root index;
* an attention head (:class:`npdg.pruning.units.HeadUnits`): its rows of
  ``q``, ``k``, ``v`` (weight and bias), its columns of ``proj.weight`` and
  its ``head_gate``.

The input columns of the next layers are not counted: zeroing a unit's
output entries already removes its contribution (counting the consumers too
would count the same change twice).
"""
import torch


def _reduce_to_dim(value, dim):
    """Sum a tensor over every dimension but ``dim`` -> 1-D along ``dim``."""
    value = value.detach().double()
    if value.dim() == 1:
        return value
    dims = [d for d in range(value.dim()) if d != dim]
    return value.sum(dim=dims)


def unit_slices(units):
    """The parameter entries of every unit of one layer.

    Args:
        units (ChannelUnits | HeadUnits): One layer's units.

    Returns:
        list[tuple[str, int, Tensor, Tensor]]: ``(parameter name relative to
        the segmentor, dim, entry indices along dim, unit index of each)``.
    """
    out = []
    if units.kind == 'head':
        module, heads, dim = units.module, units.num_units, units.module.head_dim
        owner = torch.arange(heads * dim) // dim
        every = torch.arange(heads * dim)
        for name in ('q', 'k', 'v'):
            layer = getattr(module, name)
            out.append((f'{units.name}.{name}.weight', 0, every, owner))
            if layer.bias is not None:
                out.append((f'{units.name}.{name}.bias', 0, every, owner))
        out.append((f'{units.name}.proj.weight', 1, every, owner))
        if getattr(module, 'head_gate', None) is not None:
            out.append((f'{units.name}.head_gate', 0, torch.arange(heads), torch.arange(heads)))
        return out
    for name, layer, idxs, root_idxs in units.convs + units.bns + units.norms:
        idxs, owner = torch.as_tensor(idxs), torch.as_tensor(root_idxs)
        out.append((f'{name}.weight', 0, idxs, owner))
        if getattr(layer, 'bias', None) is not None:
            out.append((f'{name}.bias', 0, idxs, owner))
    return out


def per_unit_sum(units, values):
    """Sum per-parameter values over each unit's entries.

    Args:
        units (ChannelUnits | HeadUnits): One layer's units.
        values (Callable[[str], Tensor | None] | dict): The value tensor of a
            parameter (same shape as the parameter) by name; ``None`` or a
            missing name skips it.

    Returns:
        Tensor: ``(units.num_units,)`` float64 sums.
    """
    get = values.get if isinstance(values, dict) else values
    total = torch.zeros(units.num_units, dtype=torch.float64)
    for pname, dim, idxs, owner in unit_slices(units):
        value = get(pname)
        if value is None:
            continue
        per_entry = _reduce_to_dim(value, dim).cpu()
        total.index_add_(0, owner, per_entry[idxs])
    return total


def unit_parameter_names(units_list):
    """Every parameter name some unit of ``units_list`` owns entries of.

    Args:
        units_list (Sequence): Units of every layer.

    Returns:
        set[str]: The names.
    """
    return {pname for u in units_list for pname, *_ in unit_slices(u)}
