"""Random sampling ops: seeded reproducibility, shapes and dtypes, loose distribution moments."""
import numpy as np
import pytest

import xgraph as mx
from xgraph.ops import registry

V = mx.sym.var
N = 20000


def _draw(sym, **inputs):
    ex = sym.bind(mx.cpu(), args={k: mx.nd.array(v) for k, v in inputs.items()}, grad_req="null")
    return [o.asnumpy() for o in ex.forward()]


def test_names_and_aliases():
    for dist in ("uniform", "normal"):
        assert registry.get(dist) is registry.get(f"random_{dist}") is registry.get(f"_random_{dist}")
    for dist in ("uniform", "normal", "gamma", "exponential", "poisson", "negative_binomial",
                 "generalized_negative_binomial"):
        assert registry.get(f"random_{dist}") is registry.get(f"_random_{dist}")
        assert registry.get(f"sample_{dist}") is registry.get(f"_sample_{dist}")
        assert registry.get(f"_random_{dist}").random
    assert registry.get("shuffle") is registry.get("_shuffle")
    assert registry.get("sample_multinomial") is registry.get("_sample_multinomial")


def test_seeded_reproducible_and_streams_differ():
    s = mx.sym.Group([mx.sym.random.uniform(shape=(5,), name="u1"), mx.sym.random.uniform(shape=(5,), name="u2")])
    mx.random.seed(7)
    a1, a2 = _draw(s)
    b1, _ = _draw(s)
    mx.random.seed(7)
    c1, c2 = _draw(s)
    np.testing.assert_array_equal(a1, c1)
    np.testing.assert_array_equal(a2, c2)
    assert not np.array_equal(a1, a2)          # two nodes: two streams
    assert not np.array_equal(a1, b1)          # a new forward: new numbers
    mx.random.seed(3)
    x = mx.nd.random.normal(shape=(4,)).asnumpy()
    mx.random.seed(3)
    np.testing.assert_array_equal(x, mx.random.normal(shape=(4,)).asnumpy())


def test_randomness_depends_on_attributes():
    """Only nodes that draw get a key: an executor of a deterministic graph passes none."""
    data = V("data")
    cases = [(mx.sym.Dropout(data, p=0.5), True), (mx.sym.Dropout(data, p=0.0), False),
             (mx.sym.LeakyReLU(data, act_type="rrelu"), True), (mx.sym.LeakyReLU(data, act_type="leaky"), False),
             (mx.sym.RNN(data, state_size=2, num_layers=2, mode="lstm", p=0.3), True),
             (mx.sym.RNN(data, state_size=2, num_layers=1, mode="lstm", p=0.3), False),
             (mx.sym.RNN(data, state_size=2, num_layers=2, mode="gru"), False)]
    for sym, random in cases:
        assert sym.graph.outputs[0].node.is_random is random, sym.name
    ex = mx.sym.LeakyReLU(data, act_type="elu").simple_bind(mx.cpu(), data=(2, 3), grad_req="null")
    assert ex._key() is None


def test_key_words_cover_large_seeds_and_match_eager_keys():
    from xgraph import rng
    import jax
    rng.seed(2 ** 40 + 5)
    words = rng.next_words()
    assert words.dtype == np.uint32 and words.tolist() == [5, 256, 0]
    rng.seed(2 ** 40 + 5)
    eager = rng.next_key()
    np.testing.assert_array_equal(jax.random.key_data(eager), jax.random.key_data(rng.key_from_words(words)))
    rng.seed(5)
    assert not np.array_equal(jax.random.key_data(rng.next_key()), jax.random.key_data(eager))


@pytest.mark.parametrize("fn,kwargs,mean,var", [
    ("uniform", dict(low=-1.0, high=3.0), 1.0, 16 / 12),
    ("normal", dict(loc=2.0, scale=0.5), 2.0, 0.25),
    ("gamma", dict(alpha=2.0, beta=1.5), 3.0, 4.5),
    ("exponential", dict(lam=4.0), 0.25, 1 / 16),
    ("poisson", dict(lam=3.0), 3.0, 3.0),
    ("negative_binomial", dict(k=3, p=0.4), 4.5, 11.25),
    ("generalized_negative_binomial", dict(mu=2.0, alpha=0.5), 2.0, 4.0),
])
def test_random_moments(fn, kwargs, mean, var):
    mx.random.seed(11)
    x = _draw(getattr(mx.sym, f"random_{fn}")(shape=(N,), **kwargs))[0]
    assert x.shape == (N,) and x.dtype == np.float32
    x = x.astype(np.float64)
    assert abs(x.mean() - mean) < 0.05 * max(1.0, abs(mean))
    assert abs(x.var() - var) < 0.1 * max(1.0, var)
    if fn == "uniform":
        assert x.min() >= -1.0 and x.max() < 3.0
    if fn in ("poisson", "negative_binomial", "generalized_negative_binomial"):
        np.testing.assert_array_equal(x, np.round(x))


def test_shapes_dtypes_and_attrs():
    s = mx.sym.random_uniform(name="r")
    assert s.infer_shape()[1] == [(1,)]                 # MXNet has no scalars
    s = mx.sym.random_normal(shape=(2, 3), dtype="float16", name="r")
    assert s.infer_type()[1] == [np.float16]
    assert s.attr_dict()["r"] == {"shape": "(2, 3)", "dtype": "float16"}
    out = _draw(mx.sym.random_uniform(shape=(64,), dtype="bfloat16"))[0]
    assert out.dtype.name == "bfloat16" and 0 <= out.astype(np.float32).min()
    r = _draw(mx.sym.random.randint(-3, 4, shape=(500,)))[0]
    assert r.dtype == np.int32 and r.min() == -3 and r.max() == 3
    like = _draw(mx.sym._random_normal_like(V("x"), loc=5.0), x=np.zeros((3, 2), np.float32))[0]
    assert like.shape == (3, 2) and abs(like.mean() - 5) < 3


def test_sample_per_element_parameters():
    mu = np.array([-10.0, 0.0, 10.0], np.float32)
    sigma = np.array([0.1, 1.0, 2.0], np.float32)
    mx.random.seed(5)
    x = _draw(mx.sym.random.normal(V("mu"), V("sigma"), shape=(4000,)), mu=mu, sigma=sigma)[0]
    assert x.shape == (3, 4000)
    np.testing.assert_allclose(x.mean(1), mu, atol=0.15)
    np.testing.assert_allclose(x.std(1), sigma, rtol=0.1)
    lo, hi = np.array([[0.0], [5.0]], np.float32), np.array([[1.0], [6.0]], np.float32)
    u = _draw(mx.sym.sample_uniform(V("lo"), V("hi"), shape=(100,)), lo=lo, hi=hi)[0]
    assert u.shape == (2, 1, 100) and (u[0] < 1).all() and (u[1] >= 5).all()
    lam = np.array([1.0, 8.0], np.float32)
    e = _draw(mx.sym.random.exponential(1.0 / V("lam"), shape=(4000,)), lam=lam)[0]   # scale = 1/lam
    np.testing.assert_allclose(e.mean(1), 1 / lam, rtol=0.1)


def test_multinomial_frequencies_and_prob_gradient():
    p = np.array([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]], np.float32)
    mx.random.seed(2)
    draws, logp = _draw(mx.sym.random.multinomial(V("p"), shape=(5000,), get_prob=True), p=p)
    assert draws.shape == (2, 5000) and draws.dtype == np.int32
    for b in range(2):
        np.testing.assert_allclose(np.bincount(draws[b], minlength=3) / 5000, p[b], atol=0.03)
        np.testing.assert_allclose(logp[b], np.log(p[b][draws[b]]), rtol=1e-6)
    # gradient of the log-probabilities: head / p[sample] at each drawn category
    s = mx.sym.sample_multinomial(V("p"), shape=(6,), get_prob=True)
    grads = {"p": mx.nd.zeros(p.shape)}
    ex = s.bind(mx.cpu(), args={"p": mx.nd.array(p)}, args_grad=grads)
    d, _ = ex.forward(is_train=True)
    head = np.random.default_rng(0).normal(size=(2, 6)).astype(np.float32)
    ex.backward([mx.nd.zeros((2, 6), dtype="int32"), mx.nd.array(head)])
    d = d.asnumpy()
    want = np.zeros_like(p)
    for b in range(2):
        for j in range(6):
            want[b, d[b, j]] += head[b, j] / p[b, d[b, j]]
    np.testing.assert_allclose(ex.grad_dict["p"].asnumpy(), want, rtol=1e-5)


def test_shuffle():
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    mx.random.seed(1)
    out = mx.nd.random.shuffle(mx.nd.array(x)).asnumpy()
    assert not np.array_equal(out, x)
    np.testing.assert_array_equal(np.sort(out[:, 0]), x[:, 0])
    np.testing.assert_array_equal(out[:, 1] - out[:, 0], 1)      # rows move whole


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_sample_ops(dtype):
    mu = np.zeros((2,), np.float32)
    sd = np.ones((2,), np.float32)
    args = {"mu": mx.nd.array(mu, dtype=dtype), "sd": mx.nd.array(sd, dtype=dtype)}
    ex = mx.sym.sample_normal(V("mu"), V("sd"), shape=(3000,)).bind(mx.cpu(), args=args, grad_req="null")
    out = ex.forward()[0].asnumpy()
    assert out.dtype.name == dtype
    assert abs(out.astype(np.float32).mean()) < 0.1 and abs(out.astype(np.float32).std() - 1) < 0.1
    ex = mx.sym.random_gamma(alpha=2.0, shape=(3000,), dtype="float16").bind(mx.cpu(), args={}, grad_req="null")
    g = ex.forward()[0].asnumpy()
    assert g.dtype == np.float16 and abs(g.astype(np.float32).mean() - 2) < 0.15


def test_errors_name_the_node():
    with pytest.raises(mx.ShapeError, match=r"sn.*_sample_normal.*sigma has shape"):
        mx.sym.sample_normal(V("mu"), V("sigma"), name="sn").infer_shape(mu=(2,), sigma=(3,))
    with pytest.raises(mx.ShapeError, match=r"ri.*_random_randint.*greater than low"):
        mx.sym.random.randint(5, 5, shape=(2,), name="ri").infer_shape()
    with pytest.raises(mx.AttributeValueError, match=r"ru.*_random_uniform.*dtype"):
        mx.sym.random_uniform(dtype="int8", name="ru")
    with pytest.raises(mx.SymbolError, match=r"all be numbers or all be arrays"):
        mx.sym.random.uniform(V("a"), 1.0)


def test_rank_3_and_higher_draws_are_the_flat_draw_reshaped():
    """Random ops draw over the flattened shape (XLA CPU compiles N-d threefry counters very slowly);
    with JAX's partitionable threefry the values are exactly the N-d draw's."""
    import jax
    if not jax.config.jax_threefry_partitionable:
        pytest.skip("flat and N-d draws coincide only with the partitionable threefry")
    for op in (lambda s: mx.nd.random.normal(shape=s), lambda s: mx.nd.random.uniform(-1, 2, shape=s),
               lambda s: mx.nd.random.randint(0, 100, shape=s)):
        mx.random.seed(7)
        nd4 = op((2, 3, 4, 5)).asnumpy()
        mx.random.seed(7)
        flat = op((120,)).asnumpy()
        assert nd4.shape == (2, 3, 4, 5)
        np.testing.assert_array_equal(nd4.reshape(-1), flat)
        assert len(np.unique(nd4)) > 10
