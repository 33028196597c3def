"""Initializers: statistics, shapes, name rules, __init__ attributes, dumps strings, reproducibility."""
import json

import jax
import numpy as np
import pytest

import xgraph as mx
from xgraph.errors import ConfigError, ShapeError


def value(init, name, shape, key=0, **kw):
    return np.asarray(init.init_array(name, shape, key=key, **kw))


@pytest.mark.parametrize("init,expected", [
    (mx.init.Zero(), '["zero", {}]'),
    (mx.init.One(), '["one", {}]'),
    (mx.init.Constant(0.5), '["constant", {"value": 0.5}]'),
    (mx.init.Uniform(), '["uniform", {"scale": 0.07}]'),
    (mx.init.Normal(), '["normal", {"sigma": 0.01}]'),
    (mx.init.Xavier(), '["xavier", {"rnd_type": "uniform", "factor_type": "avg", "magnitude": 3}]'),
    (mx.init.Xavier(rnd_type="gaussian", factor_type="out", magnitude=2),
     '["xavier", {"rnd_type": "gaussian", "factor_type": "out", "magnitude": 2}]'),
    (mx.init.MSRAPrelu(), '["msraprelu", {"factor_type": "avg", "slope": 0.25}]'),
    (mx.init.Orthogonal(), '["orthogonal", {"scale": 1.414, "rand_type": "uniform"}]'),
])
def test_dumps_is_mxnet_json_and_roundtrips(init, expected):
    assert init.dumps() == expected
    again = mx.init.create(expected)
    assert type(again) is type(init) and again.dumps() == expected


def test_xavier_statistics_all_variants():
    shape = (64, 32, 3, 3)
    fan_in, fan_out = 32 * 9, 64 * 9
    for factor_type, factor in (("avg", (fan_in + fan_out) / 2), ("in", fan_in), ("out", fan_out)):
        scale = np.sqrt(2.0 / factor)
        u = value(mx.init.Xavier("uniform", factor_type, 2.0), "c_weight", shape)
        assert u.shape == shape and np.abs(u).max() <= scale + 1e-7
        assert np.std(u) == pytest.approx(scale / np.sqrt(3), rel=0.05)
        g = value(mx.init.Xavier("gaussian", factor_type, 2.0), "c_weight", shape)
        assert np.std(g) == pytest.approx(scale, rel=0.05) and abs(np.mean(g)) < 0.05 * scale


def test_msraprelu_uniform_normal_orthogonal():
    m = value(mx.init.MSRAPrelu(factor_type="in", slope=0.0), "f_weight", (200, 100))
    assert np.std(m) == pytest.approx(np.sqrt(2.0 / 100), rel=0.05)
    u = value(mx.init.Uniform(0.5), "f_weight", (100, 100))
    assert u.min() >= -0.5 and u.max() < 0.5 and np.std(u) == pytest.approx(0.5 / np.sqrt(3), rel=0.05)
    n = value(mx.init.Normal(2.0), "f_weight", (100, 100))
    assert np.std(n) == pytest.approx(2.0, rel=0.05)
    for shape in ((4, 6), (6, 4), (3, 2, 2)):
        q = value(mx.init.Orthogonal(scale=1.0, rand_type="normal"), "o_weight", shape).reshape(shape[0], -1)
        small = min(q.shape)
        gram = q @ q.T if q.shape[0] == small else q.T @ q
        np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)


def test_name_rules_and_init_attribute():
    init = mx.init.Xavier()
    assert (value(init, "fc_bias", (3,)) == 0).all()
    assert (value(init, "bn_gamma", (3,)) == 1).all()
    assert (value(init, "bn_beta", (3,)) == 0).all()
    assert (value(init, "bn_moving_mean", (3,)) == 0).all()
    assert (value(init, "bn_moving_var", (3,)) == 1).all()
    desc = mx.init.InitDesc("bn_moving_var", attrs={"__init__": '["constant", {"value": 3.0}]'})
    assert (value(init, desc, (2,)) == 3).all()
    desc = mx.init.InitDesc("fc_bias", attrs={"__init__": mx.init.Normal(1.0).dumps()})
    assert np.std(value(init, desc, (500,))) == pytest.approx(1.0, rel=0.1)
    with pytest.raises(ConfigError, match="Unknown initialization pattern"):
        value(init, "mystery", (2,))
    with pytest.raises(ShapeError):
        value(init, "fc_weight", (5,))


def test_variable_init_attribute_from_symbol():
    v = mx.sym.var("emb_weight", init=mx.init.One())
    attrs = v.attr_dict()["emb_weight"]
    assert json.loads(attrs["__init__"]) == ["one", {}]
    out = value(mx.init.Uniform(), mx.init.InitDesc("emb_weight", attrs=attrs), (2, 2))
    assert (out == 1).all()


def test_init_attribute_is_parsed_not_evaluated():
    for bad in ['__import__("os").system("true")', '["one"', '["nosuch", {}]', '[1, 2]']:
        with pytest.raises(ConfigError):
            value(mx.init.Zero(), mx.init.InitDesc("x_weight", attrs={"__init__": bad}), (2,))


def test_reproducible_keys():
    a = value(mx.init.Xavier(), "w_weight", (5, 5), key=7)
    b = value(mx.init.Xavier(), "w_weight", (5, 5), key=7)
    c = value(mx.init.Xavier(), "w_weight", (5, 5), key=8)
    assert (a == b).all() and not (a == c).all()
    g1 = value(mx.init.Normal(), "w_weight", (4,), key=np.random.default_rng(3))
    g2 = value(mx.init.Normal(), "w_weight", (4,), key=np.random.default_rng(3))
    assert (g1 == g2).all()
    k = jax.random.key(1)
    assert (value(mx.init.Normal(), "w_weight", (4,), key=k) == value(mx.init.Normal(), "w_weight", (4,), key=k)).all()
    mx.random.seed(11)
    d1 = value(mx.init.Uniform(), "w_weight", (4,), key=None)
    mx.random.seed(11)
    d2 = value(mx.init.Uniform(), "w_weight", (4,), key=None)
    assert (d1 == d2).all()


def test_fills_ndarray_in_place_keeping_dtype():
    arr = mx.nd.zeros((3, 4), dtype="float16")
    mx.init.Xavier()(mx.init.InitDesc("fc_weight"), arr, key=0)
    assert arr.dtype == np.float16 and np.abs(arr.asnumpy()).max() > 0


def test_mixed_load_constant_bilinear():
    mixed = mx.init.Mixed(["emb.*", ".*"], [mx.init.Constant(2.0), mx.init.One()])
    assert (value(mixed, "emb_weight", (2,)) == 2).all() and (value(mixed, "fc_weight", (2,)) == 1).all()
    assert (value(mixed, "emb_bias", (2,)) == 0).all()  # the chosen initializer still applies name rules
    with pytest.raises(ConfigError):
        value(mx.init.Mixed(["a.*"], [mx.init.One()]), "b_weight", (2,))
    ld = mx.init.Load({"arg:fc_weight": np.full((2, 2), 4.0)}, default_init=mx.init.Zero())
    assert (value(ld, "fc_weight", (2, 2)) == 4).all() and (value(ld, "fc_bias", (2,)) == 0).all()
    with pytest.raises(ShapeError):
        value(ld, "fc_weight", (3, 2))
    with pytest.raises(ConfigError):
        value(mx.init.Load({}), "fc_bias", (2,))
    np.testing.assert_allclose(value(mx.init.Constant([1.0, 2.0]), "c_weight", (3, 2)), [[1, 2]] * 3)
    k = value(mx.init.Bilinear(), "up_weight", (1, 1, 4, 4))[0, 0]
    np.testing.assert_allclose(k, np.outer([0.25, 0.75, 0.75, 0.25], [0.25, 0.75, 0.75, 0.25]))


@pytest.mark.parametrize("call", [
    lambda: mx.init.Xavier(rnd_type="laplace"),
    lambda: mx.init.Xavier(factor_type="sum"),
    lambda: mx.init.Orthogonal(rand_type="x"),
    lambda: mx.init.Uniform(-1),
    lambda: mx.init.create("nosuch"),
    lambda: mx.init.create('["xavier", {"bogus": 1}]'),
    lambda: mx.init.Normal().init_array("a_weight", (2,), key="seed"),
])
def test_bad_configuration(call):
    with pytest.raises(ConfigError):
        call()
