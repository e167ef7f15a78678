"""HDF5, npz and pickle containers, read without ever deserialising code.

Pickle runs code from the file while it is read, and it hides in containers that look like data:
pandas stores object columns of a "fixed" frame and PyTables stores node attributes pickled; an
``.npz`` may hold pickled object arrays. So HDF5 is read through h5py only (pandas frames too, both
formats), the few pickled PyTables attributes that name a frame's columns are decoded by
:func:`pickled_literal` (lists, strings and numbers; anything that would import or call is
refused), ``.npz`` with ``allow_pickle=False``, and pickle files are refused outright. A file that
would make the reader look elsewhere (external links, external raw storage, virtual datasets) is
refused too. Every refusal is one :class:`~recogan_app.errors.InputError` naming file and node.
"""

from __future__ import annotations

import pickletools
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from recogan_app.errors import InputError

__all__ = ["PICKLE_SUFFIXES", "attribute", "check_regular_file", "hdf5_arrays", "hdf5_columns", "hdf5_tables",
           "named_columns", "open_hdf5", "pickled_literal", "read_dataset", "read_npz", "reading", "refuse_pickle"]

PICKLE_SUFFIXES = (".pkl", ".pickle")
_NEVER_READ = "which is never read: unpickling can run code"
_LITERAL_OPS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT", "STRING",
                "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
                "BINBYTES", "SHORT_BINBYTES", "BINBYTES8"}
_CALLS = {"GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4",
          "PERSID", "BINPERSID"}
"""Opcodes that import or call: what lets a pickle run code."""
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False, "EMPTY_LIST": list, "EMPTY_DICT": dict,
              "EMPTY_TUPLE": tuple}


class _Code(Exception):
    """A pickle that would import or call something."""


def check_regular_file(path: Path, source: str) -> None:
    """Refuse what is not a regular file before opening it: a FIFO would block the reader forever."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if path.is_symlink():
            raise InputError(f"is a symbolic link that leads nowhere ({exc.strerror})", path=source) from None
        raise InputError("does not exist", path=source) from None
    if stat.S_ISDIR(mode):
        raise InputError("is a directory, not a file", path=source)
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device or socket"
        raise InputError(f"is {kind}, not a regular file", path=source)


def refuse_pickle(source: str) -> None:
    """A pickle file is refused, with how to convert it where its origin is trusted."""
    raise InputError(
        f"is a pickle file, {_NEVER_READ}", path=source,
        hint="if you trust it, convert it in your own Python session: obj = pandas.read_pickle(path), then "
             "obj.to_parquet('x.parquet') for a DataFrame or numpy.savez('x.npz', images=obj) for arrays")


def read_npz(source: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``; an object array (pickled) is refused, naming it."""
    if not zipfile.is_zipfile(source):
        raise InputError("could not be read as npz: not a zip archive of named arrays", path=source)
    arrays = {}
    with reading(source, "npz"), np.load(source, allow_pickle=False) as loaded:
        for key in loaded.files:
            try:
                arrays[key] = loaded[key]
            except ValueError as exc:
                if "allow_pickle" not in str(exc):
                    raise
                raise InputError(f"array '{key}' holds pickled Python objects, {_NEVER_READ}", path=source,
                                 hint="save text as a fixed-width string array (dtype 'U'), numbers as numbers")
    return arrays


@contextmanager
def reading(path: str, fmt: str):
    """Turn a reader's exception into ``InputError("could not be read as <fmt>: ...")``."""
    try:
        yield
    except InputError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise InputError(f"could not be read as {fmt}: {reason}", path=path) from None


# --- HDF5 ------------------------------------------------------------------------------------------


@contextmanager
def open_hdf5(source: str) -> Iterator[h5py.File]:
    """The file opened with h5py, refused first if any node leads outside it or holds a pickle
    attribute that would run code."""
    with reading(source, "HDF5"), h5py.File(source, "r") as h5:
        _refuse_traps(h5, source)
        yield h5


def _refuse_traps(h5: h5py.File, source: str) -> None:
    links = {}

    def collect(name: str, link) -> None:  # raising here, inside h5py's visit, would garble the error
        links[f"/{name}"] = link

    h5.visititems_links(collect)
    _check_attributes(h5, source)
    for node, link in sorted(links.items(), key=lambda item: not isinstance(item[1], h5py.ExternalLink)):
        if isinstance(link, h5py.ExternalLink):
            raise InputError(f"node '{node}' is an external link to '{link.filename}' (only data inside the "
                             "file is read)", path=source)
        if isinstance(link, h5py.SoftLink):
            target = link.path if link.path.startswith("/") else f"{node.rsplit('/', 1)[0]}/{link.path}"
            if h5.get(target) is None:
                raise InputError(f"node '{node}' is a soft link to '{link.path}', which is not in the file",
                                 path=source)
            continue
        obj = h5[node]
        _check_attributes(obj, source)
        if isinstance(obj, h5py.Dataset) and obj.is_virtual:
            raise InputError(f"node '{node}' is a virtual dataset (its data lies in other files, which are "
                             "not read)", path=source)
        if isinstance(obj, h5py.Dataset) and obj.external:
            files = ", ".join(f"'{entry[0]}'" for entry in obj.external)
            raise InputError(f"node '{node}' keeps its data in the external file(s) {files}, which are not read",
                             path=source)


def _check_attributes(obj, source: str) -> None:
    for name in obj.attrs:
        attribute(obj, name, source)


def attribute(obj, name: str, source: str):
    """The attribute ``name`` of ``obj``: text, a number, an array, or the list/tuple/dict a
    PyTables attribute pickled (decoded by :func:`pickled_literal`, never unpickled)."""
    value = obj.attrs[name]
    if isinstance(value, np.void):
        value = value.tobytes()
    if not isinstance(value, bytes):
        return value
    try:
        return pickled_literal(value)
    except _Code:
        raise InputError(f"node '{obj.name}' attribute '{name}' is a pickled Python object, {_NEVER_READ}",
                         path=source) from None
    except Exception:  # not a pickle: plain text
        return value.decode("utf-8", "replace")


def pickled_literal(data: bytes):
    """The value of a pickle holding only lists, tuples, dicts, text, numbers, booleans and None,
    read opcode by opcode: nothing is imported or called (``_Code`` when any opcode would).
    Raises ValueError (or IndexError/KeyError) when ``data`` is no such pickle (plain text)."""
    ops = list(pickletools.genops(data))
    if any(op.name in _CALLS for op, _, _ in ops):
        raise _Code(next(op.name for op, _, _ in ops if op.name in _CALLS))
    stack, marks, memo = [], [], {}

    def since_mark() -> list:
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    for op, arg, _ in ops:
        name = op.name
        if name in _LITERAL_OPS:
            stack.append(arg)
        elif name in _CONSTANTS:
            value = _CONSTANTS[name]
            stack.append(value() if callable(value) else value)
        elif name == "MARK":
            marks.append(len(stack))
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            memo[len(memo) if arg is None else arg] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo[arg])
        elif name in ("LIST", "TUPLE", "DICT"):
            items = since_mark()
            stack.append(list(items) if name == "LIST" else tuple(items) if name == "TUPLE"
                         else dict(zip(items[::2], items[1::2])))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name == "APPEND":
            value = stack.pop()
            stack[-1].append(value)
        elif name == "APPENDS":
            items = since_mark()
            stack[-1].extend(items)
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            stack[-1][key] = value
        elif name == "SETITEMS":
            items = since_mark()
            stack[-1].update(zip(items[::2], items[1::2]))
        elif name in ("PROTO", "FRAME"):
            continue
        elif name == "STOP":
            return stack.pop()
        else:
            raise ValueError(f"opcode {name} is not read")
    raise ValueError("pickle without STOP")


def hdf5_tables(group, found: dict | None = None, seen: set | None = None) -> dict:
    """Key to h5py object for every table under ``group``: pandas keys, groups of numeric 1-D
    datasets, compound datasets and 2-D datasets with a ``columns`` attribute. Only hard links are
    followed, each group once (a group may be linked into itself)."""
    found = {} if found is None else found
    seen = set() if seen is None else seen
    seen.add(group.id)
    key = group.name.strip("/") or "/"
    if "pandas_type" in group.attrs:
        found[key] = group
        return found
    children = _children(group).values()
    if any(_is_column(d) and d.dtype.kind in "biuf" for d in children):
        found[key] = group
    for child in children:
        if isinstance(child, h5py.Group) and child.id not in seen:
            hdf5_tables(child, found, seen)
        elif _is_table(child):
            found[child.name.strip("/")] = child
    return found


def hdf5_arrays(h5: h5py.File, source: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays at the top of the file, of any shape: each table's columns (see :func:`hdf5_columns`,
    whose reasons come second) and every other dataset as stored. Groups below are not read."""
    arrays, unusable = {}, {}
    for name, obj in _children(h5).items():
        if _is_table(obj):
            columns, why = hdf5_columns(obj, source)
            arrays.update(columns)
            unusable.update(why)
        elif isinstance(obj, h5py.Dataset) and obj.ndim:
            arrays[name] = read_dataset(obj, source)
    return arrays, unusable


def _children(group: h5py.Group) -> dict:
    """Name to node for the nodes hard-linked in ``group`` (a soft link names a node read where it lies)."""
    return {name: group[name] for name in group if isinstance(group.get(name, getlink=True), h5py.HardLink)}


def _is_table(obj) -> bool:
    """A pandas frame, a compound dataset, or a 2-D dataset whose ``columns`` attribute names its columns."""
    if isinstance(obj, h5py.Group):
        return "pandas_type" in obj.attrs
    return isinstance(obj, h5py.Dataset) and (
        (obj.ndim == 1 and obj.dtype.names is not None) or (obj.ndim == 2 and "columns" in obj.attrs))


def _is_column(obj) -> bool:
    return isinstance(obj, h5py.Dataset) and obj.ndim == 1 and obj.dtype.names is None


def read_dataset(dataset: h5py.Dataset, source: str) -> np.ndarray:
    """The values of ``dataset``; pickled (PyTables object atoms), opaque and variable-length
    non-text data are refused, naming the node."""
    dtype = dataset.dtype
    if _pickled(dataset):
        raise InputError(f"node '{dataset.name}' holds pickled Python objects, {_NEVER_READ}", path=source)
    if dtype.kind == "O" and h5py.check_string_dtype(dtype) is None:
        raise InputError(f"node '{dataset.name}' holds variable-length or reference data, not numbers or text",
                         path=source)
    if dtype.kind == "V" and dtype.names is None:
        raise InputError(f"node '{dataset.name}' holds opaque binary data (dtype {dtype})", path=source)
    if dataset.id.get_type().get_class() == h5py.h5t.BITFIELD and dtype.itemsize == 1:  # PyTables' booleans
        return dataset[()].astype(bool)
    return dataset[()]


def hdf5_columns(obj, source: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The columns of a table found by :func:`hdf5_tables`, and why some cannot be features
    (pandas text, categorical or date columns)."""
    if isinstance(obj, h5py.Group) and "pandas_type" in obj.attrs:
        return _pandas_columns(obj, source)
    if isinstance(obj, h5py.Group):
        return {name: read_dataset(d, source) for name, d in _children(obj).items() if _is_column(d)}, {}
    values = read_dataset(obj, source)
    if values.dtype.names:
        return {name: values[name] for name in values.dtype.names}, {}
    return named_columns(attribute(obj, "columns", source), list(values.T), source, obj.name.strip("/")), {}


def _pandas_columns(group: h5py.Group, source: str) -> tuple[dict, dict]:
    """A DataFrame written by pandas (``to_hdf``, format "fixed" or "table"), read with h5py."""
    kind = attribute(group, "pandas_type", source)
    names, columns, why = [], [], {}

    def add(items: list[str], values: np.ndarray, reason: str | None) -> None:
        """The columns of ``values`` (rows × columns) named by ``items``, each unusable for ``reason`` if any."""
        names.extend(items)
        columns.extend(values.T)
        why.update(dict.fromkeys(items, reason) if reason else {})

    if kind == "frame":  # fixed: blockN_items names the columns of blockN_values, rows × columns
        for i in range(int(attribute(group, "nblocks", source))):
            block = group[f"block{i}_values"]
            items = _texts(read_dataset(group[f"block{i}_items"], source))
            if _pickled(block):  # object columns (text too): left out unread, each with the reason
                add(items, np.zeros((len(_fixed_array(group["axis1"], source)), len(items)), dtype=object),
                    f"is a pandas object column, stored pickled in node '{block.name}', {_NEVER_READ} "
                    f"(to_hdf(..., format='table') stores text as text)")
                continue
            values = _fixed_array(block, source)
            dtype = attribute(block, "value_type", source) if "value_type" in block.attrs else None
            add(items, values if attribute(block, "transposed", source) else values.T,
                None if dtype is None or _numeric(dtype) else f"is not numeric (dtype {dtype})")
    elif kind == "frame_table":  # table: one compound dataset, a field per block or data column
        table = group["table"]
        records = read_dataset(table, source)
        for field in records.dtype.names:
            if f"{field}_dtype" not in table.attrs:  # the index: no dtype, its kind is text
                continue
            items = _texts(attribute(table, f"{field}_kind", source))
            values = records[field].reshape(len(records), -1)
            dtype = attribute(table, f"{field}_dtype", source)
            values = values.astype(bool) if dtype == "bool" else values
            meta = attribute(table, f"{field}_meta", source) if f"{field}_meta" in table.attrs else None
            add(items, values, None if meta is None and _numeric(dtype) else f"is not numeric (dtype {meta or dtype})")
    else:
        raise InputError(f"node '{group.name}' is a pandas '{kind}', not a DataFrame", path=source,
                         hint="write a DataFrame with to_hdf")
    return named_columns(names, columns, source, group.name.strip("/")), why


def _fixed_array(dataset: h5py.Dataset, source: str) -> np.ndarray:
    """An array of a pandas "fixed" frame: an empty one is stored as one placeholder element with
    its true ``shape`` and ``value_type`` in attributes."""
    if "shape" in dataset.attrs and 0 in np.atleast_1d(attribute(dataset, "shape", source)):
        return np.empty(tuple(attribute(dataset, "shape", source)), np.dtype(attribute(dataset, "value_type", source)))
    return read_dataset(dataset, source)


def _pickled(dataset: h5py.Dataset) -> bool:
    """A PyTables object atom: each row a pickle."""
    return dataset.attrs.get("PSEUDOATOM") == b"object"


def _numeric(dtype_name) -> bool:
    """Whether pandas' dtype name (``"float64"``, ``"bytes8"``, ``"datetime64[ns]"``…) is a number's."""
    try:
        return isinstance(dtype_name, str) and np.dtype(dtype_name).kind in "biuf"
    except TypeError:
        return False


def _texts(values) -> list[str]:
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for v in np.atleast_1d(np.asarray(values, dtype=object)).tolist()]


def named_columns(names, columns: list[np.ndarray], source: str, table: str) -> dict[str, np.ndarray]:
    """``columns`` by their ``names`` (text or bytes), refused when the counts differ or a name repeats."""
    names = _texts(names)
    if len(names) != len(columns):
        raise InputError(f"'{table}' has {len(columns)} columns but {len(names)} column names", path=source)
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise InputError(f"is named twice in the column names of '{table}'", path=source, column=twice)
    return dict(zip(names, columns))
