"""Data-quality helpers for expectations, vectorised with pyarrow.compute.

Each helper takes a ``pyarrow.Table`` (what a function receives) and a
column name, and returns a plain ``bool``::

    @lakehouse.expectation()
    @lakehouse.python("3.11")
    def usd_not_null(data=lakehouse.Model("usd_by_country", columns=["usd"])):
        from lakehouse.expectations import expect_column_no_nulls
        return expect_column_no_nulls(data, "usd")

Nulls: ``*_between``/``*_greater_than``/``*_smaller_than`` on values ignore
nulls (as SQL aggregates do); an all-null or empty column has no mean, and
the mean helpers return False for it.
"""

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "expect_column_no_nulls",
    "expect_column_some_null",
    "expect_column_all_null",
    "expect_column_all_unique",
    "expect_column_not_unique",
    "expect_column_accepted_values",
    "expect_column_equal_concatenation",
    "expect_column_mean_greater_than",
    "expect_column_mean_greater_or_equal_than",
    "expect_column_mean_smaller_than",
    "expect_column_mean_smaller_or_equal_than",
    "expect_column_mean_between",
    "expect_column_values_between",
    "expect_column_values_greater_than",
    "expect_column_values_smaller_than",
    "expect_row_count_between",
    "expect_table_not_empty",
]


def _column(table, column):
    """Returns the column of table as a ChunkedArray, with a clear error."""
    if isinstance(table, (pa.Array, pa.ChunkedArray)):
        return table
    if not isinstance(table, (pa.Table, pa.RecordBatch)):
        raise TypeError("expected a pyarrow.Table, got %s" % type(table).__name__)
    if column not in table.column_names:
        raise KeyError("column %r is not in the table (columns: %s)" % (column, ", ".join(table.column_names)))
    return table.column(column)


def _bool(scalar):
    v = scalar.as_py() if isinstance(scalar, pa.Scalar) else scalar
    return bool(v) if v is not None else False


def expect_column_no_nulls(table, column):
    """True if column has no nulls."""
    return _column(table, column).null_count == 0


def expect_column_some_null(table, column):
    """True if column has at least one null."""
    return _column(table, column).null_count > 0


def expect_column_all_null(table, column):
    """True if every value of column is null (an empty column counts)."""
    col = _column(table, column)
    return col.null_count == len(col)


def expect_column_all_unique(table, column):
    """True if no value of column occurs twice (nulls count as a value)."""
    col = _column(table, column)
    return pc.count_distinct(col, mode="all").as_py() == len(col)


def expect_column_not_unique(table, column):
    """True if some value of column occurs more than once."""
    return not expect_column_all_unique(table, column)


def expect_column_accepted_values(table, column, accepted_values):
    """True if every non-null value of column is in accepted_values."""
    col = _column(table, column)
    if len(col) == col.null_count:
        return True
    values = pa.array(list(accepted_values), type=col.type) if len(accepted_values) else pa.array([], type=col.type)
    # Nulls are not values: a null counts as accepted.
    ok = pc.or_(pc.is_in(col, value_set=values), pc.is_null(col))
    return _bool(pc.all(ok))


def expect_column_equal_concatenation(table, target_column, columns, separator=""):
    """True if target_column equals the concatenation of columns with separator."""
    target = _column(table, target_column)
    parts = [pc.cast(_column(table, c), pa.string()) for c in columns]
    joined = pc.binary_join_element_wise(*parts, separator)
    return _bool(pc.all(pc.equal(pc.cast(target, pa.string()), joined)))


def _mean(table, column):
    col = _column(table, column)
    return pc.mean(col).as_py()


def expect_column_mean_greater_than(table, column, value):
    """True if the mean of column (nulls ignored) is > value."""
    m = _mean(table, column)
    return m is not None and m > value


def expect_column_mean_greater_or_equal_than(table, column, value):
    """True if the mean of column (nulls ignored) is >= value."""
    m = _mean(table, column)
    return m is not None and m >= value


def expect_column_mean_smaller_than(table, column, value):
    """True if the mean of column (nulls ignored) is < value."""
    m = _mean(table, column)
    return m is not None and m < value


def expect_column_mean_smaller_or_equal_than(table, column, value):
    """True if the mean of column (nulls ignored) is <= value."""
    m = _mean(table, column)
    return m is not None and m <= value


def expect_column_mean_between(table, column, lower, upper):
    """True if lower <= mean(column) <= upper (nulls ignored)."""
    m = _mean(table, column)
    return m is not None and lower <= m <= upper


def expect_column_values_between(table, column, lower=None, upper=None):
    """True if every non-null value v of column has lower <= v <= upper
    (a None bound is open)."""
    col = _column(table, column)
    if len(col) == col.null_count:
        return True
    mm = pc.min_max(col).as_py()
    if lower is not None and mm["min"] < lower:
        return False
    if upper is not None and mm["max"] > upper:
        return False
    return True


def expect_column_values_greater_than(table, column, value):
    """True if every non-null value of column is > value."""
    col = _column(table, column)
    if len(col) == col.null_count:
        return True
    return pc.min_max(col).as_py()["min"] > value


def expect_column_values_smaller_than(table, column, value):
    """True if every non-null value of column is < value."""
    col = _column(table, column)
    if len(col) == col.null_count:
        return True
    return pc.min_max(col).as_py()["max"] < value


def expect_row_count_between(table, lower=None, upper=None):
    """True if lower <= number of rows <= upper (a None bound is open)."""
    if not isinstance(table, (pa.Table, pa.RecordBatch)):
        raise TypeError("expected a pyarrow.Table, got %s" % type(table).__name__)
    n = table.num_rows
    return (lower is None or n >= lower) and (upper is None or n <= upper)


def expect_table_not_empty(table):
    """True if the table has at least one row."""
    return expect_row_count_between(table, lower=1)
