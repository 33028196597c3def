"""Text data for recurrent language models (``mx.rnn.encode_sentences``, ``mx.rnn.BucketSentenceIter``).

Sentences of similar length are grouped into buckets so each batch is padded only to its
bucket's length; every batch says which bucket it is (``DataBatch.bucket_key``), so a model can
be unrolled per length.

    >>> sents, vocab = encode_sentences([['a', 'b'], ['b', 'c', 'a']])
    >>> sents, vocab
    ([[0, 1], [1, 2, 0]], {'\\n': -1, 'a': 0, 'b': 1, 'c': 2})
"""
from __future__ import annotations

import bisect
import logging
import random
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from ..ndarray import array
from ..train.data import DataBatch, DataDesc, DataIter

__all__ = ["encode_sentences", "BucketSentenceIter"]

_log = logging.getLogger("xgraph")


def encode_sentences(sentences: Sequence[Sequence[str]], vocab: dict | None = None, invalid_label: int = -1,
                     invalid_key: str = "\n", start_label: int = 0,
                     unknown_token: str | None = None) -> tuple[list[list[int]], dict]:
    """Sentences of tokens as lists of integer ids, and the vocabulary (token -> id).

    Without ``vocab`` a new one is built (``invalid_key`` maps to ``invalid_label``; new tokens
    get ids from ``start_label`` up, skipping ``invalid_label``).  With a given ``vocab``, an
    unknown token becomes ``unknown_token`` (added to the vocabulary once), or is an error.

        >>> encode_sentences([['a', 'x']], vocab={'a': 1}, unknown_token='UNK')
        ([[1, 0]], {'a': 1, 'UNK': 0})
    """
    idx = start_label
    new_vocab = vocab is None
    if new_vocab:
        vocab = {invalid_key: invalid_label}
    encoded = []
    for sent in sentences:
        coded = []
        for word in sent:
            if word not in vocab and unknown_token is not None:
                word = unknown_token
            if word not in vocab:
                if not new_vocab and unknown_token is None:
                    raise ConfigError(f"encode_sentences: token {word!r} is not in the given vocabulary "
                                      f"(pass unknown_token= to map unknown tokens to one id)")
                if idx == invalid_label:
                    idx += 1
                vocab[word] = idx
                idx += 1
            coded.append(vocab[word])
        encoded.append(coded)
    return encoded, vocab


class BucketSentenceIter(DataIter):
    """Batches of encoded sentences, bucketed by length; the label is the next token
    (``invalid_label`` after the last one and in the padding).

    ``buckets`` are the padded lengths (by default every length with at least ``batch_size``
    sentences); longer sentences are dropped.  ``layout`` ``'NT'`` gives (batch, time) arrays,
    ``'TN'`` (time, batch).  Shuffles with Python's and numpy's global random state, as MXNet.

        >>> it = BucketSentenceIter([[1, 2], [3, 4], [5, 6, 7]], batch_size=2, buckets=[2, 3])
        >>> b = next(iter(it)); b.bucket_key, b.data[0].shape, it.default_bucket_key
        (2, (2, 2), 3)
    """

    def __init__(self, sentences: Sequence[Sequence[int]], batch_size: int, buckets: Sequence[int] | None = None,
                 invalid_label: int = -1, data_name: str = "data", label_name: str = "softmax_label",
                 dtype: Any = "float32", layout: str = "NT"):
        super().__init__(batch_size)
        if layout not in ("NT", "TN"):
            raise ConfigError(f"BucketSentenceIter: layout {layout!r} must be 'NT' (batch major) or 'TN' (time major)")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"BucketSentenceIter: batch_size must be a positive int, got {batch_size!r}")
        if not buckets:
            counts = np.bincount([len(s) for s in sentences]) if len(sentences) else np.zeros(0, int)
            buckets = [length for length, n in enumerate(counts) if n >= batch_size]
        buckets = sorted(buckets)
        if not buckets:
            raise ConfigError(f"BucketSentenceIter: no bucket (no sentence length occurs at least batch_size="
                              f"{batch_size} times); give buckets= explicitly")
        rows: list[list[np.ndarray]] = [[] for _ in buckets]
        discarded = 0
        for sent in sentences:
            b = bisect.bisect_left(buckets, len(sent))
            if b == len(buckets):
                discarded += 1
                continue
            row = np.full((buckets[b],), invalid_label, dtype=dtype)
            row[:len(sent)] = sent
            rows[b].append(row)
        if discarded:
            _log.warning("BucketSentenceIter: discarded %d sentences longer than the largest bucket.", discarded)
        kept = [i for i, r in enumerate(rows) if r]
        self.buckets = [buckets[i] for i in kept]
        self.data = [np.asarray(rows[i], dtype=dtype) for i in kept]
        if not self.data:
            raise ConfigError("BucketSentenceIter: no sentence fits a bucket")
        self.data_name, self.label_name = data_name, label_name
        self.dtype = dtype
        self.invalid_label = invalid_label
        self.layout = layout
        self.major_axis = layout.find("N")
        self.default_bucket_key = max(self.buckets)
        shape = (batch_size, self.default_bucket_key) if self.major_axis == 0 else (self.default_bucket_key, batch_size)
        self.provide_data = [DataDesc(name=data_name, shape=shape, layout=layout)]
        self.provide_label = [DataDesc(name=label_name, shape=shape, layout=layout)]
        self.idx = [(i, j) for i, buck in enumerate(self.data)
                    for j in range(0, len(buck) - batch_size + 1, batch_size)]
        self.curr_idx = 0
        self.nddata: list = []
        self.ndlabel: list = []
        self.reset()

    def reset(self) -> None:
        """Shuffle the batches and the sentences within each bucket, and start over."""
        self.curr_idx = 0
        random.shuffle(self.idx)
        for buck in self.data:
            np.random.shuffle(buck)
        self.nddata, self.ndlabel = [], []
        for buck in self.data:
            label = np.empty_like(buck)
            label[:, :-1] = buck[:, 1:]
            label[:, -1] = self.invalid_label
            self.nddata.append(array(buck, dtype=self.dtype))
            self.ndlabel.append(array(label, dtype=self.dtype))

    def next(self) -> DataBatch:
        """The next batch (its ``bucket_key`` is the bucket's length); StopIteration at the end."""
        if self.curr_idx == len(self.idx):
            raise StopIteration
        i, j = self.idx[self.curr_idx]
        self.curr_idx += 1
        data = self.nddata[i][j:j + self.batch_size]
        label = self.ndlabel[i][j:j + self.batch_size]
        if self.major_axis == 1:
            data, label = data.T, label.T
        return DataBatch([data], [label], pad=0, bucket_key=self.buckets[i],
                         provide_data=[DataDesc(name=self.data_name, shape=data.shape, layout=self.layout)],
                         provide_label=[DataDesc(name=self.label_name, shape=label.shape, layout=self.layout)])
