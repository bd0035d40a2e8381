"""Policies start on the dates their texts give (issue 12)."""

import datetime as dt

from securecomm.law.timeline import PolicyTimeline


def test_dc_limits_apply_from_the_june_2012_emergency_act():
    timeline = PolicyTimeline.historical()
    assert "dc/detainer-compliance-2012" in timeline.in_force("11001", dt.date(2012, 6, 15))
    assert "dc/detainer-compliance-2012" in timeline.in_force("11001", dt.date(2012, 10, 1))
    assert "dc/detainer-compliance-2012" not in timeline.in_force("11001", dt.date(2012, 6, 14))
