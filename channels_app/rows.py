"""Single-row statements compiled once: the read, update and insert of the webhook receiver's hot path.

The ORM compiles its SQL again on every call, and on a callback that was more than half of the
receiver's CPU time (`docs/benchmarks.md`). These helpers build each statement once per model, field
set and database vendor and run it through Django's cursor, so it takes part in the current
transaction, error wrapping and query capture like any ORM query. Values go through the fields' own
preparation (`pre_save`, `get_db_prep_save`) and conversion (`from_db_value`), so what is stored and
read back is exactly what the ORM stores and reads (tests/test_rows.py compares them).

They send no model signals: they are used on Channel, ChannelEvent and WebhookEvent, which have no
receivers. Values must be plain values, not expressions (`F()`); use the ORM for those.
"""

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Expression, Model

from channels_app.crypto import EncryptedTextField

M = TypeVar("M", bound=Model)


@cache
def _select(model: type[Model], names: frozenset[str], key: str, lock: bool, db: str) -> tuple[str, tuple]:
    """The SELECT and its fields, in the model's field order (the order `Model.from_db` expects)."""
    connection = connections[db]
    opts, quote = model._meta, connection.ops.quote_name
    fields = tuple(field for field in opts.concrete_fields if field.name in names or field.attname in names)
    if len(fields) != len(names):
        raise ValueError(f"not concrete fields of {model.__name__}: {sorted(names)}")
    # SQLite has no row locks; its immediate transactions already serialise writers.
    suffix = " FOR UPDATE" if lock and connection.features.has_select_for_update else ""
    columns, where = ", ".join(quote(field.column) for field in fields), quote(opts.get_field(key).column)
    # Identifiers come from the model's metadata, quoted; values are always parameters.
    return f"SELECT {columns} FROM {quote(opts.db_table)} WHERE {where} = %s{suffix}", fields  # noqa: S608


@cache
def _update_sql(model: type[Model], names: tuple[str, ...], db: str) -> str:
    opts, quote = model._meta, connections[db].ops.quote_name
    assignments = ", ".join(f"{quote(opts.get_field(name).column)} = %s" for name in names)
    return f"UPDATE {quote(opts.db_table)} SET {assignments} WHERE {quote(opts.pk.column)} = %s"  # noqa: S608


@cache
def _insert_sql(model: type[Model], db: str) -> tuple[str, bool]:
    """The INSERT of every concrete field but the auto primary key; and whether it returns the key."""
    connection = connections[db]
    opts, quote = model._meta, connection.ops.quote_name
    fields = _insert_fields(model)
    returning = connection.features.can_return_columns_from_insert
    columns, placeholders = ", ".join(quote(field.column) for field in fields), ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
    return (f"{sql} RETURNING {quote(opts.pk.column)}" if returning else sql), returning


@cache
def _insert_fields(model: type[Model]) -> tuple:
    return tuple(field for field in model._meta.concrete_fields if field is not model._meta.auto_field)


def select(model: type[M], names: Sequence[str], key: str, value: Any, *, lock: bool = False) -> M | None:
    """The row whose `key` field equals `value`, with only the fields `names` loaded (the rest load on
    access, as with `.only()`); locked until the transaction ends when `lock`. None when there is none.
    `names` must include the primary key's name."""
    connection = connections[DEFAULT_DB_ALIAS]  # once: each access through the proxy costs a lookup
    sql, fields = _select(model, frozenset(names), key, lock, DEFAULT_DB_ALIAS)
    with connection.cursor() as cursor:
        cursor.execute(sql, [model._meta.get_field(key).get_db_prep_value(value, connection)])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, field in _converted(fields, DEFAULT_DB_ALIAS):
        column = field.cached_col
        for converter in connection.ops.get_db_converters(column) + field.get_db_converters(connection):
            values[index] = converter(values[index], column, connection)
    return model.from_db(connection.alias, [field.attname for field in fields], values)


@cache
def _converted(fields: tuple, db: str) -> tuple:
    """(position, field) of the fields whose values the ORM converts on this database (the backend's
    converters, then the field's `from_db_value`); the converters, bound to each thread's connection,
    are looked up on every call."""
    connection = connections[db]
    return tuple(
        (index, field)
        for index, field in enumerate(fields)
        if connection.ops.get_db_converters(field.cached_col) or field.get_db_converters(connection)
    )


def update(model: type[Model], pk: Any, values: Mapping[str, Any]) -> int:
    """`model.objects.filter(pk=pk).update(**values)`; returns the number of rows changed (0 or 1)."""
    if not values:
        return 0
    connection = connections[DEFAULT_DB_ALIAS]
    params = [*_update_params(model, values, connection), pk]
    with connection.cursor() as cursor:
        cursor.execute(_update_sql(model, tuple(values), DEFAULT_DB_ALIAS), params)
        return cursor.rowcount


def insert(obj: M) -> M:
    """`obj.save()` for a new object with an auto primary key: one INSERT, the key set on `obj`."""
    connection = connections[DEFAULT_DB_ALIAS]
    _run_insert(obj, _insert_params(obj, connection), connection)
    return obj


def _run_insert(obj: Model, params: list, connection) -> None:
    sql, returning = _insert_sql(type(obj), DEFAULT_DB_ALIAS)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        _inserted(obj, cursor.fetchone()[0] if returning else cursor.lastrowid, connection)


def _update_params(model: type[Model], values: Mapping[str, Any], connection) -> list:
    """The values to set, prepared as the ORM's `update()` prepares them; plain values only."""
    params = []
    for name, value in values.items():
        if isinstance(value, Expression) or hasattr(value, "resolve_expression"):
            raise TypeError(f"rows takes plain values; {name} is an expression")
        params.append(model._meta.get_field(name).get_db_prep_save(value, connection))
    return params


def _insert_params(obj: Model, connection) -> list:
    """The values of a new object's row, prepared as `save()` prepares them (defaults, auto_now_add)."""
    if obj.pk is not None:
        raise ValueError("rows inserts new rows; this object has a primary key already")
    return [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in _insert_fields(type(obj))]


def _inserted(obj: Model, pk: Any, connection) -> None:
    """Mark `obj` as saved, with the key the database gave it."""
    obj.pk = pk
    obj._state.adding, obj._state.db = False, connection.alias


def update_and_insert(
    model: type[Model], pk: Any, values: Mapping[str, Any], *, expected: Mapping[str, Any], obj: M
) -> bool:
    """Update the row `pk` of `model` with `values` if its fields still hold `expected`, and insert
    `obj` (as `insert` does): both or neither. Returns False, having written nothing, when the row is
    gone or one of the `expected` fields changed (None matches NULL).

    On PostgreSQL this is one statement, which needs no transaction of its own: the insert selects
    from the update's result.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    if not values:
        raise ValueError("rows.update_and_insert needs values to update")
    opts = model._meta
    for name in expected:
        if isinstance(opts.get_field(name), EncryptedTextField):
            # Encrypting makes a different ciphertext every time: the comparison could never hold.
            raise ValueError(f"rows.update_and_insert cannot compare the encrypted field {name}")
    params = [*_update_params(model, values, connection), pk]
    params += [opts.get_field(name).get_db_prep_value(value, connection) for name, value in expected.items()]
    inserted = _insert_params(obj, connection)
    if connection.vendor != "postgresql":
        with transaction.atomic(using=DEFAULT_DB_ALIAS):
            with connection.cursor() as cursor:
                cursor.execute(_conditional_update_sql(model, tuple(values), tuple(expected), DEFAULT_DB_ALIAS), params)
                if cursor.rowcount != 1:
                    return False
            _run_insert(obj, inserted, connection)
            return True
    with connection.cursor() as cursor:
        cursor.execute(
            _update_and_insert_sql(model, tuple(values), tuple(expected), type(obj), DEFAULT_DB_ALIAS),
            params + inserted,
        )
        row = cursor.fetchone()
    if row is None:
        return False
    _inserted(obj, row[0], connection)
    return True


@cache
def _conditional_update_sql(model: type[Model], names: tuple[str, ...], expected: tuple[str, ...], db: str) -> str:
    connection = connections[db]
    quote, opts = connection.ops.quote_name, model._meta
    same = "IS NOT DISTINCT FROM" if connection.vendor == "postgresql" else "IS"  # equal, NULL matching NULL
    conditions = "".join(f" AND {quote(opts.get_field(name).column)} {same} %s" for name in expected)
    return _update_sql(model, names, db) + conditions


def _cast_type(field, connection) -> str:
    return "text" if field.get_internal_type() in ("CharField", "TextField") else field.db_type(connection)


@cache
def _update_and_insert_sql(
    model: type[Model], names: tuple[str, ...], expected: tuple[str, ...], inserted: type[Model], db: str
) -> str:
    connection = connections[db]
    quote = connection.ops.quote_name
    update = _conditional_update_sql(model, names, expected, db)
    fields = _insert_fields(inserted)
    columns = ", ".join(quote(field.column) for field in fields)
    # Typed placeholders: in a SELECT list PostgreSQL would take an untyped parameter for text. Text
    # goes as `text`, not `varchar(n)`, whose explicit cast would cut a value the column must refuse.
    values = ", ".join(f"CAST(%s AS {_cast_type(field, connection)})" for field in fields)
    key = quote(inserted._meta.pk.column)
    return (
        f"WITH changed AS ({update} RETURNING {quote(model._meta.pk.column)}) "  # noqa: S608
        f"INSERT INTO {quote(inserted._meta.db_table)} ({columns}) SELECT {values} FROM changed RETURNING {key}"
    )
