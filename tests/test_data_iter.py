"""NDArrayIter / PythonIter: MXNet's batching, padding, discard, roll_over, shuffle and naming rules."""
import numpy as np
import pytest

import xgraph as mx
from xgraph.errors import ConfigError, ShapeError


def _rows(batch):
    return batch.data[0].asnumpy().ravel().tolist()


def test_pad_wraps_around_and_reports_pad():
    it = mx.io.NDArrayIter(np.arange(7, dtype=np.float32), np.arange(7), batch_size=3)
    batches = list(it)
    assert [_rows(b) for b in batches] == [[0, 1, 2], [3, 4, 5], [6, 0, 1]]
    assert [b.pad for b in batches] == [0, 0, 2]
    assert batches[2].label[0].asnumpy().tolist() == [6, 0, 1]
    it.reset()
    assert len(list(it)) == 3


def test_discard_drops_the_partial_batch():
    it = mx.io.NDArrayIter(np.arange(7, dtype=np.float32), batch_size=3, last_batch_handle="discard")
    assert [_rows(b) for b in it] == [[0, 1, 2], [3, 4, 5]]
    it.reset()
    assert [_rows(b) for b in it] == [[0, 1, 2], [3, 4, 5]]


def test_roll_over_carries_leftovers_into_next_epoch():
    it = mx.io.NDArrayIter(np.arange(7, dtype=np.float32), batch_size=3, last_batch_handle="roll_over")
    assert [_rows(b) for b in it] == [[0, 1, 2], [3, 4, 5]]
    it.reset()
    epoch2 = list(it)
    assert [_rows(b) for b in epoch2] == [[6, 0, 1], [2, 3, 4]]
    assert epoch2[0].pad == 1           # MXNet reports the carried-over count on the first batch
    it.reset()
    assert [_rows(b) for b in it][0] == [5, 6, 0]


def test_names_for_lists_and_dicts_and_provide():
    it = mx.io.NDArrayIter([np.zeros((4, 2)), np.ones((4, 3))], {"y": np.zeros(4), "a": np.ones((4, 1))},
                           batch_size=2)
    assert [d.name for d in it.provide_data] == ["_0_data", "_1_data"]
    assert [d.name for d in it.provide_label] == ["a", "y"]          # dicts are sorted, as MXNet
    assert it.provide_data[1].shape == (2, 3) and it.provide_label[0].shape == (2, 1)
    b = next(it)
    assert len(b.data) == 2 and len(b.label) == 2


def test_default_label_name_and_no_label():
    it = mx.io.NDArrayIter(np.zeros((4, 2)), np.zeros(4), batch_size=2)
    assert it.provide_label[0].name == "softmax_label"
    it = mx.io.NDArrayIter(np.zeros((4, 2)), batch_size=2)
    assert it.provide_label == [] and next(it).label == []


def test_shuffle_is_seeded_and_keeps_pairs():
    x = np.arange(10, dtype=np.float32)
    a = mx.io.NDArrayIter(x, x * 10, batch_size=5, shuffle=True, seed=3)
    b = mx.io.NDArrayIter(x, x * 10, batch_size=5, shuffle=True, seed=3)
    ra, rb = [_rows(t) for t in a], [_rows(t) for t in b]
    assert ra == rb and sorted(sum(ra, [])) == list(range(10)) and sum(ra, []) != list(range(10))
    a.reset()
    for batch in a:
        assert np.allclose(batch.label[0].asnumpy(), batch.data[0].asnumpy() * 10)
    np.random.seed(1)
    c = [_rows(t) for t in mx.io.NDArrayIter(x, batch_size=5, shuffle=True)]
    np.random.seed(1)
    d = [_rows(t) for t in mx.io.NDArrayIter(x, batch_size=5, shuffle=True)]
    assert c == d


def test_bad_inputs_raise_xgraph_errors():
    with pytest.raises(ShapeError, match="samples"):
        mx.io.NDArrayIter(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ConfigError, match="last_batch_handle"):
        mx.io.NDArrayIter(np.zeros(4), last_batch_handle="wrap")
    with pytest.raises(ConfigError, match="batch_size"):
        mx.io.NDArrayIter(np.zeros(4), batch_size=0)


def test_data_desc_and_batch():
    d = mx.io.DataDesc("x", (2, 3), np.int32, "NC")
    assert d == ("x", (2, 3)) and d.dtype == np.int32 and d.layout == "NC"
    assert mx.io.DataDesc.get_batch_axis("TNC") == 1 and mx.io.DataDesc.get_batch_axis(None) == 0
    assert mx.io.DataDesc.get_batch_axis("") == -1      # no N: MXNet's "do not split"
    b = mx.io.DataBatch([np.zeros((2, 3))], [np.zeros(2)], pad=1, index=np.arange(2))
    assert "(2, 3)" in str(b)


def test_python_iter_infers_descs_and_pads_short_batches():
    def gen():
        yield np.ones((4, 3), np.float32), np.zeros(4, np.int32)
        yield np.ones((1, 3), np.float32), np.ones(1, np.int32)
    it = mx.io.PythonIter(gen)
    assert it.provide_data[0].shape == (4, 3) and it.provide_label[0].dtype == np.int32
    batches = list(it)
    assert [b.pad for b in batches] == [0, 3] and batches[1].data[0].shape == (4, 3)
    it.reset()
    assert len(list(it)) == 2                      # a callable source restarts
    it = mx.io.PythonIter([{"data": np.zeros((2, 2)), "softmax_label": np.zeros(2)}])
    assert it.provide_label[0].name == "softmax_label"
    with pytest.raises(ConfigError, match="no batch"):
        mx.io.PythonIter([])
