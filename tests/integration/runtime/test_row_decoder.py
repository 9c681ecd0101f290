"""Ferry's row decoders against python-mysql-replication's, on the real binlog.

A table with every type gets a few thousand random rows, updates and deletes (some
transactions with binlog_row_image MINIMAL or NOBLOB, so images are partial); the same binlog
range is read twice by BinlogReader, once with the library decoding rows and once with ours,
and every Change must be the same — except for the cells where the library is wrong (empty
SET, YEAR 0000, zero dates, the zero TIMESTAMP), where ours must equal the snapshot's value.
"""

from __future__ import annotations

import json
import os
import queue
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ferry_runtime import config as config_module
from ferry_runtime import errors, types
from ferry_runtime.events import Change
from ferry_runtime.source import binlog, schema

pytestmark = [pytest.mark.mysql]

PASSWORD_ENV = "FERRY_TEST_DECODER_PASSWORD"
FSPS = range(7)
DECIMALS = {"d1": (1, 0), "d5": (5, 2), "d18": (18, 9), "d30": (30, 10), "d65": (65, 30),
            "d10": (10, 10), "d12": (12, 0)}  # fmt: skip
BITS = {"b1": 1, "b7": 7, "b8": 8, "b13": 13, "b64": 64}
INTS = {  # name: (type, bits)
    "ti": ("tinyint", 8), "si": ("smallint", 16), "mi": ("mediumint", 24), "i": ("int", 32),
    "bi": ("bigint", 64),
}  # fmt: skip
SET9 = [f"m{n}" for n in range(9)]
SET20 = [f"s{n}" for n in range(20)]  # 3 bytes
ENUM300 = [f"e{n}" for n in range(300)]  # 2 bytes
EMOJI = ["a", "é", "ß", "😀", "🦀", "中", " ", "'", "\\", '"', "\n", "z", "Ω"]
LATIN1 = ["a", "é", "ü", "ß", "Æ", "€", "x", " ", "ÿ"]  # € is 0x80 in MySQL's latin1 (cp1252)


def _columns() -> str:
    parts = ["id int PRIMARY KEY"]
    for name, (sql, _) in INTS.items():
        parts += [f"{name} {sql}", f"{name}u {sql} unsigned"]
    parts += [f"{name} decimal({p},{s})" for name, (p, s) in DECIMALS.items()]
    parts += ["du decimal(9,3) unsigned", "fl float", "dbl double"]
    parts += [f"{name} bit({n})" for name, n in BITS.items()]
    parts += ["d date", "y year"]
    parts += [f"t{n} time({n})" for n in FSPS]
    parts += [f"dt{n} datetime({n})" for n in FSPS]
    parts += [f"ts{n} timestamp({n}) NULL DEFAULT NULL" for n in FSPS]
    parts += [
        "ch char(10)", "vs varchar(50)", "vl varchar(300)", "tx text", "mt mediumtext",
        "l1 varchar(40) CHARACTER SET latin1", "lc char(5) CHARACTER SET latin1",
        "bn binary(4)", "vb varbinary(300)", "bl blob", "tb tinyblob",
        "en enum('small','big one','ü')", "st set('a','b','c')",
        f"s9 set({','.join(repr(m) for m in SET9)})",
        f"s20 set({','.join(repr(m) for m in SET20)})",
        f"e300 enum({','.join(repr(m) for m in ENUM300)})", "js json",
    ]  # fmt: skip
    return ", ".join(parts)


def _text(rnd: random.Random, alphabet: list[str], most: int) -> str:
    return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, most)))


def _decimal(rnd: random.Random, precision: int, scale: int, unsigned: bool = False) -> str:
    if rnd.random() < 0.1:
        return "0"
    digits = "".join(rnd.choice("0123456789") for _ in range(precision))
    whole, fraction = digits[: precision - scale] or "0", digits[precision - scale :]
    sign = "" if unsigned or rnd.random() < 0.5 else "-"
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"


def _time(rnd: random.Random, fsp: int) -> str:
    sign = "-" if rnd.random() < 0.4 else ""
    hours = rnd.choice([0, 0, 1, 23, 24, 100, 838, rnd.randint(0, 838)])
    seconds = 59 if hours == 838 else rnd.randint(0, 59)
    micro = rnd.choice([0, 1, 999999, rnd.randint(0, 999999)]) if hours < 838 else 0
    return f"{sign}{hours}:{rnd.randint(0, 59):02d}:{seconds:02d}.{micro:06d}"[
        : None if fsp else -7
    ]


def _datetime(rnd: random.Random, low: int, high: int) -> str:
    seconds = rnd.randint(low, high)
    stamp = time.gmtime(seconds)
    micro = rnd.choice([0, 1, 500000, 999999, rnd.randint(0, 999999)])
    return time.strftime("%Y-%m-%d %H:%M:%S", stamp) + f".{micro:06d}"


def _value(rnd: random.Random, name: str) -> Any:
    """A random SQL parameter for column ``name`` (None ~10 %)."""
    if rnd.random() < 0.1:
        return None
    zero = rnd.random() < 0.05  # the values the library gets wrong
    base = name.rstrip("u")
    if base in INTS:
        bits = INTS[base][1]
        low, high = (
            (0, 2**bits - 1) if name.endswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        )
        return rnd.choice([low, high, 0, -1 if low else 1, rnd.randint(low, high)])
    if name in DECIMALS:
        return _decimal(rnd, *DECIMALS[name])
    if name == "du":
        return _decimal(rnd, 9, 3, unsigned=True)
    if name == "fl":
        return rnd.choice([0.0, 1.1, -3.40282e38, 3.40282e38, 1.17549e-38, rnd.uniform(-1e6, 1e6)])
    if name == "dbl":
        return rnd.choice([0.0, -1.7976931348623157e308, 5e-324, rnd.uniform(-1e12, 1e12)])
    if name in BITS:
        return rnd.choice([0, 1, 2 ** BITS[name] - 1, rnd.getrandbits(BITS[name])])
    if name == "d":
        return "0000-00-00" if zero else _datetime(rnd, -30610224000, 253402300799)[:10]
    if name == "y":
        return 0 if zero else rnd.choice([1901, 2155, rnd.randint(1901, 2155)])
    if name[0] == "t" and name[1:].isdigit():
        return _time(rnd, int(name[1:]))
    if name.startswith("dt"):
        return "0000-00-00 00:00:00" if zero else _datetime(rnd, -30610224000, 253402300799)
    if name.startswith("ts"):
        return "0000-00-00 00:00:00" if zero else _datetime(rnd, 1, 2147483647)
    if name in ("ch", "vs", "vl", "tx", "mt"):
        most = {"ch": 10, "vs": 50, "vl": 300, "tx": 400, "mt": 2000}[name]
        return _text(rnd, EMOJI, most)
    if name in ("l1", "lc"):
        return _text(rnd, LATIN1, 40 if name == "l1" else 5)
    if name in ("bn", "vb", "bl", "tb"):
        most = {"bn": 4, "vb": 298, "bl": 600, "tb": 253}[name]
        raw = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, most)))
        return raw + b"\0" * rnd.randint(0, 2) if name != "bn" and rnd.random() < 0.3 else raw
    if name == "en":
        return rnd.choice(["small", "big one", "ü"])
    if name == "st":
        return "" if zero else ",".join(m for m in "abc" if rnd.random() < 0.5)
    if name in ("s9", "s20"):
        return ",".join(m for m in (SET9 if name == "s9" else SET20) if rnd.random() < 0.3)
    if name == "e300":
        return rnd.choice(ENUM300)
    if name == "js":
        return json.dumps(rnd.choice([{"a": [1, 2.5, None, True], "😀": "x"}, [], 1, "s", None,
                                      {"n": rnd.random(), "big": 2**70}]))  # fmt: skip
    raise AssertionError(name)


def _names() -> list[str]:
    return [part.split()[0] for part in _columns().split(", ")][1:]


def _reader_config(testenv: Any, database: str) -> Any:
    return config_module.parse(
        {
            "task": {"name": "row-decoder", "namespace": "test"},
            "source": {
                "host": testenv.mysql["host"], "port": testenv.mysql["port"],
                "user": testenv.mysql["user"], "passwordEnv": PASSWORD_ENV,
                "serverId": 900_000 + os.getpid() % 50_000,
            },
            "include": [f"{database}.*"],
            "sink": {"kafka": {"bootstrapServers": "127.0.0.1:9", "topic": "unused"}},
            "reporting": {"port": 0},
        }
    )  # fmt: skip


def _position(conn: Any) -> tuple[str, int]:
    with conn.cursor() as cursor:
        cursor.execute("SHOW MASTER STATUS")
        file, pos = cursor.fetchone()[:2]
    return str(file), int(pos)


def _fail(poison: errors.PoisonRow) -> str | None:
    raise poison


def read_changes(
    cfg: Any,
    start: tuple[str, int],
    end: tuple[str, int],
    fast: bool,
    on_poison: binlog.PoisonHandler = _fail,
) -> tuple[list[Change], int]:
    """Every Change between ``start`` and ``end`` through BinlogReader (poison rows fail
    unless ``on_poison`` says otherwise), and how many events our decoders refused: the C
    decoder (read by the Python ones) and both (read by the library)."""
    out: queue.Queue[binlog.Item] = queue.Queue(maxsize=1000)
    reader = binlog.BinlogReader(
        cfg, {"file": start[0], "pos": start[1]}, out, on_poison, fast_rows=fast
    )
    reader.start()
    changes: list[Change] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            item = out.get(timeout=30)
            if isinstance(item, binlog.Failure):
                raise item.error
            if isinstance(item, binlog.Transaction):
                changes += item.changes
                reader.budget.release(len(item.changes))
            if (item.position["file"], item.position["pos"]) >= end:
                return changes, reader.python_events + reader.fallback_events
        raise AssertionError("the reader did not reach the end of the range")
    finally:
        reader.stop()


@pytest.fixture
def source_password(testenv: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_ENV, str(testenv.mysql["password"]))
    return str(testenv.mysql["password"])


@pytest.fixture
def admin(mysql_connect: Callable[..., Any]) -> Iterator[Any]:
    conn = mysql_connect(admin=True)
    with conn.cursor() as cursor:
        cursor.execute("SET SESSION time_zone = '+00:00'")
        cursor.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES'")  # zero dates allowed
    yield conn
    conn.close()


def _write(conn: Any, database: str, rnd: random.Random, rows: int) -> None:
    """Inserts, updates (single and bulk) and deletes, in FULL, MINIMAL and NOBLOB images."""
    names = _names()
    table = f"`{database}`.`every`"
    marks = ", ".join(["%s"] * (len(names) + 1))
    insert = f"INSERT INTO {table} (id, {', '.join(names)}) VALUES ({marks})"
    ids = list(range(1, rows + 1))
    with conn.cursor() as cursor:
        for image in ("FULL", "MINIMAL", "NOBLOB", "FULL"):
            cursor.execute(f"SET SESSION binlog_row_image = '{image}'")
            batch = ids[: rows // 4]
            ids = ids[rows // 4 :]
            conn.begin()
            cursor.executemany(insert, [[n, *(_value(rnd, c) for c in names)] for n in batch])
            conn.commit()
            for n in rnd.sample(batch, len(batch) // 3):  # single-row updates
                chosen = rnd.sample(names, rnd.randint(1, 6))
                cursor.execute(
                    f"UPDATE {table} SET {', '.join(f'`{c}` = %s' for c in chosen)} WHERE id = %s",
                    [*(_value(rnd, c) for c in chosen), n],
                )
            conn.begin()  # bulk: many rows per event
            between = f"id BETWEEN {batch[0]} AND {batch[-1]}"
            cursor.execute(
                f"UPDATE {table} SET tiu = 255 - tiu, vs = CONCAT('u', id) "
                f"WHERE {between} AND id % 3 = 0"
            )
            cursor.execute(f"DELETE FROM {table} WHERE {between} AND id % 7 = 0")
            conn.commit()
        cursor.execute("SET SESSION binlog_row_image = 'FULL'")


def _snapshot(conn: Any, database: str, table: str = "every") -> dict[int, dict[str, Any]]:
    """The table as the snapshot path converts it (types.converter on a SELECT)."""
    info = schema.load(conn, database, table)
    assert info is not None
    select = ", ".join(
        f"CAST(`{c.name}` AS DOUBLE)" if c.kind == "float" else f"`{c.name}`" for c in info.columns
    )
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT {select} FROM `{database}`.`{table}`")
        raw = cursor.fetchall()
    return {
        row[0]: {c.name: types.converter(c)(v) for c, v in zip(info.columns, row, strict=True)}
        for row in raw
    }


def _library_fixed(column: str, library: Any, ours: Any) -> bool:
    """Whether a difference is one where the library is known to be wrong."""
    if column in ("st", "s9", "s20"):
        return library is None and ours == []
    if column == "y":
        return (library, ours) == (1900, 0)
    if column == "d":
        return library is None and ours == "0000-00-00"
    if column.startswith("dt"):
        return library is None and isinstance(ours, str) and ours.startswith("0000-00-00 00:00:00")
    if column.startswith("ts"):
        return (
            isinstance(library, str)
            and library.startswith("1970-01-01 00:00:00")
            and ours == "0000-00-00 00:00:00" + library[19:]
        )
    return False


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # keeps int/float and key order apart


def test_our_row_decoders_match_the_library_row_by_row(
    testenv: Any, database: str, admin: Any, source_password: str
) -> None:
    rnd = random.Random(int(os.environ.get("FERRY_DECODER_SEED", "20261123")))
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE TABLE `{database}`.`every` ({_columns()}) CHARACTER SET utf8mb4")
        # a table our decoders leave to the library (GEOMETRY, an ascii column)
        cursor.execute(
            f"CREATE TABLE `{database}`.`other` (id int PRIMARY KEY, g point, "
            "a varchar(10) CHARACTER SET ascii)"
        )
    start = _position(admin)
    with admin.cursor() as cursor:
        for n in range(1, 4):
            cursor.execute(
                f"INSERT INTO `{database}`.`other` VALUES (%s, POINT(%s, 2), 'abc')", (n, n)
            )
        cursor.execute(f"UPDATE `{database}`.`other` SET a = 'x' WHERE id > 1")
    _write(admin, database, rnd, 2400)
    final = _snapshot(admin, database)
    with admin.cursor() as cursor:  # FULL before-images of every remaining row
        cursor.execute(f"DELETE FROM `{database}`.`every`")
    end = _position(admin)
    cfg = _reader_config(testenv, database)

    library, _ = read_changes(cfg, start, end, fast=False)
    ours, refused = read_changes(cfg, start, end, fast=True)

    assert refused == 0  # every event read by the C decoder
    assert len(ours) == len(library) > 3000
    assert len([c for c in ours if c.table == "other"]) == 5
    fixed: dict[str, int] = {}
    mismatches = []
    for theirs, mine in zip(library, ours, strict=True):
        fields = ("database", "table", "op", "position", "xid", "commit", "primary_key", "ts")
        assert [getattr(theirs, f) for f in fields] == [getattr(mine, f) for f in fields]
        for image in ("data", "old"):
            a, b = getattr(theirs, image), getattr(mine, image)
            if a is None or b is None:
                assert a is b
                continue
            assert list(a) == list(b)  # same columns, same order
            for column in a:
                if _dump(a[column]) == _dump(b[column]):
                    continue
                if _library_fixed(column, a[column], b[column]):
                    fixed[column] = fixed.get(column, 0) + 1
                else:
                    mismatches.append((mine.position, image, column, a[column], b[column]))
    assert mismatches[:20] == []
    assert fixed.keys() >= {"st", "y", "d", "dt0", "ts6"}  # the fixes were exercised

    # The final DELETE's FULL before-images, decoded by us, are the snapshot of the table.
    deleted = {c.data["id"]: c.data for c in ours if c.op == "delete" and c.xid == ours[-1].xid}
    assert len(deleted) == len(final) > 1000
    differences = [
        (key, column, _dump(value), _dump(deleted[key][column]))
        for key, row in final.items()
        for column, value in row.items()
        if _dump(value) != _dump(deleted[key][column])
    ]
    assert differences[:20] == []


def test_latin1_bytes_strict_cp1252_rejects_read_as_the_snapshot_reads_them(
    testenv: Any, database: str, admin: Any, source_password: str
) -> None:
    """MySQL's latin1 maps 0x81, 0x8D, 0x8F, 0x90, 0x9D to control characters; the library
    decodes strict cp1252 and dead-letters the whole event, our decoder reads them."""
    with admin.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE `{database}`.gaps (id int PRIMARY KEY, "
            "l varchar(10) CHARACTER SET latin1)"
        )
        start = _position(admin)
        cursor.execute(
            f"INSERT INTO `{database}`.gaps VALUES (1, x'41818D8F909D80'), (2, 'plain é')"
        )
    end = _position(admin)
    final = _snapshot(admin, database, "gaps")
    cfg = _reader_config(testenv, database)
    letters: list[str] = []

    def dead_letter(poison: errors.PoisonRow) -> str | None:
        letters.append(str(poison))
        return str(poison)

    library, _ = read_changes(cfg, start, end, fast=False, on_poison=dead_letter)
    assert library == [] and len(letters) == 1 and "UnicodeDecodeError" in letters[0]
    ours, refused = read_changes(cfg, start, end, fast=True, on_poison=dead_letter)
    assert refused == 0 and len(letters) == 1
    assert {c.data["id"]: c.data for c in ours} == final
    assert final[1]["l"] == "A\x81\x8d\x8f\x90\x9d€"
