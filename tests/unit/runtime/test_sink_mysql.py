"""The MySQL sink's pure pieces: JSON → SQL values, the statements per change, the loop
guard, and the worker's seam (the mapped changes every sink gets)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ferry_operator import local_run
from ferry_operator.render import worker_config as render
from ferry_runtime import config, errors, types
from ferry_runtime.events import Change
from ferry_runtime.sink import sql
from ferry_runtime.sink.base import Segment
from ferry_runtime.sink.kafka import KafkaSink
from ferry_runtime.sink.mysql import MySQLSink, classify, loop_error
from ferry_runtime.source.binlog import Transaction
from ferry_runtime.status import StatusTracker
from ferry_runtime.worker import Worker

C = types.Column
ORDERS = sql.Target(
    "shop",
    "orders",
    (C("id", "int"), C("region", "text"), C("total", "decimal"), C("tags", "set")),
    ("id", "region"),
)
NOKEY = sql.Target("shop", "log", (C("seq", "int"), C("ratio", "float"), C("raw", "binary")), ())


# ---------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        (C("b", "binary", pad_to=4), "AQAAAA==", b"\x01\x00\x00\x00"),
        (C("b", "binary"), "", b""),
        (C("d", "decimal"), "-12345678901234567890.0123456789",
         Decimal("-12345678901234567890.0123456789")),
        (C("s", "set", values=("a", "b", "c")), ["a", "c"], "a,c"),
        (C("s", "set"), [], ""),
        (C("j", "json"), {"b": {"nested": "😀"}, "a": [1, None]},
         '{"b": {"nested": "😀"}, "a": [1, null]}'),
        (C("j", "json"), "text", '"text"'),
        (C("j", "json"), [], "[]"),
        (C("t", "text"), {"k": 1}, '{"k": 1}'),  # a JSON source column into a text column
        (C("x", "bit"), 18446744073709551615, 18446744073709551615),
        (C("f", "float"), 1.1, 1.1),
        (C("t", "time", fsp=6), "-00:00:00.000001", "-00:00:00.000001"),
        (C("v", "text"), "héllo 😀", "héllo 😀"),
        (C("n", "int"), None, None),
        (C("n", "json"), None, None),
    ],
)  # fmt: skip
def test_json_values_become_what_the_target_column_takes(
    column: types.Column, value: Any, expected: Any
) -> None:
    assert sql.to_sql(column, value) == expected


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (C("b", "binary", pad_to=4), "AQAAAA=="),
        (C("d", "decimal"), "0.0000000001"),
        (C("s", "set", values=("a", "b", "c")), ["a", "c"]),
        (C("j", "json"), {"a": [1, 2.5, "x", None, True]}),
    ],
)
def test_to_sql_inverts_to_json(column: types.Column, value: Any) -> None:
    assert types.to_json(column, sql.to_sql(column, value)) == value


@pytest.mark.parametrize(
    ("column", "value"),
    [(C("b", "binary"), "not base64!"), (C("d", "decimal"), "12,5"), (C("x", "bit"), "ff")],
)
def test_a_value_the_column_cannot_take_is_a_bad_value_naming_the_column(
    column: types.Column, value: Any
) -> None:
    with pytest.raises(sql.BadValue, match=f"column {column.name} ") as raised:
        sql.to_sql(column, value)
    assert value not in str(raised.value)  # row data stays out of status and events


# ---------------------------------------------------------------- statements


def change(op: str, data: dict[str, Any], old: dict[str, Any] | None = None) -> Change:
    return Change("shop", "orders", op, data, old)  # type: ignore[arg-type]


ROW = {"id": 1, "region": "eu", "total": "9.50", "tags": ["a"]}
UPSERT = (
    "INSERT INTO `shop`.`orders` (`id`, `region`, `total`, `tags`) VALUES (%s, %s, %s, %s) "
    "ON DUPLICATE KEY UPDATE `total` = VALUES(`total`), `tags` = VALUES(`tags`)"
)
DELETE = "DELETE FROM `shop`.`orders` WHERE `id` = %s AND `region` = %s"


@pytest.mark.parametrize("op", ["insert", "read"])
def test_an_insert_or_snapshot_row_is_an_idempotent_upsert(op: str) -> None:
    (statement,) = sql.plan(ORDERS, change(op, ROW))
    assert statement.sql == UPSERT and statement.batchable
    assert statement.args == (1, "eu", Decimal("9.50"), "a")


def test_an_update_keeping_the_key_is_one_upsert() -> None:
    (statement,) = sql.plan(ORDERS, change("update", {**ROW, "total": "1.00"}, ROW))
    assert statement.sql == UPSERT and statement.args[2] == Decimal("1.00")


def test_an_update_of_the_key_deletes_the_old_row_then_upserts_the_new() -> None:
    delete, upsert = sql.plan(ORDERS, change("update", {**ROW, "region": "us"}, ROW))
    assert (delete.sql, delete.args, delete.batchable) == (DELETE, (1, "eu"), False)
    assert upsert.sql == UPSERT and upsert.args[:2] == (1, "us")


def test_a_delete_matches_the_primary_key() -> None:
    (statement,) = sql.plan(ORDERS, change("delete", ROW))
    assert (statement.sql, statement.args) == (DELETE, (1, "eu"))


def test_a_row_s_values_are_to_sql_of_each_whatever_their_types() -> None:
    columns = (
        C("id", "int"), C("note", "text"), C("total", "decimal"), C("tags", "set"),
        C("raw", "binary"), C("doc", "json"), C("flag", "bit"), C("ratio", "double"),
    )  # fmt: skip
    target = sql.Target("d", "t", columns, ("id",))
    rows = [
        {"id": 1, "note": "a", "total": "9.50", "tags": "x,y", "raw": "AP8=", "doc": "s",
         "flag": 1, "ratio": 0.5},
        {"id": 2, "note": {"obj": 1}, "total": None, "tags": ["x", "y"], "raw": None,
         "doc": [1, 2], "flag": True, "ratio": None},
        {"ratio": 1.5, "id": 3, "note": None},  # other columns, another order
    ]  # fmt: skip
    for row in rows:
        (statement,) = sql.plan(target, Change("d", "t", "insert", row, None, ("id",)))
        expected = tuple(sql.to_sql(target.by_name[name], value) for name, value in row.items())
        assert statement.args == expected


def test_deletes_by_key_say_how_many_go_as_one_statement() -> None:
    (statement,) = sql.plan(ORDERS, change("delete", ROW))
    assert statement.keys == "DELETE FROM `shop`.`orders` WHERE (`id`, `region`) IN "
    assert sql.key_list([(1, "eu"), (2, "o'k")]) == "((1,'eu'),(2,'o\\'k'))"
    single = sql.Target("d", "t", (C("id", "int"),), ("id",))
    (statement,) = sql.plan(single, Change("d", "t", "delete", {"id": 7}))
    assert (statement.keys, statement.args) == ("DELETE FROM `d`.`t` WHERE `id` IN ", (7,))
    assert sql.key_list([(7,), (8,), (None,)]) == "(7,8,NULL)"
    (keyless,) = sql.plan(NOKEY, Change("shop", "log", "delete", {"seq": 1, "ratio": 1.0}))
    assert keyless.keys is None  # matched on every value, LIMIT 1: one by one


def test_values_are_written_as_pymysql_escapes_them() -> None:
    import datetime

    from pymysql import converters

    class Name(str):
        pass

    values = [
        0, -7, 2**63, None, True, False, 1.1, 1e300, -0.0, Decimal("-12.50"), Decimal("1E+3"),
        b"\x00\xff'\\", "", "it's", 'a\x00b\nc\rd\x1ae"f\\g', "é 😀 \u2028", Name("x'y"),
        datetime.date(2026, 12, 3),
    ]  # fmt: skip
    for value in values:
        assert sql.literal(value) == converters.escape_item(value, "utf8mb4"), value
    with pytest.raises(Exception, match="inf"):
        sql.literal(float("inf"))


def test_a_run_of_upserts_goes_as_multi_row_statements_within_the_size_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [(n, f"r{n}", Decimal(n), "a") for n in range(1, 4)]
    (one,) = sql.multi_row(UPSERT, rows)
    head, tail = UPSERT.split(" VALUES (%s, %s, %s, %s)")
    assert one.decode() == f"{head} VALUES (1,'r1',1,'a'),(2,'r2',2,'a'),(3,'r3',3,'a'){tail}"
    monkeypatch.setattr(sql, "MAX_STATEMENT", len(one) - 1)
    parts = list(sql.multi_row(UPSERT, rows))
    assert [part.count(b"'r") for part in parts] == [2, 1]
    assert all(len(part) <= len(one) - 1 for part in parts)
    monkeypatch.setattr(sql, "MAX_STATEMENT", 10)  # a row longer than the limit goes alone
    assert len(list(sql.multi_row(UPSERT, rows))) == 3
    plain = sql.insert("`d`.`log`", ("seq", "msg"))  # a table without a key: no tail
    assert list(sql.multi_row(plain, [(1, "a"), (2, None)])) == [
        b"INSERT INTO `d`.`log` (`seq`, `msg`) VALUES (1,'a')",
        b"INSERT INTO `d`.`log` (`seq`, `msg`) VALUES (2,NULL)",
    ]


def test_a_table_without_a_key_inserts_plainly_and_matches_every_old_value() -> None:
    row = {"seq": 1, "ratio": 1.1, "raw": "AP8="}
    (insert,) = sql.plan(NOKEY, Change("shop", "log", "insert", row))
    assert insert.sql == "INSERT INTO `shop`.`log` (`seq`, `ratio`, `raw`) VALUES (%s, %s, %s)"
    assert insert.args == (1, 1.1, b"\x00\xff") and insert.batchable
    where = "`seq` <=> %s AND `ratio` <=> CAST(%s AS FLOAT) AND `raw` <=> %s LIMIT 1"
    (update,) = sql.plan(NOKEY, Change("shop", "log", "update", {**row, "seq": 2}, row))
    assert (
        update.sql == f"UPDATE `shop`.`log` SET `seq` = %s, `ratio` = %s, `raw` = %s WHERE {where}"
    )
    assert update.args == (2, 1.1, b"\x00\xff", 1, 1.1, b"\x00\xff")
    (delete,) = sql.plan(NOKEY, Change("shop", "log", "delete", {**row, "raw": None}))
    assert delete.sql == f"DELETE FROM `shop`.`log` WHERE {where}"
    assert delete.args == (1, 1.1, None)


def test_a_table_whose_columns_are_all_key_still_upserts() -> None:
    target = sql.Target("d", "pairs", (C("a", "int"), C("b", "int")), ("a", "b"))
    (statement,) = sql.plan(target, Change("d", "pairs", "insert", {"a": 1, "b": 2}))
    assert statement.sql.endswith("ON DUPLICATE KEY UPDATE `a` = VALUES(`a`)")


def test_generated_columns_are_left_to_the_target() -> None:
    target = sql.Target("d", "g", (C("id", "int"), C("a", "int"), C("twice", "int")), ("id",),
                        frozenset({"twice"}))  # fmt: skip
    row = {"id": 1, "a": 2, "twice": 4}
    (statement,) = sql.plan(target, Change("d", "g", "insert", row))
    assert "twice" not in statement.sql and statement.args == (1, 2)
    nokey = sql.Target("d", "g", target.columns, (), frozenset({"twice"}))
    (update,) = sql.plan(nokey, Change("d", "g", "update", {**row, "a": 3}, row))
    assert "twice" not in update.sql and update.args == (1, 3, 1, 2)


def test_a_column_the_target_lacks_is_named() -> None:
    with pytest.raises(sql.SchemaMismatch, match=r"`shop`.`orders` has no column `color`"):
        sql.plan(ORDERS, change("insert", {**ROW, "color": "red"}))


def test_a_row_without_the_targets_key_column_is_named() -> None:
    row = {k: v for k, v in ROW.items() if k != "region"}
    with pytest.raises(sql.SchemaMismatch, match="primary key column `region`"):
        sql.plan(ORDERS, change("insert", row))


def test_names_are_quoted() -> None:
    assert sql.quote("we`ird") == "`we``ird`"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("code", "kind", "reason"),
    [
        (1045, errors.FatalError, "AuthenticationFailed"),
        (1142, errors.FatalError, "InsufficientPrivileges"),
        (1146, errors.FatalError, "TargetSchemaMismatch"),
        (1054, errors.FatalError, "TargetSchemaMismatch"),
        (1213, errors.TransientError, "SinkBusy"),
        (1205, errors.TransientError, "SinkBusy"),
        (2013, errors.TransientError, "SinkUnavailable"),
        (2003, errors.TransientError, "SinkUnavailable"),
        (1290, errors.TransientError, "SinkError"),
    ],
)
def test_server_errors_are_classified_without_the_password(
    code: int, kind: type[errors.WorkerError], reason: str
) -> None:
    error = Exception(code, "Access denied for user 'w' (password: s3cr3t-Pw) using s3cr3t-Pw")
    classified = classify(error, "delivering a batch", "s3cr3t-Pw", "w")
    assert type(classified) is kind and classified.reason == reason
    assert "s3cr3t-Pw" not in classified.message


def test_authentication_and_privilege_errors_say_what_to_fix() -> None:
    auth = classify(Exception(1045, "Access denied"), "connecting", None, "w")
    assert "sink.mysql.user" in auth.message and "sink.mysql.passwordEnv" in auth.message
    denied = classify(Exception(1142, "INSERT command denied"), "delivering", None, "writer")
    assert "writer" in denied.message and "INSERT, UPDATE, DELETE" in denied.message


# ---------------------------------------------------------------- loop guard and seam


def worker_config(**overrides: Any) -> config.WorkerConfig:
    data: dict[str, Any] = {
        "task": {"name": "t"},
        "source": {"host": "127.0.0.1", "user": "u", "passwordEnv": "PW", "serverId": 1},
        "include": ["shop.*"],
        "sink": {"mysql": {"host": "localhost", "user": "w", "passwordEnv": "PW2"}},
    }
    return config.parse({**data, **overrides})


def sink(**fields: Any) -> dict[str, Any]:
    return {"mysql": {"host": "localhost", "user": "w", "passwordEnv": "PW2", **fields}}


def test_the_loop_guard_refuses_the_source_server_without_a_database() -> None:
    message = loop_error(worker_config())
    assert message is not None and message.startswith("sink.mysql.database:")


@pytest.mark.parametrize(
    ("include", "exclude", "loops"),
    [
        (["shop.*"], [], False),
        (["shop.*", "shop_copy.*"], [], True),
        (["*.*"], [], True),
        (["shop*.orders"], [], True),
        (["*.*"], ["shop_copy.*"], False),
        (["*.*"], ["shop_copy.tmp"], True),
    ],
)
def test_the_loop_guard_refuses_a_target_database_the_rules_select(
    include: list[str], exclude: list[str], loops: bool
) -> None:
    cfg = worker_config(include=include, exclude=exclude, sink=sink(database="shop_copy"))
    message = loop_error(cfg)
    assert (message is not None) == loops
    if loops:
        assert message is not None and "shop_copy" in message


@pytest.mark.parametrize("where", [{"host": "replica"}, {"port": 3307}])
def test_another_server_never_loops(where: dict[str, Any]) -> None:
    assert loop_error(worker_config(sink=sink(**where))) is None


def test_the_worker_builds_the_configured_sink_or_refuses_a_loop() -> None:
    worker = Worker(worker_config(sink=sink(database="copy")), StatusTracker())
    assert isinstance(worker._make_sink(), MySQLSink)
    kafka = worker_config(sink={"kafka": {"bootstrapServers": "k"}})
    assert isinstance(Worker(kafka, StatusTracker())._make_sink(), KafkaSink)
    with pytest.raises(errors.FatalError) as raised:
        Worker(worker_config(), StatusTracker())._make_sink()
    assert raised.value.reason == "InvalidConfig"


def test_the_sink_gets_the_changes_mapped_and_filtered() -> None:
    cfg = worker_config(
        sink=sink(database="copy"),
        mapping=[{"table": "shop.users", "target": "people", "columns": {"nm": "name"},
                  "drop": ["card"]}],
    )  # fmt: skip
    worker = Worker(cfg, StatusTracker())
    users = Change("shop", "users", "insert", {"id": 1, "nm": "Ann", "card": "4111"}, None, ("id",))
    other = Change("crm", "users", "insert", {"id": 2}, None, ("id",))
    txn = Transaction([users, other], {"file": "binlog.000001", "pos": 9}, 0, 0.0)
    (segment,) = worker._segments([txn])
    assert isinstance(segment, Segment)
    assert [(c.table, c.data) for c in segment.changes] == [("people", {"id": 1, "name": "Ann"})]
    assert segment.changes[0].source_name == "shop.users"  # status counts it under this name


def test_the_example_renders_to_a_mysql_sink_with_both_passwords_from_secrets() -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "mysql-to-mysql"
    found = local_run.load_manifests(sorted(example.glob("*.yaml")))
    cfg, env = local_run.render(found)
    assert cfg.sink.mysql is not None and cfg.sink.kafka is None
    assert (cfg.sink.mysql.host, cfg.sink.mysql.user) == ("mariadb.reporting.svc", "ferry_writer")
    assert cfg.sink.mysql.database == "shop_copy"
    assert cfg.sink.mysql.password_env == render.SINK_PASSWORD
    assert env == {render.SOURCE_PASSWORD: "change-me", render.SINK_PASSWORD: "change-me-too"}
    assert "change-me" not in cfg.to_yaml()
    assert loop_error(cfg) is None
    assert isinstance(Worker(cfg, StatusTracker())._make_sink(), MySQLSink)
