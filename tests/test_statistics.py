"""NPDG sensitivity statistics against brute-force numpy references."""
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import npdg  # noqa: F401
from npdg.statistics import (
    SensitivityAccumulator,
    SensitivityStatistics,
    all_reduce_,
    combine,
    minmax_normalise,
    sensitivity_scores,
    sparsity_weights,
    subsample_head_positions,
    subsample_positions,
)


# ----------------------------------------------------------------- helpers
def make_batches(seed, sizes, k=4, c=6, n=17, latent=3):
    """Random (B, K, C, N) batches with correlated units of varied scale.

    Each unit mixes ``latent`` content factors (shared by the K styles of an
    image) with its own style factor (differs per style), then gets its own
    scale (1e-2 .. 1e2) and offset, so the units are correlated, have very
    different variances and different style sensitivity.
    """
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(c, latent))
    style_amp = np.linspace(0.0, 2.0, c)
    scale = np.logspace(-2, 2, c)
    offset = rng.normal(scale=5.0, size=c)
    batches = []
    for b in sizes:
        content = rng.normal(size=(b, 1, latent, n))
        style = rng.normal(size=(b, k, c, n))
        x = np.einsum('cl,bkln->bkcn', mix, np.repeat(content, k, axis=1))
        x = x + style_amp[None, None, :, None] * style
        x = x * scale[None, None, :, None] + offset[None, None, :, None]
        batches.append(x)
    return batches


def unary_ref(batches):
    """Variance over K (ddof=0), mean over images and positions."""
    x = np.concatenate(batches, axis=0)
    return x.var(axis=1).mean(axis=(0, 2))


def binary_ref(batches):
    """Mean |corrcoef| with the other units over all samples."""
    x = np.concatenate(batches, axis=0)
    c = x.shape[2]
    samples = x.transpose(2, 0, 1, 3).reshape(c, -1)
    corr = np.abs(np.corrcoef(samples))
    np.fill_diagonal(corr, 0.0)
    return corr.sum(axis=1) / (c - 1)


def minmax_ref(v):
    return (v - v.min()) / (v.max() - v.min())


def accumulate(batches, acc=None):
    acc = acc or SensitivityAccumulator(batches[0].shape[2])
    for x in batches:
        acc.update(torch.from_numpy(x))
    return acc


# ------------------------------------------------------------------ scores
def test_unary_matches_numpy():
    batches = make_batches(0, [5])
    acc = accumulate(batches)
    np.testing.assert_allclose(acc.unary().numpy(), unary_ref(batches),
                               rtol=1e-12)
    # Units were built with increasing style amplitude: the first has none.
    u = acc.unary().numpy()
    assert u[0] < 1e-20 * u.max()
    assert acc.num_samples == 5 * 4 * 17
    assert acc.num_positions == 5 * 17


def test_binary_matches_numpy_corrcoef():
    batches = make_batches(1, [6])
    acc = accumulate(batches)
    np.testing.assert_allclose(acc.binary().numpy(), binary_ref(batches),
                               rtol=1e-9, atol=1e-12)
    x = np.concatenate(batches).transpose(2, 0, 1, 3).reshape(6, -1)
    np.testing.assert_allclose(acc.correlation().numpy(), np.corrcoef(x),
                               rtol=1e-9, atol=1e-12)


def test_float32_input_accumulates_in_float64():
    batches = make_batches(2, [4])
    acc = SensitivityAccumulator(6)
    acc.update(torch.from_numpy(batches[0]).float())
    assert all(t.dtype == torch.float64 for t in acc.sums().values())
    ref = [batches[0].astype(np.float32).astype(np.float64)]
    np.testing.assert_allclose(acc.unary().numpy(), unary_ref(ref),
                               rtol=1e-10)
    np.testing.assert_allclose(acc.binary().numpy(), binary_ref(ref),
                               rtol=1e-8)


def test_minmax_normalise_hand_values():
    out = minmax_normalise(torch.tensor([2.0, 4.0, 3.0, 2.5],
                                        dtype=torch.float64))
    assert out.tolist() == [0.0, 1.0, 0.5, 0.25]
    const = minmax_normalise(torch.full((5,), 7.0, dtype=torch.float64))
    assert const.tolist() == [0.0] * 5


def test_sensitivity_scores_normalised_and_combined():
    batches = make_batches(3, [4, 3])
    acc = accumulate(batches)
    u_ref, b_ref = unary_ref(batches), binary_ref(batches)
    for lam in (0.0, 0.4, 1.0):
        s = sensitivity_scores(acc, lam=lam)
        np.testing.assert_allclose(s['unary'].numpy(), u_ref, rtol=1e-12)
        np.testing.assert_allclose(s['binary'].numpy(), b_ref, rtol=1e-9)
        np.testing.assert_allclose(s['unary_norm'].numpy(), minmax_ref(u_ref),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(s['binary_norm'].numpy(),
                                   minmax_ref(b_ref), rtol=1e-8, atol=1e-12)
        w_ref = lam * minmax_ref(u_ref) + (1 - lam) * minmax_ref(b_ref)
        np.testing.assert_allclose(s['w'].numpy(), w_ref, rtol=1e-8,
                                   atol=1e-12)
    assert float(s['unary_norm'].min()) == 0.0
    assert float(s['unary_norm'].max()) == 1.0
    np.testing.assert_array_equal(
        sensitivity_scores(acc, lam=0.0)['w'].numpy(),
        sensitivity_scores(acc, lam=0.0)['binary_norm'].numpy())


@pytest.mark.parametrize('lam', [-0.1, 1.0001, float('nan'), 'a', None])
def test_lambda_outside_unit_interval_raises(lam):
    acc = accumulate(make_batches(4, [2]))
    with pytest.raises(ValueError, match='lambda'):
        sensitivity_scores(acc, lam=lam)
    with pytest.raises(ValueError, match='lambda'):
        combine(torch.zeros(3), torch.zeros(3), lam)


# ------------------------------------------------------------- streaming
def test_three_batches_equal_one_big_batch():
    batches = make_batches(5, [3, 1, 4])
    streamed = accumulate(batches)
    whole = accumulate([np.concatenate(batches, axis=0)])
    for key, value in streamed.sums().items():
        np.testing.assert_allclose(value.numpy(), whole.sums()[key].numpy(),
                                   rtol=1e-10, atol=1e-10)
    a, b = sensitivity_scores(streamed), sensitivity_scores(whole)
    for key in a:
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(),
                                   rtol=1e-10, atol=1e-10)


def _tensor_footprint(acc):
    """Shapes of every tensor an accumulator holds, found via its __dict__."""
    found = []
    for value in vars(acc).values():
        items = value.values() if isinstance(value, dict) else [value]
        found += [tuple(t.shape) for t in items if isinstance(t, torch.Tensor)]
    return sorted(found)


def test_memory_does_not_grow_with_batches():
    batches = make_batches(6, [2] * 50)
    acc = accumulate(batches[:1])
    after_one = _tensor_footprint(acc)
    accumulate(batches[1:], acc)
    assert _tensor_footprint(acc) == after_one
    assert after_one == sorted([(), (6,), (6, 6), (6,), ()])
    assert acc.num_samples == 50 * 2 * 4 * 17


def test_reset_zeroes_sums():
    acc = accumulate(make_batches(7, [2]))
    acc.reset()
    assert acc.num_samples == 0
    assert all(float(t.abs().sum()) == 0 for t in acc.sums().values())
    with pytest.raises(RuntimeError, match='update'):
        acc.unary()


def test_zero_variance_unit_gives_finite_scores():
    batches = make_batches(8, [3, 2])
    for x in batches:
        x[:, :, 2, :] = 3.7  # constant unit
    acc = accumulate(batches)
    s = sensitivity_scores(acc)
    for value in s.values():
        assert torch.isfinite(value).all()
    assert float(s['unary'][2]) == 0.0
    assert float(s['binary'][2]) == 0.0
    corr = acc.correlation()
    assert float(corr[2].abs().sum()) == 0.0
    assert float(corr[:, 2].abs().sum()) == 0.0
    # The others: |corr| with the constant unit counts as 0 in their mean.
    x = np.concatenate(batches).transpose(2, 0, 1, 3).reshape(6, -1)
    keep = [0, 1, 3, 4, 5]
    sub = np.abs(np.corrcoef(x[keep]))
    np.fill_diagonal(sub, 0)
    np.testing.assert_allclose(s['binary'][keep].numpy(), sub.sum(1) / 5,
                               rtol=1e-9)


def test_all_constant_layer_gives_zero_scores():
    x = torch.ones(2, 3, 4, 5, dtype=torch.float64) * 2.5
    acc = SensitivityAccumulator(4)
    acc.update(x)
    s = sensitivity_scores(acc)
    for value in s.values():
        assert value.tolist() == [0.0] * 4


def test_single_unit_layer():
    acc = SensitivityAccumulator(1)
    gen = torch.Generator().manual_seed(0)
    acc.update(torch.randn(2, 3, 1, 8, generator=gen))
    s = sensitivity_scores(acc)
    assert s['binary'].tolist() == [0.0]
    assert torch.isfinite(s['w']).all()


def test_update_validates_input():
    acc = SensitivityAccumulator(3)
    with pytest.raises(ValueError, match='K >= 2'):
        acc.update(torch.zeros(2, 1, 3, 4))
    with pytest.raises(ValueError, match='3'):
        acc.update(torch.zeros(2, 2, 4, 4))
    with pytest.raises(ValueError, match=r'\(B, K, C, N\)'):
        acc.update(torch.zeros(2, 3, 4))
    bad = torch.zeros(2, 2, 3, 4)
    bad[0, 0, 0, 0] = float('nan')
    with pytest.raises(ValueError, match='NaN'):
        acc.update(bad)
    assert acc.num_samples == 0


def test_state_dict_round_trip():
    batches = make_batches(9, [3])
    acc = accumulate(batches)
    state = acc.state_dict()
    assert set(state) == {'count', 'sum', 'cross', 'var_sum', 'var_count'}
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    fresh = SensitivityAccumulator(6)
    fresh.load_state_dict(state)
    for key, value in sensitivity_scores(acc).items():
        assert torch.equal(value, sensitivity_scores(fresh)[key])
    small = SensitivityAccumulator(5)
    with pytest.raises(ValueError, match="'sum' has shape"):
        small.load_state_dict(state)
    assert small.num_samples == 0  # left untouched
    with pytest.raises(KeyError, match='var_sum'):
        fresh.load_state_dict({k: v for k, v in state.items()
                               if k != 'var_sum'})


def test_collection_scores_state_and_reset():
    conv = make_batches(10, [2, 3], c=6)
    head = make_batches(11, [2, 3], c=3)
    stats = SensitivityStatistics()
    for x, h in zip(conv, head):
        stats.update('conv', torch.from_numpy(x))
        stats.update('attn', torch.from_numpy(h))
    stats.add('unused', 4)
    assert stats.names == ['conv', 'attn', 'unused']
    scores = stats.scores(0.4)
    assert set(scores) == {'conv', 'attn'}
    np.testing.assert_allclose(scores['conv']['unary'].numpy(),
                               unary_ref(conv), rtol=1e-12)
    np.testing.assert_allclose(scores['attn']['binary'].numpy(),
                               binary_ref(head), rtol=1e-9)
    copy = SensitivityStatistics()
    copy.load_state_dict(stats.state_dict())
    assert copy.names == stats.names
    assert torch.equal(copy.scores()['attn']['w'], scores['attn']['w'])
    with pytest.raises(ValueError, match='conv'):
        stats.add('conv', 7)
    stats.all_reduce_()  # not distributed: a no-op
    assert torch.equal(stats.scores()['conv']['w'], scores['conv']['w'])
    stats.reset()
    assert stats.scores() == {}


# ------------------------------------------------------------ sparsity
def test_sparsity_weights_hand_values_and_scopes():
    w = {'a': torch.tensor([0.0, 1.0], dtype=torch.float64),
         'b': torch.tensor([0.5, 0.5, 0.2], dtype=torch.float64)}
    layer = sparsity_weights(w, eps=0.1, scope='layer')
    np.testing.assert_allclose(layer['a'].numpy(), [0.1 / 0.6, 1.1 / 0.6])
    np.testing.assert_allclose(layer['b'].numpy(),
                               np.array([0.6, 0.6, 0.3]) / 0.5)
    glob = sparsity_weights(w, eps=0.1)  # global is the default
    mean = (0.1 + 1.1 + 0.6 + 0.6 + 0.3) / 5
    np.testing.assert_allclose(glob['a'].numpy(), np.array([0.1, 1.1]) / mean)
    np.testing.assert_allclose(glob['b'].numpy(),
                               np.array([0.6, 0.6, 0.3]) / mean)
    with pytest.raises(ValueError, match='scope'):
        sparsity_weights(w, scope='net')
    with pytest.raises(ValueError, match='eps'):
        sparsity_weights(w, eps=0.0)


def test_sparsity_weights_mean_one_and_monotone():
    gen = torch.Generator().manual_seed(3)
    w = {f'l{i}': torch.rand(n, generator=gen, dtype=torch.float64)
         for i, n in enumerate([5, 9, 2])}
    glob = sparsity_weights(w, scope='global')
    flat_w = torch.cat(list(w.values()))
    flat_o = torch.cat(list(glob.values()))
    assert abs(float(flat_o.mean()) - 1.0) < 1e-12
    order = flat_w.argsort()
    assert bool((flat_o[order].diff() > 0).all())
    for name, omega in sparsity_weights(w, scope='layer').items():
        assert abs(float(omega.mean()) - 1.0) < 1e-12
        order = w[name].argsort()
        assert bool((omega[order].diff() > 0).all())


def test_collection_sparsity_weights():
    stats = SensitivityStatistics()
    for x in make_batches(12, [3], c=5):
        stats.update('x', torch.from_numpy(x))
    s = stats.scores(0.4)['x']
    omega = stats.sparsity_weights(0.4, scope='layer')['x']
    ref = (0.1 + s['w']) / (0.1 + s['w']).mean()
    np.testing.assert_allclose(omega.numpy(), ref.numpy())


# ------------------------------------------------------------ sampling
def _position_coded(b, k, c, h, w, order):
    """Features whose value is 1000*image + position (same for all styles)."""
    pos = torch.arange(h * w, dtype=torch.float64).view(1, 1, 1, h, w)
    img = torch.arange(b, dtype=torch.float64).view(b, 1, 1, 1, 1) * 1000
    unit = torch.arange(c, dtype=torch.float64).view(1, 1, c, 1, 1) * 1e6
    feat = (pos + img + unit).expand(b, k, c, h, w)
    if order == 'style_major':
        feat = feat.transpose(0, 1)
    return feat.reshape(b * k, c, h, w).contiguous()


@pytest.mark.parametrize('order', ['image_major', 'style_major'])
def test_subsample_positions_same_across_styles(order):
    b, k, c, h, w = 3, 4, 2, 5, 6
    feat = _position_coded(b, k, c, h, w, order)
    out = subsample_positions(feat, k, 7,
                              torch.Generator().manual_seed(1), order=order)
    assert out.shape == (b, k, c, 7)
    for i in range(b):
        for u in range(c):
            codes = out[i, :, u, :] - u * 1e6 - 1000 * i
            assert torch.equal(codes, codes[:1].expand(k, -1))
            positions = codes[0].long()
            assert len(set(positions.tolist())) == 7
            assert int(positions.min()) >= 0 and int(positions.max()) < h * w
    # different images draw different positions (with this seed)
    assert not torch.equal(out[0, 0, 0] % 1000, out[1, 0, 0] % 1000)


def test_subsample_positions_deterministic_and_all():
    feat = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    one = subsample_positions(feat, 2, 5, torch.Generator().manual_seed(9))
    two = subsample_positions(feat, 2, 5, torch.Generator().manual_seed(9))
    other = subsample_positions(feat, 2, 5, torch.Generator().manual_seed(10))
    assert torch.equal(one, two)
    assert not torch.equal(one, other)
    full = subsample_positions(feat, 2, None)
    assert torch.equal(full, feat.reshape(4, 2, 3, 16))
    assert torch.equal(subsample_positions(feat, 2, 100), full)
    with pytest.raises(ValueError, match='num_styles'):
        subsample_positions(feat, 3, 5)
    with pytest.raises(ValueError, match=r'\(B\*K, C, H, W\)'):
        subsample_positions(feat[0], 2, 5)


def test_subsample_head_positions():
    gen = torch.Generator().manual_seed(4)
    feat = torch.randn(6, 2, 10, 8, generator=gen)  # B*K=6, 2 heads, L=10
    norm = subsample_head_positions(feat, 3, None)
    ref = feat.pow(2).sum(-1).sqrt().reshape(2, 3, 2, 10)
    torch.testing.assert_close(norm, ref)
    mean = subsample_head_positions(feat, 3, None, reduce='mean')
    torch.testing.assert_close(mean, feat.mean(-1).reshape(2, 3, 2, 10))
    sub = subsample_head_positions(feat, 3, 4,
                                   torch.Generator().manual_seed(2))
    assert sub.shape == (2, 3, 2, 4)
    flat = norm  # the same reduction, every position kept
    for i in range(2):
        cols = [int((flat[i, 0, 0] == v).nonzero()) for v in sub[i, 0, 0]]
        assert torch.equal(sub[i], flat[i][:, :, cols])
    with pytest.raises(ValueError, match='reduce'):
        subsample_head_positions(feat, 3, 4, reduce='max')


# ---------------------------------------------------------- distributed
WORLD = 2
SIZES = [2, 3, 1, 4, 2, 3]


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _fill(stats, rank, world):
    """Feed every ``world``-th batch (this rank's share) of two layers."""
    conv = make_batches(20, SIZES, c=6)
    head = make_batches(21, SIZES, c=3)
    stats.add('conv', 6)
    stats.add('attn', 3)
    for i, (x, h) in enumerate(zip(conv, head)):
        if i % world == rank:
            stats.update('conv', torch.from_numpy(x))
            stats.update('attn', torch.from_numpy(h))
    return stats


def _rank_worker(rank, world, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world)
    try:
        stats = _fill(SensitivityStatistics(), rank, world)
        local = stats.state_dict()
        stats.all_reduce_()
        result = dict(local=local, scores=stats.scores(0.4))
        # Different layers on the ranks must fail on every rank, not hang.
        if rank == 0:
            stats.add('extra', 2)
        try:
            stats.all_reduce_()
            result['mismatch'] = 'no error'
        except RuntimeError as err:
            result['mismatch'] = str(err)
        all_reduce_([])  # nothing anywhere: fine
        torch.save(result, f'{out_dir}/rank{rank}.pt')
    finally:
        dist.destroy_process_group()


def test_two_ranks_all_reduce_equals_single_process(tmp_path):
    mp.spawn(_rank_worker, args=(WORLD, _free_port(), str(tmp_path)),
             nprocs=WORLD, join=True)
    results = [torch.load(tmp_path / f'rank{r}.pt') for r in range(WORLD)]
    single = _fill(SensitivityStatistics(), 0, 1).scores(0.4)
    # each rank really held only part of the data before the reduce
    counts = [int(r['local']['conv']['count']) for r in results]
    assert counts[0] > 0 and counts[1] > 0
    assert sum(counts) == sum(SIZES) * 4 * 17
    for name in ('conv', 'attn'):
        for key, value in single[name].items():
            got0 = results[0]['scores'][name][key]
            got1 = results[1]['scores'][name][key]
            assert torch.equal(got0, got1)
            np.testing.assert_allclose(got0.numpy(), value.numpy(),
                                       rtol=1e-9, atol=1e-12)
    for r in results:
        assert 'different accumulators' in r['mismatch']


def test_activation_observer_sees_bn_outputs_and_heads_and_restores_on_exit():
    """The one observer both the statistics hook and the scoring context use."""
    from npdg.models.per_head_attention import PerHeadEfficientAttention
    from npdg.statistics.observer import ActivationObserver
    bn = torch.nn.BatchNorm2d(3).eval()
    attn = PerHeadEfficientAttention(embed_dims=8, num_heads=2, sr_ratio=1)
    previous = lambda heads: None  # noqa: E731  (an observer someone else set)
    attn.head_observer = previous
    seen = []
    observer = ActivationObserver(
        dict(bn=bn, attn=attn), lambda n, m, x, out: seen.append((n, tuple(out.shape))),
        lambda n, m, heads: seen.append((n, tuple(heads.shape))))
    with observer:
        bn(torch.randn(2, 3, 4, 4))
        attn(torch.randn(2, 6, 8), (2, 3))
        observer.attach()  # re-attaching replaces, never doubles
        bn(torch.randn(1, 3, 4, 4))
    bn(torch.randn(1, 3, 4, 4))  # detached: not seen
    assert seen == [('bn', (2, 3, 4, 4)), ('attn', (2, 2, 6, 4)), ('bn', (1, 3, 4, 4))]
    assert attn.head_observer is previous and not bn._forward_hooks
