"""The local adapter of the table port: the DynamoDB item calls `intake.store.Store` makes, on SQLite.

`Store(SqliteTable(path), name)` behaves as `Store(dynamodb_client, name)`: the same keyword arguments, the
same typed attributes (`{"S": ..}`, `{"N": "1"}`, ...) in and out, the same `ClientError`s. moto is not used
at runtime. One row per item (its attributes as JSON), with the table key, each index's key and the TTL as
indexed columns, so that every query is an indexed range read. Safe from many threads (one connection each)
and several processes (WAL; every write a `BEGIN IMMEDIATE` transaction).

One file is one table (`TableName` is accepted and not used). Beyond what Store needs, requests DynamoDB would
refuse are refused the same way (ValidationException); so are what this adapter leaves out: nested document
paths, binary attributes, projections, scan filters.
"""

from __future__ import annotations

import decimal
import json
import os
import re
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypedDict, Unpack

from botocore.exceptions import ClientError

from intake.local.sqlite import immediate
from intake.resources import TABLE, Index, TableSpec

Item: TypeAlias = dict[str, Any]  # attribute name → typed value ({"S": "x"})

MAX_ITEM_BYTES = 400 * 1024
MAX_TRANSACTION_ITEMS = 100
MAX_BATCH_GET_KEYS = 100
BATCH_GET_BYTES = 16 * 1024 * 1024  # a BatchGetItem answers at most 16 MB of items; the rest is left unprocessed
PAGE_BYTES = 1024 * 1024  # a query or scan page stops after 1 MB read, as DynamoDB's do
_BUSY_TIMEOUT_MS = 30_000
_SWEEP_BATCH = 500


# ------------------------------------------------------------------ errors


class _InvalidError(Exception):
    """A request DynamoDB would refuse: a ValidationException."""


class _FailedError(Exception):
    """A condition that did not hold."""


class _CancelledError(Exception):
    def __init__(self, reasons: list[dict[str, str]]) -> None:
        self.reasons = reasons
        super().__init__("transaction cancelled")


def _client_error(operation: str, code: str, message: str, **extra: Any) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 400},
        **extra,
    }
    return ClientError(response, operation)  # type: ignore[arg-type]


@contextmanager
def _errors(operation: str) -> Iterator[None]:
    """Our internal failures as boto3 raises them."""
    try:
        yield
    except _InvalidError as error:
        raise _client_error(operation, "ValidationException", str(error)) from None
    except _FailedError:
        raise _client_error(operation, "ConditionalCheckFailedException", "The conditional request failed") from None
    except _CancelledError as error:
        codes = ", ".join(r["Code"] for r in error.reasons)
        message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]"
        raise _client_error(
            operation, "TransactionCanceledException", message, CancellationReasons=error.reasons
        ) from None
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise _client_error(operation, "ThrottlingException", "the local table stayed locked") from error
        raise


# ------------------------------------------------------------------ attribute values

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_MATH = decimal.Context(prec=38, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
_SCALARS = {"S", "N", "B"}
_SETS = {"SS": "S", "NS": "N", "BS": "B"}
_TYPES = {"S", "N", "B", "SS", "NS", "BS", "BOOL", "NULL", "L", "M"}


def _number(text: Any) -> Decimal:
    """A DynamoDB number: at most 38 significant digits, magnitude 1E-130 to 1E+126."""
    if not isinstance(text, str) or not _NUMBER.fullmatch(text):
        raise _InvalidError("A value provided cannot be converted into a number")
    value = Decimal(text)
    if value.is_zero():
        return Decimal(0)
    digits = value.as_tuple().digits
    significant = len("".join(map(str, digits)).strip("0"))
    if significant > 38:
        raise _InvalidError("Attempting to store more than 38 significant digits in a Number")
    if value.adjusted() > 125:
        raise _InvalidError("Number overflow. Attempting to store a number with magnitude larger than supported range")
    if value.adjusted() < -130:
        raise _InvalidError(
            "Number underflow. Attempting to store a number with magnitude smaller than supported range"
        )
    return value


def _number_text(value: Decimal) -> str:
    """Leading and trailing zeroes trimmed, as DynamoDB keeps numbers."""
    text = format(_MATH.normalize(value), "f")
    return "0" if text in ("0", "-0") else text


def _number_size(text: str) -> int:
    significant = len(text.lstrip("-").replace(".", "").strip("0")) or 1
    return (significant + 1) // 2 + 1


def _utf8_size(text: str) -> int:
    try:
        return len(text.encode())
    except UnicodeEncodeError:
        raise _InvalidError("One or more parameter values were invalid: a string is not valid UTF-8") from None


def _checked(value: Any, depth: int = 0) -> tuple[dict[str, Any], int]:
    """A fresh, validated copy of a typed value (numbers normalized) and its size as DynamoDB counts it."""
    if depth > 32:
        raise _InvalidError("Nesting Levels have exceeded supported limits")
    if not isinstance(value, dict) or len(value) != 1:
        raise _InvalidError("Supplied AttributeValue must contain exactly one of the supported datatypes")
    ((kind, data),) = value.items()
    if kind == "S" and isinstance(data, str):
        return {"S": data}, _utf8_size(data)
    if kind == "N":
        text = _number_text(_number(data))
        return {"N": text}, _number_size(text)
    if kind == "BOOL" and isinstance(data, bool):
        return {"BOOL": data}, 1
    if kind == "NULL":
        if data is not True:
            raise _InvalidError("One or more parameter values were invalid: Null attribute value types must be true")
        return {"NULL": True}, 1
    if kind == "L" and isinstance(data, list):
        elements = [_checked(v, depth + 1) for v in data]
        return {"L": [v for v, _ in elements]}, 3 + sum(s + 1 for _, s in elements)
    if kind == "M" and isinstance(data, dict):
        members = {k: _checked(v, depth + 1) for k, v in data.items() if isinstance(k, str)}
        if len(members) != len(data):
            raise _InvalidError("Map keys must be strings")
        size = 3 + sum(_utf8_size(k) + s + 1 for k, (_, s) in members.items())
        return {"M": {k: v for k, (v, _) in members.items()}}, size
    if kind in ("SS", "NS") and isinstance(data, list):
        if not data:
            raise _InvalidError(f"One or more parameter values were invalid: An {kind} set may not be empty")
        if kind == "SS":
            if not all(isinstance(v, str) for v in data):
                raise _InvalidError("A string set must hold strings")
            strings: list[str] = list(data)
            size = sum(_utf8_size(v) for v in strings)
            unique = len(set(strings))
        else:
            numbers = [_number(v) for v in data]
            strings = [_number_text(v) for v in numbers]
            size = sum(_number_size(v) for v in strings)
            unique = len(set(numbers))
        if unique != len(strings):
            raise _InvalidError("One or more parameter values were invalid: Input collection contains duplicates")
        return {kind: strings}, size
    if kind in ("B", "BS"):
        raise _InvalidError("Binary attributes are not supported by the local table")
    raise _InvalidError(f"Supplied AttributeValue has an unsupported or malformed datatype: {kind}")


def _checked_item(item: Any) -> tuple[Item, int]:
    if not isinstance(item, dict):
        raise _InvalidError("An item must be a map of attributes")
    checked: Item = {}
    size = 0
    for name, value in item.items():
        if not isinstance(name, str) or not name:
            raise _InvalidError("One or more parameter values were invalid: An attribute name may not be empty")
        checked[name], value_size = _checked(value)
        size += _utf8_size(name) + value_size
    return checked, size


def _equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ((kind, x),) = a.items()
    ((other, y),) = b.items()
    if kind != other:
        return False
    if kind == "N":
        return Decimal(x) == Decimal(y)
    if kind == "NS":
        return {Decimal(v) for v in x} == {Decimal(v) for v in y}
    if kind == "SS":
        return set(x) == set(y)
    if kind == "L":
        return len(x) == len(y) and all(_equal(v, w) for v, w in zip(x, y, strict=True))
    if kind == "M":
        return x.keys() == y.keys() and all(_equal(x[k], y[k]) for k in x)
    return bool(x == y)


def _ordered(op: str, a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """`a op b` for `< <= > >=`: numbers numerically, strings by code point (UTF-8 byte order); else false."""
    if a is None or b is None:
        return False
    ((kind, x),) = a.items()
    ((other, y),) = b.items()
    if kind != other or kind not in _SCALARS:
        return False
    left, right = (Decimal(x), Decimal(y)) if kind == "N" else (x, y)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


# ------------------------------------------------------------------ expressions
# A recursive-descent parser for the part of DynamoDB's expression grammar Intake uses (top-level attribute
# names only); anything else is a ValidationException. Parsed expressions are cached by their text.


@dataclass(frozen=True, slots=True)
class _Path:
    token: str  # `#placeholder` or a plain attribute name


@dataclass(frozen=True, slots=True)
class _Value:
    token: str  # `:placeholder`


@dataclass(frozen=True, slots=True)
class _Size:
    path: _Path


@dataclass(frozen=True, slots=True)
class _IfNotExists:
    path: _Path
    default: _Operand


@dataclass(frozen=True, slots=True)
class _ListAppend:
    first: _Operand
    second: _Operand


@dataclass(frozen=True, slots=True)
class _Arithmetic:
    op: str
    left: _Operand
    right: _Operand


_Operand: TypeAlias = "_Path | _Value | _Size | _IfNotExists | _ListAppend | _Arithmetic"


@dataclass(frozen=True, slots=True)
class _Compare:
    op: str
    left: _Operand
    right: _Operand


@dataclass(frozen=True, slots=True)
class _Between:
    operand: _Operand
    low: _Operand
    high: _Operand


@dataclass(frozen=True, slots=True)
class _In:
    operand: _Operand
    choices: tuple[_Operand, ...]


@dataclass(frozen=True, slots=True)
class _Call:
    function: str
    args: tuple[_Operand, ...]


@dataclass(frozen=True, slots=True)
class _And:
    left: _Condition
    right: _Condition


@dataclass(frozen=True, slots=True)
class _Or:
    left: _Condition
    right: _Condition


@dataclass(frozen=True, slots=True)
class _Not:
    operand: _Condition


_Condition: TypeAlias = "_Compare | _Between | _In | _Call | _And | _Or | _Not"


@dataclass(frozen=True, slots=True)
class _Update:
    sets: tuple[tuple[_Path, _Operand], ...]
    removes: tuple[_Path, ...]
    adds: tuple[tuple[_Path, _Value], ...]
    deletes: tuple[tuple[_Path, _Value], ...]

    def targets(self) -> list[_Path]:
        return [p for p, _ in self.sets] + list(self.removes) + [p for p, _ in self.adds + self.deletes]


@dataclass(frozen=True, slots=True)
class _Parsed:
    root: Any  # _Condition or _Update
    names: frozenset[str]
    values: frozenset[str]


_TOKEN = re.compile(
    r"\s*(?:(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><>|<=|>=|[=<>(),+\-])|(?P<other>\S))"
)
_COMPARATORS = {"=", "<>", "<", "<=", ">", ">="}
_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE"}
_CONDITION_FUNCTIONS = {"attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains"}
_ARITY = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
    "size": 1,
    "if_not_exists": 2,
    "list_append": 2,
}


# DynamoDB's reserved words (the list its documentation gives): a plain attribute name in an expression may not be
# one of them; a `#placeholder` stands for it instead.
_RESERVED_WORDS = """
    ABORT ABSOLUTE ACTION ADD AFTER AGENT AGGREGATE ALL ALLOCATE ALTER ANALYZE AND ANY ARCHIVE ARE ARRAY AS ASC ASCII
    ASENSITIVE ASSERTION ASYMMETRIC AT ATOMIC ATTACH ATTRIBUTE AUTH AUTHORIZATION AUTHORIZE AUTO AVG BACK BACKUP BASE
    BATCH BEFORE BEGIN BETWEEN BIGINT BINARY BIT BLOB BLOCK BOOLEAN BOTH BREADTH BUCKET BULK BY BYTE CALL CALLED CALLING
    CAPACITY CASCADE CASCADED CASE CAST CATALOG CHAR CHARACTER CHECK CLASS CLOB CLOSE CLUSTER CLUSTERED CLUSTERING
    CLUSTERS COALESCE COLLATE COLLATION COLLECTION COLUMN COLUMNS COMBINE COMMENT COMMIT COMPACT COMPILE COMPRESS
    CONDITION CONFLICT CONNECT CONNECTION CONSISTENCY CONSISTENT CONSTRAINT CONSTRAINTS CONSTRUCTOR CONSUMED CONTINUE
    CONVERT COPY CORRESPONDING COUNT COUNTER CREATE CROSS CUBE CURRENT CURSOR CYCLE DATA DATABASE DATE DATETIME DAY
    DEALLOCATE DEC DECIMAL DECLARE DEFAULT DEFERRABLE DEFERRED DEFINE DEFINED DEFINITION DELETE DELIMITED DEPTH DEREF
    DESC DESCRIBE DESCRIPTOR DETACH DETERMINISTIC DIAGNOSTICS DIRECTORIES DISABLE DISCONNECT DISTINCT DISTRIBUTE DO
    DOMAIN DOUBLE DROP DUMP DURATION DYNAMIC EACH ELEMENT ELSE ELSEIF EMPTY ENABLE END EQUAL EQUALS ERROR ESCAPE ESCAPED
    EVAL EVALUATE EXCEEDED EXCEPT EXCEPTION EXCEPTIONS EXCLUSIVE EXEC EXECUTE EXISTS EXIT EXPLAIN EXPLODE EXPORT
    EXPRESSION EXTENDED EXTERNAL EXTRACT FAIL FALSE FAMILY FETCH FIELDS FILE FILTER FILTERING FINAL FINISH FIRST FIXED
    FLATTERN FLOAT FOR FORCE FOREIGN FORMAT FORWARD FOUND FREE FROM FULL FUNCTION FUNCTIONS GENERAL GENERATE GET GLOB
    GLOBAL GO GOTO GRANT GREATER GROUP GROUPING HANDLER HASH HAVE HAVING HEAP HIDDEN HOLD HOUR IDENTIFIED IDENTITY IF
    IGNORE IMMEDIATE IMPORT IN INCLUDING INCLUSIVE INCREMENT INCREMENTAL INDEX INDEXED INDEXES INDICATOR INFINITE
    INITIALLY INLINE INNER INNTER INOUT INPUT INSENSITIVE INSERT INSTEAD INT INTEGER INTERSECT INTERVAL INTO INVALIDATE
    IS ISOLATION ITEM ITEMS ITERATE JOIN KEY KEYS LAG LANGUAGE LARGE LAST LATERAL LEAD LEADING LEAVE LEFT LENGTH LESS
    LEVEL LIKE LIMIT LIMITED LINES LIST LOAD LOCAL LOCALTIME LOCALTIMESTAMP LOCATION LOCATOR LOCK LOCKS LOG LOGED LONG
    LOOP LOWER MAP MATCH MATERIALIZED MAX MAXLEN MEMBER MERGE METHOD METRICS MIN MINUS MINUTE MISSING MOD MODE MODIFIES
    MODIFY MODULE MONTH MULTI MULTISET NAME NAMES NATIONAL NATURAL NCHAR NCLOB NEW NEXT NO NONE NOT NULL NULLIF NUMBER
    NUMERIC OBJECT OF OFFLINE OFFSET OLD ON ONLINE ONLY OPAQUE OPEN OPERATOR OPTION OR ORDER ORDINALITY OTHER OTHERS OUT
    OUTER OUTPUT OVER OVERLAPS OVERRIDE OWNER PAD PARALLEL PARAMETER PARAMETERS PARTIAL PARTITION PARTITIONED PARTITIONS
    PATH PERCENT PERCENTILE PERMISSION PERMISSIONS PIPE PIPELINED PLAN POOL POSITION PRECISION PREPARE PRESERVE PRIMARY
    PRIOR PRIVATE PRIVILEGES PROCEDURE PROCESSED PROJECT PROJECTION PROPERTY PROVISIONING PUBLIC PUT QUERY QUIT QUORUM
    RAISE RANDOM RANGE RANK RAW READ READS REAL REBUILD RECORD RECURSIVE REDUCE REF REFERENCE REFERENCES REFERENCING
    REGEXP REGION REINDEX RELATIVE RELEASE REMAINDER RENAME REPEAT REPLACE REQUEST RESET RESIGNAL RESOURCE RESPONSE
    RESTORE RESTRICT RESULT RETURN RETURNING RETURNS REVERSE REVOKE RIGHT ROLE ROLES ROLLBACK ROLLUP ROUTINE ROW ROWS
    RULE RULES SAMPLE SATISFIES SAVE SAVEPOINT SCAN SCHEMA SCOPE SCROLL SEARCH SECOND SECTION SEGMENT SEGMENTS SELECT
    SELF SEMI SENSITIVE SEPARATE SEQUENCE SERIALIZABLE SESSION SET SETS SHARD SHARE SHARED SHORT SHOW SIGNAL SIMILAR
    SIZE SKEWED SMALLINT SNAPSHOT SOME SOURCE SPACE SPACES SPARSE SPECIFIC SPECIFICTYPE SPLIT SQL SQLCODE SQLERROR
    SQLEXCEPTION SQLSTATE SQLWARNING START STATE STATIC STATUS STORAGE STORE STORED STREAM STRING STRUCT STYLE SUB
    SUBMULTISET SUBPARTITION SUBSTRING SUBTYPE SUM SUPER SYMMETRIC SYNONYM SYSTEM TABLE TABLESAMPLE TEMP TEMPORARY
    TERMINATED TEXT THAN THEN THROUGHPUT TIME TIMESTAMP TIMEZONE TINYINT TO TOKEN TOTAL TOUCH TRAILING TRANSACTION
    TRANSFORM TRANSLATE TRANSLATION TREAT TRIGGER TRIM TRUE TRUNCATE TTL TUPLE TYPE UNDER UNDO UNION UNIQUE UNIT UNKNOWN
    UNLOGGED UNNEST UNPROCESSED UNSIGNED UNTIL UPDATE UPPER URL USAGE USE USER USERS USING UUID VACUUM VALUE VALUED
    VALUES VARCHAR VARIABLE VARIANCE VARINT VARYING VIEW VIEWS VIRTUAL VOID WAIT WHEN WHENEVER WHERE WHILE WINDOW WITH
    WITHIN WITHOUT WORK WRAPPED WRITE YEAR ZONE
"""
_RESERVED = frozenset(_RESERVED_WORDS.split())


class _Parser:
    def __init__(self, text: str, label: str) -> None:
        self.label = label
        self.tokens: list[tuple[str, str]] = []
        self.names: set[str] = set()
        self.values: set[str] = set()
        self.grouped: set[int] = set()  # conditions written in parentheses (by id)
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup
            if kind is None:  # trailing whitespace
                continue
            token = match.group(kind)
            if kind == "other":
                if match.group(kind) in (".", "["):
                    raise _InvalidError(f"Invalid {label}: nested attribute paths are not supported by the local table")
                raise self.error(token)
            self.tokens.append((kind, token))
        if not self.tokens:
            raise _InvalidError(f"Invalid {label}: The expression can not be empty;")
        self.at = 0

    def error(self, token: str | None = None) -> _InvalidError:
        if token is None:
            token = self.tokens[self.at][1] if self.at < len(self.tokens) else "<EOF>"
        return _InvalidError(f'Invalid {self.label}: Syntax error; token: "{token}"')

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.error()
        self.at += 1
        return token

    def accept(self, op: str) -> bool:
        if self.peek() == ("op", op):
            self.at += 1
            return True
        return False

    def expect(self, op: str) -> None:
        if not self.accept(op):
            raise self.error()

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].upper() == word:
            self.at += 1
            return True
        return False

    def done(self) -> bool:
        return self.at >= len(self.tokens)

    # ---- shared

    def path(self) -> _Path:
        kind, token = self.take()
        if kind == "name":
            self.names.add(token)
            return _Path(token)
        if kind != "word" or token.upper() in _KEYWORDS or self.peek() == ("op", "("):
            raise self.error(token)
        if token.upper() in _RESERVED:
            raise _InvalidError(
                f"Invalid {self.label}: Attribute name is a reserved keyword; reserved keyword: {token}"
            )
        return _Path(token)

    def call_args(self, function: str, argument: Any) -> tuple[Any, ...]:
        self.expect("(")
        args = [argument()]
        while self.accept(","):
            args.append(argument())
        self.expect(")")
        if len(args) != _ARITY[function]:
            raise _InvalidError(
                f"Invalid {self.label}: Incorrect number of operands for operator or function; "
                f"operator or function: {function}, number of operands: {len(args)}"
            )
        return tuple(args)

    def function_name(self) -> str | None:
        token, following = self.peek(), self.peek(1)
        if token is not None and token[0] == "word" and following == ("op", "("):
            return token[1]
        return None

    # ---- conditions

    def condition(self) -> Any:
        node = self.conjunction()
        while self.keyword("OR"):
            node = _Or(node, self.conjunction())
        return node

    def conjunction(self) -> Any:
        node = self.negation()
        while self.keyword("AND"):
            node = _And(node, self.negation())
        return node

    def negation(self) -> Any:
        if self.keyword("NOT"):
            return _Not(self.negation())
        return self.primary()

    def primary(self) -> Any:
        if self.accept("("):
            node = self.condition()
            self.expect(")")
            if id(node) in self.grouped:
                raise _InvalidError(f"Invalid {self.label}: The expression has redundant parentheses;")
            self.grouped.add(id(node))
            return node
        function = self.function_name()
        if function in _CONDITION_FUNCTIONS:
            self.at += 1
            args = self.call_args(function, self.operand)
            if function in ("attribute_exists", "attribute_not_exists", "attribute_type") and not isinstance(
                args[0], _Path
            ):
                raise _InvalidError(f"Invalid {self.label}: {function} requires an attribute path")
            return _Call(function, args)
        left = self.operand()
        if self.keyword("BETWEEN"):
            low = self.operand()
            if not self.keyword("AND"):
                raise self.error()
            return _Between(left, low, self.operand())
        if self.keyword("IN"):
            self.expect("(")
            choices = [self.operand()]
            while self.accept(","):
                choices.append(self.operand())
            self.expect(")")
            if len(choices) > 100:
                raise _InvalidError(f"Invalid {self.label}: The IN operator is limited to 100 operands")
            return _In(left, tuple(choices))
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] in _COMPARATORS:
            self.at += 1
            return _Compare(token[1], left, self.operand())
        raise self.error()

    def operand(self) -> _Path | _Value | _Size:
        function = self.function_name()
        if function == "size":
            self.at += 1
            (path,) = self.call_args("size", self.path)
            return _Size(path)
        return self.value_or_path(function)

    def value_or_path(self, function: str | None) -> _Path | _Value:
        """A `:value` or an attribute path: what an operand is when it is none of its clause's functions (any other
        function is refused)."""
        if function is not None:
            raise _InvalidError(f"Invalid {self.label}: Invalid function name; function: {function}")
        token = self.peek()
        if token is not None and token[0] == "value":
            self.at += 1
            self.values.add(token[1])
            return _Value(token[1])
        return self.path()

    # ---- updates

    def update(self) -> _Update:
        clauses: dict[str, list[Any]] = {}
        while not self.done():
            kind, token = self.take()
            clause = token.upper()
            if kind != "word" or clause not in ("SET", "REMOVE", "ADD", "DELETE"):
                raise self.error(token)
            if clause in clauses:
                raise _InvalidError(
                    f'Invalid {self.label}: The "{clause}" section can only be used once in an update expression;'
                )
            actions = clauses[clause] = [self.action(clause)]
            while self.accept(","):
                actions.append(self.action(clause))
        return _Update(
            sets=tuple(clauses.get("SET", ())),
            removes=tuple(clauses.get("REMOVE", ())),
            adds=tuple(clauses.get("ADD", ())),
            deletes=tuple(clauses.get("DELETE", ())),
        )

    def action(self, clause: str) -> Any:
        path = self.path()
        if clause == "REMOVE":
            return path
        if clause == "SET":
            self.expect("=")
            left = self.update_operand()
            following = self.peek()
            if following is not None and following in (("op", "+"), ("op", "-")):
                self.at += 1
                return path, _Arithmetic(following[1], left, self.update_operand())
            return path, left
        kind, token = self.take()
        if kind != "value":
            raise self.error(token)
        self.values.add(token)
        return path, _Value(token)

    def update_operand(self) -> _Operand:
        function = self.function_name()
        if function == "if_not_exists":
            self.at += 1
            path, default = self.call_args(function, self.update_operand)
            if not isinstance(path, _Path):
                raise _InvalidError(f"Invalid {self.label}: if_not_exists requires an attribute path first")
            return _IfNotExists(path, default)
        if function == "list_append":
            self.at += 1
            first, second = self.call_args(function, self.update_operand)
            return _ListAppend(first, second)
        return self.value_or_path(function)


@lru_cache(maxsize=2048)
def _parse_condition(text: str, label: str) -> _Parsed:
    parser = _Parser(text, label)
    root = parser.condition()
    if not parser.done():
        raise parser.error()
    return _Parsed(root, frozenset(parser.names), frozenset(parser.values))


@lru_cache(maxsize=2048)
def _parse_update(text: str) -> _Parsed:
    parser = _Parser(text, "UpdateExpression")
    root = parser.update()
    return _Parsed(root, frozenset(parser.names), frozenset(parser.values))


class _Context:
    """One request's placeholders, checked: every one used is defined, every one defined is used."""

    def __init__(self, names: Any, values: Any, parsed: list[_Parsed]) -> None:
        if names is not None and (not isinstance(names, dict) or not names):
            raise _InvalidError("ExpressionAttributeNames must not be empty")
        if values is not None and (not isinstance(values, dict) or not values):
            raise _InvalidError("ExpressionAttributeValues must not be empty")
        if (names or values) and not parsed:
            raise _InvalidError("ExpressionAttributeNames and ExpressionAttributeValues need an expression")
        self.names: dict[str, str] = dict(names or {})
        self.values: dict[str, dict[str, Any]] = {k: _checked(v)[0] for k, v in (values or {}).items()}
        used_names = frozenset[str]().union(*(p.names for p in parsed))
        used_values = frozenset[str]().union(*(p.values for p in parsed))
        if missing := sorted(used_names - self.names.keys()):
            raise _InvalidError(
                f"An expression attribute name used in the document path is not defined; attribute name: {missing[0]}"
            )
        if missing := sorted(used_values - self.values.keys()):
            raise _InvalidError(
                f"An expression attribute value used in expression is not defined; attribute value: {missing[0]}"
            )
        if unused := sorted(self.names.keys() - used_names):
            raise _InvalidError(
                f"Value provided in ExpressionAttributeNames unused in expressions: keys: {{{', '.join(unused)}}}"
            )
        if unused := sorted(self.values.keys() - used_values):
            raise _InvalidError(
                f"Value provided in ExpressionAttributeValues unused in expressions: keys: {{{', '.join(unused)}}}"
            )

    def name(self, path: _Path) -> str:
        return self.names[path.token] if path.token.startswith("#") else path.token

    def value(self, value: _Value) -> dict[str, Any]:
        return self.values[value.token]


def _type_of(value: dict[str, Any]) -> str:
    return next(iter(value))


def _check_condition(node: Any, context: _Context, label: str) -> None:
    """What DynamoDB refuses before reading anything: operands of the wrong type given as values."""
    if isinstance(node, _And | _Or):
        _check_condition(node.left, context, label)
        _check_condition(node.right, context, label)
    elif isinstance(node, _Not):
        _check_condition(node.operand, context, label)
    elif isinstance(node, _Call) and node.function == "begins_with":
        for arg in node.args:
            if isinstance(arg, _Value) and _type_of(context.value(arg)) not in ("S", "B"):
                raise _InvalidError(
                    f"Invalid {label}: Incorrect operand type for operator or function; "
                    f"operator or function: begins_with, operand type: {_type_of(context.value(arg))}"
                )
    elif isinstance(node, _Call) and node.function == "attribute_type":
        wanted = node.args[1]
        if not isinstance(wanted, _Value) or context.value(wanted) not in [{"S": t} for t in sorted(_TYPES)]:
            raise _InvalidError(f"Invalid {label}: attribute_type needs one of {', '.join(sorted(_TYPES))}")


def _operand(node: Any, item: Item, context: _Context) -> dict[str, Any] | None:
    if isinstance(node, _Path):
        value: dict[str, Any] | None = item.get(context.name(node))
        return value
    if isinstance(node, _Value):
        return context.value(node)
    size = _size_of(item.get(context.name(node.path)))
    return None if size is None else {"N": str(size)}


def _size_of(value: dict[str, Any] | None) -> int | None:
    if value is None:
        return None
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode("utf-16-le")) // 2  # UTF-16 code units, as DynamoDB counts them
    if kind in ("SS", "NS", "L", "M"):
        return len(data)
    return None


def _holds(node: Any, item: Item, context: _Context) -> bool:
    """Whether a condition holds for `item` ({} for an item that does not exist)."""
    if isinstance(node, _And):
        return _holds(node.left, item, context) and _holds(node.right, item, context)
    if isinstance(node, _Or):
        return _holds(node.left, item, context) or _holds(node.right, item, context)
    if isinstance(node, _Not):
        return not _holds(node.operand, item, context)
    if isinstance(node, _Compare):
        left, right = _operand(node.left, item, context), _operand(node.right, item, context)
        if node.op in ("=", "<>"):
            same = left is not None and right is not None and _equal(left, right)
            return same if node.op == "=" else not same
        return _ordered(node.op, left, right)
    if isinstance(node, _Between):
        value = _operand(node.operand, item, context)
        low, high = _operand(node.low, item, context), _operand(node.high, item, context)
        return _ordered(">=", value, low) and _ordered("<=", value, high)
    if isinstance(node, _In):
        value = _operand(node.operand, item, context)
        return value is not None and any(
            (choice := _operand(c, item, context)) is not None and _equal(value, choice) for c in node.choices
        )
    return _called(node, item, context)


def _called(node: _Call, item: Item, context: _Context) -> bool:
    if node.function == "attribute_exists":
        return _operand(node.args[0], item, context) is not None
    if node.function == "attribute_not_exists":
        return _operand(node.args[0], item, context) is None
    subject, argument = (_operand(a, item, context) for a in node.args)
    if subject is None or argument is None:
        return False
    ((kind, data),) = subject.items()
    ((other, wanted),) = argument.items()
    if node.function == "attribute_type":
        return bool(kind == wanted)
    if node.function == "begins_with":
        return kind == other == "S" and data.startswith(wanted)
    # contains: a substring of a string, a member of a set, an element of a list
    if kind == "S":
        return other == "S" and wanted in data
    if kind in _SETS:
        return other == _SETS[kind] and any(_equal({other: v}, argument) for v in data)
    if kind == "L":
        return any(_equal(v, argument) for v in data)
    return False


def _check_update(update: _Update, context: _Context, key_names: tuple[str, str]) -> None:
    names = [context.name(p) for p in update.targets()]
    for name in names:
        if name in key_names:
            raise _InvalidError(
                f"One or more parameter values were invalid: Cannot update attribute {name}. "
                "This attribute is part of the key"
            )
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise _InvalidError(
                "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one "
                f"of these paths; path one: [{name}], path two: [{name}]"
            )
        seen.add(name)
    for _, value in update.adds:
        kind = _type_of(context.value(value))
        if kind not in ("N", "SS", "NS"):
            raise _InvalidError(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; "
                f"operator: ADD, operand type: {kind}"
            )
    for _, value in update.deletes:
        kind = _type_of(context.value(value))
        if kind not in ("SS", "NS"):
            raise _InvalidError(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; "
                f"operator: DELETE, operand type: {kind}"
            )
    for _, operand in update.sets:
        _check_update_operand(operand, context)


def _check_update_operand(node: Any, context: _Context) -> None:
    if isinstance(node, _Arithmetic | _ListAppend):
        wanted, function = ("N", node.op) if isinstance(node, _Arithmetic) else ("L", "list_append")
        first, second = (node.left, node.right) if isinstance(node, _Arithmetic) else (node.first, node.second)
        for part in (first, second):
            if isinstance(part, _Value) and _type_of(context.value(part)) != wanted:
                raise _InvalidError(
                    "Invalid UpdateExpression: Incorrect operand type for operator or function; "
                    f"operator or function: {function}, operand type: {_type_of(context.value(part))}"
                )
            _check_update_operand(part, context)
    elif isinstance(node, _IfNotExists):
        _check_update_operand(node.default, context)


def _updated_value(node: Any, item: Item, context: _Context) -> dict[str, Any]:
    """The value a SET action computes, from the item as it was before the update."""
    if isinstance(node, _Value):
        return context.value(node)
    if isinstance(node, _Path):
        value: dict[str, Any] | None = item.get(context.name(node))
        if value is None:
            raise _InvalidError("The provided expression refers to an attribute that does not exist in the item")
        return value
    if isinstance(node, _IfNotExists):
        current = item.get(context.name(node.path))
        return current if current is not None else _updated_value(node.default, item, context)
    if isinstance(node, _ListAppend):
        first, second = _updated_value(node.first, item, context), _updated_value(node.second, item, context)
        if _type_of(first) != "L" or _type_of(second) != "L":
            raise _InvalidError("An operand in the update expression has an incorrect data type")
        return {"L": first["L"] + second["L"]}
    left, right = _updated_value(node.left, item, context), _updated_value(node.right, item, context)
    if _type_of(left) != "N" or _type_of(right) != "N":
        raise _InvalidError("An operand in the update expression has an incorrect data type")
    return {"N": _arithmetic(node.op, Decimal(left["N"]), Decimal(right["N"]))}


def _arithmetic(op: str, left: Decimal, right: Decimal) -> str:
    try:
        result = _MATH.add(left, right) if op == "+" else _MATH.subtract(left, right)
    except decimal.DecimalException:
        raise _InvalidError(
            "Number overflow. Attempting to store a number with magnitude larger than supported range"
        ) from None
    return _number_text(_number(format(result, "f")))


def _applied(update: _Update, old: Item, context: _Context) -> Item:
    """The item after an update: every operand read from `old`, then every action applied."""
    new = dict(old)
    assigned = [(context.name(path), _updated_value(operand, old, context)) for path, operand in update.sets]
    for name, value in assigned:
        new[name] = value
    for path in update.removes:
        new.pop(context.name(path), None)
    for path, operand in update.adds:
        name, value, current = context.name(path), context.value(operand), old.get(context.name(path))
        kind = _type_of(value)
        if current is None:
            new[name] = value
        elif _type_of(current) != kind:
            raise _InvalidError("An operand in the update expression has an incorrect data type")
        elif kind == "N":
            new[name] = {"N": _arithmetic("+", Decimal(current["N"]), Decimal(value["N"]))}
        else:
            new[name] = {kind: current[kind] + [v for v in value[kind] if not _member(kind, v, current[kind])]}
    for path, operand in update.deletes:
        name, value, current = context.name(path), context.value(operand), old.get(context.name(path))
        kind = _type_of(value)
        if current is None:
            continue
        if _type_of(current) != kind:
            raise _InvalidError("An operand in the update expression has an incorrect data type")
        kept = [v for v in current[kind] if not _member(kind, v, value[kind])]
        if kept:
            new[name] = {kind: kept}
        else:
            new.pop(name)
    return new


def _member(kind: str, element: str, members: list[str]) -> bool:
    if kind == "NS":
        return any(Decimal(element) == Decimal(m) for m in members)
    return element in members


# ------------------------------------------------------------------ requests


class _ConditionArguments(TypedDict, total=False):
    """What PutItem, DeleteItem and UpdateItem may carry besides their item or key: a condition and the names and
    values its expressions use (as boto3 names them)."""

    ConditionExpression: str | None
    ExpressionAttributeNames: dict[str, str] | None
    ExpressionAttributeValues: dict[str, Any] | None


@dataclass
class _Write:
    """One prepared write (or condition check), parsed and validated before the database is touched."""

    kind: str  # Put | Update | Delete | ConditionCheck
    key: tuple[str, str]
    context: _Context
    condition: Any | None = None
    item: Item | None = None  # Put
    update: _Update | None = None  # Update


class _Connection:
    """A thread's own connection (a weakref-able holder, so that close() can reach every open one)."""

    __slots__ = ("__weakref__", "db", "pid")

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.pid = os.getpid()


def _column(index: Index, part: str) -> str:
    """An index key's column. SQL text is only ever built from these names (index names are checked to be
    letters, digits and `_`) and our own operators; every value is a bound parameter."""
    return f'"ix_{index.name}_{part}"'


class SqliteTable:
    """The DynamoDB item calls Store makes, on one SQLite file (see the module's docstring)."""

    def __init__(self, path: Path, spec: TableSpec = TABLE) -> None:
        for index in spec.indexes:
            if not re.fullmatch(r"[A-Za-z0-9_]+", index.name):
                raise ValueError(f"index name {index.name!r}: letters, digits and _ only")
        self._path = Path(path)
        self._spec = spec
        self._keys = (spec.partition_key, spec.sort_key)
        self._indexes = {index.name: index for index in spec.indexes}
        self._local = threading.local()
        self._open: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False
        columns = ", ".join(f"{_column(i, 'pk')}, {_column(i, 'sk')}" for i in spec.indexes)
        self._save_sql = (
            f"INSERT OR REPLACE INTO items (pk, sk, item, expires{', ' + columns if columns else ''}) "  # noqa: S608
            f"VALUES ({', '.join('?' * (4 + 2 * len(spec.indexes)))})"
        )
        self._create_schema()

    # ---- connections

    def _db(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("the table is closed")
        held: _Connection | None = getattr(self._local, "connection", None)
        if held is None or held.pid != os.getpid():
            db = sqlite3.connect(
                self._path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            # FULL: each commit's WAL write is fsynced. kill -9 durability would only need the write to reach the
            # OS (NORMAL); FULL also keeps what was committed through a power cut, and is fast enough locally.
            db.execute("PRAGMA synchronous = FULL")
            held = _Connection(db)
            self._local.connection = held
            with self._lock:
                self._open.add(held)
        return held.db

    def _writing(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction, the write lock taken first: what it reads cannot change before it commits."""
        return immediate(self._db(), self._path)

    def close(self) -> None:
        """Close every connection this table opened (in any thread)."""
        with self._lock:
            self._closed = True
            for held in list(self._open):
                held.db.close()
            self._open.clear()

    def _create_schema(self) -> None:
        db = self._db()
        db.execute("PRAGMA journal_mode = WAL")
        with self._writing() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS items (pk TEXT NOT NULL, sk TEXT NOT NULL, item TEXT NOT NULL, "
                "expires INTEGER, PRIMARY KEY (pk, sk))"
            )
            db.execute("CREATE INDEX IF NOT EXISTS items_expires ON items (expires) WHERE expires IS NOT NULL")
            db.execute("CREATE TABLE IF NOT EXISTS indexes (name TEXT PRIMARY KEY, partition_key TEXT, sort_key TEXT)")
            known = {row[0]: (row[1], row[2]) for row in db.execute("SELECT * FROM indexes")}
            columns = {row[1] for row in db.execute("PRAGMA table_info(items)")}
            for index in self._spec.indexes:
                if known.get(index.name) == (index.partition_key, index.sort_key):
                    continue
                # A new (or redefined) index: its columns, filled from every item, then its SQL index
                for part in ("pk", "sk"):
                    if _column(index, part).strip('"') not in columns:
                        db.execute(f"ALTER TABLE items ADD COLUMN {_column(index, part)} TEXT")
                rows = db.execute("SELECT pk, sk, item FROM items").fetchall()
                for pk, sk, text in rows:
                    entry = self._index_key(index, json.loads(text))
                    db.execute(
                        f"UPDATE items SET {_column(index, 'pk')} = ?, {_column(index, 'sk')} = ? "  # noqa: S608
                        "WHERE pk = ? AND sk = ?",
                        (*entry, pk, sk),
                    )
                db.execute(f'DROP INDEX IF EXISTS "ix_{index.name}"')
                db.execute(
                    f'CREATE INDEX "ix_{index.name}" ON items ({_column(index, "pk")}, {_column(index, "sk")}, pk, sk) '
                    f"WHERE {_column(index, 'pk')} IS NOT NULL"
                )
                db.execute(
                    "INSERT OR REPLACE INTO indexes VALUES (?, ?, ?)", (index.name, index.partition_key, index.sort_key)
                )

    # ---- rows

    @staticmethod
    def _index_key(index: Index, item: Item) -> tuple[str | None, str | None]:
        """The item's key in a sparse index: both attributes as strings, or not in it."""
        pk, sk = item.get(index.partition_key), item.get(index.sort_key)
        if pk is None or sk is None or "S" not in pk or "S" not in sk:
            return None, None
        return pk["S"], sk["S"]

    def _load(self, db: sqlite3.Connection, key: tuple[str, str]) -> Item | None:
        row = db.execute("SELECT item FROM items WHERE pk = ? AND sk = ?", key).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def _save(self, db: sqlite3.Connection, key: tuple[str, str], item: Item | None) -> None:
        if item is None:
            db.execute("DELETE FROM items WHERE pk = ? AND sk = ?", key)
            return
        ttl = item.get(self._spec.ttl_attribute)
        expires = int(Decimal(ttl["N"])) if ttl is not None and "N" in ttl else None
        entries = [part for index in self._spec.indexes for part in self._index_key(index, item)]
        text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        db.execute(self._save_sql, (*key, text, expires, *entries))

    def _key(self, key: Any) -> tuple[str, str]:
        """The table key of a `Key` argument: exactly the key attributes, strings."""
        if not isinstance(key, dict) or set(key) != set(self._keys):
            raise _InvalidError("The provided key element does not match the schema")
        return self._key_values(key)

    def _key_values(self, item: Item) -> tuple[str, str]:
        parts = []
        for name, limit in zip(self._keys, (2048, 1024), strict=True):
            value = item.get(name)
            if value is None:
                raise _InvalidError(f"One or more parameter values were invalid: Missing the key {name} in the item")
            if not isinstance(value, dict) or set(value) != {"S"} or not isinstance(value["S"], str):
                raise _InvalidError(
                    f"One or more parameter values were invalid: Type mismatch for key {name} expected: S"
                )
            if not value["S"]:
                raise _InvalidError(
                    "One or more parameter values are not valid. The AttributeValue for a key attribute cannot "
                    f"contain an empty string value. Key: {name}"
                )
            if len(value["S"].encode()) > limit:
                raise _InvalidError(
                    f"One or more parameter values were invalid: Size of key {name} is over {limit} bytes"
                )
            parts.append(value["S"])
        return parts[0], parts[1]

    def _checked_new(self, item: Any, updating: bool = False) -> Item:
        """A new version of an item, ready to save: valid, its index keys strings, at most 400 KB."""
        checked, size = _checked_item(item)
        self._key_values(checked)
        for index in self._spec.indexes:
            for name in (index.partition_key, index.sort_key):
                value = checked.get(name)
                if value is None:
                    continue
                if _type_of(value) != "S":
                    raise _InvalidError(
                        f"One or more parameter values were invalid: Type mismatch for Index Key {name} "
                        f"Expected: S Actual: {_type_of(value)} IndexName: {index.name}"
                    )
                if not value["S"]:
                    raise _InvalidError(
                        "One or more parameter values are not valid. A value specified for a secondary index key "
                        f"is not supported. The AttributeValue for a key attribute cannot contain an empty string "
                        f"value. IndexName: {index.name}, IndexKey: {name}"
                    )
        if size > MAX_ITEM_BYTES:
            what = "Item size to update" if updating else "Item size"
            raise _InvalidError(f"{what} has exceeded the maximum allowed size")
        return checked

    # ---- preparing writes

    def _prepared(self, kind: str, request: Any) -> _Write:
        if not isinstance(request, dict):
            raise _InvalidError(f"{kind} must be a map")
        allowed = {"TableName", "ConditionExpression", "ExpressionAttributeNames", "ExpressionAttributeValues"}
        allowed |= {"Item"} if kind == "Put" else {"Key"} | ({"UpdateExpression"} if kind == "Update" else set())
        if unknown := set(request) - allowed:
            raise _InvalidError(f"{kind}: unsupported parameters {sorted(unknown)}")
        condition_text = request.get("ConditionExpression")
        if kind == "ConditionCheck" and condition_text is None:
            raise _InvalidError("ConditionCheck needs a ConditionExpression")
        parsed = []
        condition = None
        if condition_text is not None:
            condition = _parse_condition(condition_text, "ConditionExpression")
            parsed.append(condition)
        update = None
        if kind == "Update" and request.get("UpdateExpression") is not None:
            update = _parse_update(request["UpdateExpression"])
            parsed.append(update)
        context = _Context(request.get("ExpressionAttributeNames"), request.get("ExpressionAttributeValues"), parsed)
        if condition is not None:
            _check_condition(condition.root, context, "ConditionExpression")
        if update is not None:
            _check_update(update.root, context, self._keys)
        root = None if condition is None else condition.root
        if kind == "Put":
            item = self._checked_new(request.get("Item"))
            return _Write(kind, self._key_values(item), context, root, item=item)
        return _Write(
            kind, self._key(request.get("Key")), context, root, update=None if update is None else update.root
        )

    def _outcome(self, write: _Write, old: Item | None) -> Item | None:
        """The item after the write (None: absent); `_FailedError` when its condition does not hold."""
        if write.condition is not None and not _holds(write.condition, old or {}, write.context):
            raise _FailedError
        if write.kind == "Put":
            return write.item
        if write.kind == "Delete":
            return None
        if write.kind == "ConditionCheck":
            return old
        base = old if old is not None else {self._keys[0]: {"S": write.key[0]}, self._keys[1]: {"S": write.key[1]}}
        new = base if write.update is None else _applied(write.update, base, write.context)
        return self._checked_new(new, updating=True)

    def _single(self, write: _Write) -> tuple[Item | None, Item | None]:
        with self._writing() as db:
            old = self._load(db, write.key)
            new = self._outcome(write, old)
            self._save(db, write.key, new)
        return old, new

    # ---- the client's calls

    def get_item(
        self,
        *,
        TableName: str,
        Key: Item,
        ConsistentRead: bool = False,
        ProjectionExpression: str | None = None,
        ExpressionAttributeNames: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        with _errors("GetItem"):
            key = self._key(Key)
            wanted = _projection(ProjectionExpression, ExpressionAttributeNames)
            row = self._db().execute("SELECT item FROM items WHERE pk = ? AND sk = ?", key).fetchone()
        if row is None:
            return {}
        item: Item = json.loads(row[0])
        return {"Item": item if wanted is None else {name: v for name, v in item.items() if name in wanted}}

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:
        """Up to 100 items by key, each read as a consistent GetItem (not one snapshot, as in DynamoDB); what would
        pass 16 MB is left in `UnprocessedKeys`, to be asked for again. Items found come in no promised order."""
        with _errors("BatchGetItem"):
            if not isinstance(RequestItems, dict) or len(RequestItems) != 1:
                raise _InvalidError("BatchGetItem: the local table reads one table per request")
            ((name, request),) = RequestItems.items()
            if not isinstance(request, dict) or not isinstance(request.get("Keys"), list):
                raise _InvalidError("BatchGetItem: a table's request needs its Keys")
            if unknown := set(request) - {"Keys", "ConsistentRead"}:
                raise _InvalidError(f"BatchGetItem: unsupported parameters {sorted(unknown)}")
            keys = [self._key(key) for key in request["Keys"]]
            if not 1 <= len(keys) <= MAX_BATCH_GET_KEYS:
                raise _InvalidError(
                    "1 validation error detected: Value at 'requestItems."
                    f"{name}.member.keys' failed to satisfy constraint: Member must have length between 1 and "
                    f"{MAX_BATCH_GET_KEYS}"
                )
            if len(set(keys)) != len(keys):
                raise _InvalidError("Provided list of item keys contains duplicates")
            found: list[Item] = []
            unprocessed: list[Item] = []
            size = 0
            db = self._db()
            for key in keys:
                row = db.execute("SELECT item FROM items WHERE pk = ? AND sk = ?", key).fetchone()
                if row is None:
                    continue
                if unprocessed or size + len(row[0]) > BATCH_GET_BYTES:
                    unprocessed.append({self._keys[0]: {"S": key[0]}, self._keys[1]: {"S": key[1]}})
                    continue
                size += len(row[0])
                found.append(json.loads(row[0]))
        response: dict[str, Any] = {"Responses": {name: found}, "UnprocessedKeys": {}}
        if unprocessed:
            response["UnprocessedKeys"] = {name: {"Keys": unprocessed}}
        return response

    def put_item(
        self, *, TableName: str, Item: Item, ReturnValues: str = "NONE", **condition: Unpack[_ConditionArguments]
    ) -> dict[str, Any]:
        """The whole item written, when its condition holds on the one it replaces (if any)."""
        return self._put_or_delete("Put", _given(TableName=TableName, Item=Item, **condition), ReturnValues)

    def delete_item(
        self, *, TableName: str, Key: Item, ReturnValues: str = "NONE", **condition: Unpack[_ConditionArguments]
    ) -> dict[str, Any]:
        """The item gone, when its condition holds on it (deleting an absent item is no error)."""
        return self._put_or_delete("Delete", _given(TableName=TableName, Key=Key, **condition), ReturnValues)

    def _put_or_delete(self, kind: Literal["Put", "Delete"], request: dict[str, Any], returns: str) -> dict[str, Any]:
        """PutItem or DeleteItem: one write; the item it replaced or removed with `ReturnValues` ALL_OLD."""
        operation = f"{kind}Item"
        with _errors(operation):
            if returns not in ("NONE", "ALL_OLD"):
                raise _InvalidError(f"ReturnValues can only be NONE or ALL_OLD for {operation}")
            old, _ = self._single(self._prepared(kind, request))
        return {"Attributes": old} if returns == "ALL_OLD" and old is not None else {}

    def update_item(
        self,
        *,
        TableName: str,
        Key: Item,
        UpdateExpression: str | None = None,
        ReturnValues: str = "NONE",
        **condition: Unpack[_ConditionArguments],
    ) -> dict[str, Any]:
        with _errors("UpdateItem"):
            if ReturnValues not in ("NONE", "ALL_OLD", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"):
                raise _InvalidError(f"ReturnValues {ReturnValues} is not one of NONE, ALL_OLD, ALL_NEW, UPDATED_*")
            request = _given(TableName=TableName, Key=Key, UpdateExpression=UpdateExpression, **condition)
            write = self._prepared("Update", request)
            old, new = self._single(write)
        if ReturnValues == "NONE":
            return {}
        chosen = old if ReturnValues.endswith("OLD") else new
        if chosen is not None and ReturnValues.startswith("UPDATED") and write.update is not None:
            touched = {write.context.name(p) for p in write.update.targets()}
            chosen = {k: v for k, v in chosen.items() if k in touched}
        return {"Attributes": json.loads(json.dumps(chosen))} if chosen else {}

    def transact_write_items(self, *, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        """All or nothing: every condition judged against the items as they were before, in one transaction."""
        with _errors("TransactWriteItems"):
            if not isinstance(TransactItems, list) or not 1 <= len(TransactItems) <= MAX_TRANSACTION_ITEMS:
                raise _InvalidError(
                    "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {MAX_TRANSACTION_ITEMS}"
                )
            writes = []
            for entry in TransactItems:
                if not isinstance(entry, dict) or len(entry) != 1:
                    raise _InvalidError("A TransactItem holds exactly one of Put, Update, Delete, ConditionCheck")
                ((kind, request),) = entry.items()
                if kind not in ("Put", "Update", "Delete", "ConditionCheck"):
                    raise _InvalidError(f"Unsupported TransactItem {kind}")
                writes.append(self._prepared(kind, request))
            if len({w.key for w in writes}) != len(writes):
                raise _InvalidError("Transaction request cannot include multiple operations on one item")
            with self._writing() as db:
                olds = [self._load(db, w.key) for w in writes]
                reasons: list[dict[str, str]] = []
                news: list[Item | None] = []
                for write, old in zip(writes, olds, strict=True):
                    try:
                        news.append(self._outcome(write, old))
                        reasons.append({"Code": "None"})
                    except _FailedError:
                        news.append(old)
                        reasons.append({"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"})
                    except _InvalidError as error:
                        news.append(old)
                        reasons.append({"Code": "ValidationError", "Message": str(error)})
                if any(r["Code"] != "None" for r in reasons):
                    raise _CancelledError(reasons)
                for write, new in zip(writes, news, strict=True):
                    if write.kind != "ConditionCheck":
                        self._save(db, write.key, new)
        return {}

    def query(
        self,
        *,
        TableName: str,
        KeyConditionExpression: str,
        IndexName: str | None = None,
        FilterExpression: str | None = None,
        ExpressionAttributeNames: dict[str, str] | None = None,
        ExpressionAttributeValues: dict[str, Any] | None = None,
        ScanIndexForward: bool = True,
        Limit: int | None = None,
        ExclusiveStartKey: Item | None = None,
        Select: str | None = None,
        ConsistentRead: bool = False,
    ) -> dict[str, Any]:
        """A partition in sort key order (an index's: then by table key), `Limit` items read, then filtered."""
        with _errors("Query"):
            if IndexName is None:
                keys, columns = self._keys, ("pk", "sk")
                order: tuple[str, ...] = ("sk",)
                start_names: tuple[str, ...] = (self._keys[1],)  # the partition is the query's
            else:
                if IndexName not in self._indexes:
                    raise _InvalidError(f"The table does not have the specified index: {IndexName}")
                if ConsistentRead:
                    raise _InvalidError("Consistent reads are not supported on global secondary indexes")
                index = self._indexes[IndexName]
                keys = (index.partition_key, index.sort_key)
                columns = (_column(index, "pk"), _column(index, "sk"))
                order = (columns[1], "pk", "sk")
                start_names = (index.sort_key, *self._keys)  # in `order`
            if Select not in (None, "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES", "COUNT"):
                raise _InvalidError(f"Select {Select} is not supported by the local table")
            _check_limit(Limit)
            key_condition = _parse_condition(KeyConditionExpression, "KeyConditionExpression")
            parsed = [key_condition]
            if FilterExpression is not None:
                parsed.append(_parse_condition(FilterExpression, "FilterExpression"))
            context = _Context(ExpressionAttributeNames, ExpressionAttributeValues, parsed)
            key_range = _key_range(key_condition.root, context, keys)
            row_filter = None
            if FilterExpression is not None:
                row_filter = parsed[1].root
                _check_condition(row_filter, context, "FilterExpression")
                for name in _attribute_names(row_filter, context):
                    if name in keys:
                        raise _InvalidError(
                            "Filter Expression can only contain non-primary key attributes: "
                            f"Primary key attribute: {name}"
                        )
            start = None
            if ExclusiveStartKey is not None:
                start = _start_values(ExclusiveStartKey, {*keys, *self._keys}, start_names)
            where, params = key_range.sql(columns, order, start, ScanIndexForward)
            direction = "" if ScanIndexForward else " DESC"
            sql = (
                f"SELECT pk, sk, {columns[1]}, item FROM items WHERE {' AND '.join(where)} "  # noqa: S608
                f"ORDER BY {', '.join(c + direction for c in order)}"
            )
            partition = key_range.partition

            def last_key(pk: str, sk: str, sort: str) -> Item:
                last = {self._keys[0]: {"S": pk}, self._keys[1]: {"S": sk}}
                if IndexName is not None:
                    last |= {keys[0]: {"S": partition}, keys[1]: {"S": sort}}
                return last

            return self._page(sql, params, Limit, row_filter, context, Select == "COUNT", last_key)

    def scan(
        self,
        *,
        TableName: str,
        ExclusiveStartKey: Item | None = None,
        Limit: int | None = None,
        ConsistentRead: bool = False,
    ) -> dict[str, Any]:
        """Every item, in table key order, a page at a time (for tooling; no filter)."""
        with _errors("Scan"):
            _check_limit(Limit)
            where, params = ["1"], []
            if ExclusiveStartKey is not None:
                where = ["(pk, sk) > (?, ?)"]
                params = _start_values(ExclusiveStartKey, set(self._keys), self._keys)
            sql = f"SELECT pk, sk, sk, item FROM items WHERE {where[0]} ORDER BY pk, sk"  # noqa: S608
            context = _Context(None, None, [])

            def last_key(pk: str, sk: str, _: str) -> Item:
                return {self._keys[0]: {"S": pk}, self._keys[1]: {"S": sk}}

            return self._page(sql, params, Limit, None, context, False, last_key)

    def _page(
        self,
        sql: str,
        params: list[str],
        limit: int | None,
        row_filter: Any,
        context: _Context,
        count_only: bool,
        last_key: Any,
    ) -> dict[str, Any]:
        """Read rows until `limit` were read or 1 MB; keep those passing the filter; say where it stopped."""
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        cursor = self._db().execute(sql, params)
        items: list[Item] = []
        count = scanned = read = 0
        stopped_at: tuple[str, str, str] | None = None
        last: tuple[str, str, str] | None = None
        try:
            for pk, sk, sort, text in cursor:
                if scanned and read + len(text) > PAGE_BYTES:
                    stopped_at = last
                    break
                read += len(text)
                scanned += 1
                last = (pk, sk, sort)
                if row_filter is None and count_only:
                    count += 1
                    continue
                item = json.loads(text)
                if row_filter is None or _holds(row_filter, item, context):
                    count += 1
                    if not count_only:
                        items.append(item)
        finally:
            cursor.close()
        if limit is not None and scanned == limit:
            stopped_at = last  # DynamoDB: a page cut by Limit has a LastEvaluatedKey, even with nothing after it
        response: dict[str, Any] = {"Count": count, "ScannedCount": scanned}
        if not count_only:
            response["Items"] = items
        if stopped_at is not None:
            response["LastEvaluatedKey"] = last_key(*stopped_at)
        return response

    def sweep_expired(self, now_epoch: int) -> int:
        """Delete the items whose TTL (epoch seconds) is at or before `now_epoch`; how many went. Reads return
        expired items until then, as DynamoDB's do until its sweeper comes."""
        total = 0
        while True:
            with self._writing() as db:
                removed = db.execute(
                    "DELETE FROM items WHERE rowid IN (SELECT rowid FROM items WHERE expires <= ? LIMIT ?)",
                    (now_epoch, _SWEEP_BATCH),
                ).rowcount
            total += removed
            if removed < _SWEEP_BATCH:
                return total


_TOP_LEVEL_NAME = re.compile(r"#?[A-Za-z_][A-Za-z0-9_]*")


def _projection(expression: str | None, names: dict[str, str] | None) -> set[str] | None:
    """The attribute names a ProjectionExpression keeps (top-level names, as `Store` asks for them); None: all.
    Nested paths are left out of this adapter and refused; so are names DynamoDB would refuse."""
    if expression is None:
        if names:
            raise _InvalidError("ExpressionAttributeNames can only be specified when using expressions")
        return None
    names = names or {}
    tokens = [token.strip() for token in expression.split(",")]
    if not all(_TOP_LEVEL_NAME.fullmatch(token) for token in tokens):
        raise _InvalidError(f"Invalid ProjectionExpression: only top-level attribute names here: {expression}")
    if undefined := sorted(t for t in tokens if t.startswith("#") and t not in names):
        raise _InvalidError(f"An expression attribute name used in the document path is not defined: {undefined[0]}")
    if unused := sorted(names.keys() - set(tokens)):
        raise _InvalidError(
            f"Value provided in ExpressionAttributeNames unused in expressions: keys: {{{', '.join(unused)}}}"
        )
    return {names[t] if t.startswith("#") else t for t in tokens}


def _given(**arguments: Any) -> dict[str, Any]:
    """A call's keyword arguments as the request map a TransactItem holds (those given)."""
    return {k: v for k, v in arguments.items() if v is not None}


def _check_limit(limit: Any) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise _InvalidError(
            f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1"
        )


def _start_values(start: Any, required: set[str], wanted: tuple[str, ...]) -> list[str]:
    """The `wanted` strings of an ExclusiveStartKey, which has exactly the `required` attributes."""
    if not isinstance(start, dict) or set(start) != required:
        raise _InvalidError("The provided starting key is invalid: The provided key element does not match the schema")
    for value in start.values():
        if not isinstance(value, dict) or set(value) != {"S"} or not isinstance(value["S"], str):
            raise _InvalidError("The provided starting key is invalid: key attributes must be strings")
    return [start[name]["S"] for name in wanted]


def _attribute_names(node: Any, context: _Context) -> Iterator[str]:
    if isinstance(node, _Path):
        yield context.name(node)
    elif isinstance(node, _Size):
        yield context.name(node.path)
    elif isinstance(node, _Value):
        return
    elif isinstance(node, _And | _Or):
        yield from _attribute_names(node.left, context)
        yield from _attribute_names(node.right, context)
    elif isinstance(node, _Not):
        yield from _attribute_names(node.operand, context)
    elif isinstance(node, _Compare):
        yield from _attribute_names(node.left, context)
        yield from _attribute_names(node.right, context)
    elif isinstance(node, _Between):
        for part in (node.operand, node.low, node.high):
            yield from _attribute_names(part, context)
    elif isinstance(node, _In):
        for part in (node.operand, *node.choices):
            yield from _attribute_names(part, context)
    elif isinstance(node, _Call):
        for part in node.args:
            yield from _attribute_names(part, context)


@dataclass(frozen=True)
class _KeyRange:
    """A key condition: the partition, and the sort key's bounds, each (value, inclusive)."""

    partition: str
    lower: tuple[str, bool] | None = None
    upper: tuple[str, bool] | None = None

    @property
    def exact(self) -> bool:
        return self.lower is not None and self.lower == self.upper and self.lower[1]

    def sql(
        self, columns: tuple[str, str], order: tuple[str, ...], start: list[str] | None, forward: bool
    ) -> tuple[list[str], list[str]]:
        """WHERE terms and their parameters: an indexed range read, continuing after `start` (in `order`)."""
        where, params = [f"{columns[0]} = ?"], [self.partition]
        lower, upper = self.lower, self.upper
        if start is not None and not self.exact:
            # A start key inside the range is the tighter bound on its side: SQLite seeks to it
            if forward and lower is not None and _within(start[0], lower, 1):
                lower = None
            if not forward and upper is not None and _within(start[0], upper, -1):
                upper = None
        if self.exact and lower is not None:
            where.append(f"{columns[1]} = ?")
            params.append(lower[0])
        else:
            for bound, sign in ((lower, ">"), (upper, "<")):
                if bound is not None:
                    where.append(f"{columns[1]} {sign}{'=' if bound[1] else ''} ?")
                    params.append(bound[0])
        if start is not None:
            after = ">" if forward else "<"
            where.append(f"({', '.join(order)}) {after} ({', '.join('?' * len(order))})")
            params += start
        return where, params


def _within(value: str, bound: tuple[str, bool], side: int) -> bool:
    """`value` is on the inner side of a lower (side 1) or upper (side -1) bound."""
    if value == bound[0]:
        return bound[1]
    return (value > bound[0]) == (side == 1)


def _key_range(node: Any, context: _Context, keys: tuple[str, str]) -> _KeyRange:
    """A key condition's partition equality and at most one sort key condition, as bounds."""
    terms = []
    pending = [node]
    while pending:
        term = pending.pop()
        if isinstance(term, _And):
            pending += [term.right, term.left]
        elif isinstance(term, _Or | _Not | _In):
            operator = type(term).__name__.strip("_").upper()
            raise _InvalidError(f"Invalid operator used in KeyConditionExpression: {operator}")
        else:
            terms.append(term)
    partition: str | None = None
    sort: tuple[tuple[str, bool] | None, tuple[str, bool] | None] | None = None
    for term in terms:
        name, op, operands = _key_term(term, context)
        values = [_key_value(operand, context) for operand in operands]
        if name == keys[0] and op == "=" and partition is None:
            partition = values[0]
        elif name == keys[0]:
            raise _InvalidError("Query key condition not supported")
        elif name != keys[1]:
            raise _InvalidError(f"Query condition missed key schema element: {keys[0]}")
        elif sort is not None:
            raise _InvalidError("Conditions can be of length 1 or 2 only")
        elif op == "BETWEEN":
            if values[0] > values[1]:
                raise _InvalidError(
                    "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or "
                    f"equal to lower bound; lowerBound: {values[0]!r}, upperBound: {values[1]!r}"
                )
            sort = (values[0], True), (values[1], True)
        elif op == "begins_with":
            after = _after_prefix(values[0])
            sort = (values[0], True), None if after is None else (after, False)
        elif op == "<>":
            raise _InvalidError("Unsupported operator on KeyConditionExpression: operator: <>")
        else:
            bound = (values[0], op != "<" and op != ">")
            sort = {"=": (bound, bound), "<": (None, bound), "<=": (None, bound)}.get(op, (bound, None))
    if partition is None:
        raise _InvalidError(f"Query condition missed key schema element: {keys[0]}")
    return _KeyRange(partition, *(sort or (None, None)))


def _key_term(term: Any, context: _Context) -> tuple[str, str, list[Any]]:
    """One term of a key condition: the key attribute it constrains, how, and the value operands."""
    if isinstance(term, _Compare):
        subject, op, operands = term.left, term.op, [term.right]
    elif isinstance(term, _Between):
        subject, op, operands = term.operand, "BETWEEN", [term.low, term.high]
    elif isinstance(term, _Call) and term.function == "begins_with":
        subject, op, operands = term.args[0], "begins_with", [term.args[1]]
    else:
        raise _InvalidError("Invalid KeyConditionExpression: unsupported key condition")
    if not isinstance(subject, _Path):
        raise _InvalidError("Invalid KeyConditionExpression: a condition starts with the key attribute")
    return context.name(subject), op, operands


def _key_value(operand: Any, context: _Context) -> str:
    if not isinstance(operand, _Value):
        raise _InvalidError("Invalid KeyConditionExpression: a key is compared with a value placeholder")
    value = context.value(operand)
    if _type_of(value) != "S":
        raise _InvalidError(
            "One or more parameter values were invalid: Condition parameter type does not match schema type"
        )
    return str(value["S"])


def _after_prefix(prefix: str) -> str | None:
    """The least string above every string starting with `prefix` (code point order); None: no bound."""
    chars = list(prefix)
    while chars:
        point = ord(chars[-1])
        if point < 0x10FFFF:
            point = 0xE000 if 0xD800 <= point + 1 <= 0xDFFF else point + 1
            chars[-1] = chr(point)
            return "".join(chars)
        chars.pop()
    return None
