"""CRC-32C (Castagnoli) as TFRecord framing uses it, masked the TensorFlow way.

Table-driven for one record; numpy-vectorised over many records at once, which
is what makes reading a whole event file fast without a C extension.
"""

from __future__ import annotations

import sys

import numpy as np

_POLY = 0x82F63B78  # CRC-32C, reflected
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_LONG = 1024  # records longer than this are checksummed in chunks
_CHUNK = 256


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()
_LOW_BYTE = 0 if sys.byteorder == "little" else 3
_NP_TABLE = np.array(_TABLE, dtype=np.uint32)


def crc32c(data: bytes) -> int:
    """The CRC-32C of ``data`` (pure Python)."""
    crc = _U32
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _U32


def mask(crc: int) -> int:
    """TFRecord's masking of a CRC (rotate right by 15, add a constant)."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C TFRecord stores after the length and after the data."""
    return mask(crc32c(data))


def _mask_many(crc: np.ndarray) -> np.ndarray:
    rotated = (crc >> np.uint32(15)) | (crc << np.uint32(17))
    return (rotated.astype(np.uint64) + _MASK_DELTA).astype(np.uint32)


def _raw_many(buf: np.ndarray, starts: np.ndarray, length: int, init: int) -> np.ndarray:
    """Unfinished CRC state of ``length`` bytes at each start, from state ``init``."""
    crc = np.full(len(starts), init, dtype=np.uint32)
    eight = np.uint32(8)
    for i in range(length):
        low = crc.view(np.uint8)[_LOW_BYTE::4]  # the low byte of each, without a mask
        crc = _NP_TABLE[low ^ buf[starts + i]] ^ (crc >> eight)
    return crc


def masked_crc32c_many(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Masked CRC-32C of ``buf[s:s+n]`` for every (s, n) in ``starts``/``lengths``."""
    out = np.empty(len(starts), dtype=np.uint32)
    for length in np.unique(lengths).tolist():
        where = np.flatnonzero(lengths == length)
        if length > _LONG:
            raw = np.array([_crc_long(buf, int(starts[i]), length) for i in where], np.uint32)
        else:
            raw = _raw_many(buf, starts[where], length, _U32) ^ np.uint32(_U32)
        out[where] = _mask_many(raw)
    return out


_SHIFT_TABLES: np.ndarray | None = None


def _shift_tables() -> np.ndarray:
    """4x256 tables applying "feed _CHUNK zero bytes" to a raw CRC state, byte by byte."""
    global _SHIFT_TABLES
    if _SHIFT_TABLES is None:
        basis = np.array([b << (8 * k) for k in range(4) for b in range(256)], dtype=np.uint32)
        for _ in range(_CHUNK):
            basis = _NP_TABLE[basis & 0xFF] ^ (basis >> np.uint32(8))
        _SHIFT_TABLES = basis.reshape(4, 256)
    return _SHIFT_TABLES


def _crc_long(buf: np.ndarray, start: int, length: int) -> int:
    """CRC-32C of one long record: chunks in parallel, then folded together.

    The raw (init 0) CRC is linear and unchanged by leading zero bytes, so the record is
    left-padded to whole chunks, each chunk's raw CRC computed at once, and the chunk CRCs
    folded with the zero-shift operator. The standard CRC is the raw CRC of the data xor
    the raw CRC of the initial all-ones state shifted through ``length`` zero bytes.
    """
    pad = -length % _CHUNK
    data = np.concatenate([np.zeros(pad, np.uint8), buf[start : start + length]])
    chunk_starts = np.arange(0, len(data), _CHUNK)
    chunks = _raw_many(data, chunk_starts, _CHUNK, 0).tolist()
    t0, t1, t2, t3 = (row.tolist() for row in _shift_tables())

    def shift(state: int) -> int:
        return (
            t0[state & 0xFF] ^ t1[(state >> 8) & 0xFF] ^ t2[(state >> 16) & 0xFF] ^ t3[state >> 24]
        )

    acc = 0
    for chunk in chunks:
        acc = shift(acc) ^ chunk
    init = _U32  # the all-ones start fed through `length` zero bytes
    for _ in range(length % _CHUNK):
        init = _TABLE[init & 0xFF] ^ (init >> 8)
    for _ in range(length // _CHUNK):
        init = shift(init)
    return acc ^ init ^ _U32


# -- TFRecord framing ----------------------------------------------------------------------
