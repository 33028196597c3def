"""Parameter initializers with MXNet 1.9.1's names, arguments, defaults and JSON form.

``init(desc, arr)`` fills the NDArray ``arr`` for the parameter named ``desc``:
a variable's ``__init__`` attribute (MXNet's JSON, e.g. ``'["one", {}]'``) wins;
otherwise the name decides, as in MXNet: ``*weight`` -> the initializer's own
rule, ``*bias``/``*beta``/``*moving_mean`` -> 0, ``*gamma``/``*moving_var`` -> 1.
Randomness is explicit: every call takes a ``key`` (a jax PRNG key, an int
seed or a ``numpy.random.Generator``), by default the next key of
:mod:`xgraph.rng`, so ``mx.random.seed(n)`` makes initialisation reproducible.

    >>> import xgraph as mx
    >>> init = mx.init.Xavier(magnitude=2.0)
    >>> init.dumps()
    '["xavier", {"rnd_type": "uniform", "factor_type": "avg", "magnitude": 2.0}]'
    >>> w = mx.nd.zeros((4, 3)); init(mx.init.InitDesc('fc_weight'), w, key=0); w.shape
    (4, 3)
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as _np

from .. import dtypes as _dt
from .. import rng as _rng
from ..errors import ConfigError, ShapeError
from ..ndarray import NDArray
from ..ops.common import flat_draw
from .registry import ClassRegistry

__all__ = ["InitDesc", "Initializer", "Zero", "One", "Constant", "Uniform", "Normal", "Xavier", "MSRAPrelu",
           "Orthogonal", "Bilinear", "Mixed", "Load", "register", "alias", "create"]

_CLASSES = ClassRegistry("initializer", lambda: Initializer)
#: Register an initializer class under its lower-cased name (a decorator); see :class:`ClassRegistry`.
register = _CLASSES.register
#: Register extra names for an initializer class (``@alias('zeros')``).
alias = _CLASSES.alias


def create(spec: Any, **kwargs: Any) -> "Initializer":
    """An initializer from an instance, a registered name, or MXNet's JSON ``'["name", {kwargs}]'``.

    The JSON is parsed with :func:`json.loads` (never evaluated).

        >>> @register
        ... class Twos(Initializer):
        ...     def _init_weight(self, name, arr):
        ...         arr[:] = 2
        >>> create('twos').dumps()
        '["twos", {}]'
        >>> create('["constant", {"value": 0.5}]').value
        0.5
        >>> type(create('zeros')).__name__
        'Zero'
    """
    if isinstance(spec, Initializer):
        return spec
    if not isinstance(spec, str):
        raise ConfigError(f"an initializer must be an Initializer, a name or a JSON string, got {spec!r}")
    name, params = spec, dict(kwargs)
    if spec.lstrip().startswith("["):
        try:
            parsed = json.loads(spec)
        except json.JSONDecodeError as e:
            raise ConfigError(f"initializer JSON {spec!r} is malformed: {e}") from None
        if not (isinstance(parsed, list) and len(parsed) == 2 and isinstance(parsed[0], str)
                and isinstance(parsed[1], dict)):
            raise ConfigError(f"initializer JSON must be [name, {{kwargs}}], got {spec!r}")
        name, params = parsed[0], {**parsed[1], **kwargs}
    klass = _CLASSES.lookup(name)
    try:
        return klass(**params)
    except TypeError as e:
        raise ConfigError(f"initializer {name!r}: bad arguments {params}: {e}") from None


class InitDesc(str):
    """A parameter name carrying its variable attributes (``attrs``, e.g. ``__init__``) and the global initializer.

        >>> d = InitDesc('bn_moving_var', attrs={'__init__': '["one", {}]'})
        >>> d, d.attrs['__init__']
        ('bn_moving_var', '["one", {}]')
    """

    def __new__(cls, name: str, attrs: Mapping[str, str] | None = None, global_init: Any = None) -> "InitDesc":
        ret = super().__new__(cls, name)
        ret.attrs = dict(attrs or {})
        ret.global_init = global_init
        return ret


def _as_key(key: Any) -> jax.Array:
    """A jax PRNG key from None (xgraph.rng), an int seed, a numpy Generator or a key."""
    if key is None:
        return _rng.next_key()
    if isinstance(key, _np.random.Generator):
        return jax.random.key(int(key.integers(0, 2**31 - 1)))
    if isinstance(key, (int, _np.integer)) and not isinstance(key, bool):
        return jax.random.key(int(key))
    if isinstance(key, jax.Array):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            return key
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return jax.random.wrap_key_data(key)
    raise ConfigError(f"key must be None, an int seed, a numpy Generator or a jax PRNG key, got {key!r}")


class Initializer:
    """Base class: name-based dispatch, ``__init__`` attributes, ``dumps`` and explicit randomness.

    Subclasses override ``_init_weight(name, arr)`` (and possibly the others),
    writing into the NDArray ``arr`` (``arr[:] = value``) and drawing random
    numbers through :meth:`uniform` / :meth:`normal`.
    """

    def __init__(self, **kwargs: Any):
        self._kwargs = kwargs
        self._verbose = False
        self._print_func: Callable[[Any], str] | None = None
        self._key: jax.Array | None = None

    def set_verbosity(self, verbose: bool = False, print_func: Callable[[Any], str] | None = None) -> "Initializer":
        """Print each initialized parameter's name and a summary (the mean absolute value by default)."""
        self._verbose = verbose
        self._print_func = print_func or (lambda a: f"{float(jnp.mean(jnp.abs(a.data.astype(jnp.float32)))):.6g}")
        return self

    def dumps(self) -> str:
        """MXNet's JSON form ``["name", {kwargs}]``, as stored in a variable's ``__init__``.

            >>> Uniform(0.1).dumps()
            '["uniform", {"scale": 0.1}]'
        """
        return json.dumps([type(self).__name__.lower(), self._kwargs])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._kwargs.items())})"

    # -- randomness ---------------------------------------------------------
    def _next_key(self) -> jax.Array:
        if self._key is None:
            self._key = _rng.next_key()
        self._key, sub = jax.random.split(self._key)
        return sub

    def uniform(self, low: float, high: float, shape: Sequence[int]) -> jax.Array:
        """Float32 uniform samples in [low, high) from this call's key stream."""
        key = self._next_key()
        return flat_draw(lambda s: jax.random.uniform(key, s, jnp.float32, low, high), shape)

    def normal(self, loc: float, scale: float, shape: Sequence[int]) -> jax.Array:
        """Float32 normal samples from this call's key stream."""
        key = self._next_key()
        return loc + scale * flat_draw(lambda s: jax.random.normal(key, s, jnp.float32), shape)

    # -- entry points ---------------------------------------------------------
    def __call__(self, desc: str, arr: Any, key: Any = None) -> None:
        """Initialize ``arr`` (an NDArray, filled in place) for the parameter ``desc``.

        ``desc`` an :class:`InitDesc` (attributes honoured) or a plain name (MXNet's legacy rules).
        """
        if not isinstance(arr, NDArray):
            raise ConfigError(f"initializer needs an NDArray to fill for {desc!r}, got {type(arr).__name__}")
        self._key = _as_key(key)
        try:
            if not isinstance(desc, InitDesc):
                self._legacy_init(str(desc), arr)
                return
            if desc.global_init is None:
                desc.global_init = self
            spec = desc.attrs.get("__init__", "")
            if spec:
                sub = create(spec)
                sub._key = self._key
                sub._init_weight(desc, arr)
                self._key = sub._key
                self._verbose_print(desc, spec, arr)
            else:
                self._by_suffix(desc, arr)
                self._verbose_print(desc, "default", arr)
        finally:
            self._key = None

    def init_array(self, desc: str, shape: Sequence[int], dtype: Any = "float32", key: Any = None) -> jax.Array:
        """The initial value of a parameter as a new jax array (same rules as calling the initializer).

            >>> One().init_array('x_weight', (2,)).tolist()
            [1.0, 1.0]
        """
        arr = NDArray(jnp.zeros(tuple(shape), _dt.canonical(dtype)))
        self(desc, arr, key=key)
        return arr.data

    def _verbose_print(self, desc: str, init: str, arr: NDArray) -> None:
        if self._verbose and self._print_func is not None:
            print(f"Initialized {desc} as {init}: {self._print_func(arr)}")

    def _by_suffix(self, name: str, arr: NDArray) -> None:
        if name.endswith("weight"):
            self._init_weight(name, arr)
        elif name.endswith("bias"):
            self._init_bias(name, arr)
        elif name.endswith("gamma"):
            self._init_gamma(name, arr)
        elif name.endswith("beta"):
            self._init_beta(name, arr)
        elif name.endswith("moving_mean") or name.endswith("moving_inv_var") or name.endswith("moving_avg"):
            self._init_zero(name, arr)
        elif name.endswith("moving_var"):
            self._init_one(name, arr)
        elif name.endswith("min"):
            self._init_zero(name, arr)
        elif name.endswith("max"):
            self._init_one(name, arr)
        else:
            self._init_default(name, arr)

    def _legacy_init(self, name: str, arr: NDArray) -> None:
        """MXNet's rules for a plain string name (no attributes)."""
        if name.startswith("upsampling"):
            self._init_bilinear(name, arr)
        elif name.startswith("stn_loc") and name.endswith("weight"):
            self._init_zero(name, arr)
        elif name.startswith("stn_loc") and name.endswith("bias"):
            self._init_loc_bias(name, arr)
        else:
            self._by_suffix(name, arr)

    # -- patterns (override _init_weight in subclasses) -------------------------
    def _init_bilinear(self, _: str, arr: NDArray) -> None:
        arr[:] = _bilinear(arr.shape)

    def _init_loc_bias(self, _: str, arr: NDArray) -> None:
        if arr.shape != (6,):
            raise ShapeError(f"stn_loc bias must have shape (6,), got {arr.shape}")
        arr[:] = _np.array([1.0, 0, 0, 0, 1.0, 0])

    def _init_zero(self, _: str, arr: NDArray) -> None:
        arr[:] = 0.0

    def _init_one(self, _: str, arr: NDArray) -> None:
        arr[:] = 1.0

    def _init_bias(self, _: str, arr: NDArray) -> None:
        arr[:] = 0.0

    def _init_gamma(self, _: str, arr: NDArray) -> None:
        arr[:] = 1.0

    def _init_beta(self, _: str, arr: NDArray) -> None:
        arr[:] = 0.0

    def _init_weight(self, name: str, arr: NDArray) -> None:
        raise ConfigError(f"{type(self).__name__} cannot initialize {name!r}: it defines no weight rule")

    def _init_default(self, name: str, _: NDArray) -> None:
        raise ConfigError(f'Unknown initialization pattern for {name}. Default initialization is now limited to '
                          f'"weight", "bias", "gamma" (1.0), and "beta" (0.0). Please use '
                          f'mx.sym.Variable(init=mx.init.*) to set initialization pattern')


def _bilinear(shape: Sequence[int]) -> _np.ndarray:
    """MXNet's bilinear upsampling kernel for a 4-d weight."""
    if len(shape) != 4:
        raise ShapeError(f"Bilinear initializer needs a 4-d weight, got shape {tuple(shape)}")
    f = _np.ceil(shape[3] / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    i = _np.arange(int(_np.prod(shape)))
    x, y = i % shape[3], (i // shape[3]) % shape[2]
    return ((1 - _np.abs(x / f - c)) * (1 - _np.abs(y / f - c))).reshape(shape).astype(_np.float32)


@register
@alias("zeros")
class Zero(Initializer):
    """Fill with 0.

        >>> Zero().dumps()
        '["zero", {}]'
    """

    def __init__(self):
        super().__init__()

    def _init_weight(self, _: str, arr: NDArray) -> None:
        arr[:] = 0.0


@register
@alias("ones")
class One(Initializer):
    """Fill with 1.

        >>> One().dumps()
        '["one", {}]'
    """

    def __init__(self):
        super().__init__()

    def _init_weight(self, _: str, arr: NDArray) -> None:
        arr[:] = 1.0


@register
class Constant(Initializer):
    """Fill with ``value`` (a scalar or anything broadcastable to the parameter).

        >>> Constant(0.5).dumps()
        '["constant", {"value": 0.5}]'
    """

    def __init__(self, value: Any):
        if isinstance(value, NDArray):
            value = value.asnumpy().tolist()
        if isinstance(value, _np.ndarray):
            value = value.tolist()
        super().__init__(value=value)
        self.value = value

    def _init_weight(self, name: str, arr: NDArray) -> None:
        try:
            arr[:] = jnp.broadcast_to(jnp.asarray(self.value, jnp.float32), arr.shape)
        except ValueError:
            raise ShapeError(f"Constant value of shape {_np.shape(self.value)} cannot fill {name} "
                             f"of shape {arr.shape}") from None


@register
class Uniform(Initializer):
    """Uniform in ``[-scale, scale)``.

        >>> Uniform().dumps()
        '["uniform", {"scale": 0.07}]'
    """

    def __init__(self, scale: float = 0.07):
        super().__init__(scale=scale)
        self.scale = _positive("Uniform", "scale", scale)

    def _init_weight(self, _: str, arr: NDArray) -> None:
        arr[:] = self.uniform(-self.scale, self.scale, arr.shape)


@register
class Normal(Initializer):
    """Normal with mean 0 and standard deviation ``sigma``.

        >>> Normal(0.5).dumps()
        '["normal", {"sigma": 0.5}]'
    """

    def __init__(self, sigma: float = 0.01):
        super().__init__(sigma=sigma)
        self.sigma = _positive("Normal", "sigma", sigma)

    def _init_weight(self, _: str, arr: NDArray) -> None:
        arr[:] = self.normal(0.0, self.sigma, arr.shape)


def _positive(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, _np.integer, _np.floating)) or value < 0:
        raise ConfigError(f"{owner}: {name} must be a non-negative number, got {value!r}")
    return float(value)


@register
class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix from the SVD of a random ``(shape[0], prod(shape[1:]))`` matrix, times ``scale``.

        >>> Orthogonal(rand_type='normal').dumps()
        '["orthogonal", {"scale": 1.414, "rand_type": "normal"}]'
    """

    def __init__(self, scale: float = 1.414, rand_type: str = "uniform"):
        super().__init__(scale=scale, rand_type=rand_type)
        if rand_type not in ("uniform", "normal"):
            raise ConfigError(f"Orthogonal: rand_type must be 'uniform' or 'normal', got {rand_type!r}")
        self.scale = _positive("Orthogonal", "scale", scale)
        self.rand_type = rand_type

    def _init_weight(self, _: str, arr: NDArray) -> None:
        nout = arr.shape[0]
        nin = int(_np.prod(arr.shape[1:]))
        if self.rand_type == "uniform":
            tmp = self.uniform(-1.0, 1.0, (nout, nin))
        else:
            tmp = self.normal(0.0, 1.0, (nout, nin))
        u, _s, v = jnp.linalg.svd(tmp, full_matrices=False)
        res = u if u.shape == tmp.shape else v
        arr[:] = self.scale * res.reshape(arr.shape)


@register
class Xavier(Initializer):
    """Xavier/Glorot: ``scale = sqrt(magnitude / factor)``, uniform in [-scale, scale] or normal(0, scale).

    ``factor`` is ``(fan_in + fan_out) / 2`` (``avg``), ``fan_in`` (``in``) or
    ``fan_out`` (``out``), with ``fan_in = shape[1] * prod(shape[2:])`` and
    ``fan_out = shape[0] * prod(shape[2:])``.

        >>> Xavier(rnd_type='gaussian', factor_type='in', magnitude=2).dumps()
        '["xavier", {"rnd_type": "gaussian", "factor_type": "in", "magnitude": 2}]'
    """

    def __init__(self, rnd_type: str = "uniform", factor_type: str = "avg", magnitude: float = 3):
        super().__init__(rnd_type=rnd_type, factor_type=factor_type, magnitude=magnitude)
        self._setup(rnd_type, factor_type, magnitude)

    def _setup(self, rnd_type: str, factor_type: str, magnitude: float) -> None:
        owner = type(self).__name__
        if rnd_type not in ("uniform", "gaussian"):
            raise ConfigError(f"{owner}: rnd_type must be 'uniform' or 'gaussian', got {rnd_type!r}")
        if factor_type not in ("avg", "in", "out"):
            raise ConfigError(f"{owner}: factor_type must be 'avg', 'in' or 'out', got {factor_type!r}")
        self.rnd_type = rnd_type
        self.factor_type = factor_type
        self.magnitude = _positive(owner, "magnitude", magnitude)

    def scale_for(self, name: str, shape: Sequence[int]) -> float:
        """The uniform bound / normal standard deviation used for a weight of ``shape``.

            >>> Xavier(factor_type='in', magnitude=3).scale_for('w', (10, 3))
            1.0
        """
        if len(shape) < 2:
            raise ShapeError(f"Xavier initializer cannot be applied to vector {name}. It requires at least 2D.")
        hw_scale = float(_np.prod(shape[2:])) if len(shape) > 2 else 1.0
        fan_in, fan_out = shape[1] * hw_scale, shape[0] * hw_scale
        factor = {"avg": (fan_in + fan_out) / 2.0, "in": fan_in, "out": fan_out}[self.factor_type]
        return float(_np.sqrt(self.magnitude / factor))

    def _init_weight(self, name: str, arr: NDArray) -> None:
        scale = self.scale_for(name, arr.shape)
        if self.rnd_type == "uniform":
            arr[:] = self.uniform(-scale, scale, arr.shape)
        else:
            arr[:] = self.normal(0.0, scale, arr.shape)


@register
class MSRAPrelu(Xavier):
    """He/MSRA initialization for PReLU nets: Xavier gaussian with magnitude ``2 / (1 + slope**2)``.

        >>> MSRAPrelu().dumps()
        '["msraprelu", {"factor_type": "avg", "slope": 0.25}]'
    """

    def __init__(self, factor_type: str = "avg", slope: float = 0.25):
        Initializer.__init__(self, factor_type=factor_type, slope=slope)
        magnitude = 2.0 / (1 + float(slope) ** 2)
        self._setup("gaussian", factor_type, magnitude)
        self.slope = slope


@register
class Bilinear(Initializer):
    """The bilinear-interpolation kernel of a 4-d deconvolution weight (MXNet's upsampling init).

        >>> Bilinear().init_array('up_weight', (1, 1, 4, 4))[0, 0, 0].tolist()
        [0.0625, 0.1875, 0.1875, 0.0625]
    """

    def __init__(self):
        super().__init__()

    def _init_weight(self, _: str, arr: NDArray) -> None:
        arr[:] = _bilinear(arr.shape)


class Mixed:
    """Pick the initializer by the first regular expression (``re.match``) that matches the name.

        >>> m = Mixed(['.*bias', '.*'], [Zero(), One()])
        >>> m.init_array('fc_bias', (2,)).tolist(), m.init_array('fc_weight', (2,)).tolist()
        ([0.0, 0.0], [1.0, 1.0])
    """

    def __init__(self, patterns: Sequence[str], initializers: Sequence[Initializer]):
        if len(patterns) != len(initializers):
            raise ConfigError(f"Mixed: {len(patterns)} patterns but {len(initializers)} initializers")
        try:
            self.map = [(re.compile(p), create(i)) for p, i in zip(patterns, initializers)]
        except re.error as e:
            raise ConfigError(f"Mixed: bad pattern: {e}") from None

    def __call__(self, name: str, arr: NDArray, key: Any = None) -> None:
        """Initialize ``arr`` with the first initializer whose pattern matches ``name``."""
        for prog, init in self.map:
            if prog.match(name):
                init(name, arr, key=key)
                return
        raise ConfigError(f'Parameter name {name} did not match any pattern. Consider add a ".*" pattern at the '
                          f'and with default Initializer.')

    def init_array(self, desc: str, shape: Sequence[int], dtype: Any = "float32", key: Any = None) -> jax.Array:
        """The initial value of a parameter as a new jax array."""
        arr = NDArray(jnp.zeros(tuple(shape), _dt.canonical(dtype)))
        self(desc, arr, key=key)
        return arr.data


class Load:
    """Initialize from saved values (a dict of arrays or an ``.npz`` file), falling back to ``default_init``.

    ``arg:``/``aux:`` prefixes of the keys are stripped, as in MXNet.

        >>> ld = Load({'arg:fc_weight': _np.ones((2, 2))}, default_init=Zero())
        >>> ld.init_array('fc_weight', (2, 2)).tolist(), ld.init_array('fc_bias', (2,)).tolist()
        ([[1.0, 1.0], [1.0, 1.0]], [0.0, 0.0])
    """

    def __init__(self, param: Any, default_init: Any = None, verbose: bool = False):
        if isinstance(param, str):
            try:
                with _np.load(param, allow_pickle=False) as z:
                    param = {k: z[k] for k in z.files}
            except (OSError, ValueError) as e:
                raise ConfigError(f"Load: cannot read parameters from {param!r}: {e}") from None
        if not isinstance(param, Mapping):
            raise ConfigError(f"Load: param must be a dict of arrays or an .npz path, got {type(param).__name__}")
        self.param = {}
        for name, arr in param.items():
            if name.startswith("arg:") or name.startswith("aux:"):
                name = name[4:]
            self.param[name] = _np.asarray(arr.asnumpy() if isinstance(arr, NDArray) else arr)
        self.default_init = create(default_init) if default_init is not None else None
        self.verbose = verbose

    def __call__(self, name: str, arr: NDArray, key: Any = None) -> None:
        """Fill ``arr`` with the saved value of ``name`` (shapes must agree) or the default initializer."""
        if name in self.param:
            if tuple(arr.shape) != tuple(self.param[name].shape):
                raise ShapeError(f"Parameter {name} cannot be initialized from loading. Shape mismatch, target "
                                 f"{tuple(arr.shape)} vs loaded {tuple(self.param[name].shape)}")
            arr[:] = self.param[name]
            if self.verbose:
                print(f"Initialized {name} by loading")
        else:
            if self.default_init is None:
                raise ConfigError(f"Cannot Initialize {name}. Not found in loaded param and no default "
                                  f"Initializer is provided.")
            self.default_init(name, arr, key=key)
            if self.verbose:
                print(f"Initialized {name} by default")

    init_array = Mixed.init_array
