import pyarrow as pa
import pytest

from lakehouse import expectations as ex


@pytest.fixture
def table():
    return pa.table(
        {
            "id": [1, 2, 3, 4],
            "usd": [10.0, 20.0, None, 30.0],
            "country": ["IT", "FR", "IT", None],
            "first": ["a", "b", "c", "d"],
            "last": ["x", "y", "z", "w"],
            "full": ["a-x", "b-y", "c-z", "d-w"],
        }
    )


def test_nulls(table):
    assert ex.expect_column_no_nulls(table, "id") is True
    assert ex.expect_column_no_nulls(table, "usd") is False
    assert ex.expect_column_some_null(table, "usd") is True
    assert ex.expect_column_all_null(table, "usd") is False
    assert ex.expect_column_all_null(pa.table({"x": pa.array([None, None], pa.int64())}), "x") is True


def test_unique(table):
    assert ex.expect_column_all_unique(table, "id") is True
    assert ex.expect_column_all_unique(table, "country") is False
    assert ex.expect_column_not_unique(table, "country") is True
    # two nulls are a repeated value
    assert ex.expect_column_all_unique(pa.table({"x": pa.array([1, None, None])}), "x") is False


def test_accepted_values(table):
    assert ex.expect_column_accepted_values(table, "country", ["IT", "FR"]) is True
    assert ex.expect_column_accepted_values(table, "country", ["IT"]) is False
    assert ex.expect_column_accepted_values(table, "id", [1, 2, 3, 4, 5]) is True
    assert ex.expect_column_accepted_values(table, "id", []) is False


def test_means(table):
    # mean of 10, 20, 30 (null ignored) is 20
    assert ex.expect_column_mean_greater_than(table, "usd", 19.9) is True
    assert ex.expect_column_mean_greater_than(table, "usd", 20) is False
    assert ex.expect_column_mean_greater_or_equal_than(table, "usd", 20) is True
    assert ex.expect_column_mean_smaller_than(table, "usd", 20.1) is True
    assert ex.expect_column_mean_smaller_or_equal_than(table, "usd", 19) is False
    assert ex.expect_column_mean_between(table, "usd", 15, 25) is True
    assert ex.expect_column_mean_between(table, "usd", 21, 25) is False
    empty = pa.table({"x": pa.array([], pa.float64())})
    assert ex.expect_column_mean_greater_than(empty, "x", 0) is False


def test_values_between(table):
    assert ex.expect_column_values_between(table, "usd", 10, 30) is True
    assert ex.expect_column_values_between(table, "usd", 11, 30) is False
    assert ex.expect_column_values_between(table, "usd", upper=29) is False
    assert ex.expect_column_values_between(table, "usd", lower=0) is True
    assert ex.expect_column_values_greater_than(table, "id", 0) is True
    assert ex.expect_column_values_greater_than(table, "id", 1) is False
    assert ex.expect_column_values_smaller_than(table, "id", 5) is True


def test_row_count(table):
    assert ex.expect_row_count_between(table, 1, 4) is True
    assert ex.expect_row_count_between(table, 5) is False
    assert ex.expect_row_count_between(table, upper=3) is False
    assert ex.expect_table_not_empty(table) is True
    assert ex.expect_table_not_empty(table.slice(0, 0)) is False


def test_concatenation(table):
    assert ex.expect_column_equal_concatenation(table, "full", ["first", "last"], "-") is True
    assert ex.expect_column_equal_concatenation(table, "full", ["first", "last"]) is False


def test_chunked_and_errors(table):
    chunked = pa.concat_tables([table, table])
    assert ex.expect_column_all_unique(chunked, "id") is False
    assert ex.expect_column_no_nulls(chunked, "id") is True
    with pytest.raises(KeyError, match="not in the table"):
        ex.expect_column_no_nulls(table, "nope")
    with pytest.raises(TypeError):
        ex.expect_column_no_nulls({"id": [1]}, "id")
