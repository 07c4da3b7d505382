"""A PyTorch `state_dict` file (`torch.save`'s zip format) read as NumPy arrays, without pickle
and without torch.

`torch.save` writes a zip: `<name>/data.pkl`, a pickle of the dictionary whose tensors are
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` calls on persistent
storage ids, and `<name>/data/<key>`, each storage's raw bytes. Unpickling `data.pkl` would
import and call whatever globals it names (a file can run any code that way), so it is never
unpickled: `pickletools.genops` only parses it, and a small stack machine here interprets the
opcodes a state_dict uses, with three kinds of global mapped to NumPy code: `collections.
OrderedDict` (a dict), `torch._utils._rebuild_tensor_v2` (a strided view of a storage, copied)
and the `torch.<Type>Storage` classes (a dtype). Any other global or opcode is a
`TorchFileError` naming the file and it, before anything is built.
"""
from __future__ import annotations

import io
import pickletools
import zipfile
from typing import NamedTuple

import ml_dtypes
import numpy as np

from jaxrl_align.data.files import DataFileError


class TorchFileError(DataFileError):
    """A torch file that cannot be read safely; the message names the file and what is wrong."""


# torch.<name> storage classes as pickled by torch.save, and their element types.
STORAGE_DTYPES = {
    "DoubleStorage": np.dtype(np.float64), "FloatStorage": np.dtype(np.float32),
    "HalfStorage": np.dtype(np.float16), "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype(np.int64), "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16), "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8), "BoolStorage": np.dtype(np.bool_),
}

# A member larger than this is refused rather than read into memory (a policy is kilobytes).
MAX_MEMBER_BYTES = 1 << 30


class _Global(NamedTuple):
    module: str
    name: str


_ORDERED_DICT = _Global("collections", "OrderedDict")
_REBUILD_TENSOR = _Global("torch._utils", "_rebuild_tensor_v2")
ALLOWED_GLOBALS = frozenset([_ORDERED_DICT, _REBUILD_TENSOR]
                            + [_Global("torch", name) for name in STORAGE_DTYPES])

# Every opcode a state_dict pickle (protocol 2, or 4/5 when asked for) is made of; anything
# else (object construction: NEWOBJ, INST, OBJ, EXT*, text PERSID ...) is refused.
SUPPORTED_OPCODES = frozenset("""
    PROTO FRAME STOP MARK GLOBAL STACK_GLOBAL REDUCE BUILD BINPERSID
    BINPUT LONG_BINPUT MEMOIZE BINGET LONG_BINGET
    EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3 EMPTY_LIST APPEND APPENDS EMPTY_DICT SETITEM SETITEMS
    BININT BININT1 BININT2 LONG1 BINFLOAT NONE NEWTRUE NEWFALSE
    BINUNICODE SHORT_BINUNICODE BINUNICODE8
""".split())


class _Mark:
    pass


class _Storage(NamedTuple):
    dtype: np.dtype
    key: str
    numel: int


def _describe(value) -> str:
    if isinstance(value, _Global):
        return f"global {value.module}.{value.name}"
    return type(value).__name__


def read_state_dict(source, label: str | None = None) -> dict[str, np.ndarray]:
    """The tensors of a `torch.save`d state_dict (`source`: a path, bytes or a binary file) as
    NumPy arrays (little-endian storages, strides and offsets honoured, copied), by name.
    `label` names the file in errors (default: the path)."""
    label = label or str(source)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as err:
        raise TorchFileError(f"{label}: is not a torch.save zip archive ({err}); the legacy "
                             "(pre-1.6) torch format is not supported") from None
    with archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise TorchFileError(f"{label}: expected one <name>/data.pkl in the archive, found "
                                 f"{pickles or 'none'}")
        prefix = pickles[0][: -len("data.pkl")]
        if prefix + "byteorder" in names:
            order = read_member(archive, prefix + "byteorder", label).decode(errors="replace")
            order = order.strip()
            if order != "little":
                raise TorchFileError(f"{label}: field 'byteorder' is {order!r}; expected "
                                     "'little'")

        def storage_bytes(key: str) -> bytes:
            return read_member(archive, f"{prefix}data/{key}", label)

        state = _interpret(read_member(archive, pickles[0], label), storage_bytes,
                           f"{label}:{pickles[0]}")
    if not isinstance(state, dict):
        raise TorchFileError(f"{label}: data.pkl holds a {_describe(state)}; expected a "
                             "state_dict (a dict of tensors)")
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            raise TorchFileError(f"{label}: state_dict entry {name!r} is a {_describe(value)}; "
                                 "expected a str name and a tensor")
    return state


def read_member(archive: zipfile.ZipFile, name: str, label: str) -> bytes:
    """The bytes of member `name`, refusing a missing or oversized one (the error names `label`)."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise TorchFileError(f"{label}: member {name!r} is missing") from None
    if info.file_size > MAX_MEMBER_BYTES:
        raise TorchFileError(f"{label}: member {name!r} holds {info.file_size} bytes; expected "
                             f"at most {MAX_MEMBER_BYTES}")
    return archive.read(info)


def _interpret(data: bytes, storage_bytes, label: str):
    """Evaluate the state_dict pickle `data` with the stack machine described at the top."""
    stack: list = []
    marks: list[int] = []
    memo: dict = {}
    storages: dict[str, np.ndarray] = {}

    def fail(pos, problem):
        raise TorchFileError(f"{label}: byte {pos}: {problem}")

    def pop_mark():
        items = stack[marks[-1] + 1:] if marks else None
        if items is None:
            fail(pos, "an opcode needs a MARK and none is open")
        del stack[marks.pop():]
        return items

    def as_global(module, name):
        glob = _Global(module, name)
        if glob not in ALLOWED_GLOBALS:
            fail(pos, f"global {module}.{name} is not allowed (a state_dict needs only "
                      "collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch "
                      "storage types); refusing the file, unpickling it could run code")
        return glob

    def storage(pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            fail(pos, f"persistent id {pid!r} is not ('storage', type, key, location, numel)")
        _, kind, key, _location, numel = pid
        if not (isinstance(kind, _Global) and kind.module == "torch"
                and kind.name in STORAGE_DTYPES):
            fail(pos, f"storage type is a {_describe(kind)}; expected a torch storage type")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            fail(pos, f"storage key {key!r} and size {numel!r}: expected a str and an int >= 0")
        return _Storage(STORAGE_DTYPES[kind.name], key, numel)

    def rebuild_tensor(args):
        if not isinstance(args, tuple) or len(args) not in (6, 7):
            fail(pos, f"_rebuild_tensor_v2 takes (storage, offset, size, stride, requires_grad, "
                      f"hooks[, metadata]); got {len(args) if isinstance(args, tuple) else args}")
        store, offset, size, stride, _requires_grad, hooks = args[:6]
        ints = lambda t: isinstance(t, tuple) and all(isinstance(i, int) for i in t)
        if not (isinstance(store, _Storage) and isinstance(offset, int) and ints(size)
                and ints(stride) and len(size) == len(stride)):
            fail(pos, "_rebuild_tensor_v2: expected a storage, an int offset and size and "
                      f"stride tuples of ints of one length; got {args[:4]!r}")
        if hooks != {} or (len(args) == 7 and not isinstance(args[6], dict)):
            fail(pos, "_rebuild_tensor_v2: expected no backward hooks and a dict of metadata")
        if store.key not in storages:
            raw = storage_bytes(store.key)
            expected = store.numel * store.dtype.itemsize
            if len(raw) != expected:
                fail(pos, f"storage data/{store.key} holds {len(raw)} bytes; expected "
                          f"{store.numel} x {store.dtype.itemsize} = {expected}")
            storages[store.key] = np.frombuffer(raw, store.dtype.newbyteorder("<"))
        flat = storages[store.key]
        if any(n < 0 for n in size) or any(s < 0 for s in stride) or offset < 0:
            fail(pos, f"tensor size {size}, stride {stride}, offset {offset}: expected all >= 0")
        if 0 in size:
            return np.zeros(size, store.dtype)
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= flat.size:
            fail(pos, f"tensor of size {size}, stride {stride} at offset {offset} reaches "
                      f"element {last} of storage data/{store.key}, which has {flat.size}")
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=tuple(s * flat.itemsize for s in stride),
            writeable=False)
        return np.array(view, dtype=store.dtype)  # a copy, in native byte order

    pos = 0
    try:
        for opcode, arg, pos in pickletools.genops(data):
            op = opcode.name
            if op not in SUPPORTED_OPCODES:
                fail(pos, f"opcode {op} is not supported (a state_dict pickle uses only "
                          f"{', '.join(sorted(SUPPORTED_OPCODES))}); refusing the file")
            if op in ("PROTO", "FRAME"):
                continue
            if op == "STOP":
                if len(stack) != 1 or marks:
                    fail(pos, "STOP with an unbalanced stack")
                return stack.pop()
            if op == "MARK":
                marks.append(len(stack))
                stack.append(_Mark)
            elif op == "GLOBAL":
                module, _, name = arg.partition(" ")
                stack.append(as_global(module, name))
            elif op == "STACK_GLOBAL":
                name, module = stack.pop(), stack.pop()
                if not (isinstance(module, str) and isinstance(name, str)):
                    fail(pos, "STACK_GLOBAL needs a module and a name string")
                stack.append(as_global(module, name))
            elif op in ("BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
            elif op == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif op in ("BINGET", "LONG_BINGET"):
                if arg not in memo:
                    fail(pos, f"memo entry {arg} was never stored")
                stack.append(memo[arg])
            elif op == "EMPTY_TUPLE":
                stack.append(())
            elif op == "TUPLE":
                stack.append(tuple(pop_mark()))
            elif op in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(op[-1])
                items = tuple(stack[-n:])
                del stack[-n:]
                stack.append(items)
            elif op == "EMPTY_LIST":
                stack.append([])
            elif op == "EMPTY_DICT":
                stack.append({})
            elif op in ("APPEND", "APPENDS"):
                items = [stack.pop()] if op == "APPEND" else pop_mark()
                if not isinstance(stack[-1], list):
                    fail(pos, f"{op} onto a {_describe(stack[-1])}")
                stack[-1].extend(items)
            elif op in ("SETITEM", "SETITEMS"):
                items = stack[-2:] if op == "SETITEM" else pop_mark()
                if op == "SETITEM":
                    del stack[-2:]
                if not isinstance(stack[-1], dict) or len(items) % 2:
                    fail(pos, f"{op} onto a {_describe(stack[-1])}")
                for key, value in zip(items[::2], items[1::2]):
                    if not isinstance(key, (str, int)):
                        fail(pos, f"dict key is a {_describe(key)}; expected a str")
                    stack[-1][key] = value
            elif op == "BINPERSID":
                stack.append(storage(stack.pop()))
            elif op == "REDUCE":
                args, func = stack.pop(), stack.pop()
                is_global = isinstance(func, _Global)  # not a look-alike tuple of strings
                if is_global and func == _ORDERED_DICT and args == ():
                    stack.append({})
                elif is_global and func == _REBUILD_TENSOR:
                    stack.append(rebuild_tensor(args))
                else:
                    fail(pos, f"REDUCE calls a {_describe(func)} with {_describe(args)}; only "
                              "OrderedDict() and _rebuild_tensor_v2(...) are interpreted")
            elif op == "BUILD":
                # torch sets a state_dict's `_metadata` (module versions) this way; dropped.
                state = stack.pop()
                if not (isinstance(stack[-1], dict) and isinstance(state, dict)
                        and set(state) <= {"_metadata"}):
                    fail(pos, f"BUILD sets {_describe(state)} on a {_describe(stack[-1])}; only "
                              "a state_dict's _metadata is expected")
            elif op == "NONE":
                stack.append(None)
            elif op in ("NEWTRUE", "NEWFALSE"):
                stack.append(op == "NEWTRUE")
            else:  # integers, floats and strings: genops has decoded the value
                stack.append(arg)
    except TorchFileError:
        raise
    # genops raises ValueError on a malformed or truncated pickle (one without STOP).
    except (ValueError, IndexError, TypeError) as err:
        raise TorchFileError(f"{label}: byte {pos}: not a readable state_dict pickle "
                             f"({type(err).__name__}: {err})") from None
