"""Data iterators with MXNet 1.9.1's semantics: DataDesc, DataBatch, DataIter, NDArrayIter, PythonIter.

``NDArrayIter`` batches in-memory arrays (numpy or NDArray), optionally
shuffled (with numpy's global random state, as MXNet does: seed it with
``np.random.seed``, or pass ``seed=`` for a private stream), and handles the
last partial batch the MXNet ways: ``'pad'`` (wrap around to the first
samples, report how many with ``DataBatch.pad``), ``'discard'`` (drop it) and
``'roll_over'`` (carry it into the first batch of the next epoch).
``PythonIter`` adapts any re-iterable of numpy batches.

    >>> import numpy as np
    >>> it = NDArrayIter(np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(5), batch_size=2)
    >>> [(b.data[0].shape, b.pad) for b in it]
    [((2, 2), 0), ((2, 2), 0), ((2, 2), 1)]
    >>> it.provide_data[0].name, it.provide_label[0].name
    ('data', 'softmax_label')
"""
from __future__ import annotations

from collections import namedtuple
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, ShapeError
from ..ndarray import NDArray

__all__ = ["DataDesc", "DataBatch", "DataIter", "NDArrayIter", "PythonIter"]


class DataDesc(namedtuple("DataDesc", ["name", "shape"])):
    """A named input's shape, with ``dtype`` and ``layout`` (MXNet's ``mx.io.DataDesc``).

    It is a ``(name, shape)`` tuple, so ``bind(data_shapes=[('data', (2, 3))])``
    and ``bind(data_shapes=[DataDesc('data', (2, 3))])`` mean the same.

        >>> d = DataDesc('data', (32, 3, 8, 8)); d.name, d.shape, d.dtype, d.layout
        ('data', (32, 3, 8, 8), <class 'numpy.float32'>, 'NCHW')
        >>> DataDesc.get_batch_axis('TNC')
        1
    """

    def __new__(cls, name: str, shape: Sequence[int], dtype: Any = np.float32, layout: str = "NCHW"):
        ret = super().__new__(cls, name, tuple(int(s) for s in shape))
        ret.dtype = dtype
        ret.layout = layout
        return ret

    def __repr__(self) -> str:
        return f"DataDesc[{self.name},{self.shape},{np.dtype(self.dtype).name},{self.layout}]"

    @staticmethod
    def get_batch_axis(layout: str | None) -> int:
        """The position of ``N`` in a layout string: 0 without a layout, -1 (MXNet's "do not split") without ``N``."""
        if layout is None:
            return 0
        return layout.find("N")

    @staticmethod
    def get_list(shapes: Sequence[tuple], types: Sequence[tuple] | None) -> list["DataDesc"]:
        """DataDescs from ``[(name, shape)]`` and optionally ``[(name, dtype)]``.

            >>> DataDesc.get_list([('x', (1,))], [('x', np.int32)])[0].dtype
            <class 'numpy.int32'>
        """
        if types is not None:
            type_dict = dict(types)
            return [DataDesc(n, s, type_dict[n]) for n, s in shapes]
        return [DataDesc(n, s) for n, s in shapes]


def as_descs(shapes: Any, what: str = "data_shapes") -> list[DataDesc]:
    """Normalize ``[('x', shape)]``, ``[DataDesc]`` or ``{'x': shape}`` to a list of DataDesc.

        >>> as_descs({'x': (2, 3)})[0].shape
        (2, 3)
    """
    if shapes is None:
        return []
    if isinstance(shapes, Mapping):
        shapes = list(shapes.items())
    out = []
    for item in shapes:
        if isinstance(item, DataDesc):
            out.append(item)
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
            out.append(DataDesc(item[0], item[1]))
        else:
            raise ConfigError(f"{what}: expected (name, shape) pairs or DataDesc, got {item!r}")
    return out


class DataBatch:
    """One batch: lists of ``data`` and ``label`` arrays, ``pad`` (how many trailing samples are
    filler), ``index``, and optionally ``provide_data``/``provide_label``.

        >>> b = DataBatch([np.zeros((2, 3))], pad=1); b.pad, len(b.data)
        (1, 1)
    """

    def __init__(self, data: Sequence[Any], label: Sequence[Any] | None = None, pad: int | None = None,
                 index: Any = None, bucket_key: Any = None, provide_data: Any = None, provide_label: Any = None):
        if data is not None and not isinstance(data, (list, tuple)):
            raise ConfigError(f"DataBatch: data must be a list of arrays, got {type(data).__name__}")
        if label is not None and not isinstance(label, (list, tuple)):
            raise ConfigError(f"DataBatch: label must be a list of arrays, got {type(label).__name__}")
        self.data = data
        self.label = label
        self.pad = pad
        self.index = index
        self.bucket_key = bucket_key
        self.provide_data = provide_data
        self.provide_label = provide_label

    def __str__(self) -> str:
        data = [tuple(d.shape) for d in self.data]
        label = [tuple(l.shape) for l in self.label] if self.label else None
        return f"DataBatch: data shapes: {data} label shapes: {label}"


class DataIter:
    """Base class of data iterators: ``reset``, ``next``, the iterator protocol,
    ``iter_next``/``getdata``/``getlabel``/``getpad``/``getindex`` for subclasses."""

    def __init__(self, batch_size: int = 0):
        self.batch_size = batch_size

    def __iter__(self) -> "DataIter":
        return self

    def reset(self) -> None:
        """Go back to the beginning of the data."""

    def next(self) -> DataBatch:
        """The next batch; StopIteration at the end of the epoch."""
        if self.iter_next():
            return DataBatch(data=self.getdata(), label=self.getlabel(), pad=self.getpad(), index=self.getindex())
        raise StopIteration

    def __next__(self) -> DataBatch:
        return self.next()

    def iter_next(self) -> bool:
        """Move to the next batch; False at the end."""
        raise NotImplementedError

    def getdata(self) -> list:
        """The data arrays of the current batch."""
        raise NotImplementedError

    def getlabel(self) -> list:
        """The label arrays of the current batch."""
        raise NotImplementedError

    def getindex(self) -> Any:
        """The indices of the current batch's samples (None when unknown)."""
        return None

    def getpad(self) -> int:
        """How many samples of the current batch are filler."""
        raise NotImplementedError


def _host(x: Any, what: str) -> np.ndarray:
    if isinstance(x, NDArray):
        return x.asnumpy()
    try:
        return np.asarray(x)
    except Exception as e:  # noqa: BLE001 - any conversion failure is a user error here
        raise ConfigError(f"{what}: cannot be converted to an array: {e}") from None


def _init_data(data: Any, allow_empty: bool, default_name: str) -> list[tuple[str, np.ndarray]]:
    """MXNet's ``_init_data``: one array, a list (names ``_<i>_<default>`` when several) or a dict (sorted)."""
    if data is None:
        if not allow_empty:
            raise ConfigError(f"NDArrayIter: {default_name} must be given")
        data = []
    if isinstance(data, (np.ndarray, NDArray)) or hasattr(data, "__jax_array__") or \
            (hasattr(data, "shape") and hasattr(data, "dtype")):
        data = [data]
    if isinstance(data, (list, tuple)):
        if not allow_empty and not data:
            raise ConfigError(f"NDArrayIter: {default_name} is an empty list")
        if len(data) == 1:
            data = {default_name: data[0]}
        else:
            data = {f"_{i}_{default_name}": d for i, d in enumerate(data)}
    if not isinstance(data, Mapping):
        raise ConfigError("NDArrayIter: input must be an NDArray, a numpy.ndarray, a list of them "
                          f"or a dict with them as values, got {type(data).__name__}")
    return sorted((str(k), _host(v, f"NDArrayIter input {k!r}")) for k, v in data.items())


class NDArrayIter(DataIter):
    """Batches over in-memory arrays (MXNet's ``mx.io.NDArrayIter``).

    ``data``/``label``: an array, a list of arrays or a dict name -> array
    (all with the same number of samples along axis 0).  ``shuffle`` permutes
    the samples at construction and at every :meth:`reset`; by default with
    numpy's global random state (as MXNet), or a private ``np.random.RandomState(seed)``.

        >>> it = NDArrayIter({'a': np.zeros((5, 1)), 'b': np.ones((5, 2))}, batch_size=2,
        ...                  last_batch_handle='discard')
        >>> [d.name for d in it.provide_data], sum(1 for _ in it)
        (['a', 'b'], 2)
        >>> it = NDArrayIter(np.arange(5.), batch_size=2, last_batch_handle='roll_over')
        >>> [b.data[0].asnumpy().tolist() for b in it]; it.reset(); next(it).data[0].asnumpy().tolist()
        [[0.0, 1.0], [2.0, 3.0]]
        [4.0, 0.0]
    """

    def __init__(self, data: Any, label: Any = None, batch_size: int = 1, shuffle: bool = False,
                 last_batch_handle: str = "pad", data_name: str = "data", label_name: str = "softmax_label",
                 seed: int | None = None):
        super().__init__(batch_size)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ConfigError(f"NDArrayIter: batch_size must be a positive integer, got {batch_size!r}")
        if last_batch_handle not in ("pad", "discard", "roll_over"):
            raise ConfigError(f"NDArrayIter: last_batch_handle must be 'pad', 'discard' or 'roll_over', "
                              f"got {last_batch_handle!r}")
        self.data = _init_data(data, allow_empty=False, default_name=data_name)
        self.label = _init_data(label, allow_empty=True, default_name=label_name)
        n = self.data[0][1].shape[0]
        for name, arr in self.data + self.label:
            if arr.ndim == 0 or arr.shape[0] != n:
                raise ShapeError(f"NDArrayIter: {name!r} has shape {arr.shape}, expected {n} samples along "
                                 f"axis 0 like {self.data[0][0]!r}")
        self.batch_size = int(batch_size)
        self.num_data = n
        self.idx = np.arange(n)
        self.shuffle = bool(shuffle)
        self.last_batch_handle = last_batch_handle
        self._random = np.random.RandomState(seed) if seed is not None else np.random
        self.cursor = -self.batch_size
        self._cache_data: list | None = None
        self._cache_label: list | None = None
        self.reset()

    @property
    def provide_data(self) -> list[DataDesc]:
        """Name, batch shape and dtype of each data array."""
        return [DataDesc(k, (self.batch_size,) + v.shape[1:], v.dtype) for k, v in self.data]

    @property
    def provide_label(self) -> list[DataDesc]:
        """Name, batch shape and dtype of each label array."""
        return [DataDesc(k, (self.batch_size,) + v.shape[1:], v.dtype) for k, v in self.label]

    def hard_reset(self) -> None:
        """Start over, ignoring any rolled-over samples."""
        if self.shuffle:
            self._shuffle_data()
        self.cursor = -self.batch_size
        self._cache_data = self._cache_label = None

    def reset(self) -> None:
        """Start a new epoch (re-shuffling when ``shuffle``; with ``'roll_over'`` the
        samples left over from the last epoch open the next one)."""
        if self.shuffle:
            self._shuffle_data()
        if self.last_batch_handle == "roll_over" and \
                self.num_data - self.batch_size < self.cursor < self.num_data:
            self.cursor = self.cursor - self.num_data - self.batch_size
        else:
            self.cursor = -self.batch_size

    def _shuffle_data(self) -> None:
        perm = np.arange(self.num_data)
        self._random.shuffle(perm)
        self.idx = self.idx[perm]          # which original sample sits at each position now
        self.data = [(k, v[perm]) for k, v in self.data]
        self.label = [(k, v[perm]) for k, v in self.label]

    def iter_next(self) -> bool:
        self.cursor += self.batch_size
        return self.cursor < self.num_data

    def next(self) -> DataBatch:
        if not self.iter_next():
            raise StopIteration
        data, label = self.getdata(), self.getlabel()
        if data[0].shape[0] != self.batch_size:
            # an incomplete last batch ('discard' / 'roll_over'): keep it for the next epoch
            self._cache_data, self._cache_label = data, label
            raise StopIteration
        return DataBatch(data=data, label=label, pad=self.getpad(), index=None)

    def _slice(self, source: list, start: int | None = None, end: int | None = None) -> list[np.ndarray]:
        return [v[slice(start or 0, self.num_data if end is None else end)] for _, v in source]

    def _batchify(self, source: list, cache: list | None) -> list[np.ndarray]:
        if self.cursor >= self.num_data:
            raise ConfigError("NDArrayIter needs reset()")
        if self.last_batch_handle == "roll_over" and -self.batch_size < self.cursor < 0:
            if cache is None:
                raise ConfigError("NDArrayIter: the next epoch should have rolled-over data; call hard_reset()")
            second = self._slice(source, end=self.cursor + self.batch_size)
            return [np.concatenate([a, b]) for a, b in zip(cache, second)]
        if self.last_batch_handle == "pad" and self.cursor + self.batch_size > self.num_data:
            pad = self.batch_size - self.num_data + self.cursor
            first, second = self._slice(source, start=self.cursor), self._slice(source, end=pad)
            return [np.concatenate([a, b]) for a, b in zip(first, second)]
        return self._slice(source, self.cursor, min(self.cursor + self.batch_size, self.num_data))

    def _host_cache(self, cache: list | None) -> list | None:
        return None if cache is None else [c.asnumpy() if isinstance(c, NDArray) else c for c in cache]

    def getdata(self) -> list[NDArray]:
        out = self._batchify(self.data, self._host_cache(self._cache_data))
        if self.last_batch_handle == "roll_over" and self.cursor < 0:
            self._cache_data = None
        return [NDArray(a) for a in out]

    def getlabel(self) -> list[NDArray]:
        out = self._batchify(self.label, self._host_cache(self._cache_label))
        if self.last_batch_handle == "roll_over" and self.cursor < 0:
            self._cache_label = None
        return [NDArray(a) for a in out]

    def getpad(self) -> int:
        """MXNet's rule: the filler count of a ``'pad'`` last batch; for ``'roll_over'`` the
        first batch of an epoch reports how many samples it carried over."""
        if self.last_batch_handle == "pad" and self.cursor + self.batch_size > self.num_data:
            return self.cursor + self.batch_size - self.num_data
        if self.last_batch_handle == "roll_over" and -self.batch_size < self.cursor < 0:
            return -self.cursor
        return 0


class PythonIter(DataIter):
    """An adapter over any re-iterable of numpy batches (a list, a generator function, a loader).

    Each item is ``(data, label)``, ``data`` alone, or a dict ``{name: array}``;
    ``data``/``label`` may be one array or a tuple of arrays.  ``provide_data``
    and ``provide_label`` are inferred from the first batch; a shorter batch
    later is zero-padded to the batch size and reported through ``DataBatch.pad``.
    ``source`` may be a zero-argument callable returning a fresh iterable (so
    :meth:`reset` can restart a generator).

        >>> batches = [(np.ones((4, 3), np.float32), np.zeros(4)), (np.ones((2, 3), np.float32), np.zeros(2))]
        >>> it = PythonIter(batches)
        >>> it.provide_data, [b.pad for b in it]
        ([DataDesc[data,(4, 3),float32,NCHW]], [0, 2])
    """

    def __init__(self, source: Iterable | Callable[[], Iterable], data_names: Sequence[str] = ("data",),
                 label_names: Sequence[str] = ("softmax_label",)):
        self._source = source
        self.data_names = list(data_names)
        self.label_names = list(label_names)
        self._it: Iterator | None = None
        first = self._split(next(iter(self._fresh()), None))
        if first is None:
            raise ConfigError("PythonIter: the source yielded no batch")
        data, label = first
        super().__init__(int(data[0].shape[0]))
        self._provide_data = [DataDesc(n, a.shape, a.dtype) for n, a in zip(self._names(data, self.data_names), data)]
        self._provide_label = [DataDesc(n, a.shape, a.dtype)
                               for n, a in zip(self._names(label, self.label_names), label)]
        self.reset()

    def _fresh(self) -> Iterable:
        return self._source() if callable(self._source) else self._source

    @staticmethod
    def _names(arrays: list, names: list[str]) -> list[str]:
        if len(arrays) > len(names):
            raise ConfigError(f"PythonIter: {len(arrays)} arrays in a batch but only names {names}")
        return names[:len(arrays)]

    def _split(self, item: Any) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
        if item is None:
            return None
        if isinstance(item, Mapping):
            data = [np.asarray(item[n]) for n in self.data_names if n in item]
            label = [np.asarray(item[n]) for n in self.label_names if n in item]
        elif isinstance(item, tuple) and len(item) == 2:
            data, label = [self._list(item[0]), self._list(item[1])]
        else:
            data, label = self._list(item), []
        if not data:
            raise ConfigError(f"PythonIter: a batch has no data array (names {self.data_names})")
        return data, label

    @staticmethod
    def _list(x: Any) -> list[np.ndarray]:
        if isinstance(x, (list, tuple)):
            return [np.asarray(a) for a in x]
        return [np.asarray(x)]

    @property
    def provide_data(self) -> list[DataDesc]:
        return self._provide_data

    @property
    def provide_label(self) -> list[DataDesc]:
        return self._provide_label

    def reset(self) -> None:
        self._it = iter(self._fresh())

    def next(self) -> DataBatch:
        item = next(self._it)
        data, label = self._split(item)
        n = data[0].shape[0]
        if n > self.batch_size:
            raise ShapeError(f"PythonIter: a batch has {n} samples, more than the first batch's {self.batch_size}")
        pad = self.batch_size - n

        def fill(arrays: list[np.ndarray], descs: list[DataDesc]) -> list[NDArray]:
            out = []
            for a, d in zip(arrays, descs):
                if tuple(a.shape[1:]) != tuple(d.shape[1:]):
                    raise ShapeError(f"PythonIter: {d.name!r} has shape {a.shape}, expected {d.shape}")
                if pad:
                    a = np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)])
                out.append(NDArray(a))
            return out
        return DataBatch(fill(data, self._provide_data), fill(label, self._provide_label), pad=pad,
                         provide_data=self._provide_data, provide_label=self._provide_label)
