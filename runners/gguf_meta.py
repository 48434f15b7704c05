"""Read a GGUF file's header fast: its scalar metadata and the type of each tensor.

`gguf.GGUFReader` builds numpy views of every metadata field, including the tokenizer's arrays
(tens of thousands of tokens and merges, several seconds on a 100 MB model). The harness needs a
handful of scalars (architecture, context length, BOS, chat template, file type) and the count of
tensors per type, so `read_header` walks the header once with `struct` over a memory map, keeps
scalars, and skips arrays by their lengths without building them. It reads no tensor data and
does not write GGUF files (`runners.gguf_convert` converts models).
"""

from __future__ import annotations

import mmap
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAGIC = b"GGUF"
# GGUF value types: fixed-size ones by their struct code, then STRING (8) and ARRAY (9).
_FIXED = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class GGUFFormatError(ValueError):
    """Not a GGUF file this reader understands (one line naming the file and the problem)."""


@dataclass(frozen=True)
class GGUFHeader:
    """Scalar metadata by key (arrays are skipped; `array_lengths` gives their element counts)
    and the number of tensors of each GGML type (by type id)."""

    version: int
    values: dict[str, Any]
    array_lengths: dict[str, int]
    tensor_types: dict[int, int]


class _Cursor:
    def __init__(self, buffer: mmap.mmap, order: str, path: Path) -> None:
        self.buffer = buffer
        self.order = order
        self.path = path
        self.offset = 0

    def unpack(self, code: str) -> Any:
        fmt = self.order + code
        try:
            (value,) = struct.unpack_from(fmt, self.buffer, self.offset)
        except struct.error as exc:
            raise GGUFFormatError(f"{self.path}: GGUF header is truncated at byte {self.offset}") from exc
        self.offset += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.unpack("Q")
        end = self.offset + length
        if end > len(self.buffer):
            raise GGUFFormatError(f"{self.path}: GGUF header is truncated at byte {self.offset}")
        text = bytes(self.buffer[self.offset : end]).decode("utf-8", errors="replace")
        self.offset = end
        return text

    def skip_strings(self, count: int) -> None:
        fmt = self.order + "Q"
        buffer, offset = self.buffer, self.offset
        try:
            for _ in range(count):
                offset += 8 + struct.unpack_from(fmt, buffer, offset)[0]
        except struct.error as exc:
            raise GGUFFormatError(f"{self.path}: GGUF header is truncated at byte {offset}") from exc
        self.offset = offset

    def value(self, kind: int) -> Any:
        if kind in _FIXED:
            return self.unpack(_FIXED[kind])
        if kind == _STRING:
            return self.string()
        raise GGUFFormatError(f"{self.path}: unknown GGUF value type {kind} at byte {self.offset}")

    def skip_array(self) -> int:
        kind, count = self.unpack("I"), self.unpack("Q")
        if kind in _FIXED:
            self.offset += count * struct.calcsize(_FIXED[kind])
        elif kind == _STRING:
            self.skip_strings(count)
        elif kind == _ARRAY:
            for _ in range(count):
                self.skip_array()
        else:
            raise GGUFFormatError(f"{self.path}: unknown GGUF array type {kind} at byte {self.offset}")
        return int(count)


def read_header(path: str | Path) -> GGUFHeader:
    """The header of the GGUF file at `path` (versions 2 and 3, either byte order)."""
    path = Path(path)
    with path.open("rb") as handle:
        try:
            buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as exc:  # an empty file cannot be mapped
            raise GGUFFormatError(f"{path}: empty file, not a GGUF model") from exc
    with buffer:
        if buffer[:4] != MAGIC:
            raise GGUFFormatError(f"{path}: not a GGUF file (no GGUF magic at the start)")
        order = "<"
        version = struct.unpack_from("<I", buffer, 4)[0]
        if version & 0xFFFF == 0:  # written on a big-endian machine
            order, version = ">", struct.unpack_from(">I", buffer, 4)[0]
        if version not in (2, 3):
            raise GGUFFormatError(f"{path}: GGUF version {version} is not supported (2 or 3)")
        cursor = _Cursor(buffer, order, path)
        cursor.offset = 8
        tensor_count, kv_count = cursor.unpack("Q"), cursor.unpack("Q")
        values: dict[str, Any] = {}
        arrays: dict[str, int] = {}
        for _ in range(kv_count):
            key, kind = cursor.string(), cursor.unpack("I")
            if kind == _ARRAY:
                arrays[key] = cursor.skip_array()
            else:
                values[key] = cursor.value(kind)
        types: Counter[int] = Counter()
        for _ in range(tensor_count):
            cursor.skip_strings(1)  # the tensor's name
            dims = cursor.unpack("I")
            cursor.offset += 8 * dims
            types[cursor.unpack("I")] += 1
            cursor.offset += 8  # data offset
    return GGUFHeader(version=version, values=values, array_lengths=arrays, tensor_types=dict(types))


def quantization(header: GGUFHeader) -> dict[str, Any]:
    """The GGUF file type (e.g. MOSTLY_Q4_1) and a count of tensor types (e.g. {"Q4_1": 210}),
    named by the `gguf` package's enums (a number the installed version does not know stays a
    number, as text)."""
    import gguf

    def name(enum: Any, value: int) -> str:
        try:
            return str(enum(value).name)
        except ValueError:
            return str(value)

    raw = header.values.get("general.file_type")
    file_type = name(gguf.LlamaFileType, int(raw)) if raw is not None else None
    tensor_types = Counter({name(gguf.GGMLQuantizationType, t): n for t, n in header.tensor_types.items()})
    return {"file_type": file_type, "tensor_types": dict(sorted(tensor_types.items()))}
