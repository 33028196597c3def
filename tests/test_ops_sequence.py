"""SequenceMask, SequenceLast, SequenceReverse against numpy loops; gradients by finite differences."""
import numpy as np
import pytest

import xgraph as mx
from opcheck_tensor import check_grad, check_low_precision, run

RNG = np.random.default_rng(31)
V = mx.sym.var


def _np_mask(x, lengths, value, axis):
    out = x.copy()
    for n, ln in enumerate(lengths.astype(int)):
        if axis == 0:
            out[ln:, n] = value
        else:
            out[n, ln:] = value
    return out


def _np_last(x, lengths, axis):
    return np.stack([(x[ln - 1, n] if axis == 0 else x[n, ln - 1]) for n, ln in enumerate(lengths.astype(int))])


def _np_reverse(x, lengths):
    out = x.copy()
    for n, ln in enumerate(lengths.astype(int)):
        out[:ln, n] = x[:ln, n][::-1]
    return out


@pytest.mark.parametrize("axis", [0, 1])
def test_mask_and_last(axis):
    x = RNG.normal(size=(4, 3, 2) if axis == 0 else (3, 4, 2)).astype(np.float32)
    lengths = np.array([1, 4, 2], np.float32)
    s = mx.sym.SequenceMask(V("x"), V("l"), use_sequence_length=True, value=-7, axis=axis)
    np.testing.assert_array_equal(run(s, x=x, l=lengths)[0], _np_mask(x, lengths, -7, axis))
    s = mx.sym.SequenceLast(V("x"), V("l"), use_sequence_length=True, axis=axis)
    np.testing.assert_array_equal(run(s, x=x, l=lengths)[0], _np_last(x, lengths, axis))


def test_without_lengths_and_reverse():
    x = RNG.normal(size=(4, 3, 2)).astype(np.float32)
    np.testing.assert_array_equal(run(mx.sym.SequenceMask(V("x")), x=x)[0], x)
    np.testing.assert_array_equal(run(mx.sym.SequenceLast(V("x")), x=x)[0], x[-1])
    np.testing.assert_array_equal(run(mx.sym.SequenceReverse(V("x")), x=x)[0], x[::-1])
    lengths = np.array([2, 4, 1], np.float32)
    s = mx.sym.SequenceReverse(V("x"), V("l"), use_sequence_length=True)
    np.testing.assert_array_equal(run(s, x=x, l=lengths)[0], _np_reverse(x, lengths))


def test_optional_input_and_inference():
    s = mx.sym.SequenceMask(V("x"), use_sequence_length=True, name="sm")
    assert s.list_arguments() == ["x", "sm_sequence_length"]
    assert s.infer_shape(x=(5, 2, 3))[0] == [(5, 2, 3), (2,)]
    assert mx.sym.SequenceMask(V("x"), name="sm").list_arguments() == ["x"]
    s = mx.sym.SequenceLast(V("x"), use_sequence_length=True, axis=1, name="sl")
    assert s.infer_shape(x=(2, 5, 3)) == ([(2, 5, 3), (2,)], [(2, 3)], [])


def test_gradients_fd():
    x = RNG.normal(size=(3, 2, 2))
    lengths = np.array([2, 1])
    for op in ("SequenceMask", "SequenceLast", "SequenceReverse"):
        s = getattr(mx.sym, op)(V("x"), V("l"), use_sequence_length=True)
        check_grad(s, {"x": x, "l": lengths}, null=("l",))
    check_grad(mx.sym.SequenceLast(V("x"), V("l"), use_sequence_length=True, axis=1),
               {"x": x, "l": np.array([3, 1, 2])}, null=("l",))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision(dtype):
    x = RNG.normal(size=(4, 3, 2)).astype(np.float32)
    lengths = np.array([1, 4, 2], np.float32)
    s = mx.sym.Group([getattr(mx.sym, op)(V("x"), V("l"), use_sequence_length=True)
                      for op in ("SequenceMask", "SequenceLast", "SequenceReverse")])
    check_low_precision(s, {"x": x, "l": lengths}, dtype)


def test_errors_name_the_node():
    with pytest.raises(mx.ShapeError, match=r"sm.*SequenceMask.*sequence_length has shape"):
        mx.sym.SequenceMask(V("x"), V("l"), use_sequence_length=True, name="sm").infer_shape(x=(4, 3, 2), l=(4,))
    with pytest.raises(mx.ShapeError, match=r"sr.*SequenceReverse.*only axis=0"):
        mx.sym.SequenceReverse(V("x"), axis=1, name="sr").infer_shape(x=(4, 3, 2))
    with pytest.raises(mx.ShapeError, match=r"sl.*SequenceLast.*axis must be 0"):
        mx.sym.SequenceLast(V("x"), axis=2, name="sl").infer_shape(x=(4, 3, 2))
    with pytest.raises(mx.AttributeValueError, match=r"sm2.*SequenceMask.*use_sequence_length"):
        mx.sym.SequenceMask(V("x"), use_sequence_length="maybe", name="sm2")
