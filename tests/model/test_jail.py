import numpy as np
import polars as pl

from securecomm.model.stages.jail import datetime_column


def test_times_become_a_datetime_column_with_nulls_where_there_is_none():
    """The jail's times (hold deadlines, transfers) reach the records exactly: microseconds kept, NaT a null,
    times in another unit read in microseconds."""
    times = np.array(["2012-03-11T01:59:59.999999", "NaT", "1969-12-31T23:00:00"], dtype="datetime64[us]")
    column = datetime_column(times)
    assert column.dtype == pl.Datetime("us")
    assert column.null_count() == 1 and column.to_list()[1] is None
    assert column.equals(pl.Series(times, dtype=pl.Datetime("us")))
    in_seconds = np.array(["2014-11-20T12:00:00", "NaT"], dtype="datetime64[s]")
    assert datetime_column(in_seconds).equals(pl.Series(in_seconds.astype("datetime64[us]"), dtype=pl.Datetime("us")))
